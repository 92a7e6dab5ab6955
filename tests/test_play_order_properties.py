"""The incremental play order (issue 15.1) equals a from-scratch computation after every step.

The shared driver (``tests.queue_machine``) runs random submits, plays, moves, approvals, withdrawals,
engagement flushes, links, proofs, unlinks, resets, "every Nth from Free" and "verified handles only"
changes and restarts on the real services; this machine adds weight changes, handle resets, resetting
everyone, admin links and a render racing a flush and a ``/next``. After
every step the order the service keeps up to date must equal one computed from scratch (the rows of the
playable lines, the Free scores from the ledger, one sort by ``play_order_key``, then the every-Nth rule
applied one play at a time from the archive), and positions and pages must agree with it.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.conftest import GUILD
from tests.queue_machine import HANDLES, USERS, QueueDriver


class IncrementalOrderMachine(QueueDriver):
    """Random queue histories; the invariant is "incremental order == from-scratch computation"."""

    @rule(handle=HANDLES, other=HANDLES, likes=st.integers(1, 40))
    def render_races_flush_and_next(self, handle: str, other: str, likes: int) -> None:
        async def together() -> None:
            await asyncio.gather(
                self.queue.ordered_queue(GUILD),
                self.flush(handle, likes, 0),
                self.queue.next(GUILD),
                self.flush(other, 1, 1),
                self.queue.ordered_queue(GUILD),
            )

        self.run(together())

    @rule(user=USERS, handle=HANDLES)
    def admin_link(self, user: int, handle: str) -> None:
        self.in_place(self.points.admin_link(GUILD, user, handle))

    @rule()
    def reset_all(self) -> None:
        self.run(self.points.reset_all(GUILD))

    @rule(handle=HANDLES)
    def reset_handle(self, handle: str) -> None:
        self.attempt(self.points.reset_handle(GUILD, handle))

    @rule(like=st.integers(0, 3), comment=st.integers(0, 5))
    def weights(self, like: int, comment: int) -> None:
        self.run(self.points.set_weights(GUILD, like=like, comment=comment))

    @invariant()
    def incremental_order_equals_a_computation_from_scratch(self) -> None:
        if not hasattr(self, "db"):
            return
        expected = self.expected_order()
        kept = self.run(self.queue.ordered_queue(GUILD))
        assert [(e.submission.id, e.score) for e in kept] == expected
        assert [e.position for e in kept] == list(range(1, len(kept) + 1))
        # positions answered one by one (index lookups) and pages agree with the whole order
        for entry in kept[:5]:
            assert self.run(self.queue.placement(entry.submission)).position == entry.position
        page = self.run(self.queue.queue_page(GUILD, 1, 3))
        assert [e.submission.id for e in page.entries] == [e.submission.id for e in kept[3:6]] or len(kept) <= 3
        assert page.total == len(kept)
        assert sum(page.line_totals.values()) == len(kept)


IncrementalOrderMachine.TestCase.settings = settings(
    max_examples=35,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIncrementalOrder = IncrementalOrderMachine.TestCase

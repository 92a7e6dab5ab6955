"""Property-based tests: random sequences of queue operations keep the invariants of SPEC section 2.

The random histories come from the shared driver (``tests.queue_machine``); this machine adds opening and
closing the Free line and checks the queue model's invariants after every step.
"""

from __future__ import annotations

import collections

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from models import ACTIVE_LINES, Line
from services.queue import QueueService
from tests.conftest import GUILD
from tests.queue_machine import QueueDriver


class QueueMachine(QueueDriver):
    """Drives the real services on a real SQLite file and checks the invariants after every step."""

    @rule(is_open=st.booleans())
    def toggle_free(self, is_open: bool) -> None:
        self.run(self.queue.set_free_open(GUILD, is_open))

    @invariant()
    def each_submission_in_exactly_one_line(self) -> None:
        if not hasattr(self, "db"):
            return

        async def lines() -> list[tuple[str, int]]:
            async with self.db.conn.execute("SELECT line, user_id FROM submissions") as cur:
                return [(r[0], r[1]) for r in await cur.fetchall()]

        rows = self.run(lines())
        assert len(rows) == self.created
        assert all(Line(line) in Line for line, _ in rows)
        free_or_pending = collections.Counter(u for line, u in rows if line in ("Free", "Pending Skips"))
        assert all(count <= 1 for count in free_or_pending.values())

    @invariant()
    def order_is_fresh_and_consistent(self) -> None:
        if not hasattr(self, "db"):
            return
        cached = self.run(self.queue.ordered_queue(GUILD))
        fresh = self.run(QueueService(self.db, clock=self.clock).ordered_queue(GUILD))
        # No stale score or streak: the cached order equals one built from scratch from the database.
        assert [(e.submission.id, e.score) for e in cached] == [(e.submission.id, e.score) for e in fresh]
        assert [e.position for e in cached] == list(range(1, len(cached) + 1))
        assert all(e.submission.line in ACTIVE_LINES and e.submission.line.is_playable for e in cached)
        # Strict priority among the paid lines always; Free after them unless every Nth comes from Free.
        every_nth = self.run(self.db.get_settings(GUILD)).free_every_nth
        paid = [e.submission.line.priority for e in cached if e.submission.line is not Line.FREE]
        assert paid == sorted(paid)
        if not every_nth:
            priorities = [e.submission.line.priority for e in cached]
            assert priorities == sorted(priorities)


QueueMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueProperties = QueueMachine.TestCase

"""The incremental play order (issue 15.1) equals a from-scratch sort after every step.

A hypothesis state machine drives the real services on a real SQLite file with random submits, plays,
moves, approvals, withdrawals, engagement flushes, links, resets and weight changes, some of them
concurrently (a render racing a flush and a ``/next``), and after every step compares the order the
service keeps up to date with one computed here from scratch: the rows of the playable lines, the Free
scores from the ledger query ``free_line_counts`` and one sort by ``play_order_key``.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from database import Database, EngagementDelta
from errors import BotError
from models import PLAYABLE_LINES, EngagementCounts, Line
from services.points import PointsService
from services.queue import QueueService, play_order_key
from tests.conftest import GUILD, FakeClock

USERS = st.integers(min_value=1, max_value=6)
HANDLES = st.sampled_from(["aa", "bb", "cc", "dd", "ee"])
TARGETS = st.sampled_from([*PLAYABLE_LINES, Line.REMOVED])


class IncrementalOrderMachine(RuleBasedStateMachine):
    """Random queue histories; the invariant is "incremental order == from-scratch sort"."""

    @initialize()
    def open_database(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.db = Database(Path(self.tmp.name) / "order.db")
        self.run(self.db.connect())
        self.run(self.db.update_settings(GUILD, submit_cooldown_seconds=0, max_pending_per_user=0))
        self.queue = QueueService(self.db, clock=self.clock)
        self.points = PointsService(self.db, self.queue, clock=self.clock)
        self.counter = 0
        self.run(self.queue.ordered_queue(GUILD))  # the order exists from here on: every step updates it

    def teardown(self) -> None:
        if hasattr(self, "db"):
            self.run(self.db.close())
            self.loop.close()
            self.tmp.cleanup()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def attempt(self, coro) -> None:
        with contextlib.suppress(BotError):
            self.run(coro)

    def public_ids(self) -> list[str]:
        async def fetch() -> list[str]:
            async with self.db.conn.execute("SELECT public_id FROM submissions ORDER BY id") as cur:
                return [r[0] for r in await cur.fetchall()]

        return self.run(fetch())

    async def flush(self, handle: str, likes: int, comments: int) -> None:
        # What EngagementWriter does after a flush window: write the ledger, then report the handles.
        delta = EngagementDelta(handle, EngagementCounts(likes=likes, comments=comments))
        await self.db.apply_engagement(GUILD, None, [delta])
        await self.queue.scores_changed(GUILD, [handle])

    # ------------------------------------------------------------------ rules

    @rule(user=USERS, skip=st.booleans(), handle=st.none() | HANDLES)
    def submit(self, user: int, skip: bool, handle: str | None) -> None:
        self.counter += 1
        draft = self.queue.draft(
            artist="a", title=f"t{self.counter}", note=None, link=f"https://x.test/{self.counter}", handle=handle
        )
        self.attempt(self.queue.submit(GUILD, user, f"u{user}", draft, skip=skip))

    @rule(index=st.integers(0, 60), line=TARGETS)
    def move(self, index: int, line: Line) -> None:
        ids = self.public_ids()
        if ids:
            self.attempt(self.queue.move(GUILD, ids[index % len(ids)], line))

    @rule(index=st.integers(0, 60), line=st.sampled_from(PLAYABLE_LINES))
    def approve(self, index: int, line: Line) -> None:
        ids = self.public_ids()
        if ids:
            self.attempt(self.queue.approve(GUILD, ids[index % len(ids)], line))

    @rule(user=USERS, index=st.integers(0, 60))
    def withdraw(self, user: int, index: int) -> None:
        ids = self.public_ids()
        if ids:
            self.attempt(self.queue.withdraw(GUILD, user, ids[index % len(ids)]))

    @rule()
    def play_next(self) -> None:
        shown = self.run(self.queue.ordered_queue(GUILD))
        result = self.run(self.queue.next(GUILD))
        assert (result is None) == (not shown)
        if result is not None:
            assert result.submission.id == shown[0].submission.id and result.score == shown[0].score

    @rule(handle=HANDLES, likes=st.integers(1, 40), comments=st.integers(0, 4))
    def engage(self, handle: str, likes: int, comments: int) -> None:
        self.run(self.flush(handle, likes, comments))

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
    def link(self, user: int, handle: str) -> None:
        self.attempt(self.points.link(GUILD, user, handle))

    @rule(user=USERS, handle=HANDLES)
    def admin_link(self, user: int, handle: str) -> None:
        self.run(self.points.admin_link(GUILD, user, handle))

    @rule(user=USERS)
    def reset_user(self, user: int) -> None:
        self.run(self.points.reset_user(GUILD, user))

    @rule(handle=HANDLES)
    def reset_handle(self, handle: str) -> None:
        self.attempt(self.points.reset_handle(GUILD, handle))

    @rule(like=st.integers(0, 3), comment=st.integers(0, 5))
    def weights(self, like: int, comment: int) -> None:
        self.run(self.points.set_weights(GUILD, like=like, comment=comment))

    @rule()
    def clear_free(self) -> None:
        self.run(self.queue.clear_free(GUILD))

    # ------------------------------------------------------------------ the invariant

    @invariant()
    def incremental_order_equals_a_sort_from_scratch(self) -> None:
        if not hasattr(self, "db"):
            return

        async def from_scratch() -> list[tuple[int, int, int]]:
            submissions = await self.db.line_submissions(GUILD, PLAYABLE_LINES)
            counts = await self.db.free_line_counts(GUILD)
            weights = (await self.db.get_settings(GUILD)).weights
            scored = []
            for sub in submissions:
                score = counts.get(sub.id, EngagementCounts()).points(weights) if sub.line is Line.FREE else 0
                scored.append((play_order_key(sub, score), sub.id, score))
            scored.sort()
            return [(position, sid, score) for position, (_key, sid, score) in enumerate(scored, start=1)]

        expected = self.run(from_scratch())
        kept = self.run(self.queue.ordered_queue(GUILD))
        assert [(e.position, e.submission.id, e.score) for e in kept] == expected
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

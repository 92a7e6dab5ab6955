"""Property-based tests: random sequences of queue operations keep the invariants of SPEC section 2."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from database import Database, EngagementDelta
from errors import BotError
from models import ACTIVE_LINES, PLAYABLE_LINES, EngagementCounts, Line
from services.points import PointsService
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock

USERS = st.integers(min_value=1, max_value=5)
HANDLES = st.sampled_from(["aa", "bb", "cc", "dd"])
TARGETS = st.sampled_from([*PLAYABLE_LINES, Line.PENDING, Line.REMOVED])


class QueueMachine(RuleBasedStateMachine):
    """Drives the real services on a real SQLite file and checks the invariants after every step."""

    @initialize()
    def open_database(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.db = Database(Path(self.tmp.name) / "prop.db")
        self.run(self.db.connect())
        self.run(self.db.update_settings(GUILD, submit_cooldown_seconds=0, max_pending_per_user=0))
        self.queue = QueueService(self.db, clock=self.clock)
        self.points = PointsService(self.db, self.queue, clock=self.clock)
        self.created = 0
        self.counter = 0

    def teardown(self) -> None:
        if hasattr(self, "db"):
            self.run(self.db.close())
            self.loop.close()
            self.tmp.cleanup()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def ids(self) -> list[str]:
        async def fetch() -> list[str]:
            async with self.db.conn.execute("SELECT public_id FROM submissions ORDER BY id") as cur:
                return [r[0] for r in await cur.fetchall()]

        return self.run(fetch())

    def attempt(self, coro) -> None:
        # A refused operation is a valid outcome; the invariants must still hold after it.
        with contextlib.suppress(BotError):
            self.run(coro)

    @rule(user=USERS, skip=st.booleans(), handle=st.none() | HANDLES, same_song=st.booleans())
    def submit(self, user: int, skip: bool, handle: str | None, same_song: bool) -> None:
        self.counter += 1
        n = 1 if same_song else self.counter
        draft = self.queue.draft(artist="a", title=f"t{n}", note=None, link=f"https://x.test/{n}", handle=handle)
        try:
            self.run(self.queue.submit(GUILD, user, f"u{user}", draft, skip=skip))
            self.created += 1
        except BotError:
            pass

    @rule(index=st.integers(0, 50), line=TARGETS)
    def move(self, index: int, line: Line) -> None:
        ids = self.ids()
        if ids:
            self.attempt(self.queue.move(GUILD, ids[index % len(ids)], line))

    @rule(index=st.integers(0, 50), line=st.sampled_from(PLAYABLE_LINES))
    def approve(self, index: int, line: Line) -> None:
        ids = self.ids()
        if ids:
            self.attempt(self.queue.approve(GUILD, ids[index % len(ids)], line))

    @rule(user=USERS, index=st.integers(0, 50))
    def withdraw(self, user: int, index: int) -> None:
        ids = self.ids()
        if ids:
            self.attempt(self.queue.withdraw(GUILD, user, ids[index % len(ids)]))

    @rule()
    def play_next(self) -> None:
        shown = self.run(self.queue.ordered_queue(GUILD))
        result = self.run(self.queue.next(GUILD))
        if not shown:
            assert result is None
        else:
            assert result is not None and result.submission.id == shown[0].submission.id
            assert result.submission.line is Line.PLAYED and result.from_line is shown[0].submission.line

    @rule(handle=HANDLES, likes=st.integers(1, 50), comments=st.integers(0, 5))
    def engage(self, handle: str, likes: int, comments: int) -> None:
        delta = EngagementDelta(handle, EngagementCounts(likes=likes, comments=comments))
        self.run(self.db.apply_engagement(GUILD, None, [delta]))
        self.run(self.queue.scores_changed(GUILD, [handle]))  # what the engagement writer does after a flush

    @rule(user=USERS, handle=HANDLES)
    def link(self, user: int, handle: str) -> None:
        self.attempt(self.points.link(GUILD, user, handle))

    @rule(user=USERS)
    def reset_user(self, user: int) -> None:
        self.run(self.points.reset_user(GUILD, user))

    @rule()
    def clear_free(self) -> None:
        self.run(self.queue.clear_free(GUILD))

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
        # No stale score: the cached order equals one computed from scratch from the ledger.
        assert [(e.submission.id, e.score) for e in cached] == [(e.submission.id, e.score) for e in fresh]
        assert [e.position for e in cached] == list(range(1, len(cached) + 1))
        assert all(e.submission.line in ACTIVE_LINES and e.submission.line.is_playable for e in cached)
        priorities = [e.submission.line.priority for e in cached]
        assert priorities == sorted(priorities)


QueueMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueProperties = QueueMachine.TestCase

"""The shared driver of the queue's property tests: random queue histories on the real services.

``QueueDriver`` is a hypothesis state machine that runs the real ``QueueService`` and ``PointsService`` on a
real SQLite file: submits (some of the same song), moves, approvals, withdrawals, plays, engagement
flushes, every change of who owns a handle (links, claims, proofs typed in the live chat through the real
``EngagementWriter``, unlinks, admin reassigns), resets, clearing Free, the "every Nth from Free" and
"verified handles only" settings and restarts (a new service reading everything back from the database).
An ownership change must update the kept order in place: the rules check it is the same order object.
The test modules subclass it with their own rules and invariants (``tests/test_queue_properties.py``,
``tests/test_play_order_properties.py``).

``expected_order`` computes the play order from scratch, independently of ``PlayOrder``: one sort by
``play_order_key`` with Free scores from the ledger query ``free_line_counts`` (with the guild's "verified
handles only" setting), then the every-Nth rule
applied one play at a time from the archive's streak.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from database import Database, EngagementDelta
from errors import BotError
from models import PLAYABLE_LINES, EngagementCounts, EngagementEvent, EventKind, Line
from services.engagement import EngagementWriter
from services.points import PointsService
from services.queue import QueueService, play_order_key
from tests.conftest import GUILD, FakeClock

T = TypeVar("T")

USERS = st.integers(min_value=1, max_value=6)
HANDLE_NAMES = ["aa", "bb", "cc", "dd", "ee"]
HANDLES = st.sampled_from(HANDLE_NAMES)
TARGETS = st.sampled_from([*PLAYABLE_LINES, Line.PENDING, Line.REMOVED])
EVERY_NTH = st.sampled_from([0, 2, 3])
PAID_LINES = [line for line in PLAYABLE_LINES if line is not Line.FREE]


class QueueDriver(RuleBasedStateMachine):
    """Random queue histories on the real services; subclasses add invariants (and rules)."""

    @initialize(every_nth=EVERY_NTH, proven_only=st.booleans(), paid=st.integers(0, 5), free=st.integers(0, 4))
    def open_database(self, every_nth: int, proven_only: bool, paid: int, free: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = FakeClock()  # strictly increasing: plays have distinct ``played_at``
        self.db = Database(Path(self.tmp.name) / "queue.db")
        self.run(self.db.connect())
        self.run(
            self.db.update_settings(
                GUILD,
                submit_cooldown_seconds=0,
                max_pending_per_user=0,
                free_every_nth=every_nth,
                verified_handles_only=proven_only,
            )
        )
        self.start_services()
        self.created = 0
        self.counter = 0
        # A queue to start from (paid songs in every paid line, Free songs of distinct members), so plays mix
        # paid and Free even in runs where hypothesis leaves the submit rule out.
        for i in range(paid):
            self.submit([i + 1], skip=True, handle=None, same_song=False, paid=PAID_LINES[i % len(PAID_LINES)])
        for i in range(free):
            self.submit([i + 1], skip=False, handle=HANDLE_NAMES[i], same_song=False, paid=None)

    def start_services(self) -> None:
        self.queue = QueueService(self.db, clock=self.clock)
        self.points = PointsService(self.db, self.queue, clock=self.clock)
        self.writer = EngagementWriter(self.db, self.queue, clock=self.clock)
        self.run(self.queue.ordered_queue(GUILD))  # the order exists from here on: every step updates it
        self.codes: dict[tuple[int, str], str] = {}  # (member, handle) -> the chat code they were given

    def teardown(self) -> None:
        if hasattr(self, "db"):
            self.run(self.db.close())
            self.loop.close()
            self.tmp.cleanup()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def attempt(self, coro: Coroutine[Any, Any, object]) -> None:
        # A refused operation is a valid outcome; the invariants must still hold after it.
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

    def expected_order(self) -> list[tuple[int, int]]:
        """``(submission id, score)`` in play order, computed from scratch from the database."""

        async def from_scratch() -> list[tuple[int, int]]:
            submissions = await self.db.line_submissions(GUILD, PLAYABLE_LINES)
            settings = await self.db.get_settings(GUILD)
            counts = await self.db.free_line_counts(GUILD, verified_only=settings.verified_handles_only)
            scored = []
            for sub in submissions:
                score = counts.get(sub.id, EngagementCounts()).points(settings.weights) if sub.line is Line.FREE else 0
                scored.append((play_order_key(sub, score), sub.id, score, sub.line is Line.FREE))
            scored.sort()
            async with self.db.conn.execute(
                "SELECT played_from FROM submissions WHERE guild_id = ? AND line = 'Played' "
                "ORDER BY played_at DESC, id DESC",
                (GUILD,),
            ) as cur:
                history = [r[0] for r in await cur.fetchall()]
            streak = next((i for i, line in enumerate(history) if line == Line.FREE.value), len(history))
            paid = [(sid, score) for _key, sid, score, free in scored if not free]
            free = [(sid, score) for _key, sid, score, free in scored if free]
            n = settings.free_every_nth
            played = []
            while paid or free:  # the rule, one play at a time
                take_free = bool(free) and (not paid or (n >= 2 and streak >= n - 1))
                played.append(free.pop(0) if take_free else paid.pop(0))
                streak = 0 if take_free else streak + 1
            return played

        return self.run(from_scratch())

    # ------------------------------------------------------------------ rules

    @rule(
        users=st.lists(USERS, min_size=1, max_size=3),
        skip=st.booleans(),
        handle=st.none() | HANDLES,
        same_song=st.booleans(),
        paid=st.none() | st.sampled_from(PAID_LINES),
    )
    def submit(self, users: list[int], skip: bool, handle: str | None, same_song: bool, paid: Line | None) -> None:
        # A few songs at once, a skip sometimes approved at once: queues long enough to mix paid and Free.
        for user in users:
            self.counter += 1
            n = 1 if same_song else self.counter
            draft = self.queue.draft(artist="a", title=f"t{n}", note=None, link=f"https://x.test/{n}", handle=handle)
            try:
                placed = self.run(self.queue.submit(GUILD, user, f"u{user}", draft, skip=skip))
            except BotError:
                continue
            self.created += 1
            if skip and paid is not None:
                self.attempt(self.queue.approve(GUILD, placed.submission.public_id, paid))

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

    @rule(times=st.integers(1, 3))
    def play_next(self, times: int) -> None:
        # Several plays in a row walk the every-Nth cycle; each must play what was shown first, and what is
        # shown must be the from-scratch order (a stale streak would show and play the same wrong song).
        for _ in range(times):
            shown = self.run(self.queue.ordered_queue(GUILD))
            assert [(e.submission.id, e.score) for e in shown] == self.expected_order()
            result = self.run(self.queue.next(GUILD))
            assert (result is None) == (not shown)
            if result is None:
                return
            assert result.submission.id == shown[0].submission.id and result.score == shown[0].score
            assert result.submission.line is Line.PLAYED and result.from_line is shown[0].submission.line

    @rule(handle=HANDLES, likes=st.integers(1, 40), comments=st.integers(0, 4))
    def engage(self, handle: str, likes: int, comments: int) -> None:
        self.run(self.flush(handle, likes, comments))

    def in_place(self, coro: Coroutine[Any, Any, T]) -> T | None:
        """Run an ownership change (a refusal is fine) and check it updated the kept order, not rebuilt it."""
        token = self.run(self.queue.order_view(GUILD)).token
        result: T | None = None
        with contextlib.suppress(BotError):
            result = self.run(coro)
        assert self.run(self.queue.order_view(GUILD)).token == token, "an ownership change rebuilt the order"
        return result

    @rule(user=USERS, handle=HANDLES)
    def link(self, user: int, handle: str) -> None:
        linked = self.in_place(self.points.link(GUILD, user, handle))
        if linked is not None and linked.code:
            self.codes[(user, handle)] = linked.code

    @rule(user=USERS, handle=HANDLES, index=st.integers(0, 30))
    def prove(self, user: int, handle: str, index: int) -> None:
        # The member types their code in the live chat from the TikTok account (or a code that is not
        # theirs, which proves nothing and counts as a comment): the real flush path does the rest.
        codes = sorted(self.codes.items())
        code = self.codes.get((user, handle)) or (codes[index % len(codes)][1] if codes else "nothing")
        self.writer.add(GUILD, [EngagementEvent(EventKind.COMMENT, handle, self.clock(), text=code)])
        self.in_place(self.writer.flush())

    @rule(user=st.none() | USERS, handle=HANDLES)
    def unlink(self, user: int | None, handle: str) -> None:
        # None: an admin unlinks whoever holds it.
        self.in_place(self.points.unlink(GUILD, user, handle))

    @rule(proven_only=st.booleans())
    def verified_handles_only(self, proven_only: bool) -> None:
        self.run(self.db.update_settings(GUILD, verified_handles_only=proven_only))

    @rule(user=USERS)
    def reset_user(self, user: int) -> None:
        self.run(self.points.reset_user(GUILD, user))

    @rule()
    def clear_free(self) -> None:
        self.run(self.queue.clear_free(GUILD))

    @rule(every_nth=EVERY_NTH)
    def set_every_nth(self, every_nth: int) -> None:
        self.run(self.db.update_settings(GUILD, free_every_nth=every_nth))

    @rule()
    def restart(self) -> None:
        # A new process: the order, the streak of paid plays and the setting are read back from the database.
        self.start_services()

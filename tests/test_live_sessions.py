"""Session bookkeeping between the live connection and the engagement writer."""

from __future__ import annotations

import asyncio

import pytest

from database import Database
from models import EngagementEvent, EventKind
from services.engagement import EngagementWriter
from services.feed import LiveEnded, LiveStatusChanged
from services.live_sessions import LiveSessionService
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock


async def test_session_records_events_and_ends_with_a_summary(db: Database, queue: QueueService, clock: FakeClock):
    writer = EngagementWriter(db, queue, clock=clock)
    sessions = LiveSessionService(db, writer, clock=clock)
    session = await sessions.start(GUILD, "host", 42)
    assert sessions.current(GUILD) == session
    sessions.record(GUILD, [EngagementEvent(EventKind.LIKE, "fan", clock(), count=7)])
    summary = await sessions.end(GUILD)  # flushes first: nothing buffered is lost
    assert summary.totals.likes == 7 and summary.session.ended_at is not None
    assert sessions.current(GUILD) is None and writer.session_of(GUILD) is None
    assert await sessions.end(GUILD) is None
    # events after the end still reach the ledger, just not a session
    sessions.record(GUILD, [EngagementEvent(EventKind.LIKE, "fan", clock(), count=1)])
    await writer.flush()
    assert (await db.get_handle(GUILD, "fan")).counts.likes == 8


async def test_a_new_session_closes_a_stale_one(db: Database, queue: QueueService, clock: FakeClock) -> None:
    sessions = LiveSessionService(db, EngagementWriter(db, queue, clock=clock), clock=clock)
    first = await sessions.start(GUILD, "host", 1)
    second = await sessions.start(GUILD, "host", 2)
    assert (await db.get_session(first.id)).ended_at is not None
    assert sessions.current(GUILD).id == second.id


class Gate:
    """A sleep the test releases by hand, so the grace window ends exactly when the test says."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.release.wait()


def _service(db: Database, queue: QueueService, clock: FakeClock, gate: Gate) -> LiveSessionService:
    return LiveSessionService(db, EngagementWriter(db, queue, clock=clock), feed=queue.feed, clock=clock, sleep=gate)


async def test_a_drop_and_a_reconnect_within_the_grace_window_continue_one_session(
    db: Database, queue: QueueService, clock: FakeClock
) -> None:
    ended: list[LiveEnded] = []
    queue.feed.subscribe(ended.append, LiveEnded)  # type: ignore[arg-type]
    gate = Gate()
    sessions = _service(db, queue, clock, gate)
    first = await sessions.connected(GUILD, "host", 1)
    sessions.record(GUILD, [EngagementEvent(EventKind.GIFT, "fan", clock(), coins=600)])
    await sessions.dropped(GUILD)
    await asyncio.sleep(0)
    assert sessions.reconnecting(GUILD) and gate.asked == [300.0]  # the default grace window
    assert sessions.reconnect_until(GUILD) == pytest.approx(clock.now + 300, abs=1)  # what the status shows
    again = await sessions.connected(GUILD, "host", 2)
    assert again.resumed and again.session.id == first.session.id and not sessions.reconnecting(GUILD)
    assert sessions.reconnect_until(GUILD) is None
    sessions.record(GUILD, [EngagementEvent(EventKind.GIFT, "fan", clock(), coins=500)])
    gate.release.set()  # the cancelled grace timer must not end the continued session
    await asyncio.sleep(0)
    assert sessions.current(GUILD) is not None and ended == []
    summary = await sessions.end(GUILD)
    assert summary.totals.coins == 1100  # both halves of the live, one recap
    # gift-tier progress keeps counting
    assert {s.handle: s.counts.coins for s in await db.session_stats(first.session.id)} == {"fan": 1100}
    assert [(e.session_id, e.reason) for e in ended] == [(first.session.id, "ended")]
    assert len(await db.open_sessions()) == 0
    await sessions.close()


async def test_no_reconnect_within_the_grace_window_ends_the_session(
    db: Database, queue: QueueService, clock: FakeClock
) -> None:
    ended: list[LiveEnded] = []
    queue.feed.subscribe(ended.append, LiveEnded)  # type: ignore[arg-type]
    await db.update_settings(GUILD, reconnect_grace_seconds=60)
    gate = Gate()
    sessions = _service(db, queue, clock, gate)
    first = await sessions.connected(GUILD, "host", 1)
    dropped_at = clock()
    await sessions.dropped(GUILD)
    clock.advance(60)  # the window runs out with nothing from the live
    gate.release.set()
    for _ in range(500):  # the expiry ends the session in the background: wait for it, boundedly
        if sessions.current(GUILD) is None and ended:
            break
        await asyncio.sleep(0.01)
    assert gate.asked == [60.0] and sessions.current(GUILD) is None and sessions.reconnect_until(GUILD) is None
    assert [(e.session_id, e.reason) for e in ended] == [(first.session.id, "expired")]
    # The live was last seen at the drop: the recap's length and chart end there, not a window later.
    assert (await db.get_session(first.session.id)).ended_at == pytest.approx(dropped_at, abs=1)  # ticks apart
    later = await sessions.connected(GUILD, "host", 1)
    assert not later.resumed and later.session.id != first.session.id
    await sessions.close()


async def test_a_drop_tells_the_status_message_until_when_it_waits_and_a_zero_window_waits_for_nothing(
    db: Database, queue: QueueService, clock: FakeClock
) -> None:
    changed: list[LiveStatusChanged] = []
    queue.feed.subscribe(changed.append, LiveStatusChanged)  # type: ignore[arg-type]
    sessions = _service(db, queue, clock, Gate())
    await sessions.connected(GUILD, "host", 1)
    await sessions.dropped(GUILD)
    assert [e.guild_id for e in changed] == [GUILD] and sessions.reconnect_until(GUILD) is not None
    await sessions.end(GUILD)
    await db.update_settings(GUILD, reconnect_grace_seconds=0)
    await sessions.connected(GUILD, "host", 1)
    await sessions.dropped(GUILD)
    assert sessions.reconnect_until(GUILD) is None  # the session ends with the drop: nothing to announce
    await sessions.close()


async def test_a_different_host_after_a_drop_is_a_new_live(db: Database, queue: QueueService, clock: FakeClock) -> None:
    sessions = _service(db, queue, clock, Gate())
    first = await sessions.connected(GUILD, "host", 1)
    dropped_at = clock()
    await sessions.dropped(GUILD)
    clock.advance(30)
    other = await sessions.connected(GUILD, "someone.else", 5)
    assert not other.resumed
    assert (await db.get_session(first.session.id)).ended_at == pytest.approx(dropped_at, abs=1)
    await sessions.close()


async def test_a_disconnect_during_the_grace_window_ends_the_live_at_its_drop(
    db: Database, queue: QueueService, clock: FakeClock
) -> None:
    sessions = _service(db, queue, clock, Gate())
    first = await sessions.connected(GUILD, "host", 1)
    clock.advance(600)
    dropped_at = clock()
    await sessions.dropped(GUILD)
    clock.advance(90)  # then someone gives up waiting: /tiktok disconnect
    summary = await sessions.end(GUILD)
    assert summary.session.ended_at == pytest.approx(dropped_at, abs=1) and not sessions.reconnecting(GUILD)
    # A session that came back and then ended is over when it ends, not at its old drop.
    again = await sessions.connected(GUILD, "host", 1)
    await sessions.dropped(GUILD)
    clock.advance(20)
    assert (await sessions.connected(GUILD, "host", 1)).resumed
    clock.advance(100)
    assert again.session.id != first.session.id
    assert (await sessions.end(GUILD)).session.ended_at == pytest.approx(clock(), abs=1)
    await sessions.close()


async def test_sessions_left_open_by_a_crash_are_closed_at_their_last_activity(
    db: Database, queue: QueueService, clock: FakeClock
) -> None:
    ended: list[LiveEnded] = []
    queue.feed.subscribe(ended.append, LiveEnded)  # type: ignore[arg-type]
    crashed = LiveSessionService(db, EngagementWriter(db, queue, clock=clock), feed=queue.feed, clock=clock)
    session = await crashed.start(GUILD, "host", 1)
    crashed.record(GUILD, [EngagementEvent(EventKind.LIKE, "fan", clock(), count=3)])
    await crashed.writer.flush()
    last = (await db.session_stats(session.id))[0].last_seen
    clock.advance(3600)  # the bot was down for an hour
    restarted = LiveSessionService(db, EngagementWriter(db, queue, clock=clock), feed=queue.feed, clock=clock)
    assert await restarted.recover() == [session.id]
    closed = await db.get_session(session.id)
    assert closed.ended_at == last and [(e.session_id, e.reason) for e in ended] == [(session.id, "recovered")]
    assert await restarted.recover() == []

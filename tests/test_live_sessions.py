"""Session bookkeeping between the live connection and the engagement writer."""

from __future__ import annotations

from database import Database
from models import EngagementEvent, EventKind
from services.engagement import EngagementWriter
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

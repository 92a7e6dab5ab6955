"""The buffered engagement writer: batches, like cap, session records, link codes, gift rewards."""

from __future__ import annotations

import asyncio

import pytest

from database import Database
from models import EngagementEvent, EventKind, Line
from services.engagement import EngagementWriter
from services.feed import FeedEvent, GiftPromoted, HandleVerified, QueueChanged, ScoresChanged
from services.points import PointsService
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock


def ev(kind: EventKind, handle: str | None, at: float = 1000.0, **kw) -> EngagementEvent:
    return EngagementEvent(kind=kind, handle=handle, at=at, **kw)


@pytest.fixture
def writer(db: Database, queue: QueueService, clock: FakeClock) -> EngagementWriter:
    return EngagementWriter(db, queue, flush_seconds=0.05, clock=clock)


async def test_events_are_buffered_then_written_in_one_flush(writer: EngagementWriter, db: Database) -> None:
    session = await db.start_session(GUILD, "host", 1, 1000.0)
    writer.set_session(GUILD, session.id)
    writer.add(GUILD, [ev(EventKind.LIKE, "fan", count=5), ev(EventKind.COMMENT, "fan", text="hi")])
    writer.add(GUILD, [ev(EventKind.GIFT, "fan", coins=30), ev(EventKind.SHARE, "fan")])
    writer.add(GUILD, [ev(EventKind.FOLLOW, "fan"), ev(EventKind.SUBSCRIBE, "fan"), ev(EventKind.JOIN, "fan", at=990)])
    writer.add(GUILD, [ev(EventKind.VIEWERS, None, viewers=50), ev(EventKind.VIEWERS, None, viewers=40)])
    assert await db.get_handle(GUILD, "fan") is None  # nothing written before the flush
    assert await writer.flush() == 9
    counts = (await db.get_handle(GUILD, "fan")).counts
    assert (counts.likes, counts.comments, counts.shares, counts.follows, counts.subscribes, counts.coins) == (
        5, 1, 1, 1, 1, 30,
    )  # fmt: skip
    stats = (await db.session_stats(session.id))[0]
    assert stats.gifts == 1 and stats.counts.coins == 30 and stats.joined_at == 990
    assert stats.watch_seconds == pytest.approx(10)
    assert (await db.get_session(session.id)).peak_viewers == 50


async def test_flush_loop_writes_within_a_window_and_stop_flushes_the_rest(writer, db) -> None:
    writer.start()
    writer.add(GUILD, [ev(EventKind.LIKE, "fan", count=1)])
    for _ in range(100):
        if await db.get_handle(GUILD, "fan"):
            break
        await asyncio.sleep(0.02)
    assert (await db.get_handle(GUILD, "fan")).counts.likes == 1
    writer.add(GUILD, [ev(EventKind.LIKE, "fan", count=2)])
    await writer.stop()
    assert (await db.get_handle(GUILD, "fan")).counts.likes == 3


async def test_like_cap_per_handle_per_minute(writer: EngagementWriter, db: Database) -> None:
    await db.update_settings(GUILD, like_cap_per_minute=10)
    writer.add(GUILD, [ev(EventKind.LIKE, "farm", at=60.0 + i, count=4) for i in range(5)])  # 20 in minute 1
    writer.add(GUILD, [ev(EventKind.LIKE, "farm", at=125.0, count=4)])  # minute 2
    writer.add(GUILD, [ev(EventKind.LIKE, "honest", at=61.0, count=3)])
    await writer.flush()
    assert (await db.get_handle(GUILD, "farm")).counts.likes == 14
    assert (await db.get_handle(GUILD, "honest")).counts.likes == 3


async def test_points_reorder_the_free_line(writer, db, queue: QueueService) -> None:
    first = await queue.submit(
        GUILD, 1, "u1", queue.draft(artist="a", title="1", note=None, link="https://x.test/1", handle="one"), skip=False
    )
    second = await queue.submit(
        GUILD, 2, "u2", queue.draft(artist="a", title="2", note=None, link="https://x.test/2", handle="two"), skip=False
    )
    heard: list[FeedEvent] = []
    queue.feed.subscribe(heard.append, QueueChanged)
    writer.feed.subscribe(heard.append, ScoresChanged)
    writer.add(GUILD, [ev(EventKind.COMMENT, "two")])
    await writer.flush()
    assert heard == [QueueChanged(GUILD), ScoresChanged(GUILD, ("two",))]
    order = [e.submission.id for e in await queue.ordered_queue(GUILD)]
    assert order == [second.submission.id, first.submission.id]


async def test_chat_code_verifies_the_link(writer, db, points: PointsService) -> None:
    verified: list[tuple[int, int, str]] = []
    writer.feed.subscribe(lambda e: verified.append((e.guild_id, e.user_id, e.handle)), HandleVerified)
    result = await points.link(GUILD, 7, "proud.owner")
    writer.add(GUILD, [ev(EventKind.COMMENT, "someone.else", text=result.code)])
    writer.add(GUILD, [ev(EventKind.COMMENT, "proud.owner", text=f"my code is {result.code.lower()}!")])
    await writer.flush()
    await writer.stop()
    handle = await db.get_handle(GUILD, "proud.owner")
    assert handle.verified and handle.user_id == 7
    assert verified == [(GUILD, 7, "proud.owner")]


async def test_gift_reward_moves_newest_free_or_pending_once_per_threshold(writer, db, queue, points) -> None:
    rewards: list[tuple[int, str, Line, int]] = []
    writer.feed.subscribe(lambda e: rewards.append((e.user_id, e.public_id, Line(e.line), e.coins)), GiftPromoted)
    await points.admin_link(GUILD, 3, "gifter")
    placed = await queue.submit(
        GUILD, 3, "u3", queue.draft(artist="a", title="g", note=None, link="https://x.test/g"), skip=False
    )
    session = await db.start_session(GUILD, "host", 1, 1000.0)
    writer.set_session(GUILD, session.id)
    writer.add(GUILD, [ev(EventKind.GIFT, "gifter", coins=600)])
    await writer.flush()
    assert (await queue.get(GUILD, placed.submission.public_id)).line is Line.FREE
    writer.add(GUILD, [ev(EventKind.GIFT, "gifter", coins=500)])  # 1100 coins this live: Skip
    await writer.flush()
    assert (await queue.get(GUILD, placed.submission.public_id)).line is Line.SKIP
    writer.add(GUILD, [ev(EventKind.GIFT, "gifter", coins=10)])  # still Skip tier: nothing new
    await writer.flush()
    await writer.stop()
    assert rewards == [(3, placed.submission.public_id, Line.SKIP, 1100)]


async def test_a_failed_flush_keeps_the_events(writer: EngagementWriter, db: Database, monkeypatch) -> None:
    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    writer.add(GUILD, [ev(EventKind.LIKE, "fan", count=2)])
    monkeypatch.setattr(db, "apply_engagement", broken)
    with pytest.raises(RuntimeError):
        await writer.flush()
    assert writer.buffered == 1
    monkeypatch.undo()
    await writer.flush()
    assert (await db.get_handle(GUILD, "fan")).counts.likes == 2


async def test_a_big_flush_lets_the_event_loop_in_while_it_aggregates(writer, db, monkeypatch) -> None:
    """Folding a second of a big live must not hold the loop: interactions are served in between."""
    from services.engagement import YIELD_EVERY

    ticks = 0
    marks: dict[str, int] = {}

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    real_settings, real_apply = db.get_settings, db.apply_engagement

    async def settings(guild_id: int):  # the last await before the aggregation
        result = await real_settings(guild_id)
        marks["aggregation starts"] = ticks
        return result

    async def apply(*args, **kwargs):  # the first await after it
        marks["aggregation ends"] = ticks
        return await real_apply(*args, **kwargs)

    monkeypatch.setattr(db, "get_settings", settings)
    monkeypatch.setattr(db, "apply_engagement", apply)
    events = [ev(EventKind.COMMENT, f"fan{i % 300}", text="hi") for i in range(YIELD_EVERY * 8)]
    writer.add(GUILD, events)
    running = asyncio.create_task(ticker())
    try:
        assert await writer.flush() == len(events)
    finally:
        running.cancel()
    assert marks["aggregation ends"] - marks["aggregation starts"] >= 7
    assert (await db.get_handle(GUILD, "fan0")).counts.comments == 7  # nothing lost across the yields

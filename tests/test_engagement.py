"""The buffered engagement writer: batches, like cap, session records, link codes, gift rewards."""

from __future__ import annotations

import asyncio
import gc

import pytest

from database import Database, EngagementDelta
from models import EngagementCounts, EngagementEvent, EventKind, Line
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


async def test_stopping_during_a_periodic_flush_loses_none_of_its_events(writer, db, monkeypatch) -> None:
    """The loop's flush is let finish, not cancelled half-way with the events it had taken out of the buffer."""
    writing = asyncio.Event()
    real = db.apply_engagement

    async def slow_apply(*args, **kwargs) -> None:
        writing.set()
        await asyncio.sleep(0.05)  # the loop's flush is inside its write when the bot stops
        await real(*args, **kwargs)

    monkeypatch.setattr(db, "apply_engagement", slow_apply)
    writer.add(GUILD, [ev(EventKind.LIKE, "fan", count=4)])
    writer.start()
    await asyncio.wait_for(writing.wait(), 5)
    writer.add(GUILD, [ev(EventKind.LIKE, "fan", count=1)])  # arrives during that flush: the stop writes it
    await writer.stop()
    assert (await db.get_handle(GUILD, "fan")).counts.likes == 5
    assert writer.buffered == 0


async def test_waiting_events_add_nothing_to_the_garbage_collectors_walk(writer: EngagementWriter, db) -> None:
    """A second of a big live is thousands of events waiting for the flush.

    The collector walks every object it tracks at each of its collections, and those walks pause the event
    loop; what waits must be plain rows it stops tracking, not an object per event.
    """
    gc.collect()
    before = len(gc.get_objects())
    events = [ev(EventKind.LIKE, f"fan{n % 50}", 1000.0 + n / 2, count=2, nickname="Fan", tiktok_user_id=n + 1)
              for n in range(2000)]  # fmt: skip
    events += [ev(EventKind.COMMENT, "fan0", text="hello"), ev(EventKind.VIEWERS, None, viewers=7)]
    writer.add(GUILD, events)
    del events
    gc.collect()
    assert len(gc.get_objects()) - before <= 20  # was one per event: 2,002
    assert writer.buffered == 2002
    assert await writer.flush() == 2002
    fan = await db.get_handle(GUILD, "fan0")
    assert (fan.counts.likes, fan.counts.comments, fan.nickname) == (80, 1, "Fan")


async def test_like_cap_per_handle_per_minute(writer: EngagementWriter, db: Database) -> None:
    await db.update_settings(GUILD, like_cap_per_minute=10)
    writer.add(GUILD, [ev(EventKind.LIKE, "farm", at=60.0 + i, count=4) for i in range(5)])  # 20 in minute 1
    writer.add(GUILD, [ev(EventKind.LIKE, "farm", at=125.0, count=4)])  # minute 2
    writer.add(GUILD, [ev(EventKind.LIKE, "honest", at=61.0, count=3)])
    await writer.flush()
    assert (await db.get_handle(GUILD, "farm")).counts.likes == 14
    assert (await db.get_handle(GUILD, "honest")).counts.likes == 3


async def test_a_follow_earns_once_per_handle_per_live(writer: EngagementWriter, db: Database, queue) -> None:
    """Issue 12.3: unfollow and follow again earns nothing, in one flush or across flushes and writers."""
    session = await db.start_session(GUILD, "host", 1, 1000.0)
    writer.set_session(GUILD, session.id)
    writer.add(GUILD, [ev(EventKind.FOLLOW, "fan"), ev(EventKind.FOLLOW, "fan", at=1001.0)])
    await writer.flush()
    writer.add(GUILD, [ev(EventKind.FOLLOW, "fan", at=1100.0), ev(EventKind.FOLLOW, "other", at=1100.0)])
    await writer.flush()
    fresh = EngagementWriter(db, queue)  # a restarted bot: the database remembers who followed this live
    fresh.set_session(GUILD, session.id)
    fresh.add(GUILD, [ev(EventKind.FOLLOW, "fan", at=1200.0)])
    await fresh.flush()
    assert (await db.get_handle(GUILD, "fan")).counts.follows == 1
    assert (await db.get_handle(GUILD, "other")).counts.follows == 1
    assert {r.handle: r.counts.follows for r in await db.session_stats(session.id)} == {"fan": 1, "other": 1}
    later = await db.start_session(GUILD, "host", 2, 5000.0)
    writer.set_session(GUILD, later.id)
    writer.add(GUILD, [ev(EventKind.FOLLOW, "fan", at=5001.0)])  # the next live earns again
    await writer.flush()
    assert (await db.get_handle(GUILD, "fan")).counts.follows == 2


async def test_shares_are_capped_per_handle_per_minute(writer: EngagementWriter, db: Database) -> None:
    assert (await db.get_settings(GUILD)).share_cap_per_minute == 5  # the default
    await db.update_settings(GUILD, share_cap_per_minute=3)
    writer.add(GUILD, [ev(EventKind.SHARE, "farm", at=60.0 + i) for i in range(10)])  # minute 1
    writer.add(GUILD, [ev(EventKind.SHARE, "farm", at=121.0), ev(EventKind.SHARE, "honest", at=61.0)])
    await writer.flush()
    assert (await db.get_handle(GUILD, "farm")).counts.shares == 4
    assert (await db.get_handle(GUILD, "honest")).counts.shares == 1
    await db.update_settings(GUILD, share_cap_per_minute=0)  # 0: no cap
    writer.add(GUILD, [ev(EventKind.SHARE, "farm", at=200.0 + i) for i in range(5)])
    await writer.flush()
    assert (await db.get_handle(GUILD, "farm")).counts.shares == 9


async def test_a_failed_flush_does_not_use_up_the_caps(writer: EngagementWriter, db: Database, monkeypatch) -> None:
    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    await db.update_settings(GUILD, like_cap_per_minute=5)
    writer.add(GUILD, [ev(EventKind.LIKE, "fan", at=60.0, count=5), ev(EventKind.FOLLOW, "fan", at=60.0)])
    monkeypatch.setattr(db, "apply_engagement", broken)
    with pytest.raises(RuntimeError):
        await writer.flush()
    monkeypatch.undo()
    await writer.flush()
    counts = (await db.get_handle(GUILD, "fan")).counts
    assert (counts.likes, counts.follows) == (5, 1)


async def test_points_reorder_the_free_line(writer, db, queue: QueueService) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)  # the named, unlinked handles count here
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


async def test_a_flush_re_keys_the_free_line_without_rebuilding_the_order(writer, db, queue: QueueService) -> None:
    """Issue 15.1: the writer reports the handles it changed; the queue updates its order in place."""
    await db.update_settings(GUILD, verified_handles_only=False)  # the named, unlinked handle counts here
    first = await queue.submit(
        GUILD, 1, "u1", queue.draft(artist="a", title="1", note=None, link="https://x.test/1"), skip=False
    )
    second = await queue.submit(
        GUILD, 2, "u2", queue.draft(artist="a", title="2", note=None, link="https://x.test/2", handle="fan"), skip=False
    )
    snapshots: list[int] = []
    original = db.queue_snapshot

    async def counted(*args, **kwargs):
        snapshots.append(1)
        return await original(*args, **kwargs)

    db.queue_snapshot = counted
    heard: list[int] = []
    queue.feed.subscribe(lambda e: heard.append(e.guild_id), QueueChanged)
    writer.add(GUILD, [ev(EventKind.COMMENT, "fan"), ev(EventKind.COMMENT, "nobody.in.queue")])
    await writer.flush()
    entries = await queue.ordered_queue(GUILD)
    assert [(e.submission.id, e.score) for e in entries] == [(second.submission.id, 2), (first.submission.id, 0)]
    assert snapshots == [] and heard == [GUILD]
    writer.add(GUILD, [ev(EventKind.COMMENT, "nobody.in.queue")])
    await writer.flush()
    assert heard == [GUILD]  # points of a handle behind no active song change nothing on the displays


async def test_chat_code_verifies_the_link(writer, db, points: PointsService) -> None:
    verified: list[tuple[int, int, str, int | None]] = []
    writer.feed.subscribe(
        lambda e: verified.append((e.guild_id, e.user_id, e.handle, e.previous_owner)), HandleVerified
    )
    result = await points.link(GUILD, 7, "proud.owner")
    writer.add(GUILD, [ev(EventKind.COMMENT, "someone.else", text=result.code)])
    writer.add(GUILD, [ev(EventKind.COMMENT, "proud.owner", text=f"my code is {result.code.lower()}!")])
    await writer.flush()
    await writer.stop()
    handle = await db.get_handle(GUILD, "proud.owner")
    assert handle.verified and handle.user_id == 7
    assert verified == [(GUILD, 7, "proud.owner", 7)]


async def test_a_chat_proof_takes_a_squatted_handle_over_and_names_the_squatter(
    writer, db, points: PointsService, queue: QueueService
) -> None:
    told: list[tuple[int, str, int | None]] = []
    writer.feed.subscribe(lambda e: told.append((e.user_id, e.handle, e.previous_owner)), HandleVerified)
    await points.link(GUILD, 1, "star")  # the squatter links it first, without proof
    await queue.submit(GUILD, 1, "u1", queue.draft(artist="a", title="1", note=None, link="https://x.test/1"),
                       skip=False)  # fmt: skip
    writer.add(GUILD, [ev(EventKind.LIKE, "star", count=50)])
    await writer.flush()
    assert (await queue.ordered_queue(GUILD))[0].score == 0  # unproven: the squatter's song gets nothing
    claim = await points.link(GUILD, 2, "star")
    assert claim.claim and claim.code
    writer.add(GUILD, [ev(EventKind.COMMENT, "star", text=f"it's me {claim.code}")])
    await writer.flush()
    await writer.stop()
    handle = await db.get_handle(GUILD, "star")
    assert handle.user_id == 2 and handle.verified
    assert told == [(2, "star", 1)]


async def test_the_chat_line_with_the_link_code_earns_nothing(writer, db, points: PointsService) -> None:
    """Issue 16.3: the code line proves the handle; it is no comment in the ledger nor in the recap."""
    session = await db.start_session(GUILD, "host", 1, 1000.0)
    writer.set_session(GUILD, session.id)
    result = await points.link(GUILD, 7, "proud.owner")
    writer.add(GUILD, [ev(EventKind.COMMENT, "proud.owner", text=f"code {result.code}"),
                       ev(EventKind.COMMENT, "someone.else", text=result.code),
                       ev(EventKind.COMMENT, "proud.owner", text="great song")])  # fmt: skip
    await writer.flush()
    assert (await db.get_handle(GUILD, "proud.owner")).verified
    assert (await db.get_handle(GUILD, "proud.owner")).counts.comments == 1
    assert (await db.get_handle(GUILD, "someone.else")).counts.comments == 1  # not their code: a comment
    stats = {r.handle: r.counts.comments for r in await db.session_stats(session.id)}
    assert stats == {"proud.owner": 1, "someone.else": 1}
    writer.add(GUILD, [ev(EventKind.COMMENT, "proud.owner", text=result.code)])  # used up: an ordinary line now
    await writer.flush()
    await writer.stop()
    assert (await db.get_handle(GUILD, "proud.owner")).counts.comments == 2


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


async def io_woken_steps(count: int) -> None:
    """What an interaction is between two slices of a flush: steps that I/O wakes (a read, Discord's answer)."""
    loop = asyncio.get_running_loop()
    for _ in range(count):
        woken = loop.create_future()
        loop.call_soon(woken.set_result, None)  # as aiosqlite's thread and a socket wake a coroutine
        await woken


async def test_an_interactions_steps_all_run_before_the_flushs_next_slice(writer, db, monkeypatch) -> None:
    """With ``sleep(0)`` between slices each step of a /queue waited behind one slice of the flush."""
    from services import engagement
    from services.engagement import YIELD_EVERY

    folded = 0
    real_seen = engagement._Acc.seen

    def seen(acc, at: float) -> None:
        nonlocal folded
        folded += 1
        real_seen(acc, at)

    monkeypatch.setattr(engagement._Acc, "seen", seen)
    real_settings = db.get_settings
    interaction: list[asyncio.Task[None]] = []
    during: list[int] = []

    async def settings(guild_id: int):  # the last await before the first slice: the /queue arrives
        interaction.append(asyncio.create_task(io_woken_steps(6)))
        interaction[0].add_done_callback(lambda _: during.append(folded))
        return await real_settings(guild_id)

    monkeypatch.setattr(db, "get_settings", settings)
    writer.add(GUILD, [ev(EventKind.LIKE, f"fan{i % 300}") for i in range(YIELD_EVERY * 8)])
    assert await writer.flush() == YIELD_EVERY * 8
    assert during == [YIELD_EVERY]  # all six steps ran while the flush rested after its first slice


async def test_a_flush_of_hundreds_of_fans_makes_their_deltas_in_slices_an_interaction_runs_between(
    writer, monkeypatch
) -> None:
    """500 fans' deltas at once were ~2.5 ms; the slice before the ledger write ran on into them."""
    from services import engagement
    from services.engagement import DELTAS_EVERY, YIELD_EVERY

    assert DELTAS_EVERY <= YIELD_EVERY // 2  # a delta (two frozen records) costs twice an event's folding
    made = 0
    real_delta = engagement._Acc.delta
    interaction: list[asyncio.Task[None]] = []
    during: list[int] = []

    def delta(acc, handle: str):
        nonlocal made
        made += 1
        if not interaction:  # the /queue arrives as the first delta is made
            interaction.append(asyncio.create_task(io_woken_steps(6)))
            interaction[0].add_done_callback(lambda _: during.append(made))
        return real_delta(acc, handle)

    monkeypatch.setattr(engagement._Acc, "delta", delta)
    fans = DELTAS_EVERY * 3
    writer.add(GUILD, [ev(EventKind.LIKE, f"fan{i}") for i in range(fans)])
    assert await writer.flush() == fans
    assert during == [DELTAS_EVERY]  # the six steps ran while the flush rested after its first slice


async def test_a_gift_storm_checks_rewards_in_queries_that_do_not_grow_with_the_gifters(
    writer: EngagementWriter, db: Database, points: PointsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2,000 events/s from 500 fans carry gifts from dozens of members in every flush: asking the
    # database once per gifter was three round trips each, every second.
    session = await db.start_session(GUILD, "host", 1, 1000.0)
    writer.set_session(GUILD, session.id)
    reads = 0
    real_fetchall = db._fetchall

    async def counting(sql: str, params: tuple[object, ...] = ()) -> list:
        nonlocal reads
        reads += 1
        return await real_fetchall(sql, params)

    async def reads_for(gifters: int, first_user: int) -> int:
        nonlocal reads
        for n in range(gifters):
            await points.admin_link(GUILD, first_user + n, f"storm{first_user + n}")
        writer.add(GUILD, [ev(EventKind.GIFT, f"storm{first_user + n}", coins=600) for n in range(gifters)])
        monkeypatch.setattr(db, "_fetchall", counting)
        reads = 0
        await writer.flush()
        monkeypatch.setattr(db, "_fetchall", real_fetchall)
        return reads

    assert await reads_for(2, 100) == await reads_for(40, 200)


async def test_reward_coins_add_up_a_members_handles_and_only_proven_ones_when_asked(
    db: Database, points: PointsService
) -> None:
    session = await db.start_session(GUILD, "host", 1, 1000.0)
    await points.admin_link(GUILD, 3, "main.account")
    await points.admin_link(GUILD, 3, "second.account")
    await db.link_handle(GUILD, "claimed", 3, verified=False, force=False)  # a claim, not proven
    await points.admin_link(GUILD, 4, "other")
    deltas = [
        EngagementDelta(handle, EngagementCounts(coins=coins))
        for handle, coins in (("main.account", 100), ("second.account", 20), ("claimed", 5), ("other", 7))
    ]
    await db.apply_engagement(GUILD, session.id, deltas)
    by_owner = db.session_coins_by_owner
    assert await by_owner(GUILD, session.id, [3, 4, 5], proven_only=True) == {3: 120, 4: 7}
    assert await by_owner(GUILD, session.id, [3], proven_only=False) == {3: 125}
    assert await by_owner(GUILD + 1, session.id, [3], proven_only=False) == {}  # another guild's members
    await db.record_gift_reward(session.id, GUILD, 3, Line.SKIP, None, 1000.0)
    assert await db.granted_gift_rewards(session.id, [3, 4]) == {(3, Line.SKIP)}

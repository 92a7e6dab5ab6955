"""The sorted, in-place play order (issue 15.1): unit rules of ``PlayOrder`` and the queue's use of it.

Changes of who owns a handle (a link, an unlink, a proof typed in the live chat) update the kept order in
place (the same order object, checked by its token); new weights or a switched "verified handles only"
setting re-score it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sqlite3
from typing import Any

import pytest

from database import Database, EngagementDelta
from models import EngagementCounts, EngagementEvent, EventKind, Line, PointsWeights, QueueEntry, Submission
from services import queue as queue_module
from services.engagement import EngagementWriter
from services.feed import QueueChanged
from services.play_order import PlayOrder
from services.points import PointsService
from services.queue import QueueService, play_order_key
from services.steps import drain
from tests.conftest import GUILD, FakeClock


def sub(row_id: int, line: Line = Line.FREE, at: float | None = None, user: int | None = None) -> Submission:
    when = float(row_id) if at is None else at
    return Submission(row_id, GUILD, f"P{row_id}", user or row_id, "u", "a", f"t{row_id}", line, when, when,
                      link="https://x.test")  # fmt: skip


def likes(n: int) -> EngagementCounts:
    return EngagementCounts(likes=n)


def order_of(order: PlayOrder) -> list[tuple[int, int]]:
    return [(e.submission.id, e.score) for e in order.entries()]


def test_build_sorts_once_and_answers_positions_and_pages() -> None:
    subs = [sub(1), sub(2), sub(3, Line.SKIP), sub(4, Line.BACK_TO_BACK)]
    order = drain(PlayOrder.build_steps(subs, [(2, "two", likes(5))], PointsWeights(), play_order_key))
    assert order_of(order) == [(4, 0), (3, 0), (2, 5), (1, 0)]
    assert [order.position(i) for i in (4, 3, 2, 1, 99)] == [1, 2, 3, 4, None]
    assert [e.position for e in order.page(1, 2)] == [2, 3] and order.page(9, 5) == []
    assert order.line_totals() == {Line.FREE: 2, Line.SKIP: 1, Line.BACK_TO_BACK: 1}


def test_points_of_a_handle_re_key_every_submission_it_counts_for() -> None:
    # Two members name the same unlinked handle: its points count for both (SPEC 2).
    order = drain(PlayOrder.build_steps([sub(1), sub(2), sub(3)], [(2, "fan", likes(1)), (3, "fan", likes(1))],
                            PointsWeights(), play_order_key))  # fmt: skip
    version = order.version
    assert order.set_handle_counts({"fan": likes(7), "stranger": likes(50)}) == [2, 3]
    assert order_of(order) == [(2, 7), (3, 7), (1, 0)] and order.version > version
    assert order.set_handle_counts({"fan": likes(7)}) == []  # absolute counters: repeating is a no-op
    assert order.handles_affecting(["fan", "stranger"]) == ["fan"]


def test_a_re_key_makes_no_submission_per_song_and_sums_a_members_handles(monkeypatch: Any) -> None:
    # A flush re-keys the songs of hundreds of fans: a Submission made again for each one was ~7 us of the
    # ~20 us a song cost on the event loop. The key reads three fields of the packed row instead.
    songs = [sub(1, user=1), sub(2, user=2), sub(3, user=2)]
    contributions = [(1, "solo", likes(1)), (2, "a", likes(1)), (2, "b", likes(1)), (3, "b", likes(1))]
    order = drain(PlayOrder.build_steps(songs, contributions, PointsWeights(comment=3), play_order_key))
    made: list[object] = []
    real = Submission.from_values.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Submission], values: Any) -> Submission:
        made.append(values)
        return real(cls, values)

    monkeypatch.setattr(Submission, "from_values", classmethod(counted))
    changed = order.set_handle_counts({"a": EngagementCounts(likes=4, comments=2), "b": likes(2), "solo": likes(5)})
    assert made == [] and changed == [1, 2, 3]
    # Song 2 counts "a" and "b" (4 + 2 x 3 + 2 = 12), song 3 "b" alone, song 1 "solo".
    assert order_of(order) == [(2, 12), (1, 5), (3, 2)]
    entry = order.entry(2)
    assert entry is not None and entry.counts == EngagementCounts(likes=6, comments=2)


def test_the_order_adds_nothing_per_song_to_what_the_garbage_collector_walks() -> None:
    # Every full collection walks each tracked object: a Submission, its counters and index sets per song
    # made a 10,000-song order 37,000 objects. Tuples of plain values are untracked after one collection.
    def songs() -> list[Submission]:
        return [sub(i, Line.FREE if i % 4 else Line.SKIP) for i in range(1, 3_001)]

    def built() -> PlayOrder:
        inputs = songs()  # read from the database and dropped, as in the queue service
        contributions = [(s.id, f"h{s.id}", likes(s.id % 50)) for s in inputs if s.line is Line.FREE]
        return drain(PlayOrder.build_steps(inputs, contributions, PointsWeights(), play_order_key))

    gc.collect()
    before = len(gc.get_objects())
    order = built()
    gc.collect()
    assert (len(gc.get_objects()) - before) / len(order) <= 0.1
    # What comes out is what went in: the same Submission values, lines as Line members again.
    assert sorted((e.submission for e in order.entries()), key=lambda s: s.id) == songs()
    assert all(type(e.submission.line) is Line for e in order.entries())


def test_a_submission_comes_out_of_the_order_with_every_field_it_went_in_with() -> None:
    full = dataclasses.replace(sub(7), file_path="a.mp3", file_name="a.mp3", duration=61.5, note="n",
                               tiktok_handle="fan", played_from=Line.SKIP, rating=4)  # fmt: skip
    order = drain(PlayOrder.build_steps([full], [(7, "fan", likes(2))], PointsWeights(), play_order_key))
    entry = order.entry(7)
    assert entry is not None and entry.submission == full and entry.submission.played_from is Line.SKIP
    assert entry.counts == likes(2) and entry.score == 2


def test_a_member_with_many_songs_keeps_every_index_right() -> None:
    # Past a few songs a member's index entry changes form (a tuple while small, then a set).
    songs = [sub(i, user=1) for i in range(1, 41)]
    order = drain(PlayOrder.build_steps(songs, [(s.id, "fan", likes(1)) for s in songs], PointsWeights(),
                                        play_order_key))  # fmt: skip
    assert order.set_handle_counts({"fan": likes(3)}) == list(range(1, 41))
    assert order.affected_by_owner("fan", [1]) == list(range(1, 41))
    order.discard(range(1, 40))
    assert order.affected_by_owner("fan", [1]) == [40] and order_of(order) == [(40, 3)]
    order.put(sub(41, user=1), [("fan", likes(3))])
    assert order.affected_by_owner("fan", [1]) == [40, 41]
    order.discard([40, 41])
    assert order.handles_affecting(["fan"]) == [] and order.affected_by_owner("fan", [1]) == []


def test_put_moves_and_discard_removes() -> None:
    order = drain(PlayOrder.build_steps([sub(1), sub(2)], [], PointsWeights(), play_order_key))
    order.put(sub(1, Line.SKIP, at=10.0))  # moved into Skip
    assert order_of(order) == [(1, 0), (2, 0)]
    order.put(sub(2, Line.PENDING))  # not playable: leaves the order
    assert order_of(order) == [(1, 0)]
    order.put(sub(5), [("h", likes(3))])
    order.discard([1, 42])
    assert order_of(order) == [(5, 3)] and len(order) == 1 and 1 not in order


async def test_playing_a_song_re_keys_others_sharing_its_reset_handle(queue: QueueService, db: Database) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)  # a named, unlinked handle counts in this mode

    def draft(n: int):
        return queue.draft(artist="a", title=f"t{n}", note=None, link=f"https://x.test/{n}", handle="shared.fan")

    first = (await queue.submit(GUILD, 1, "u1", draft(1), skip=False)).submission
    second = (await queue.submit(GUILD, 2, "u2", draft(2), skip=False)).submission
    await db.apply_engagement(GUILD, None, [EngagementDelta("shared.fan", likes(6))])
    await queue.scores_changed(GUILD, ["shared.fan"])
    assert [(e.submission.id, e.score) for e in await queue.ordered_queue(GUILD)] == [(first.id, 6), (second.id, 6)]
    played = await queue.next(GUILD)
    assert played.submission.id == first.id and played.reset_handles == ("shared.fan",)
    assert played.remaining == 1
    # the reset zeroed the handle for everyone it counted for, in the kept order as in the ledger
    assert [(e.submission.id, e.score) for e in await queue.ordered_queue(GUILD)] == [(second.id, 0)]
    fresh = await QueueService(db).ordered_queue(GUILD)
    assert [(e.submission.id, e.score) for e in fresh] == [(second.id, 0)]


async def test_queue_page_and_version(queue: QueueService) -> None:
    for n in range(25):
        d = queue.draft(artist="a", title=f"t{n}", note=None, link=f"https://x.test/{n}")
        await queue.submit(GUILD, n, f"u{n}", d, skip=False)
    before = queue.version(GUILD)
    page = await queue.queue_page(GUILD, 2, 10)
    assert [e.position for e in page.entries] == list(range(21, 26)) and page.total == 25
    assert (await queue.queue_page(GUILD, -1, 10)).entries == page.entries
    assert page.line_totals == {Line.FREE: 25}
    await queue.next(GUILD)
    assert queue.version(GUILD) > before
    assert (await queue.queue_page(GUILD, 0, 10)).entries[0].position == 1


def scored(entries: list[QueueEntry]) -> list[tuple[int, int]]:
    return [(e.submission.id, e.score) for e in entries]


async def free_song(queue: QueueService, user: int, handle: str | None = None) -> Submission:
    draft = queue.draft(artist="a", title=f"t{user}", note=None, link=f"https://x.test/{user}", handle=handle)
    return (await queue.submit(GUILD, user, f"u{user}", draft, skip=False)).submission


async def fans_whose_points_moved(queue: QueueService, db: Database, fans: int) -> list[Submission]:
    """Free songs of members 1..fans, each naming its own handle, in a kept order; then a flush's new points."""
    await db.update_settings(GUILD, verified_handles_only=False)  # each song's named handle counts
    songs = [await free_song(queue, n, handle=f"fan{n}") for n in range(1, fans + 1)]
    await queue.ordered_queue(GUILD)  # the kept order is built
    await db.apply_engagement(GUILD, None, [EngagementDelta(f"fan{n}", likes(n)) for n in range(1, fans + 1)])
    return songs


async def test_an_unlink_hands_a_named_handle_to_the_songs_naming_it_in_place(
    queue: QueueService, points: PointsService, db: Database
) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)  # unproven links and named handles count
    await points.link(GUILD, 1, "fan")
    mine, theirs = await free_song(queue, 1), await free_song(queue, 2, handle="fan")
    await db.apply_engagement(GUILD, None, [EngagementDelta("fan", likes(5))])
    await queue.scores_changed(GUILD, ["fan"])
    token = (await queue.order_view(GUILD)).token
    assert scored(await queue.ordered_queue(GUILD)) == [(mine.id, 5), (theirs.id, 0)]
    # Nobody owns it any more: the song naming it now carries its points (SPEC 2), updated in place.
    await points.unlink(GUILD, 1, "fan")
    assert scored(await queue.ordered_queue(GUILD)) == [(theirs.id, 5), (mine.id, 0)]
    assert (await queue.order_view(GUILD)).token == token
    assert scored(await QueueService(db).ordered_queue(GUILD)) == [(theirs.id, 5), (mine.id, 0)]


async def test_a_proof_in_the_live_chat_moves_the_points_to_the_prover_in_place(
    queue: QueueService, points: PointsService, db: Database, clock: FakeClock
) -> None:
    first, second = await free_song(queue, 1), await free_song(queue, 2)
    await points.admin_link(GUILD, 1, "fan")  # proven for member 1 by an admin
    await db.apply_engagement(GUILD, None, [EngagementDelta("fan", likes(9))])
    await queue.scores_changed(GUILD, ["fan"])
    assert scored(await queue.ordered_queue(GUILD)) == [(first.id, 9), (second.id, 0)]
    await points.unlink(GUILD, None, "fan")
    claim = await points.link(GUILD, 2, "fan")  # member 2 links it; proven only once typed in the chat
    assert claim.code and scored(await queue.ordered_queue(GUILD)) == [(first.id, 0), (second.id, 0)]
    token = (await queue.order_view(GUILD)).token
    writer = EngagementWriter(db, queue, clock=clock)
    writer.add(GUILD, [EngagementEvent(EventKind.COMMENT, "fan", clock(), text=f"my code {claim.code}")])
    await writer.flush()
    assert scored(await queue.ordered_queue(GUILD)) == [(second.id, 9), (first.id, 0)]
    assert (await queue.order_view(GUILD)).token == token
    assert scored(await QueueService(db).ordered_queue(GUILD)) == [(second.id, 9), (first.id, 0)]


async def test_switching_verified_handles_only_re_scores_the_kept_order(
    queue: QueueService, points: PointsService, db: Database
) -> None:
    song = await free_song(queue, 1)
    await points.link(GUILD, 1, "fan")  # linked, never proven
    await db.apply_engagement(GUILD, None, [EngagementDelta("fan", likes(5))])
    await queue.scores_changed(GUILD, ["fan"])
    assert scored(await queue.ordered_queue(GUILD)) == [(song.id, 0)]
    # The settings panel writes the setting; the kept order must not keep counting the old way.
    await db.update_settings(GUILD, verified_handles_only=False)
    assert scored(await queue.ordered_queue(GUILD)) == [(song.id, 5)]
    await db.update_settings(GUILD, verified_handles_only=True)
    assert scored(await queue.ordered_queue(GUILD)) == [(song.id, 0)]


async def test_new_weights_re_score_the_kept_order(queue: QueueService, points: PointsService, db: Database) -> None:
    quiet, loud = await free_song(queue, 1), await free_song(queue, 2)
    await points.admin_link(GUILD, 1, "liker")
    await points.admin_link(GUILD, 2, "talker")
    await db.apply_engagement(
        GUILD, None, [EngagementDelta("liker", likes(10)), EngagementDelta("talker", EngagementCounts(comments=3))]
    )
    await queue.scores_changed(GUILD, ["liker", "talker"])
    assert scored(await queue.ordered_queue(GUILD)) == [(quiet.id, 10), (loud.id, 6)]
    await points.set_weights(GUILD, comment=5)
    assert scored(await queue.ordered_queue(GUILD)) == [(loud.id, 15), (quiet.id, 10)]


async def test_a_re_key_rests_between_chunks_so_an_interactions_steps_all_run_first(
    queue: QueueService, db: Database, monkeypatch: Any
) -> None:
    # A /queue during a flush is half a dozen steps woken by I/O; with sleep(0) between chunks each of
    # them waited behind the next chunk.
    monkeypatch.setattr(queue_module, "RESCORE_CHUNK", 2)
    await fans_whose_points_moved(queue, db, 6)
    before = queue.version(GUILD)
    versions: list[int] = []

    async def interaction() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(6):
            woken = loop.create_future()
            loop.call_soon(woken.set_result, None)  # as a database thread or a socket wakes a coroutine
            await woken
            versions.append(queue.version(GUILD))

    tasks: list[asyncio.Task[None]] = []
    real_rescore = queue_module._rescore

    def rescore(order: Any, *, chunk: Any, changed: list[int]) -> None:
        real_rescore(order, chunk=chunk, changed=changed)
        if not tasks:  # the /queue arrives while the first chunk is applied
            tasks.append(asyncio.create_task(interaction()))

    monkeypatch.setattr(queue_module, "_rescore", rescore)
    await queue.scores_changed(GUILD, [f"fan{n}" for n in range(1, 7)])
    await tasks[0]
    assert versions == [before + 1] * 6  # every step ran while the re-key rested after its first chunk


async def test_a_flush_reads_its_handles_counters_a_chunk_at_a_time(
    queue: QueueService, db: Database, monkeypatch: Any
) -> None:
    # One read of 500 fans' rows, made into counters at once, was ~2.5 ms of the loop in one piece.
    monkeypatch.setattr(queue_module, "RESCORE_CHUNK", 2)
    songs = await fans_whose_points_moved(queue, db, 5)
    reads: list[list[str]] = []
    real = db.handle_counts

    async def handle_counts(guild_id: int, handles: Any) -> dict[str, EngagementCounts]:
        reads.append(list(handles))
        return await real(guild_id, handles)

    monkeypatch.setattr(db, "handle_counts", handle_counts)
    await queue.scores_changed(GUILD, [f"fan{n}" for n in (5, 1, 3, 2, 4)])
    assert reads == [["fan1", "fan2"], ["fan3", "fan4"], ["fan5"]]
    assert scored(await queue.ordered_queue(GUILD)) == [(s.id, s.user_id) for s in reversed(songs)]


async def test_a_flush_whose_read_fails_half_way_leaves_no_half_re_keyed_order_behind(
    queue: QueueService, db: Database, monkeypatch: Any
) -> None:
    monkeypatch.setattr(queue_module, "RESCORE_CHUNK", 2)
    songs = await fans_whose_points_moved(queue, db, 4)
    real = db.handle_counts
    reads = 0

    async def handle_counts(guild_id: int, handles: Any) -> dict[str, EngagementCounts]:
        nonlocal reads
        reads += 1
        if reads == 2:  # the second chunk's read: the first chunk is re-keyed already
            raise sqlite3.OperationalError("disk I/O error")
        return await real(guild_id, handles)

    monkeypatch.setattr(db, "handle_counts", handle_counts)
    with pytest.raises(sqlite3.OperationalError):
        await queue.scores_changed(GUILD, [f"fan{n}" for n in range(1, 5)])
    # The order was dropped, so the next reader builds it from the ledger: every fan's points count.
    assert scored(await queue.ordered_queue(GUILD)) == [(s.id, s.user_id) for s in reversed(songs)]


async def test_a_flush_without_a_kept_order_reads_nothing_and_still_tells_the_displays(
    queue: QueueService, db: Database, monkeypatch: Any
) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)
    await free_song(queue, 1, handle="fan1")
    queue.invalidate(GUILD)  # e.g. a bulk change: the next reader rebuilds the order
    heard: list[object] = []
    queue.feed.subscribe(heard.append)

    async def handle_counts(guild_id: int, handles: Any) -> dict[str, EngagementCounts]:
        raise AssertionError("nothing to re-key: the next reader builds the order from the ledger")

    monkeypatch.setattr(db, "handle_counts", handle_counts)
    before = queue.version(GUILD)
    await queue.scores_changed(GUILD, ["fan1"])
    assert queue.version(GUILD) == before + 1 and [type(e) for e in heard] == [QueueChanged]


async def test_a_submit_during_a_long_re_key_waits_for_one_chunk_not_for_the_whole_re_key(
    queue: QueueService, db: Database, monkeypatch: Any
) -> None:
    # The queue's lock is one for every guild: held through the rests of 500 fans' re-key, it kept any
    # /next or submit waiting for all of them (8 chunks, ~27 ms).
    monkeypatch.setattr(queue_module, "RESCORE_CHUNK", 2)
    await fans_whose_points_moved(queue, db, 6)
    chunks = 0
    submits: list[asyncio.Task[Submission]] = []
    done_after: list[int] = []
    real_rescore = queue_module._rescore

    def rescore(order: Any, *, chunk: Any, changed: list[int]) -> None:
        nonlocal chunks
        real_rescore(order, chunk=chunk, changed=changed)
        chunks += 1
        if not submits:  # a member submits while the first chunk is applied
            submits.append(asyncio.create_task(free_song(queue, 99)))
            submits[0].add_done_callback(lambda _: done_after.append(chunks))

    async def rest() -> None:  # the re-key's pause, long enough for the submit when nothing holds the lock
        await asyncio.wait(submits, timeout=1)

    monkeypatch.setattr(queue_module, "_rescore", rescore)
    monkeypatch.setattr(queue_module, "rest", rest)
    await queue.scores_changed(GUILD, [f"fan{n}" for n in range(1, 7)])
    await submits[0]
    assert chunks == 3 and done_after == [1]
    assert [e.submission.user_id for e in await queue.ordered_queue(GUILD)] == [6, 5, 4, 3, 2, 1, 99]


async def test_a_flush_of_many_handles_re_keys_a_chunk_at_a_time_with_the_loop_free_in_between(
    queue: QueueService, db: Database, monkeypatch: Any
) -> None:
    monkeypatch.setattr(queue_module, "RESCORE_CHUNK", 2)
    songs = await fans_whose_points_moved(queue, db, 6)
    before = queue.version(GUILD)
    seen: list[int] = []

    async def watch() -> None:  # another task, e.g. a /queue, getting the loop while the flush re-keys
        while True:
            seen.append(queue.version(GUILD))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await queue.scores_changed(GUILD, [f"fan{n}" for n in range(1, 7)])
    watcher.cancel()
    after = queue.version(GUILD)
    # Three chunks of two handles: the watcher ran after the first and after the second (as one call: never).
    assert after == before + 3 and {v for v in seen if before < v < after} == {before + 1, before + 2}
    assert scored(await queue.ordered_queue(GUILD)) == [(s.id, s.user_id) for s in reversed(songs)]
    assert scored(await QueueService(db).ordered_queue(GUILD)) == [(s.id, s.user_id) for s in reversed(songs)]

"""The sorted, in-place play order (issue 15.1): unit rules of ``PlayOrder`` and the queue's use of it."""

from __future__ import annotations

from database import Database, EngagementDelta
from models import EngagementCounts, Line, PointsWeights, Submission
from services.play_order import PlayOrder
from services.queue import QueueService, play_order_key
from tests.conftest import GUILD


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
    order = PlayOrder.build(subs, [(2, "two", likes(5))], PointsWeights(), play_order_key)
    assert order_of(order) == [(4, 0), (3, 0), (2, 5), (1, 0)]
    assert [order.position(i) for i in (4, 3, 2, 1, 99)] == [1, 2, 3, 4, None]
    assert [e.position for e in order.page(1, 2)] == [2, 3] and order.page(9, 5) == []
    assert order.line_totals() == {Line.FREE: 2, Line.SKIP: 1, Line.BACK_TO_BACK: 1}


def test_points_of_a_handle_re_key_every_submission_it_counts_for() -> None:
    # Two members name the same unlinked handle: its points count for both (SPEC 2).
    order = PlayOrder.build([sub(1), sub(2), sub(3)], [(2, "fan", likes(1)), (3, "fan", likes(1))],
                            PointsWeights(), play_order_key)  # fmt: skip
    version = order.version
    assert order.set_handle_counts({"fan": likes(7), "stranger": likes(50)}) == [2, 3]
    assert order_of(order) == [(2, 7), (3, 7), (1, 0)] and order.version > version
    assert order.set_handle_counts({"fan": likes(7)}) == []  # absolute counters: repeating is a no-op
    assert order.handles_affecting(["fan", "stranger"]) == ["fan"]


def test_put_moves_and_discard_removes() -> None:
    order = PlayOrder.build([sub(1), sub(2)], [], PointsWeights(), play_order_key)
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

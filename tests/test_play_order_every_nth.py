"""Every Nth song from Free (issue 12.9): the interleaving inside the one ordering, unit and service level.

``reference`` plays the queue one song at a time by the rule as the spec words it ("after N-1 paid songs
in a row, the top Free one plays if one waits"); the order ``PlayOrder`` shows, its positions and every
page must be that sequence.
"""

from __future__ import annotations

import itertools

import pytest

from database import Database
from models import Line, PointsWeights, Submission
from services.feed import ChangeFeed, QueueChanged
from services.play_order import PlayOrder, describe_rule
from services.queue import QueueService, play_order_key
from services.settings import BY_KEY
from services.steps import drain
from tests.conftest import GUILD, FakeClock


def sub(row_id: int, line: Line) -> Submission:
    return Submission(row_id, GUILD, f"P{row_id}", row_id, "u", "a", f"t{row_id}", line, float(row_id),
                      float(row_id), link="https://x.test")  # fmt: skip


def reference(paid: list[int], free: list[int], every_nth: int, streak: int) -> list[int]:
    """The ids in the order ``/next`` would play them, one play at a time."""
    paid, free, played = list(paid), list(free), []
    while paid or free:
        take_free = bool(free) and (not paid or (every_nth >= 2 and streak >= every_nth - 1))
        played.append(free.pop(0) if take_free else paid.pop(0))
        streak = 0 if take_free else streak + 1
    return played


def build(paid: int, free: int, every_nth: int, streak: int = 0) -> PlayOrder:
    # Ids 1..paid are paid (Skip, first in first out), 101.. are Free (no points: earliest first).
    subs = [sub(i, Line.SKIP) for i in range(1, paid + 1)] + [sub(100 + i, Line.FREE) for i in range(1, free + 1)]
    return drain(PlayOrder.build_steps(subs, [], PointsWeights(), play_order_key, every_nth=every_nth, streak=streak))


def ids(order: PlayOrder) -> list[int]:
    return [e.submission.id for e in order.entries()]


def test_every_second_song_alternates_once_a_paid_song_played() -> None:
    order = build(3, 3, every_nth=2)
    assert ids(order) == [1, 101, 2, 102, 3, 103]
    assert ids(build(3, 3, every_nth=2, streak=1)) == [101, 1, 102, 2, 103, 3]


def test_every_third_song_and_a_run_of_free_songs_once_paid_ones_are_gone() -> None:
    assert ids(build(5, 4, every_nth=3)) == [1, 2, 101, 3, 4, 102, 5, 103, 104]
    assert ids(build(5, 4, every_nth=3, streak=1)) == [1, 101, 2, 3, 102, 4, 5, 103, 104]
    assert ids(build(5, 4, every_nth=3, streak=7)) == [101, 1, 2, 102, 3, 4, 103, 5, 104]


def test_empty_free_or_empty_paid_is_plain_priority() -> None:
    assert ids(build(4, 0, every_nth=2, streak=5)) == [1, 2, 3, 4]
    assert ids(build(0, 3, every_nth=2)) == [101, 102, 103]
    assert ids(build(0, 0, every_nth=3)) == [] and build(0, 0, every_nth=3).first() is None


def test_off_is_strict_priority() -> None:
    assert ids(build(3, 2, every_nth=0, streak=9)) == [1, 2, 3, 101, 102]


@pytest.mark.parametrize("every_nth", [2, 3, 4])
def test_positions_pages_and_first_are_the_played_sequence(every_nth: int) -> None:
    for paid, free, streak in itertools.product(range(6), range(6), range(5)):
        order = build(paid, free, every_nth, streak)
        expected = reference(list(range(1, paid + 1)), [100 + i for i in range(1, free + 1)], every_nth, streak)
        assert ids(order) == expected, (paid, free, streak)
        assert [order.position(i) for i in expected] == list(range(1, len(expected) + 1))
        assert [e.position for e in order.entries()] == list(range(1, len(expected) + 1))
        for offset, limit in itertools.product(range(len(expected) + 2), range(1, 5)):
            page = order.page(offset, limit)
            assert [e.submission.id for e in page] == expected[offset : offset + limit]
            assert [e.position for e in page] == list(range(offset + 1, offset + 1 + len(page)))
        assert (order.first().submission.id if order.first() else None) == (expected[0] if expected else None)


def test_note_play_counts_each_play_once_and_resets_on_free() -> None:
    order = build(4, 2, every_nth=3)
    assert order.first().submission.id == 1
    order.discard([1])
    order.note_play(1, Line.SKIP)
    order.note_play(1, Line.SKIP)  # the same play applied twice (an order built after its commit)
    assert order.streak == 1 and ids(order) == [2, 101, 3, 4, 102]
    order.discard([2])
    order.note_play(2, Line.SKIP)
    assert ids(order) == [101, 3, 4, 102]
    order.discard([101])
    order.note_play(101, Line.FREE)
    assert order.streak == 0 and ids(order) == [3, 4, 102]


def test_changing_n_reorders_at_once() -> None:
    order = build(4, 2, every_nth=0)
    version = order.version
    order.set_every_nth(2)
    assert ids(order) == [1, 101, 2, 102, 3, 4] and order.version > version


def test_rule_is_explained_and_the_setting_is_built() -> None:
    assert "Strict priority" in describe_rule(0)
    assert "Every 3rd song comes from Free" in describe_rule(3) and "2 paid songs" in describe_rule(3)
    assert "Every 2nd" in describe_rule(2) and "1 paid song in a row" in describe_rule(2)
    assert "Every 11th" in describe_rule(11) and "Every 22nd" in describe_rule(22)
    spec = BY_KEY["free_every_nth"]
    assert spec.default == 0 and (spec.minimum, spec.maximum) == (2, 50)


# ---------------------------------------------------------------------- through the queue service


async def fill(queue: QueueService, paid: int, free: int) -> tuple[list[int], list[int]]:
    """``paid`` songs approved into Skip and ``free`` songs in Free, in that order; their row ids."""
    paid_ids, free_ids = [], []
    for n in range(paid + free):
        draft = queue.draft(artist="a", title=f"t{n}", note=None, link=f"https://x.test/{n}")
        placed = await queue.submit(GUILD, n + 1, f"u{n}", draft, skip=n < paid)
        if n < paid:
            await queue.approve(GUILD, placed.submission.public_id, Line.SKIP)
            paid_ids.append(placed.submission.id)
        else:
            free_ids.append(placed.submission.id)
    return paid_ids, free_ids


async def test_next_position_and_pages_agree_with_the_setting_on(queue: QueueService, db: Database) -> None:
    await db.update_settings(GUILD, free_every_nth=3)
    paid, free = await fill(queue, 5, 3)
    expected = reference(paid, free, 3, streak=0)
    assert expected[:3] == [paid[0], paid[1], free[0]]
    played = []
    while True:
        shown = await queue.ordered_queue(GUILD)
        assert [e.submission.id for e in shown] == expected[len(played) :]
        page = await queue.queue_page(GUILD, 1, 2)  # past the end it shows the last page
        assert [e.submission.id for e in page.entries] == [e.submission.id for e in shown[2:4] or shown[:2]]
        for entry in shown:
            placement = await queue.placement(entry.submission)
            assert placement.position == entry.position and placement.eta_seconds is not None
        etas = [(await queue.placement(e.submission)).eta_seconds for e in shown]
        assert etas == sorted(etas)
        result = await queue.next(GUILD)
        if result is None:
            break
        assert result.submission.id == shown[0].submission.id
        played.append(result.submission.id)
    assert played == expected


async def test_the_cycle_survives_a_restart(db: Database, clock: FakeClock) -> None:
    await db.update_settings(GUILD, free_every_nth=3)
    queue = QueueService(db, clock=clock)
    paid, free = await fill(queue, 4, 2)
    assert (await queue.next(GUILD)).submission.id == paid[0]  # one paid song of the cycle played
    before = [e.submission.id for e in await queue.ordered_queue(GUILD)]
    assert before == [paid[1], free[0], paid[2], paid[3], free[1]]
    restarted = QueueService(db, clock=clock)  # a new process: the streak is read from the archive
    assert [e.submission.id for e in await restarted.ordered_queue(GUILD)] == before
    assert (await restarted.next(GUILD)).submission.id == paid[1]
    assert (await restarted.next(GUILD)).submission.id == free[0]
    assert await db.plays_since_free(GUILD, 50) == (0, free[0])


async def test_other_guilds_plays_do_not_count(db: Database, clock: FakeClock) -> None:
    queue = QueueService(db, clock=clock)
    await fill(queue, 2, 0)
    await queue.next(GUILD)
    await queue.next(GUILD)
    assert (await db.plays_since_free(GUILD, 50))[0] == 2
    assert await db.plays_since_free(GUILD + 1, 50) == (0, None)
    assert (await db.plays_since_free(GUILD, 1))[0] == 1  # capped: only N-1 of them ever matter


async def test_changing_the_setting_redraws_displays_and_reorders(tmp_path, clock: FakeClock) -> None:
    feed = ChangeFeed()
    db = Database(tmp_path / "feed.db", feed=feed)
    await db.connect()
    try:
        await db.update_settings(GUILD, submit_cooldown_seconds=0, max_pending_per_user=0)
        queue = QueueService(db, feed=feed, clock=clock)
        paid, free = await fill(queue, 3, 1)
        assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [*paid, *free]
        heard: list[QueueChanged] = []
        feed.subscribe(lambda event: heard.append(event), QueueChanged)  # type: ignore[arg-type, func-returns-value]
        version = queue.version(GUILD)
        await db.update_settings(GUILD, free_every_nth=2)
        assert heard and heard[-1].guild_id == GUILD and queue.version(GUILD) > version
        assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [paid[0], free[0], paid[1], paid[2]]
        await db.update_settings(GUILD, free_every_nth=0)
        assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [*paid, *free]
    finally:
        await db.close()

"""``PositionMemory`` (issue 15): a look reads O(1) numbers per song from the order, and the causes add up.

The causes are derived from counters (see ``services.positions``); these tests drive a real ``PlayOrder``
through each kind of change and check the explanation, then let hypothesis interleave them and check
that the counted causes always add up to the move and that the standing agrees with the whole order.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from models import Line, PointsWeights
from services.play_order import DEPARTURE_LOG, PlayOrder, Standing
from services.positions import PositionMemory, PositionMove, _Seen
from services.queue import QueueService, play_order_key
from services.steps import drain
from tests.conftest import GUILD
from tests.test_play_order import likes, sub

G = 1
PAID = (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP)


def free_order(n: int) -> PlayOrder:
    """``n`` Free songs (ids 1..n, in entry order), each with its own handle ``h<id>`` at 0 points."""
    return drain(
        PlayOrder.build_steps(
            [sub(i) for i in range(1, n + 1)],
            [(i, f"h{i}", likes(0)) for i in range(1, n + 1)],
            PointsWeights(),
            play_order_key,
        )
    )


def look(memory: PositionMemory, order: PlayOrder, *ids: int) -> list[PositionMove]:
    return memory.observe(G, order, ids)


def causes(move: PositionMove) -> tuple[int, int, int, int, int, int]:
    return (move.old_position, move.new_position, move.paid_ahead, move.points_ahead, move.left_ahead, move.passed)


def play_top(order: PlayOrder) -> None:
    """What ``QueueService.next`` does to the order: the transition, then the play count."""
    top = order.first()
    assert top is not None
    if top.submission.line is Line.FREE:
        order.discard([top.submission.id])
    else:
        order.put(dataclasses.replace(top.submission, line=Line.PLAYED))
    order.note_play(top.submission.id, top.submission.line)


def test_first_look_and_an_unmoved_song_explain_nothing() -> None:
    memory, order = PositionMemory(), free_order(4)
    assert look(memory, order, 3) == []
    assert look(memory, order, 3) == []
    order.put(sub(9))  # behind it: its position does not move
    assert look(memory, order, 3) == []


def test_a_paid_song_that_goes_ahead() -> None:
    memory, order = PositionMemory(), free_order(4)
    look(memory, order, 2)
    order.put(sub(10, Line.SKIP))
    (move,) = look(memory, order, 2)
    assert causes(move) == (2, 3, 1, 0, 0, 0)


def test_a_song_with_more_points_that_goes_ahead_and_one_it_passes() -> None:
    memory, order = PositionMemory(), free_order(4)
    look(memory, order, 2)
    order.set_handle_counts({"h4": likes(5)})
    (move,) = look(memory, order, 2)
    assert causes(move) == (2, 3, 0, 1, 0, 0)
    order.set_handle_counts({"h2": likes(9)})  # now it passes songs 4 and 1
    (move,) = look(memory, order, 2)
    assert causes(move) == (3, 1, 0, 0, 0, 2)


def test_plays_and_removals_ahead_are_songs_that_left_and_removals_behind_do_not_count() -> None:
    memory, order = PositionMemory(), free_order(6)
    order.put(sub(20, Line.SKIP))
    look(memory, order, 4)  # #5: behind the Skip song and Free 1, 2, 3
    play_top(order)  # the Skip song
    play_top(order)  # Free 1
    order.discard([3])  # removed from ahead of it
    order.discard([6])  # removed from behind it
    (move,) = look(memory, order, 4)
    assert causes(move) == (5, 2, 0, 0, 3, 0)


def test_a_line_change_is_named_and_the_causes_still_add_up() -> None:
    memory, order = PositionMemory(), free_order(5)
    order.put(sub(20, Line.SKIP))
    look(memory, order, 5)  # #6
    order.put(dataclasses.replace(sub(5), line=Line.SKIP, entered_line_at=100.0))
    (move,) = look(memory, order, 5)
    assert move.old_line is Line.FREE and (move.old_position, move.new_position) == (6, 2)
    assert move.passed == 4 and move.paid_ahead == 0


def test_a_rebuilt_order_or_too_many_removals_gives_only_what_is_certain() -> None:
    memory, order = PositionMemory(), free_order(5)
    look(memory, order, 5)
    order.discard([1])
    rebuilt = drain(PlayOrder.build_steps([sub(i) for i in (2, 3, 4, 5)], [], PointsWeights(), play_order_key))
    (move,) = look(memory, rebuilt, 5)
    # The removal happened in an order object we no longer have: nothing is claimed about it.
    assert causes(move) == (5, 4, 0, 0, 0, 0)
    big = free_order(DEPARTURE_LOG + 10)
    last = DEPARTURE_LOG + 10
    look(memory, big, last)
    big.put(sub(9_000, Line.SKIP))
    big.discard(range(1, DEPARTURE_LOG + 2))  # more removals than the order keeps
    (move,) = look(memory, big, last)
    assert (move.paid_ahead, move.points_ahead, move.left_ahead, move.passed) == (1, 0, 0, 0)


def test_a_remembered_song_costs_the_same_whatever_the_queue_size() -> None:
    memory = PositionMemory()
    look(memory, free_order(10), 10)
    look(memory, free_order(3_000), 3_000)
    # No set of the songs ahead is kept: each record is a few numbers, the same for both queues.
    assert {type(v) for v in memory._seen.values()} == {_Seen}
    for seen in memory._seen.values():
        values = [getattr(seen, f.name) for f in dataclasses.fields(seen)]
        assert not any(isinstance(v, (set, frozenset, list, dict)) for v in values)


def test_the_memory_forgets_the_least_recently_shown_first() -> None:
    memory, order = PositionMemory(limit=2), free_order(5)
    look(memory, order, 1)
    look(memory, order, 2)
    look(memory, order, 3)
    order.put(sub(20, Line.SKIP))
    assert [m.submission.id for m in look(memory, order, 1, 2, 3)] == [2, 3]


steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from((*PAID, Line.FREE))),
        st.tuples(st.just("play"), st.none()),
        st.tuples(st.just("remove"), st.integers(0, 40)),
        st.tuples(st.just("points"), st.integers(0, 40)),
        st.tuples(st.just("every_nth"), st.sampled_from((0, 2, 3))),
        st.tuples(st.just("look"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_causes_add_up_to_every_move_and_standings_match_the_whole_order(ops: list[tuple[str, object]]) -> None:
    order = free_order(8)
    memory = PositionMemory()
    next_id = 100
    for op, arg in [*ops, ("look", None)]:
        ids = sorted(order._items)
        if op == "submit":
            assert isinstance(arg, Line)
            order.put(sub(next_id, arg, at=float(next_id)), [(f"h{next_id}", likes(0))])
            next_id += 1
        elif op == "play" and ids:
            play_top(order)
        elif op == "remove" and ids:
            assert isinstance(arg, int)
            order.discard([ids[arg % len(ids)]])
        elif op == "points" and ids:
            assert isinstance(arg, int)
            target = ids[arg % len(ids)]
            order.set_handle_counts({f"h{target}": likes(arg)})
        elif op == "every_nth":
            assert isinstance(arg, int)
            order.set_every_nth(arg)
        elif op == "look":
            whole = order.entries()
            for entry in whole:
                standing = order.standing(entry.submission.id)
                assert isinstance(standing, Standing) and standing.position == entry.position
                ahead = whole[: entry.position - 1]
                assert standing.free_ahead == sum(1 for e in ahead if e.submission.line is Line.FREE)
                assert standing.paid_ahead == len(ahead) - standing.free_ahead
            for move in memory.observe(G, order, [e.submission.id for e in whole]):
                # Every song ahead now was ahead before or came in; every song ahead before is still
                # ahead, passed, or left: so the counted causes add up to the move exactly.
                assert move.new_position - move.old_position == (
                    move.paid_ahead + move.points_ahead - move.left_ahead - move.passed
                )
                assert min(move.paid_ahead, move.points_ahead, move.left_ahead, move.passed) >= 0


async def test_the_queue_service_counts_plays_withdrawals_removals_and_clears_as_songs_that_left(
    queue: QueueService,
) -> None:
    async def submit(user: int, *, skip: bool = False) -> str:
        draft = queue.draft(artist="a", title=f"t{user}", note=None, link=f"https://x.test/{user}", handle=None)
        return (await queue.submit(GUILD, user, f"u{user}", draft, skip=skip)).submission.public_id

    paid = [await submit(10 + n, skip=True) for n in range(3)]
    for public_id in paid:
        await queue.approve(GUILD, public_id, Line.SKIP)
    free = [await submit(20 + n) for n in range(3)]
    last_paid = await queue.get(GUILD, paid[-1])
    memory = PositionMemory()
    assert memory.observe(G, await queue.order_view(GUILD), [last_paid.id]) == []  # #3
    await queue.next(GUILD)  # a Skip song plays
    await queue.withdraw(GUILD, 11, paid[1])  # one ahead withdraws
    await queue.clear_free(GUILD)  # Free, all behind it, is cleared
    (move,) = memory.observe(G, await queue.order_view(GUILD), [last_paid.id])
    assert causes(move) == (3, 1, 0, 0, 2, 0)
    assert len(free) == 3

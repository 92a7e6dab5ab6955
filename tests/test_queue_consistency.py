"""Readers racing writers (issue 11 B1): a render that started before a change never brings back the old order.

The database reads behind the order are slowed in a fake wrapper, deterministically with an
``asyncio.Event`` or randomly with short sleeps, so a display render, a ``/queue`` answer or a position
answer overlaps ``/next`` and submits exactly the way a slow disk made them overlap in production. A
reader that builds the order holds the queue lock, so such writers wait for it; a settings write takes
no lock, and an order read before it is never kept.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from database import Database, EngagementDelta
from models import EngagementCounts, Line
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock


def draft(queue: QueueService, n: int):
    return queue.draft(artist=f"Artist {n}", title=f"Song {n}", note=None, link=f"https://x.test/{n}")


async def submit(queue: QueueService, user: int, n: int, *, skip: bool = False):
    return (await queue.submit(GUILD, user, f"user{user}", draft(queue, n), skip=skip)).submission


class HeldRead:
    """Wraps one Database read so its first call waits at a gate the test opens."""

    def __init__(self, db: Database, name: str) -> None:
        self.inner: Callable[..., Awaitable[Any]] = getattr(db, name)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        result = await self.inner(*args, **kwargs)
        if self.calls == 1:
            # The first reader has read the old state and is now "slow" before it finishes.
            self.entered.set()
            await self.release.wait()
        return result


# The read the order is built from (the last one of a rebuild, so the reader holds a complete old view).
ORDER_READ = "queue_snapshot"


async def test_a_render_building_the_order_makes_next_wait_and_never_brings_the_played_song_back(
    queue: QueueService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await submit(queue, 1, 1)
    second = await submit(queue, 2, 2)
    queue.invalidate(GUILD)  # start cold, as after a restart
    held = HeldRead(db, ORDER_READ)
    monkeypatch.setattr(db, ORDER_READ, held)

    render = asyncio.create_task(queue.ordered_queue(GUILD))  # a display render, stuck in a slow read
    await held.entered.wait()
    playing = asyncio.create_task(queue.next(GUILD))
    await asyncio.sleep(0.05)
    assert not playing.done()  # the build holds the queue lock: /next waits instead of racing it
    held.release.set()
    assert [e.submission.id for e in await render] == [first.id, second.id]  # the queue before the play
    played = await playing
    assert played is not None and played.submission.id == first.id
    # The displays, /next and new submissions see the new state.
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [second.id]
    again = await queue.next(GUILD)
    assert again is not None and again.submission.id == second.id
    third = await submit(queue, 3, 3)
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [third.id]


async def test_a_position_answer_building_the_order_makes_a_submit_wait_and_shows_the_new_song(
    queue: QueueService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await submit(queue, 1, 1)
    queue.invalidate(GUILD)
    held = HeldRead(db, ORDER_READ)
    monkeypatch.setattr(db, ORDER_READ, held)
    answer = asyncio.create_task(queue.placement(first))
    await held.entered.wait()
    submitting = asyncio.create_task(queue.submit(GUILD, 2, "user2", draft(queue, 2), skip=False))
    await asyncio.sleep(0.05)
    assert not submitting.done()
    held.release.set()
    assert (await answer).position == 1
    newcomer = (await submitting).submission
    order = [e.submission.id for e in await queue.ordered_queue(GUILD)]
    assert order == [first.id, newcomer.id]


async def test_a_settings_write_during_a_build_is_not_lost(
    queue: QueueService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A settings write takes no queue lock: an order read before it must not be stored after it.
    quiet, loud = await submit(queue, 1, 1), await submit(queue, 2, 2)
    await db.link_handle(GUILD, "liker", 1, verified=True, force=True)
    await db.link_handle(GUILD, "talker", 2, verified=True, force=True)
    await db.apply_engagement(
        GUILD,
        None,
        [EngagementDelta("liker", EngagementCounts(likes=10)), EngagementDelta("talker", EngagementCounts(comments=3))],
    )
    queue.invalidate(GUILD)
    held = HeldRead(db, ORDER_READ)
    monkeypatch.setattr(db, ORDER_READ, held)
    render = asyncio.create_task(queue.ordered_queue(GUILD))
    await held.entered.wait()
    weights = (await db.get_settings(GUILD)).weights
    await db.update_settings(GUILD, weights=weights.with_changes(comment=5))
    held.release.set()
    assert [(e.submission.id, e.score) for e in await render] == [(quiet.id, 10), (loud.id, 6)]  # read before
    assert [(e.submission.id, e.score) for e in await queue.ordered_queue(GUILD)] == [(loud.id, 15), (quiet.id, 10)]


class JitteryReads:
    """Every read behind the order sleeps a random few milliseconds: readers and writers interleave."""

    def __init__(self, db: Database, name: str, rng: random.Random) -> None:
        self.inner: Callable[..., Awaitable[Any]] = getattr(db, name)
        self.rng = rng

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.rng.random() * 0.003)
        result = await self.inner(*args, **kwargs)
        await asyncio.sleep(self.rng.random() * 0.003)
        return result


async def test_stress_renders_racing_next_and_submits(
    queue: QueueService, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    monkeypatch.setattr(db, ORDER_READ, JitteryReads(db, ORDER_READ, rng))
    for n in range(30):
        await submit(queue, n, n)
    stop = asyncio.Event()

    async def renderer() -> None:
        while not stop.is_set():
            await queue.ordered_queue(GUILD)
            # A millisecond, not sleep(0): four tasks that never let the loop idle keep the GIL from the
            # database's thread, and each /next then waited ~30 s for its queries (a test artifact).
            await asyncio.sleep(0.001)

    async def player() -> list[int]:
        played = []
        for _ in range(20):
            result = await queue.next(GUILD)  # never "changed meanwhile": nothing else plays
            assert result is not None
            played.append(result.submission.id)
            await asyncio.sleep(rng.random() * 0.002)
        return played

    async def submitter() -> None:
        for n in range(100, 115):
            await submit(queue, n, n)
            await asyncio.sleep(rng.random() * 0.002)

    renderers = [asyncio.create_task(renderer()) for _ in range(4)]
    played, _ = await asyncio.gather(player(), submitter())
    stop.set()
    await asyncio.gather(*renderers)
    assert len(set(played)) == 20
    shown = [(e.submission.id, e.position) for e in await queue.ordered_queue(GUILD)]
    fresh = [(e.submission.id, e.position) for e in await QueueService(db, clock=clock).ordered_queue(GUILD)]
    assert shown == fresh and len(shown) == 30 - 20 + 15
    assert not set(played) & {sid for sid, _ in shown}
    assert all(e.submission.line is Line.FREE for e in await queue.ordered_queue(GUILD))

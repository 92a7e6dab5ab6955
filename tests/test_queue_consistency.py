"""Readers racing writers (issue 11 B1): a render that started before a change never brings back the old order.

The database reads behind the order are slowed in a fake wrapper, deterministically with an
``asyncio.Event`` or randomly with short sleeps, so a display render, a ``/queue`` answer or a position
answer overlaps ``/next`` and submits exactly the way a slow disk made them overlap in production.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from database import Database
from models import Line
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


async def test_render_overlapping_next_does_not_bring_the_played_song_back(
    queue: QueueService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await submit(queue, 1, 1)
    second = await submit(queue, 2, 2)
    queue.invalidate(GUILD)  # start cold, as after a points flush
    held = HeldRead(db, ORDER_READ)
    monkeypatch.setattr(db, ORDER_READ, held)

    render = asyncio.create_task(queue.ordered_queue(GUILD))  # a display render, stuck in a slow read
    await held.entered.wait()
    played = await queue.next(GUILD)  # /next reads for itself and plays the first song
    assert played is not None and played.submission.id == first.id
    held.release.set()
    stale = await render
    assert [e.submission.id for e in stale] == [first.id, second.id]  # that render saw the old queue ...

    # ... but it must not have stored it: the displays, /next and new submissions see the new state.
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [second.id]
    again = await queue.next(GUILD)
    assert again is not None and again.submission.id == second.id
    third = await submit(queue, 3, 3)
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [third.id]


async def test_position_answer_overlapping_a_submit_does_not_hide_the_new_song(
    queue: QueueService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await submit(queue, 1, 1)
    queue.invalidate(GUILD)
    held = HeldRead(db, ORDER_READ)
    monkeypatch.setattr(db, ORDER_READ, held)
    answer = asyncio.create_task(queue.placement(first))
    await held.entered.wait()
    newcomer = (await queue.submit(GUILD, 2, "user2", draft(queue, 2), skip=False)).submission
    held.release.set()
    assert (await answer).position == 1
    order = [e.submission.id for e in await queue.ordered_queue(GUILD)]
    assert order == [first.id, newcomer.id]


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

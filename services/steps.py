"""Long work in slices, with the event loop running other work between them.

A step generator does a slice of a pure computation, yields ``None``, and finally returns its result
(``PlayOrder.build_steps``, ``PlayOrder.release_steps``). ``drain`` runs one to the end without pausing
(tests, tools); ``cooperatively`` yields to the event loop at every pause, so ten thousand songs of work
never hold it for more than one slice. ``rest`` is the pause of background work (a live's flush).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")

BACKGROUND_REST = 0.002
"""Seconds background work rests between two slices (see ``rest``)."""


class _Paused(enum.Enum):
    """What ``_step`` returns while the generator has more to do."""

    PAUSED = enum.auto()


def _step(steps: Generator[None, None, T]) -> T | _Paused:
    """Run one slice: the generator's return value once it finished, ``_Paused.PAUSED`` before."""
    try:
        next(steps)
    except StopIteration as done:
        result: T = done.value
        return result
    return _Paused.PAUSED


def drain(steps: Generator[None, None, T]) -> T:
    """Run a step generator to its return value without pausing."""
    result = _step(steps)
    while isinstance(result, _Paused):
        result = _step(steps)
    return result


async def cooperatively(steps: Generator[None, None, T]) -> T:
    """Run a step generator to its return value, letting the event loop run other work at every pause."""
    result = _step(steps)
    while isinstance(result, _Paused):
        await asyncio.sleep(0)
        result = _step(steps)
    return result


async def rest() -> None:
    """Pause background work (a live's engagement flush) between two slices, for interactions to go first.

    ``sleep(0)`` would queue the next slice at once, in front of every step that I/O wakes meanwhile: a
    ``/queue`` is half a dozen such steps (database reads, Discord's answer), and each would wait behind one
    slice. Resting a moment lets them all run; a flush of a second's events takes a few milliseconds longer.
    """
    await asyncio.sleep(BACKGROUND_REST)

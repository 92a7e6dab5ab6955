"""Long pure computations written as generators of steps, run at once or with the event loop between steps.

A step generator does a slice of work, yields ``None``, and finally returns its result
(``PlayOrder.build_steps``, ``PlayOrder.release_steps``). ``drain`` runs one to the end without pausing
(tests, tools); ``cooperatively`` yields to the event loop at every pause, so ten thousand songs of work
never hold it for more than one slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")


def drain(steps: Generator[None, None, T]) -> T:
    """Run a step generator to its return value without pausing."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


async def cooperatively(steps: Generator[None, None, T]) -> T:
    """Run a step generator to its return value, letting the event loop run other work at every pause."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result
        await asyncio.sleep(0)

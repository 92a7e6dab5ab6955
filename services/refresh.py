"""A per-key coalescer: at most one run per key per window, always rendering the latest state.

Displays ask for a refresh after every change; bursts collapse into one trailing run, and a run that is
already going picks up changes that arrived meanwhile with one more run after the window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _State:
    last_run: float = float("-inf")
    dirty: bool = False
    task: asyncio.Task[None] | None = None


class Coalescer(Generic[K]):
    """Runs ``action(key)`` after ``request(key)``, no more often than once per ``window`` seconds per key."""

    def __init__(
        self,
        action: Callable[[K], Awaitable[None]],
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        window_of: Callable[[K], float | None] | None = None,
    ) -> None:
        self.action = action
        self.window = window
        self.clock = clock
        # A per-key window (a guild's own display refresh setting); None falls back to ``window``.
        self.window_of = window_of
        self._states: dict[K, _State] = {}
        self.runs = 0

    def request(self, key: K) -> None:
        """Ask for a run of ``key``; cheap and synchronous."""
        state = self._states.setdefault(key, _State())
        state.dirty = True
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._drain(key, state), name=f"refresh-{key}")

    async def _drain(self, key: K, state: _State) -> None:
        while state.dirty:
            own = self.window_of(key) if self.window_of is not None else None
            delay = state.last_run + (self.window if own is None else own) - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            state.dirty = False
            state.last_run = self.clock()
            self.runs += 1
            try:
                await self.action(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refresh of %s failed", key)

    async def flush(self) -> None:
        """Wait until every requested run has happened (tests, shutdown)."""
        while True:
            tasks = [s.task for s in self._states.values() if s.task is not None and not s.task.done()]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending runs."""
        tasks = [s.task for s in self._states.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

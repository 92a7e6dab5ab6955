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
    timer: asyncio.TimerHandle | None = None  # the run waiting for its window
    task: asyncio.Task[None] | None = None  # the run under way


class Coalescer(Generic[K]):
    """Runs ``action(key)`` after ``request(key)``, no more often than once per ``window`` seconds per key.

    A run that waits for its window is a timer, not a sleeping task: every live's guild asks for its
    displays each second, and a task per key (its coroutine, its sleep, their future and context) lived
    through the window into the collector's older generations, which then walked them at every collection
    (``bench.live_pool``).
    """

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
        if state.timer is None and state.task is None:
            self._schedule(key, state)

    def _schedule(self, key: K, state: _State) -> None:
        own = self.window_of(key) if self.window_of is not None else None
        delay = state.last_run + (self.window if own is None else own) - self.clock()
        if delay > 0:
            state.timer = asyncio.get_running_loop().call_later(delay, self._start, key, state)
        else:
            self._start(key, state)

    def _start(self, key: K, state: _State) -> None:
        state.timer = None
        state.task = asyncio.create_task(self._run(key, state), name=f"refresh-{key}")

    async def _run(self, key: K, state: _State) -> None:
        state.dirty = False
        state.last_run = self.clock()
        self.runs += 1
        try:
            await self.action(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("refresh of %s failed", key)
        finally:
            state.task = None
        if state.dirty:  # changes that came in during the run: one more, after the window
            self._schedule(key, state)

    async def flush(self) -> None:
        """Wait until every requested run has happened (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        while True:
            waiting = [s for s in self._states.values() if s.timer is not None or s.task is not None]
            if not waiting:
                return
            tasks = [s.task for s in waiting if s.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            else:
                due = min(s.timer.when() for s in waiting if s.timer is not None)
                await asyncio.sleep(max(0.0, due - loop.time()))

    async def close(self) -> None:
        """Cancel pending runs."""
        tasks = []
        for state in self._states.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
            if state.task is not None:
                state.task.cancel()
                tasks.append(state.task)
        await asyncio.gather(*tasks, return_exceptions=True)

"""One way to run an async action every N seconds in the background, surviving its failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``action`` every ``interval`` seconds until stopped; a failure is logged and retried next time."""

    def __init__(self, action: Callable[[], Awaitable[object]], interval: float, *, name: str, failure: str) -> None:
        self.action = action
        self.interval = interval
        self.name = name
        self.failure = failure
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel and wait for the loop (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.action()
            except Exception:
                log.exception("%s", self.failure)

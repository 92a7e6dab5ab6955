"""Warnings and errors to the debug channels, grouped and rate-limited (never a flood, never a token).

``DebugChannelHandler`` only appends to a bounded buffer in ``emit`` (logging must never wait on
Discord); ``DebugReporter`` posts what gathered at most once per ``interval`` seconds, one message per
debug channel, identical lines folded into one with a count.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable

from services.periodic import Periodic
from ui import limits

MAX_BUFFERED = 500


class DebugChannelHandler(logging.Handler):
    """Collects WARNING and above; the reporter drains it."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.buffer: collections.deque[logging.LogRecord] = collections.deque(maxlen=MAX_BUFFERED)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the record (the oldest are dropped past the bound, and counted)."""
        # Our own reporting failures must not feed back into the channel they failed to reach.
        if record.name == __name__:
            return
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1
        self.buffer.append(record)

    def drain(self) -> tuple[list[logging.LogRecord], int]:
        """Take everything buffered and the count of dropped records."""
        records = list(self.buffer)
        self.buffer.clear()
        dropped, self.dropped = self.dropped, 0
        return records, dropped


def summarize(records: list[logging.LogRecord], dropped: int, redact: Callable[[str], str]) -> str | None:
    """One message: identical lines folded with a count, newest last, inside 2000 characters."""
    if not records and not dropped:
        return None
    counts: collections.OrderedDict[tuple[str, str, str], int] = collections.OrderedDict()
    for record in records:
        key = (record.levelname, record.name, redact(record.getMessage()).splitlines()[0][:300])
        counts[key] = counts.get(key, 0) + 1
        counts.move_to_end(key)
    lines = [
        f"`{level}` {name}: {limits.clip(message, 300)}" + (f" (×{n})" if n > 1 else "")
        for (level, name, message), n in counts.items()
    ]
    if dropped:
        lines.append(f"…and {dropped} more not shown (see the log file).")
    text = "\n".join(lines)
    if len(text) > limits.CONTENT - 20:
        text = "…\n" + text[-(limits.CONTENT - 40) :]
    return "⚠️ Bot warnings\n" + text


class DebugReporter:
    """Posts the handler's buffer every ``interval`` seconds through ``send(channel_id, text)``."""

    def __init__(
        self,
        handler: DebugChannelHandler,
        channels: Callable[[], Awaitable[list[int]]],
        send: Callable[[int, str], Awaitable[None]],
        *,
        interval: float = 30.0,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.handler = handler
        self.channels = channels
        self.send = send
        self.interval = interval
        self.redact = redact
        self._loop = Periodic(self.report_once, interval, name="debug-reporter",
                              failure="posting to the debug channel failed")  # fmt: skip
        self.sent = 0

    def start(self) -> None:
        """Start the posting loop."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loop (what is buffered stays in the log file)."""
        await self._loop.stop()

    async def report_once(self) -> bool:
        """Post one grouped message to every debug channel; False when there was nothing to say."""
        records, dropped = self.handler.drain()
        text = summarize(records, dropped, self.redact)
        if text is None:
            return False
        for channel_id in await self.channels():
            await self.send(channel_id, text)
            self.sent += 1
        return True

"""Warnings and errors to the debug channels, grouped and rate-limited (never a flood, never a token).

``DebugChannelHandler`` only appends to a bounded per-guild buffer in ``emit`` (logging must never wait on
Discord); ``DebugReporter`` posts what gathered at most once per ``interval`` seconds, one message per
guild to that guild's debug channel, identical lines folded into one with a count. A record goes only to
the guild it concerns (``services.log_context``); one that concerns no guild stays in the log file, since
every debug channel is read by one server's staff and nothing of one guild may be shown in another.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable

from services.log_context import guild_of
from services.periodic import Periodic
from ui import limits

MAX_BUFFERED = 500


class DebugChannelHandler(logging.Handler):
    """Collects WARNING and above per guild; the reporter drains it."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.buffers: dict[int, collections.deque[logging.LogRecord]] = {}
        self.dropped: collections.Counter[int] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the record under its guild (the oldest are dropped past the bound, and counted)."""
        # Our own reporting failures must not feed back into the channel they failed to reach.
        if record.name == __name__:
            return
        guild_id = guild_of(record)
        if guild_id is None:
            return  # concerns no guild: the log file has it, no server's staff should see it
        buffer = self.buffers.setdefault(guild_id, collections.deque(maxlen=MAX_BUFFERED))
        if len(buffer) == buffer.maxlen:
            self.dropped[guild_id] += 1
        buffer.append(record)

    def drain(self) -> dict[int, tuple[list[logging.LogRecord], int]]:
        """Take everything buffered: guild id → (records, count of dropped records)."""
        drained = {g: (list(b), self.dropped[g]) for g, b in self.buffers.items() if b or self.dropped[g]}
        self.buffers.clear()
        self.dropped.clear()
        return drained


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
    """Posts the handler's buffer every ``interval`` seconds through ``send(channel_id, text)``.

    ``channels()`` maps each guild id to its debug channel id; a guild without one gets nothing posted.
    """

    def __init__(
        self,
        handler: DebugChannelHandler,
        channels: Callable[[], Awaitable[dict[int, int]]],
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
        """Post one grouped message per guild to that guild's debug channel; False when there was nothing."""
        drained = self.handler.drain()
        if not drained:
            return False
        channels = await self.channels()
        for guild_id, (records, dropped) in drained.items():
            text = summarize(records, dropped, self.redact)
            channel_id = channels.get(guild_id)
            if text is None or channel_id is None:
                continue
            await self.send(channel_id, text)
            self.sent += 1
        return True

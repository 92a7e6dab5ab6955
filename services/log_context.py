"""Which guild a log record concerns, so each guild's debug channel gets only its own warnings.

A record names its guild explicitly (``log.warning(..., extra={"guild_id": gid})``) or inherits it from the
context: ``set_guild`` at the start of an interaction's task or a per-guild task, or ``guild_scope`` around a
block. asyncio copies the context into every task it creates, so work started on behalf of a guild (a
TikTok worker started by ``/tiktok connect``) keeps reporting as that guild. A record that concerns no guild
has no debug channel: it goes to the log only.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

current_guild: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_guild", default=None)


def set_guild(guild_id: int | None) -> None:
    """Records logged from here on, in this task (and tasks it starts), concern ``guild_id``."""
    current_guild.set(guild_id)


@contextmanager
def guild_scope(guild_id: int | None) -> Iterator[None]:
    """Records logged inside the block concern ``guild_id``."""
    token = current_guild.set(guild_id)
    try:
        yield
    finally:
        current_guild.reset(token)


def guild_of(record: logging.LogRecord) -> int | None:
    """The guild a record concerns: its ``guild_id`` extra, else the context's guild, else None."""
    explicit = getattr(record, "guild_id", None)
    if explicit:
        return int(explicit)
    return current_guild.get()

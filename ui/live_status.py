"""The TikTok status message: posted where ``/tiktok connect`` was asked, edited as the connection changes.

Long-running status goes to a channel message, not to the interaction token, because interaction tokens
expire after 15 minutes and a persistent connection may wait for the host for hours. Edits follow
``LiveStatusChanged`` on the change feed, coalesced to at most one per second per guild; the message is
forgotten when someone deletes it (the next ``/tiktok connect`` posts a new one). Built once by ``bot.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import discord

from services.feed import ChangeFeed, FeedEvent, LiveStatusChanged
from services.live_sessions import LiveSessionService
from services.refresh import Coalescer
from services.tiktok.connections import LiveConnections
from ui import tiktok_ui
from ui.notifier import Notifier

EDIT_WINDOW = 1.0


class LiveStatusBoard:
    """Each guild's status message and its coalesced edits."""

    def __init__(
        self, connections: LiveConnections, sessions: LiveSessionService, notifier: Notifier, feed: ChangeFeed
    ) -> None:
        self.connections = connections
        self.sessions = sessions
        self.notifier = notifier
        self.feed = feed
        self._messages: dict[int, tuple[int, int]] = {}
        self._edits: Coalescer[int] = Coalescer(self._edit, EDIT_WINDOW)
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        """Follow the connections' state changes (idempotent)."""
        if self._unsubscribe is None:
            self._unsubscribe = self.feed.subscribe(self._changed, LiveStatusChanged)

    async def close(self) -> None:
        """Stop following and drop pending edits."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._edits.close()

    def _changed(self, event: FeedEvent) -> None:
        if event.guild_id in self._messages:
            self._edits.request(event.guild_id)

    def embed(self, guild_id: int) -> discord.Embed:
        """The guild's connection as ``/tiktok status`` shows it: active, in progress, or not connected."""
        connection = self.connections.get(guild_id)
        if connection is None:
            return tiktok_ui.status_embed(state="idle", username=None)
        s = connection.status()
        session = self.sessions.current(guild_id)
        return tiktok_ui.status_embed(
            state=str(getattr(s.state, "value", s.state)),  # a plain str once it crossed from the worker
            username=s.username,
            room_id=s.room_id,
            session_id=session.id if session else None,
            connected_since=s.connected_since,
            attempts=s.attempts,
            persistent=s.persistent,
            started_at=s.started_at,
            last_error=s.last_error,
        )

    async def post(self, guild_id: int, channel_id: int) -> bool:
        """Post the status message in ``channel_id``; later changes edit it. False when it could not be posted."""
        message = await self.notifier.post(channel_id, embed=self.embed(guild_id), what="the TikTok status message")
        if message is None:
            return False
        self._messages[guild_id] = (message.channel.id, message.id)
        return True

    async def _edit(self, guild_id: int) -> None:
        where = self._messages.get(guild_id)
        if where is None:
            return
        if not await self.notifier.edit(*where, embed=self.embed(guild_id), what="the TikTok status message"):
            self._messages.pop(guild_id, None)  # deleted (or no longer editable): the next connect posts anew

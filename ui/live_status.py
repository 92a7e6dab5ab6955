"""The TikTok status message: posted where ``/tiktok connect`` was asked, edited as the connection changes.

Long-running status goes to a channel message, not to the interaction token, because interaction tokens
expire after 15 minutes and a persistent connection may wait for the host for hours. Edits follow
``LiveStatusChanged`` on the change feed, coalesced to at most one per second per guild; the message is
forgotten when someone deletes it (the next ``/tiktok connect`` posts a new one). Built once by ``bot.py``.

While a dropped live's session waits for its reconnect (``LiveDropped`` with a grace window, until
``LiveConnected`` or ``LiveEnded``), the message says it is reconnecting to the same live, and until when.

When the live ends (``LiveEnded``), the message becomes a short summary (how long, likes, coins, songs
played, where the recap is) instead of a stale "Not connected". ``/tiktok status`` (``status``) shows
what matters during a live: viewers now, likes, coins, songs played and time live.
"""

from __future__ import annotations

import discord

from services.feed import ChangeFeed, LiveConnected, LiveDropped, LiveEnded, LiveStatusChanged, Subscription
from services.live_sessions import LiveFigures, LiveSessionService
from services.refresh import Coalescer
from services.tiktok.connections import LiveConnections
from ui import tiktok_ui
from ui.notifier import Notifier

EDIT_WINDOW = 1.0


class LiveStatusBoard:
    """Each guild's status message and its coalesced edits."""

    def __init__(
        self,
        connections: LiveConnections,
        sessions: LiveSessionService,
        notifier: Notifier,
        feed: ChangeFeed,
    ) -> None:
        self.connections = connections
        self.sessions = sessions
        self.notifier = notifier
        self.feed = feed
        self._messages: dict[int, tuple[int, int]] = {}
        self._edits: Coalescer[int] = Coalescer(self._edit, EDIT_WINDOW)
        self._feed = Subscription(feed, "live-status")
        self._ended: dict[int, discord.Embed] = {}

    def start(self) -> None:
        """Follow the connections' state changes and the ends of lives (idempotent)."""
        if not self._feed.active:
            self._feed.on(LiveStatusChanged, self._changed)
            self._feed.on(LiveEnded, self._live_ended)
            # The session service knows whether a dropped live's session waits, and until when.
            self._feed.on(LiveDropped, self._changed)
            self._feed.on(LiveConnected, self._changed)

    async def close(self) -> None:
        """Stop following, finish the end summaries being written, and drop pending edits."""
        await self._feed.close()
        await self._edits.close()

    def _live_ended(self, event: LiveEnded) -> None:
        if event.guild_id in self._messages:  # only a guild with a status message has one to summarize
            self._feed.spawn(self._summarize(event), f"live-summary-{event.guild_id}")

    async def _summarize(self, event: LiveEnded) -> None:
        """Turn the status message into the ended live's summary, with where its recap went."""
        figures = await self.sessions.figures(event.guild_id, session_id=event.session_id)
        if figures is None:
            return
        session = await self.sessions.db.get_session(event.session_id)
        note = await self.notifier.recap_note(event.session_id) or "📊 The recap follows in the recap channel."
        host = session.host if session else "?"
        self._ended[event.guild_id] = tiktok_ui.ended_embed(host, figures, note, event.session_id)
        await self._edit(event.guild_id)

    def _changed(self, event: LiveStatusChanged | LiveDropped | LiveConnected) -> None:
        self._request(event.guild_id)

    def _request(self, guild_id: int) -> None:
        if guild_id in self._messages:
            self._edits.request(guild_id)

    def embed(self, guild_id: int, figures: LiveFigures | None = None) -> discord.Embed:
        """The status message: active, in progress, or not connected; a live that ended stays as its summary."""
        connection = self.connections.get(guild_id)
        if connection is None:
            return tiktok_ui.status_embed(state="idle", username=None)
        s = connection.status()
        state = str(getattr(s.state, "value", s.state))  # a plain str once it crossed from the worker
        if state == "idle" and figures is None and guild_id in self._ended:
            return self._ended[guild_id]
        session = self.sessions.current(guild_id)
        return tiktok_ui.status_embed(
            state=state,
            figures=figures,
            username=s.username,
            room_id=s.room_id,
            session_id=session.id if session else None,
            connected_since=s.connected_since,
            attempts=s.attempts,
            persistent=s.persistent,
            started_at=s.started_at,
            last_error=s.last_error,
            reconnect_until=self.sessions.reconnect_until(guild_id),
        )

    async def status(self, guild_id: int) -> discord.Embed:
        """What ``/tiktok status`` shows: while live, viewers now, likes, coins, songs played and time live."""
        connection = self.connections.get(guild_id)
        state = connection.status().state if connection is not None else "idle"
        connected = str(getattr(state, "value", state)) == "connected"
        figures = await self.sessions.figures(guild_id) if connected else None
        if figures is None:  # not live (or no session yet): the plain state, never an old summary
            embed = self.embed(guild_id)
            return embed if guild_id not in self._ended or embed is not self._ended[guild_id] else self._idle()
        return self.embed(guild_id, figures)

    @staticmethod
    def _idle() -> discord.Embed:
        return tiktok_ui.status_embed(state="idle", username=None)

    async def post(self, guild_id: int, channel_id: int) -> bool:
        """Post the status message in ``channel_id``; later changes edit it. False when it could not be posted."""
        self._ended.pop(guild_id, None)  # a new connect: the last live's summary stays on its own message
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

"""Every guild's TikTok LIVE connection, owned in one place (built once by ``bot.py``).

One connection per guild (a ``PooledLive``: the manager running in one of a small pool of connection processes,
``services.tiktok.worker.LiveWorkerPool``, so decoding a busy live never delays an interaction), created at
the first ``/tiktok connect`` and kept until the bot closes, so reloading the TikTok cog never drops a live.
What a connection reports is translated here: engagement goes to the live sessions (and from there to the
engagement writer); a connect opens a session; the end of a connected period closes it (its recap follows from
``LiveEnded``); state changes, connects and unexpected drops are published on the change feed. Nothing here
knows Discord: the notifier and the status messages subscribe to the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from models import EngagementEvent
from services.feed import ChangeFeed, LiveConnected, LiveDropped, LiveStatusChanged
from services.live_sessions import LiveSessionService
from services.tiktok.live import EndReason, LiveInfo, LiveListener, SessionId, StatusSnapshot

log = logging.getLogger(__name__)


class Connection(Protocol):
    """What a guild's connection offers (``PooledLive``, or a fake in tests)."""

    guild_id: int

    def status(self) -> StatusSnapshot:
        """The latest state."""

    async def connect(self, username: str, *, persistent: bool = True) -> StatusSnapshot:
        """Start connecting (or waiting for the host to go live)."""

    async def disconnect(self) -> None:
        """End the connection or cancel the attempts (user-initiated: no alert)."""

    async def close(self) -> None:
        """Disconnect and release the connection's resources for good."""


ConnectionFactory = Callable[[int, LiveListener], Connection]


class _Listener:
    """One guild's connection callbacks, routed to the sessions and the feed."""

    def __init__(self, owner: LiveConnections, guild_id: int) -> None:
        self._owner = owner
        self._guild_id = guild_id

    def on_events(self, events: list[EngagementEvent]) -> None:
        self._owner.sessions.record(self._guild_id, events)

    def on_state(self, snapshot: StatusSnapshot) -> None:
        self._owner.feed.publish(LiveStatusChanged(self._guild_id))

    async def on_connected(self, info: LiveInfo) -> SessionId | None:
        # A reconnect within the grace window of a drop continues the same live session.
        connected = await self._owner.sessions.connected(self._guild_id, info.username, info.room_id)
        self._owner.feed.publish(
            LiveConnected(self._guild_id, info.username, info.room_id, connected.session.id, connected.resumed)
        )
        return None  # the status shows the bot's own session id (sessions.current)

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        if not unexpected:
            return  # a user-initiated disconnect or the host's live end sends no alert
        session = self._owner.sessions.current(self._guild_id)
        grace = await self._owner.sessions.grace_seconds(self._guild_id)
        self._owner.feed.publish(
            LiveDropped(
                self._guild_id, info.username, duration, session.id if session else None, info.last_error, grace
            )
        )

    async def on_session_end(self, info: LiveInfo) -> None:
        if info.end_reason is EndReason.DROPPED:
            # The host may still be live: the session waits for a reconnect instead of ending mid-live.
            await self._owner.sessions.dropped(self._guild_id)
        else:
            await self._owner.sessions.end(self._guild_id)


class LiveConnections:
    """The guilds' TikTok connections; ``close`` disconnects them all and ends every open session."""

    def __init__(self, sessions: LiveSessionService, feed: ChangeFeed, factory: ConnectionFactory) -> None:
        self.sessions = sessions
        self.feed = feed
        self._factory = factory
        self._connections: dict[int, Connection] = {}

    def get(self, guild_id: int) -> Connection | None:
        """The guild's connection, if one was ever asked for."""
        return self._connections.get(guild_id)

    def connection(self, guild_id: int) -> Connection:
        """The guild's connection, created on first use."""
        existing = self._connections.get(guild_id)
        if existing is None:
            existing = self._connections[guild_id] = self._factory(guild_id, _Listener(self, guild_id))
        return existing

    async def connect(self, guild_id: int, username: str, *, persistent: bool = True) -> StatusSnapshot:
        """Connect a guild to a TikTok LIVE (``username`` already normalised)."""
        return await self.connection(guild_id).connect(username, persistent=persistent)

    async def close(self) -> None:
        """Disconnect every live (user-initiated: no alert), then end every open session, simulations too."""
        for guild_id, connection in list(self._connections.items()):
            try:
                await connection.close()  # disconnects, then stops the connection's process
            except Exception:
                log.exception("disconnecting the live of guild %s failed", guild_id)
        self._connections.clear()
        for guild_id in self.sessions.open_guilds():
            try:
                await self.sessions.end(guild_id)
            except Exception:
                log.exception("ending the live session of guild %s failed", guild_id)
        for guild_id in self.sessions.simulating_guilds():
            try:
                await self.sessions.end_simulation(guild_id)
            except Exception:
                log.exception("ending the simulation session of guild %s failed", guild_id)

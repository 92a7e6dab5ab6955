"""Live sessions: every connected period of a TikTok LIVE is a session, and its end yields the recap.

Sits between the TikTok connections (which know when a live starts and ends) and the engagement writer
(which records events under the current session). It publishes ``LiveStarted`` and ``LiveEnded`` on the
change feed; the notifier posts the recap of an ended session and the overlay follows the live. No
discord import.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from database import Database
from models import EngagementEvent, LiveSession, SessionSummary
from services.analytics import summarize
from services.engagement import EngagementWriter
from services.feed import ChangeFeed, LiveEnded, LiveStarted

log = logging.getLogger(__name__)

SIMULATION_HOST = "simulation"


class LiveSessionService:
    """Opens and closes session records and routes engagement into them."""

    def __init__(
        self,
        db: Database,
        writer: EngagementWriter,
        *,
        feed: ChangeFeed | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.writer = writer
        self.feed = feed if feed is not None else ChangeFeed()
        self.clock = clock
        self._open: dict[int, LiveSession] = {}
        self._simulations: dict[int, LiveSession] = {}  # /tiktok simulate: never a real live's session

    def open_guilds(self) -> list[int]:
        """Guilds with an open session (a live, or a simulation)."""
        return list(self._open)

    def current(self, guild_id: int) -> LiveSession | None:
        """The open session of a guild, if a live is connected."""
        return self._open.get(guild_id)

    async def start(self, guild_id: int, host: str, room_id: int | None, *, simulated: bool = False) -> LiveSession:
        """Open a session (closing a stale one first) and record further events under it."""
        if guild_id in self._open:
            await self.end(guild_id)
        session = await self.db.start_session(guild_id, host, room_id, self.clock(), simulated=simulated)
        self._open[guild_id] = session
        self.writer.set_session(guild_id, session.id)
        log.info("live session %s started for @%s in guild %s", session.id, host, guild_id)
        self.feed.publish(LiveStarted(guild_id, session.id, host))
        return session

    def record(self, guild_id: int, events: Iterable[EngagementEvent]) -> None:
        """Hand events to the writer (cheap: called for every batch from the live)."""
        self.writer.add(guild_id, events)

    async def end(self, guild_id: int) -> SessionSummary | None:
        """Flush what is buffered, close the session and return its recap (None if none was open)."""
        session = self._open.pop(guild_id, None)
        if session is None:
            return None
        await self.writer.flush()
        self.writer.set_session(guild_id, None)
        await self.db.end_session(session.id, self.clock())
        log.info("live session %s ended for guild %s", session.id, guild_id)
        self.feed.publish(LiveEnded(guild_id, session.id))
        return await summarize(self.db, session.id)

    # ------------------------------------------------------------------ simulations (issue 12 point 5)

    def simulation(self, guild_id: int) -> LiveSession | None:
        """The guild's open simulation session (``/tiktok simulate``), if any."""
        return self._simulations.get(guild_id)

    def simulating_guilds(self) -> list[int]:
        """Guilds with an open simulation session."""
        return list(self._simulations)

    async def simulate(self, guild_id: int, events: Iterable[EngagementEvent], *, promote: bool = False) -> LiveSession:
        """Record simulated events in the guild's simulation session (opened on first use), at once.

        A simulation has a session of its own, marked simulated, even while a real live runs: the real
        live's recap, gift-tier progress and once-per-live rewards never see a simulated event. Its gifts
        promote a song only with ``promote``.
        """
        session = self._simulations.get(guild_id)
        if session is None:
            session = await self.db.start_session(guild_id, SIMULATION_HOST, None, self.clock(), simulated=True)
            self._simulations[guild_id] = session
            log.info("simulation session %s started in guild %s", session.id, guild_id)
        await self.writer.write_simulated(guild_id, session.id, events, promote=promote)
        return session

    async def end_simulation(self, guild_id: int) -> SessionSummary | None:
        """Close the guild's simulation session and return its recap (None if none was open)."""
        session = self._simulations.pop(guild_id, None)
        if session is None:
            return None
        await self.db.end_session(session.id, self.clock())
        log.info("simulation session %s ended for guild %s", session.id, guild_id)
        self.feed.publish(LiveEnded(guild_id, session.id))
        return await summarize(self.db, session.id)

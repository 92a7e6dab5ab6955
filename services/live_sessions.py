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
from dataclasses import dataclass

from database import Database
from models import EngagementEvent, EventKind, LiveSession, SessionSummary
from services.analytics import summarize
from services.engagement import EngagementWriter
from services.feed import ChangeFeed, LiveEnded, LiveStarted

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """What a streamer watches during a live (``/tiktok status``) and reads when it ends."""

    started_at: float
    viewers_now: int | None = None
    peak_viewers: int = 0
    likes: int = 0
    coins: int = 0
    gifts: int = 0
    songs_played: int = 0
    ended_at: float | None = None


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
        self._viewers: dict[int, int] = {}

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
        batch = events if isinstance(events, list) else list(events)
        for event in reversed(batch):  # the newest viewer count is the one "viewers now" shows
            if event.kind is EventKind.VIEWERS and event.viewers is not None:
                self._viewers[guild_id] = event.viewers
                break
        self.writer.add(guild_id, batch)

    async def figures(
        self, guild_id: int, summary: SessionSummary | None = None, *, session_id: int | None = None
    ) -> LiveFigures | None:
        """Viewers now, likes, coins and songs played of the open session (or of a given, ended one)."""
        if summary is None and session_id is not None:
            summary = await summarize(self.db, session_id)
            if summary is None:
                return None
        if summary is None:
            session = self._open.get(guild_id)
            if session is None:
                return None
            summary = await summarize(self.db, session.id)
            if summary is None:
                return LiveFigures(started_at=session.started_at, viewers_now=self._viewers.get(guild_id))
        session = summary.session
        played = await self.db.count_played_since(guild_id, session.started_at)
        return LiveFigures(
            started_at=session.started_at,
            viewers_now=self._viewers.get(guild_id) if session.ended_at is None else None,
            peak_viewers=session.peak_viewers,
            likes=summary.totals.likes,
            coins=summary.totals.coins,
            gifts=summary.gifts,
            songs_played=played,
            ended_at=session.ended_at,
        )

    async def end(self, guild_id: int) -> SessionSummary | None:
        """Flush what is buffered, close the session and return its recap (None if none was open)."""
        session = self._open.pop(guild_id, None)
        self._viewers.pop(guild_id, None)
        if session is None:
            return None
        await self.writer.flush()
        self.writer.set_session(guild_id, None)
        await self.db.end_session(session.id, self.clock())
        log.info("live session %s ended for guild %s", session.id, guild_id)
        self.feed.publish(LiveEnded(guild_id, session.id))
        return await summarize(self.db, session.id)

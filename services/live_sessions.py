"""Live sessions: one TikTok LIVE is one session, however often its connection drops, and its end yields the recap.

Sits between the TikTok connections (which know when a connected period starts and ends, and why) and the
engagement writer (which records events under the current session). A drop does not end the live: the
session stays open for a grace window (a guild setting, 5 minutes by default), and a reconnect to the same
host inside it continues the same session, so its gift-tier progress, once-per-live rewards and recap
cover the whole live. The session ends when the host ends the live, when someone disconnects, or when the
grace window runs out. It publishes ``LiveStarted`` and ``LiveEnded`` on the change feed; the notifier
posts the recap of an ended session and the overlay follows the live. No discord import.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from database import Database
from models import EngagementEvent, EventKind, LiveSession, SessionSummary
from services.analytics import summarize
from services.engagement import EngagementWriter
from services.feed import ChangeFeed, LiveEnded, LiveStarted, LiveStatusChanged

log = logging.getLogger(__name__)

SIMULATION_HOST = "simulation"


@dataclass(frozen=True, slots=True)
class Connected:
    """A connection reached a live: the session it records into, and whether it continues one after a drop."""

    session: LiveSession
    resumed: bool


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
    """Opens, holds through drops, and closes session records, and routes engagement into them."""

    def __init__(
        self,
        db: Database,
        writer: EngagementWriter,
        *,
        feed: ChangeFeed | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.writer = writer
        self.feed = feed if feed is not None else ChangeFeed()
        self.clock = clock
        self.sleep = sleep
        self._open: dict[int, LiveSession] = {}
        self._grace: dict[int, asyncio.Task[None]] = {}
        self._grace_ends: dict[int, float] = {}  # until when each held session waits (read while in _grace)
        # When a held session's live was last seen: if it never comes back, the session ends there.
        self._dropped_at: dict[int, float] = {}
        self._viewers: dict[int, int] = {}
        self._simulations: dict[int, LiveSession] = {}  # /tiktok simulate: never a real live's session

    def open_guilds(self) -> list[int]:
        """Guilds with an open session (a live, or a simulation)."""
        return list(self._open)

    def current(self, guild_id: int) -> LiveSession | None:
        """The open session of a guild, if a live is connected."""
        return self._open.get(guild_id)

    def on_screen(self, guild_id: int) -> LiveSession | None:
        """The session the stream overlay shows: the real live's, else an open simulation's.

        So a streamer can try the overlay with ``/tiktok simulate`` before going live, while during a live
        the overlay never mixes simulated supporters into the real ones.
        """
        return self._open.get(guild_id) or self._simulations.get(guild_id)

    def reconnecting(self, guild_id: int) -> bool:
        """Whether the guild's live dropped and its session waits for a reconnect."""
        return guild_id in self._grace

    def reconnect_until(self, guild_id: int) -> float | None:
        """Until when the guild's dropped live's session waits for its reconnect; None when none waits."""
        return self._grace_ends.get(guild_id) if guild_id in self._grace else None

    async def connected(self, guild_id: int, host: str, room_id: int | None) -> Connected:
        """A connection reached a live: continue the session of a recent drop of the same host, else open one."""
        session = self._open.get(guild_id)
        waiting = self._grace.pop(guild_id, None)
        if waiting is not None:
            waiting.cancel()
            if session is not None and session.host == host and not session.simulated:
                self._dropped_at.pop(guild_id, None)
                self.writer.set_session(guild_id, session.id)
                log.info("live session %s continues for @%s in guild %s", session.id, host, guild_id)
                return Connected(session, resumed=True)
        return Connected(await self.start(guild_id, host, room_id), resumed=False)

    async def dropped(self, guild_id: int) -> LiveSession | None:
        """The connection dropped while the host may still be live: hold the session for the grace window.

        Everything buffered is written now; if no reconnect comes within the window, the session ends (and
        ``LiveEnded`` with reason "expired" tells whoever posts recaps).
        """
        session = self._open.get(guild_id)
        if session is None or session.simulated:
            return session
        self._dropped_at[guild_id] = self.clock()
        await self.writer.flush()
        grace = float(await self.grace_seconds(guild_id))
        previous = self._grace.pop(guild_id, None)
        if previous is not None:
            previous.cancel()
        if grace > 0:
            self._grace_ends[guild_id] = self.clock() + grace
        else:  # no window (the setting at 0): the session ends with the drop, nothing to wait for
            self._grace_ends.pop(guild_id, None)
        self._grace[guild_id] = asyncio.create_task(
            self._expire(guild_id, session.id, grace), name=f"live-grace-{guild_id}"
        )
        self.feed.publish(LiveStatusChanged(guild_id))  # the status message says until when it waits
        log.info("live session %s of guild %s waits %.0f s for a reconnect", session.id, guild_id, grace)
        return session

    async def grace_seconds(self, guild_id: int) -> int:
        """How long a dropped live waits for a reconnect before its session ends (a guild setting)."""
        return (await self.db.get_settings(guild_id)).reconnect_grace_seconds

    async def _expire(self, guild_id: int, session_id: int, grace: float) -> None:
        await self.sleep(grace)
        current = self._open.get(guild_id)
        if current is None or current.id != session_id:
            return
        self._grace.pop(guild_id, None)
        log.info("live session %s of guild %s ended: no reconnect within %.0f s", session_id, guild_id, grace)
        try:
            await self.end(guild_id, reason="expired")
        except Exception:  # a background timer: the failure is logged here, never lost in a task
            log.exception("ending live session %s of guild %s after its grace window failed", session_id, guild_id)

    async def recover(self) -> list[int]:
        """Close sessions a crash left open, at their last recorded activity; returns their ids.

        Each gets ``LiveEnded`` with reason "recovered", so its recap is posted, marked as recovered.
        """
        recovered = []
        for session in await self.db.open_sessions():
            if session.guild_id in self._open:
                continue
            await self.db.end_session(session.id, await self.db.session_last_activity(session.id))
            log.warning("closed live session %s of guild %s left open by a crash", session.id, session.guild_id)
            self.feed.publish(LiveEnded(session.guild_id, session.id, reason="recovered"))
            recovered.append(session.id)
        return recovered

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

    async def end(self, guild_id: int, *, reason: str = "ended") -> SessionSummary | None:
        """Flush what is buffered, close the session and return its recap (None if none was open).

        A session held after a drop ends at the drop (its live was not seen again), so the recap's length
        and chart do not count the grace window.
        """
        waiting = self._grace.pop(guild_id, None)
        if waiting is not None and waiting is not asyncio.current_task():
            waiting.cancel()
        session = self._open.pop(guild_id, None)
        self._viewers.pop(guild_id, None)
        dropped_at = self._dropped_at.pop(guild_id, None)
        if session is None:
            return None
        await self.writer.flush()
        self.writer.set_session(guild_id, None)
        await self.db.end_session(session.id, self.clock() if dropped_at is None else dropped_at)
        log.info("live session %s ended for guild %s", session.id, guild_id)
        self.feed.publish(LiveEnded(guild_id, session.id, reason=reason))
        return await summarize(self.db, session.id)

    async def close(self) -> None:
        """Stop the grace timers (the bot is shutting down; open sessions are ended by their owner)."""
        for task in self._grace.values():
            task.cancel()
        await asyncio.gather(*self._grace.values(), return_exceptions=True)
        self._grace.clear()

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

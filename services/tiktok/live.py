"""The live connection manager: one task per guild owns an explicit state machine around TikTokLive.

States: IDLE -> CONNECTING -> CONNECTED, with WAITING_TO_RETRY while the host is offline (persistent
mode: 10 s for the first three attempts, 30 s after that) and DISCONNECTING on a user's request.

How the library is used inside discord.py's loop (see the research notes): ``client.start()`` and then
the returned task is supervised; ``connect()`` is never cancelled; ``client.close()`` is never called
(its cleanup runs ``run_until_complete``), ``client.web.close()`` is. An abnormal socket close raises out
of the task without a DisconnectEvent, so the task's outcome, not the event, decides whether a drop was
unexpected. Liveness is checked with one cheap web call before each (signed) connection attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from errors import NotConnectedError, NotFoundError
from models import EngagementEvent
from services.tiktok.adapter import EventAdapter, normalize

log = logging.getLogger(__name__)


class ConnectionState(enum.StrEnum):
    """Where the connection of a guild stands."""

    IDLE = "idle"
    CONNECTING = "connecting"
    WAITING_TO_RETRY = "waiting_to_retry"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What ``/tiktok status`` shows."""

    state: ConnectionState
    username: str | None
    room_id: int | None
    connected_since: float | None
    attempts: int
    persistent: bool
    started_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class LiveInfo:
    """Who the connection is for, passed to the listener."""

    guild_id: int
    username: str
    room_id: int | None
    last_error: str | None = None


class LiveListener(Protocol):
    """What the manager reports to (the TikTok cog wires it to the writer and to Discord)."""

    def on_events(self, events: list[EngagementEvent]) -> None:
        """Adapted events (cheap, synchronous)."""

    def on_state(self, snapshot: StatusSnapshot) -> None:
        """The state changed."""

    async def on_connected(self, info: LiveInfo) -> None:
        """Connected to a live: a session starts."""

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        """A connected period ended; ``unexpected`` when nobody asked for it."""

    async def on_session_end(self, info: LiveInfo) -> None:
        """The session of that connected period is over (post the recap)."""


class LiveStatus(enum.Enum):
    """Result of the cheap liveness check."""

    LIVE = "live"
    OFFLINE = "offline"


def apply_web_overrides(config: Any) -> None:
    """TIKTOK_WEB_URL / TIKTOK_WEBCAST_URL / SIGN_API_* from the project's config into TikTokLive."""
    if config is None:
        return
    from TikTokLive.client.web.web_settings import WebDefaults

    if getattr(config, "tiktok_web_url", None):
        WebDefaults.tiktok_app_url = config.tiktok_web_url
    if getattr(config, "tiktok_webcast_url", None):
        WebDefaults.tiktok_webcast_url = config.tiktok_webcast_url
    # TikTokLive reads these at client construction; the environment is its documented interface.
    if getattr(config, "sign_api_url", None):
        os.environ["SIGN_API_URL"] = config.sign_api_url
    if getattr(config, "sign_api_key", None):
        os.environ["SIGN_API_KEY"] = config.sign_api_key


def default_client_factory(username: str) -> Any:
    """A real TikTokLive client."""
    from TikTokLive import TikTokLiveClient

    return TikTokLiveClient(unique_id=username)


class LiveConnectionManager:
    """One guild's TikTok LIVE connection, owned by one task."""

    def __init__(
        self,
        guild_id: int,
        listener: LiveListener,
        *,
        config: Any = None,
        client_factory: Callable[[str], Any] = default_client_factory,
        short_delay: float = 10.0,
        long_delay: float = 30.0,
        short_attempts: int = 3,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.guild_id = guild_id
        self.listener = listener
        self.config = config
        self.client_factory = client_factory
        self.short_delay = short_delay
        self.long_delay = long_delay
        self.short_attempts = short_attempts
        self.clock = clock
        self.sleep = sleep
        self.state = ConnectionState.IDLE
        self.username: str | None = None
        self.room_id: int | None = None
        self.persistent = False
        self.attempts = 0
        self.started_at: float | None = None
        self.connected_since: float | None = None
        self.last_error: str | None = None
        self.adapter = EventAdapter(clock=clock)
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ public API

    def status(self) -> StatusSnapshot:
        """A snapshot for status displays."""
        return StatusSnapshot(self.state, self.username, self.room_id, self.connected_since, self.attempts,
                              self.persistent, self.started_at, self.last_error)  # fmt: skip

    async def connect(self, username: str, *, persistent: bool = True) -> None:
        """Start connecting; raises NotFoundError (no such user) or NotConnectedError (offline, not persistent)."""
        handle = normalize(username)
        if not handle:
            raise NotFoundError("Give the TikTok handle of the streamer.")
        await self.disconnect()
        apply_web_overrides(self.config)
        self.username, self.persistent = handle, persistent
        self.attempts, self.started_at, self.last_error = 0, self.clock(), None
        self._stopping = False
        self.adapter = EventAdapter(clock=self.clock)
        self._set_state(ConnectionState.CONNECTING)
        client = self.client_factory(handle)
        self._attach(client)
        self._client = client
        try:
            status = await self._check_live(client)
        except NotFoundError:
            await self._discard_client()
            self._set_state(ConnectionState.IDLE)
            raise
        if status is LiveStatus.OFFLINE and not persistent:
            await self._discard_client()
            self._set_state(ConnectionState.IDLE)
            raise NotConnectedError(f"@{handle} is not live right now. Use persistent=True to wait for the live.")
        self._task = asyncio.create_task(self._run(client, status), name=f"tiktok-live-{self.guild_id}")
        self._task.add_done_callback(self._task_done)

    async def disconnect(self) -> None:
        """User-initiated: end the connection or cancel the attempts. No unexpected-disconnect alert."""
        task = self._task
        if task is None or task.done():
            self._task = None
            return
        self._stopping = True
        was_connected = self.connected_since is not None
        self._set_state(ConnectionState.DISCONNECTING)
        client = self._client
        if was_connected and client is not None:
            try:
                await client.disconnect()  # the supervised task then returns normally
            except Exception:
                log.exception("TikTokLive disconnect failed; cancelling the connection task")
                task.cancel()
        else:
            task.cancel()  # waiting between attempts (or checking liveness): safe to cancel
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._task = None

    # ------------------------------------------------------------------ the owning task

    async def _run(self, client: Any, status: LiveStatus) -> None:
        try:
            while not self._stopping:
                if status is LiveStatus.OFFLINE:
                    await self._wait_retry()
                    status = await self._check_live_safely(client)
                    continue
                connected = await self._open(client)
                if connected is None:
                    status = LiveStatus.OFFLINE
                    continue
                await self._supervise(connected)
                if self._stopping or not self.persistent:
                    break
                self.attempts = 0
                status = LiveStatus.OFFLINE  # check liveness again after the usual pause
        finally:
            await self._discard_client()
            self.connected_since = None
            self._set_state(ConnectionState.IDLE)

    async def _wait_retry(self) -> None:
        self.attempts += 1
        delay = self.short_delay if self.attempts <= self.short_attempts else self.long_delay
        self._set_state(ConnectionState.WAITING_TO_RETRY)
        await self.sleep(delay)

    async def _check_live_safely(self, client: Any) -> LiveStatus:
        try:
            return await self._check_live(client)
        except NotFoundError as exc:
            self.last_error = exc.message
            return LiveStatus.OFFLINE
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("liveness check for @%s failed: %s", self.username, self.last_error)
            return LiveStatus.OFFLINE

    async def _check_live(self, client: Any) -> LiveStatus:
        """One web call: room id and live status (no sign-server request)."""
        from TikTokLive.client.errors import UserNotFoundError
        from TikTokLive.client.web.routes.fetch_room_id_api import FetchRoomIdAPIRoute

        try:
            data = await FetchRoomIdAPIRoute.fetch_user_room_data(web=client.web, unique_id=self.username)
        except UserNotFoundError:
            raise NotFoundError(f"TikTok user @{self.username} was not found.") from None
        body = data.get("data") or {}
        room = ((body.get("user") or {}).get("roomId")) or None
        live_status = (body.get("liveRoom") or {}).get("status")
        self.room_id = int(room) if room else None
        return LiveStatus.LIVE if self.room_id and live_status != 4 else LiveStatus.OFFLINE

    async def _open(self, client: Any) -> asyncio.Task[None] | None:
        """Start the socket; None when it could not (after waiting what the failure asks for)."""
        from TikTokLive.client.errors import SignatureRateLimitError, TikTokLiveError, UserOfflineError

        self._set_state(ConnectionState.CONNECTING)
        try:
            return await client.start(room_id=self.room_id, fetch_live_check=False)
        except SignatureRateLimitError as exc:
            wait = self._until_reset(getattr(exc, "reset_time", None))
            self.last_error = f"sign server rate limit; waiting {int(wait)} s"
        except TypeError as exc:
            # 7.0.1 turns a 429 without rate-limit headers into a TypeError inside the error's constructor.
            wait = self.long_delay
            self.last_error = f"sign server refused ({exc})"[:300]
        except UserOfflineError:
            wait = 0.0
            self.last_error = "host is offline"
        except (TikTokLiveError, OSError, Exception) as exc:  # httpx errors are not wrapped by the library
            wait = 0.0
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("TikTok connection to @%s failed: %s", self.username, self.last_error)
        if not self.persistent:
            self._stopping = True
            return None
        if wait > 0:
            self._set_state(ConnectionState.WAITING_TO_RETRY)
            await self.sleep(wait)
        return None

    def _until_reset(self, reset_time: Any) -> float:
        try:
            wait = float(reset_time) - self.clock()
        except (TypeError, ValueError):
            return self.long_delay
        return min(max(wait, 1.0), 3600.0)

    async def _supervise(self, task: asyncio.Task[None]) -> None:
        self.connected_since = self.clock()
        info = LiveInfo(self.guild_id, self.username or "", self.room_id)
        self._set_state(ConnectionState.CONNECTED)
        await self._safely(self.listener.on_connected(info))
        flusher = asyncio.create_task(self._flush_streaks())
        unexpected = False
        try:
            await task
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            unexpected = not self._stopping
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("TikTok LIVE of @%s dropped: %s", self.username, self.last_error)
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            self._emit(self.adapter.flush_all())
        duration = self.clock() - (self.connected_since or self.clock())
        self.connected_since = None
        info = LiveInfo(self.guild_id, self.username or "", self.room_id, self.last_error)
        await self._safely(self.listener.on_disconnected(info, unexpected, duration))
        await self._safely(self.listener.on_session_end(info))

    async def _flush_streaks(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._emit(self.adapter.flush_stale())

    # ------------------------------------------------------------------ plumbing

    def _attach(self, client: Any) -> None:
        from TikTokLive import events as tiktok_events

        for name in EventAdapter.EVENT_NAMES:
            client.add_listener(getattr(tiktok_events, name), self._on_library_event)

    def _on_library_event(self, event: Any) -> None:
        # A plain function: pyee calls it inline, no task per event.
        try:
            self._emit(self.adapter.handle(event))
        except Exception:
            log.exception("TikTok event handling failed")

    def _emit(self, events: list[EngagementEvent]) -> None:
        if events:
            try:
                self.listener.on_events(events)
            except Exception:
                log.exception("engagement listener failed")

    async def _safely(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception:
            log.exception("TikTok listener callback failed")

    def _set_state(self, state: ConnectionState) -> None:
        if state is self.state:
            return
        self.state = state
        try:
            self.listener.on_state(self.status())
        except Exception:
            log.exception("state listener failed")

    async def _discard_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.web.close()
        except Exception:
            log.exception("closing the TikTok web client failed")

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("TikTok connection task crashed", exc_info=task.exception())

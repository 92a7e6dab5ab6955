"""The live connection manager: one asyncio task per guild owns an explicit state machine around TikTokLive.

States (``ConnectionState``)::

    IDLE --connect()--> CONNECTING --ConnectEvent--> CONNECTED --socket ends--> DISCONNECTING --> IDLE
                           |   ^                                                     |
                           v   |  (host offline, failed attempt: 10 s x3, then 30 s)  | persistent
                        WAITING_TO_RETRY <-------------------------------------------+

How the library is used inside an asyncio loop (the bot runs this manager in a process of its own, see
``services.tiktok.worker``; the library facts are in ``shared/research/tiktoklive.md``):

* liveness is checked with ONE cheap web call (``/api-live/user/room/``: room id and status) before every
  signed attempt, so waiting for a host to go live costs no sign-server quota;
* ``client.start(room_id=..., fetch_live_check=False)`` returns the socket task, which is supervised;
  ``connect()`` is never cancelled and ``client.close()`` never called (both end in ``run_until_complete``
  inside a running loop); ``client.web.close()`` discards a client;
* "connected" means the library's ``ConnectEvent`` (the websocket is open and the room entered); a socket
  task that fails before it (blocked handshake, bad sign answer) is a failed attempt, not a session;
* an abnormal close raises out of the socket task without a ``DisconnectEvent``, so the task's outcome,
  not an event, decides whether a drop was unexpected.

Every connected period is a session: ``on_connected`` opens it, ``on_session_end`` closes it, and
``on_events`` is only ever called between the two (events that arrive while ``on_connected`` is still
running are held back and handed over right after it). Listener exceptions are logged, never fatal.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from errors import NotConnectedError, NotFoundError, ValidationError
from models import EngagementEvent
from services.tiktok.adapter import DEFAULT_STREAK_TIMEOUT, EventAdapter, event_classes, normalize

log = logging.getLogger(__name__)

LIVE_STATUS = 2
"""``liveRoom.status`` of a host who is live (4 is offline)."""

MAX_RATE_LIMIT_WAIT = 3600.0
"""Never trust a sign-server reset time further away than this (seconds)."""


class ConnectionState(enum.StrEnum):
    """Where the connection of a guild stands."""

    IDLE = "idle"
    CONNECTING = "connecting"
    WAITING_TO_RETRY = "waiting_to_retry"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What ``/tiktok status`` and the status message show; all times are epoch seconds."""

    state: ConnectionState
    username: str | None
    room_id: int | None
    connected_since: float | None
    attempts: int
    persistent: bool
    started_at: float | None
    last_error: str | None
    session_id: Any = None
    next_attempt_at: float | None = None

    @property
    def active(self) -> bool:
        """True while a live is connected."""
        return self.state is ConnectionState.CONNECTED

    def uptime(self, now: float) -> float:
        """Seconds connected (0 when not connected)."""
        return max(0.0, now - self.connected_since) if self.connected_since is not None else 0.0

    def elapsed(self, now: float) -> float:
        """Seconds since ``connect`` was asked (0 when idle)."""
        return max(0.0, now - self.started_at) if self.started_at is not None else 0.0


class EndReason(enum.StrEnum):
    """Why a connected period ended."""

    USER = "user"
    """``disconnect()`` was called."""
    LIVE_END = "live_end"
    """The host ended the live (``LiveEndEvent``)."""
    CLOSED = "closed"
    """TikTok closed the socket cleanly without a live end."""
    DROPPED = "dropped"
    """The socket failed (abnormal close, network error): unexpected."""


@dataclass(frozen=True, slots=True)
class LiveInfo:
    """Who and what a callback is about."""

    guild_id: int
    username: str
    room_id: int | None
    last_error: str | None = None
    session_id: Any = None
    connected_since: float | None = None
    end_reason: EndReason | None = None


class LiveListener(Protocol):
    """What the manager reports to (the TikTok cog wires it to the engagement writer and to Discord)."""

    def on_events(self, events: list[EngagementEvent]) -> None:
        """Adapted events; synchronous and cheap (it runs inline in the socket task: buffer, don't write)."""

    def on_state(self, snapshot: StatusSnapshot) -> None:
        """The state (or the attempt count, or the session id) changed; synchronous and cheap."""

    async def on_connected(self, info: LiveInfo) -> Any:
        """Connected to a live: a session starts. May return a session id to show instead of the local one."""

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        """A connected period ended; ``unexpected`` when nobody asked for it (a drop, not a live end)."""

    async def on_session_end(self, info: LiveInfo) -> None:
        """The session of that connected period is over, whatever the reason (post the recap)."""


def apply_web_overrides(config: Any) -> None:
    """TIKTOK_WEB_URL / TIKTOK_WEBCAST_URL from the project's config into TikTokLive's process-wide defaults.

    The library's web routes read ``WebDefaults`` at every call, so there is no per-client way to do this.
    The sign server settings are per client instead (see ``default_client_factory``).
    """
    if config is None:
        return
    from TikTokLive.client.web.web_settings import WebDefaults

    web_url = getattr(config, "tiktok_web_url", None)
    webcast_url = getattr(config, "tiktok_webcast_url", None)
    if web_url:
        WebDefaults.tiktok_app_url = web_url
    if webcast_url:
        WebDefaults.tiktok_webcast_url = webcast_url


def signer_kwargs(config: Any) -> dict[str, str]:
    """SIGN_API_URL / SIGN_API_KEY from the config as TikTokLive ``signer_kwargs`` (they win over the env)."""
    out: dict[str, str] = {}
    if config is None:
        return out
    if getattr(config, "sign_api_url", None):
        out["sign_api_base"] = config.sign_api_url
    if getattr(config, "sign_api_key", None):
        out["sign_api_key"] = config.sign_api_key
    return out


def default_client_factory(username: str, config: Any = None) -> Any:
    """A real ``TikTokLiveClient`` for ``username`` with the config's sign server settings."""
    from TikTokLive import TikTokLiveClient

    signer = signer_kwargs(config)
    return TikTokLiveClient(unique_id=username, web_kwargs={"signer_kwargs": signer} if signer else None)


def describe(exc: BaseException | None) -> str:
    """A short, single-line description of an error for status displays (type and message, truncated)."""
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


async def _settle(task: asyncio.Future[Any]) -> None:
    """Wait for a task to finish without raising its outcome (the caller reads it from the task)."""
    if not task.done():
        await asyncio.wait({task})


class LiveConnectionManager:
    """One guild's TikTok LIVE connection, owned by one background task.

    Delays are constructor parameters so tests can scale the cadence down; ``clock`` and ``sleep`` are
    injectable for the same reason. ``client_factory(username)`` builds the TikTokLive client (one per
    ``connect``, reused across reconnects, as the library allows).
    """

    def __init__(
        self,
        guild_id: int,
        listener: LiveListener,
        *,
        config: Any = None,
        client_factory: Callable[[str], Any] | None = None,
        short_delay: float = 10.0,
        long_delay: float = 30.0,
        short_attempts: int = 3,
        streak_timeout: float = DEFAULT_STREAK_TIMEOUT,
        flush_interval: float = 1.0,
        backlog_tolerance: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.guild_id = guild_id
        self.listener = listener
        self.config = config
        self.client_factory = client_factory or functools.partial(default_client_factory, config=config)
        self.short_delay = short_delay
        self.long_delay = long_delay
        self.short_attempts = short_attempts
        self.streak_timeout = streak_timeout
        self.flush_interval = flush_interval
        # None: keep the backlog a connection delivers (the replay filter still drops repeats by message id).
        # A number: also drop messages created more than that many seconds before the connection started.
        self.backlog_tolerance = backlog_tolerance
        self.clock = clock
        self.sleep = sleep
        self.state = ConnectionState.IDLE
        self.username: str | None = None
        self.room_id: int | None = None
        self.persistent = False
        self.attempts = 0
        self.started_at: float | None = None
        self.connected_since: float | None = None
        self.next_attempt_at: float | None = None
        self.session_id: Any = None
        self.last_error: str | None = None
        self.adapter = EventAdapter(streak_timeout=streak_timeout, clock=clock)
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lib_task: asyncio.Future[Any] | None = None
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        self._first_outcome: asyncio.Future[str | None] | None = None
        self._session_open = False
        self._pending: list[EngagementEvent] = []
        self._live_ended = False
        self._finishing = False

    # ------------------------------------------------------------------ public API

    def status(self) -> StatusSnapshot:
        """A snapshot for status displays (plain attribute reads: cheap and safe from another thread)."""
        return StatusSnapshot(self.state, self.username, self.room_id, self.connected_since, self.attempts,
                              self.persistent, self.started_at, self.last_error, self.session_id,
                              self.next_attempt_at)  # fmt: skip

    @property
    def running(self) -> bool:
        """True while the background task exists (connecting, waiting, connected)."""
        return self._task is not None and not self._task.done()

    async def connect(self, username: str, *, persistent: bool = True) -> StatusSnapshot:
        """Connect to ``username``'s live in the background and return the first status snapshot.

        Raises ``ValidationError`` for an empty handle and ``NotFoundError`` when TikTok does not know the
        user (nothing keeps running). Not persistent: ``NotConnectedError`` when the host is offline or the
        first attempt fails (this call then waits for that attempt). Persistent: returns at once and keeps
        retrying (10 s x3, then 30 s) and reconnecting after drops until ``disconnect()``.
        """
        handle = normalize(username)
        if not handle:
            raise ValidationError("Give the TikTok handle of the streamer, like @name.")
        await self.disconnect()
        apply_web_overrides(self.config)
        self.username, self.persistent = handle, persistent
        self.attempts, self.started_at, self.last_error = 0, self.clock(), None
        self.room_id = self.connected_since = self.next_attempt_at = self.session_id = None
        self._stop = asyncio.Event()
        self.adapter = EventAdapter(streak_timeout=self.streak_timeout, clock=self.clock)
        self._set_state(ConnectionState.CONNECTING)
        client = self._client = self._new_client(handle)
        try:
            live = await self._check_live(client)
        except NotFoundError:
            await self._abandon()
            raise
        except asyncio.CancelledError:
            await self._abandon()
            raise
        except Exception as exc:
            # TikTok unreachable or answering oddly: a reason to retry when persistent, not to give up.
            self.last_error = describe(exc)
            log.warning("liveness check for @%s failed: %s", handle, self.last_error)
            if not persistent:
                await self._abandon()
                raise NotConnectedError(f"Could not check whether @{handle} is live ({self.last_error}).") from exc
            live = False
        if not live and not persistent:
            await self._abandon()
            raise NotConnectedError(f"@{handle} is not live right now. Use persistent=True to wait for the live.")
        first = self._first_outcome = None if persistent else asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(client, live), name=f"tiktok-live-{self.guild_id}")
        self._task.add_done_callback(self._task_done)
        if first is not None:
            error = await first
            if error is not None:
                await _settle(self._task)  # not persistent: the task is winding down; report once it is IDLE
                raise NotConnectedError(f"Could not connect to @{handle}'s live: {error}")
        return self.status()

    async def disconnect(self) -> None:
        """User-initiated: end the connection or cancel the attempts. Sends no unexpected-disconnect alert.

        A connected period still ends its session (``on_disconnected(unexpected=False)``, then
        ``on_session_end``). Returns once everything is closed and the state is IDLE.
        """
        task = self._task
        if task is None or task.done():
            self._task = None
            return
        self._stop.set()
        if not self._finishing:
            self._set_state(ConnectionState.DISCONNECTING)
            if self._lib_task is None:
                # Sleeping, checking liveness or signing: no socket to close gracefully, and cancelling
                # ``client.start()`` before it spawned the socket task leaves nothing behind.
                task.cancel()
        # Otherwise the owning task sees the stop request and closes the socket itself (or is already
        # cleaning up, which must not be interrupted).
        await _settle(task)
        self._task = None
        if self.state is not ConnectionState.IDLE:
            self._set_state(ConnectionState.IDLE)

    async def close(self) -> None:
        """Disconnect (the manager can be reused with ``connect`` afterwards)."""
        await self.disconnect()

    # ------------------------------------------------------------------ the owning task

    async def _run(self, client: Any, live: bool) -> None:
        wait: float | None = None  # the next pause; None means the retry cadence
        first = True
        self._finishing = False
        try:
            while not self._stop.is_set():
                if not first:
                    await self._wait_retry(wait)
                    wait = None
                    live = await self._check_live_safely(client)
                first = False
                if not live:
                    continue
                task, wait = await self._attempt(client)
                if task is None:
                    if not self.persistent:
                        break
                    continue
                await self._supervise(client, task)
                if self._stop.is_set() or not self.persistent:
                    break
                self.attempts = 0  # a new cadence after a session: short delays first
        finally:
            await self._cleanup(client)

    async def _wait_retry(self, wait: float | None) -> None:
        self.attempts += 1
        if wait is None:
            wait = self.short_delay if self.attempts <= self.short_attempts else self.long_delay
        self.next_attempt_at = self.clock() + wait
        self._set_state(ConnectionState.WAITING_TO_RETRY, force=True)  # force: the attempt count changed
        try:
            await self.sleep(wait)
        finally:
            self.next_attempt_at = None

    async def _check_live(self, client: Any) -> bool:
        """One web call: room id and live status (no sign-server request). NotFoundError for unknown users."""
        from TikTokLive.client.errors import UserNotFoundError
        from TikTokLive.client.web.routes.fetch_room_id_api import FetchRoomIdAPIRoute

        try:
            data = await FetchRoomIdAPIRoute.fetch_user_room_data(web=client.web, unique_id=self.username)
        except UserNotFoundError:
            raise NotFoundError(f"TikTok user @{self.username} was not found.") from None
        body = data.get("data") if isinstance(data, dict) else None
        body = body if isinstance(body, dict) else {}
        room = (body.get("user") or {}).get("roomId")
        status = (body.get("liveRoom") or {}).get("status")
        try:
            self.room_id = int(room) if room else None
        except (TypeError, ValueError):
            self.room_id = None
        # A missing status with a room id counts as live: the signed attempt will tell for sure.
        return bool(self.room_id) and (status is None or int(status) == LIVE_STATUS)

    async def _check_live_safely(self, client: Any) -> bool:
        try:
            return await self._check_live(client)
        except NotFoundError as exc:
            self.last_error = exc.message  # renamed or banned meanwhile: keep trying, the status shows why
        except Exception as exc:
            self.last_error = describe(exc)
            log.warning("liveness check for @%s failed: %s", self.username, self.last_error)
        return False

    async def _attempt(self, client: Any) -> tuple[asyncio.Future[Any] | None, float | None]:
        """One signed attempt: the socket task once the room is entered, or (None, pause before the next)."""
        from TikTokLive.client.errors import SignatureRateLimitError, UserOfflineError

        self._set_state(ConnectionState.CONNECTING)
        self._connected = asyncio.Event()
        self._live_ended = False
        try:
            task = await client.start(room_id=self.room_id, fetch_live_check=False)
        except SignatureRateLimitError as exc:
            wait = self._rate_limit_wait(exc)
            return None, self._failed(f"sign server rate limit, retrying in {wait:.1f} s", exc, wait)
        except TypeError as exc:
            # 7.0.1 turns a 429 without RateLimit headers into a TypeError inside the error's constructor.
            return None, self._failed("sign server refused the request (rate limited)", exc, self.long_delay)
        except UserOfflineError as exc:
            return None, self._failed("host is offline", exc, None)
        except Exception as exc:  # httpx errors are not wrapped by the library: any failure is one failed attempt
            return None, self._failed(describe(exc), exc, None)
        self._lib_task = task
        waiters = {asyncio.ensure_future(self._connected.wait()), asyncio.ensure_future(self._stop.wait())}
        try:
            await asyncio.wait({task, *waiters}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._connected.is_set():
            return task, None
        self._lib_task = None
        if not task.done():
            # Stop requested during the handshake: ``client.disconnect()`` would not close a socket that is
            # not open yet. Cancelling the socket task (not ``connect()``) is safe.
            task.cancel()
            await _settle(task)
            return None, None
        exc = None if task.cancelled() else task.exception()
        reason = describe(exc) if exc is not None else "the socket closed before the room was entered"
        return None, self._failed(reason, exc, None)

    def _failed(self, reason: str, exc: BaseException | None, wait: float | None) -> float | None:
        self.last_error = reason
        log.warning("TikTok connection attempt to @%s failed: %s", self.username, reason)
        if exc is not None:
            log.debug("TikTok connection attempt failure details", exc_info=exc)
        self._resolve_first(reason)
        return wait

    def _rate_limit_wait(self, exc: BaseException) -> float:
        """Seconds until the sign server's reset time; the long delay when it is missing or garbage."""
        try:
            reset = float(exc.reset_time)  # type: ignore[attr-defined]
        except (AttributeError, KeyError, TypeError, ValueError, AssertionError, OverflowError):
            return self.long_delay
        if reset != reset or reset <= 0:  # NaN or nonsense
            return self.long_delay
        # RateLimit-Reset is a unix timestamp in 7.0.1; small values are read as "seconds from now".
        wait = reset - self.clock() if reset > 1e9 else reset
        # At least the short delay: a reset already past (clock skew) must not turn into a hot loop.
        return min(max(wait, self.short_delay), MAX_RATE_LIMIT_WAIT)

    async def _supervise(self, client: Any, task: asyncio.Future[Any]) -> None:
        """One connected period = one session, from the ConnectEvent to the socket task's end."""
        self.connected_since = self.clock()
        self.session_id = uuid.uuid4().hex[:12]
        if self.backlog_tolerance is not None:
            self.adapter.set_connected_at(self.connected_since, self.backlog_tolerance)
        self._set_state(ConnectionState.CONNECTED)
        flusher: asyncio.Task[None] | None = None
        try:
            supplied = await self._call(self.listener.on_connected(self._info()))
            if supplied is not None:
                self.session_id = supplied
                self._notify()
            self._open_session()
            self._resolve_first(None)
            flusher = asyncio.create_task(self._flush_streaks(), name=f"tiktok-streaks-{self.guild_id}")
            stopper = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            if not task.done():
                await self._close_socket(client, task)
        finally:
            if flusher is not None:
                flusher.cancel()
                await _settle(flusher)
            if not task.done():  # only when this task itself is being cancelled: never leave the socket open
                await self._close_socket(client, task)
            await self._end_session(task)

    async def _close_socket(self, client: Any, task: asyncio.Future[Any]) -> None:
        try:
            await client.disconnect()  # closes the socket (1000) and awaits the socket task
        except Exception:
            log.exception("TikTokLive disconnect failed; cancelling the socket task")
            task.cancel()
        await _settle(task)

    async def _end_session(self, task: asyncio.Future[Any]) -> None:
        stopping = self._stop.is_set()
        exc = None if not task.done() or task.cancelled() else task.exception()
        if stopping:
            reason = EndReason.USER
        elif exc is not None:
            reason = EndReason.DROPPED
            self.last_error = describe(exc)
            log.warning("TikTok LIVE of @%s dropped: %s", self.username, self.last_error)
        else:
            reason = EndReason.LIVE_END if self._live_ended else EndReason.CLOSED
        self._set_state(ConnectionState.DISCONNECTING)
        self._emit(self.adapter.flush_all())  # unfinished streaks belong to this session
        duration = max(0.0, self.clock() - (self.connected_since or self.clock()))
        info = self._info(reason)
        self.connected_since = None
        await self._call(self.listener.on_disconnected(info, reason is EndReason.DROPPED, duration))
        await self._call(self.listener.on_session_end(info))
        self._session_open = False
        self._pending.clear()
        self.session_id = None
        self._lib_task = None

    async def _flush_streaks(self) -> None:
        # The real asyncio.sleep on purpose: the injected ``sleep`` paces retries, not this timer.
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                self._emit(self.adapter.flush_stale())
            except Exception:
                log.exception("committing stale gift streaks failed")

    async def _cleanup(self, client: Any) -> None:
        self._finishing = True
        lib = self._lib_task
        if lib is not None and not lib.done():
            await self._close_socket(client, lib)
        self._lib_task = None
        await self._discard_client()
        self.connected_since = self.next_attempt_at = None
        self._resolve_first(self.last_error or "stopped")
        self._set_state(ConnectionState.IDLE)

    # ------------------------------------------------------------------ plumbing

    def _new_client(self, handle: str) -> Any:
        from TikTokLive.events import ConnectEvent, LiveEndEvent

        client = self.client_factory(handle)
        # Plain functions: pyee calls them inline, no task per event.
        for cls in event_classes():
            client.add_listener(cls, self._on_library_event)
        client.add_listener(ConnectEvent, self._on_connect_event)
        client.add_listener(LiveEndEvent, self._on_live_end)
        return client

    def _on_connect_event(self, event: Any) -> None:
        self._connected.set()

    def _on_live_end(self, event: Any) -> None:
        self._live_ended = True

    def _on_library_event(self, event: Any) -> None:
        try:
            events = self.adapter.handle(event)
            if events:
                self._emit(events)
        except Exception:
            log.exception("TikTok event handling failed")

    def _emit(self, events: list[EngagementEvent]) -> None:
        if not events:
            return
        if not self._session_open:
            self._pending.extend(events)  # the session is still opening: hand them over right after
            return
        try:
            self.listener.on_events(events)
        except Exception:
            log.exception("engagement listener failed")

    def _open_session(self) -> None:
        self._session_open = True
        pending, self._pending = self._pending, []
        self._emit(pending)

    def _info(self, reason: EndReason | None = None) -> LiveInfo:
        return LiveInfo(self.guild_id, self.username or "", self.room_id, self.last_error, self.session_id,
                        self.connected_since, reason)  # fmt: skip

    async def _call(self, coro: Awaitable[Any]) -> Any:
        try:
            return await coro
        except Exception:
            log.exception("TikTok listener callback failed")
            return None

    def _set_state(self, state: ConnectionState, *, force: bool = False) -> None:
        if state is self.state and not force:
            return
        self.state = state
        self._notify()

    def _notify(self) -> None:
        try:
            self.listener.on_state(self.status())
        except Exception:
            log.exception("state listener failed")

    def _resolve_first(self, error: str | None) -> None:
        first = self._first_outcome
        if first is not None and not first.done():
            first.set_result(error)

    async def _abandon(self) -> None:
        """``connect`` gives up before any task exists: close the client and go back to IDLE."""
        await self._discard_client()
        self._set_state(ConnectionState.IDLE)

    async def _discard_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.web.close()  # never client.close(): it runs run_until_complete on a running loop
        except Exception:
            log.exception("closing the TikTok web client failed")

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("TikTok connection task crashed", exc_info=task.exception())

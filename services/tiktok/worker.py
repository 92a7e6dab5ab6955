"""The TikTok LIVE connection in a process of its own, so that a busy live never slows Discord down.

TikTokLive decodes every push frame (gzip, then protobuf in pure Python) on the event loop that runs it.
On discord.py's loop, a 2,000 events/s live more than doubled the p99 time to acknowledge an interaction
(``python -m bench --only discord_load``), and a thread of its own made it worse, because the decoding holds
the GIL. So each guild's ``LiveConnectionManager`` runs, unchanged, in a child process
(``python -m services.tiktok.worker``), and ``LiveWorker`` stands in for it inside the bot with the same
surface: ``connect``, ``disconnect``, ``close``, ``status``, ``running``.

The protocol is length-prefixed pickle frames on the child's stdin and stdout; the child points its own
file descriptor 1 at stderr, so nothing a library prints can corrupt a frame. Frames are unpickled with an
allowlist of the project's plain types, never arbitrary classes.

* bot -> child: ``("init", WorkerSettings)``, ``("connect", id, handle, persistent)``, ``("disconnect", id)``,
  ``("reply", id, value)``.
* child -> bot: ``("events", [EngagementEvent fields as tuples])`` batched every ``EVENT_BATCH_SECONDS``; ``("state",
  StatusSnapshot)``; ``("call", id, name, args)``, a listener coroutine the child waits for
  (``on_connected``, ``on_disconnected``, ``on_session_end``); ``("result", id, error)`` for a command;
  ``("log", level, logger, text)``, so the bot's handlers (file, redaction) see the child's log.

Order is what the manager guarantees in one process: the child sends buffered events before any other
frame, and the bot handles frames one at a time, awaiting a listener call before it reads the next.

The child exits when its stdin closes (the bot stopped, or was killed), after disconnecting. If the child
dies, the bot ends an open session as an unexpected drop and, when the connection was persistent, starts a
new child and connects again.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import operator
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypedDict, Unpack, cast

from errors import BotError, NotConnectedError, NotFoundError, ValidationError
from models import EngagementEvent
from services.tiktok.live import (
    ConnectionState,
    EndReason,
    LiveInfo,
    LiveListener,
    SessionId,
    StatusSnapshot,
    TikTokSettings,
)

log = logging.getLogger(__name__)

EVENT_BATCH_SECONDS = 0.1
"""How long the child gathers events before sending them (one frame per batch, not per event)."""

MAX_FRAME = 64 * 1024 * 1024
"""A frame longer than this is a broken stream, not a message."""

NICENESS = 5
"""The child's CPU priority below the bot's: when both want the CPU, a Discord interaction goes first and
the live's events wait in their buffer a few milliseconds longer (on a 2-core machine, with the library's
decoding at ~40% of a core for 2,000 events/s)."""

STOP_TIMEOUT = 10.0
"""Seconds the child gets to disconnect and exit after its stdin closes, before it is killed."""

Frame = tuple[Any, ...]
"""One protocol frame, kind first. It comes out of pickle, so its fields are untyped until a handler reads them."""

_HEADER = struct.Struct("!I")
_ROW = operator.attrgetter(*(item.name for item in fields(EngagementEvent)))
"""An event as the tuple of its fields, in ``EngagementEvent``'s argument order."""
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_ERRORS: dict[str, type[BotError]] = {cls.__name__: cls for cls in (ValidationError, NotFoundError, NotConnectedError)}
_SECRETS = frozenset({"DISCORD_TOKEN", "DISCORD_BOT_TOKEN"})
_CALLS = frozenset({"on_connected", "on_disconnected", "on_session_end"})
_ALLOWED = {
    ("models", "EventKind"),
    ("services.tiktok.live", "StatusSnapshot"),
    ("services.tiktok.live", "ConnectionState"),
    ("services.tiktok.live", "LiveInfo"),
    ("services.tiktok.live", "EndReason"),
    ("services.tiktok.worker", "WorkerSettings"),
}


class ManagerOptions(TypedDict, total=False):
    """``LiveConnectionManager`` keyword options the child gets (tests scale the cadence down with them)."""

    short_delay: float
    long_delay: float
    short_attempts: int
    streak_timeout: float
    flush_interval: float
    backlog_tolerance: float | None


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What the child needs: the guild, TikTok endpoints and sign key, log level, manager options.

    Sent as the first frame, never on the command line, where any local user could read the sign key.
    """

    guild_id: int
    sign_api_url: str | None = None
    sign_api_key: str | None = None
    tiktok_web_url: str | None = None
    tiktok_webcast_url: str | None = None
    log_level: int = logging.INFO
    manager_options: ManagerOptions = field(default_factory=ManagerOptions)

    @classmethod
    def from_config(
        cls, guild_id: int, config: TikTokSettings | None, **manager_options: Unpack[ManagerOptions]
    ) -> WorkerSettings:
        """Read the TikTok settings of the bot's ``Config`` (any object with those attributes, or None)."""
        return cls(
            guild_id=guild_id,
            sign_api_url=getattr(config, "sign_api_url", None),
            sign_api_key=getattr(config, "sign_api_key", None),
            tiktok_web_url=getattr(config, "tiktok_web_url", None),
            tiktok_webcast_url=getattr(config, "tiktok_webcast_url", None),
            log_level=logging.getLogger().getEffectiveLevel(),
            manager_options=manager_options,
        )


class _Unpickler(pickle.Unpickler):
    """Only builtins and the project's plain protocol types: a frame can never name another class."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a worker frame")


class Channel:
    """Length-prefixed pickle frames over a pair of asyncio streams (one end of the protocol)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._events: list[EngagementEvent] = []
        self._flush_handle: asyncio.TimerHandle | None = None

    def send(self, message: Frame) -> None:
        """Write one frame (buffered events go first, so nothing overtakes them)."""
        if self._events:
            self._flush_events()
        self._write(message)

    def send_events(self, events: list[EngagementEvent]) -> None:
        """Queue events for the next batch frame."""
        self._events.extend(events)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(EVENT_BATCH_SECONDS, self._flush_events)

    def _flush_events(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        events, self._events = self._events, []
        if events:
            # Plain tuples: unpickling frozen dataclasses costs the bot's loop 3x more (7.9 vs 2.4 ms per 2,000).
            self._write(("events", [_ROW(event) for event in events]))

    def _write(self, message: Frame) -> None:
        if self.writer.is_closing():
            return  # the other end is gone; the reader side notices and cleans up
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_HEADER.pack(len(data)) + data)

    async def receive(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        try:
            (length,) = _HEADER.unpack(await self.reader.readexactly(_HEADER.size))
            if length > MAX_FRAME:
                raise pickle.UnpicklingError(f"frame of {length} bytes")
            data = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        message = _Unpickler(io.BytesIO(data)).load()
        if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
            raise pickle.UnpicklingError("a frame must be a tuple that starts with its kind")
        return message

    def close(self) -> None:
        """Send what is buffered and close the writing side."""
        if self._events:
            self._flush_events()
        if not self.writer.is_closing():
            self.writer.close()


def _child_env() -> dict[str, str]:
    """The bot's environment without the Discord token: the child never talks to Discord."""
    return {key: value for key, value in os.environ.items() if key not in _SECRETS}


def _error(reply: tuple[str, str]) -> BotError:
    name, message = reply
    return _ERRORS.get(name, NotConnectedError)(message)


# ---------------------------------------------------------------------------------------------- bot side


class LiveWorker:
    """The bot's side of one guild's TikTok connection process; the same surface as the manager it runs.

    The child starts at the first ``connect`` and stays for the next ones (starting Python and importing
    TikTokLive takes about a second); ``close`` stops it. ``status()`` is the last snapshot the child sent.
    """

    def __init__(
        self,
        guild_id: int,
        listener: LiveListener,
        *,
        config: TikTokSettings | None = None,
        restart_delay: float = 5.0,
        manager_options: ManagerOptions | None = None,
    ) -> None:
        self.guild_id = guild_id
        self.listener = listener
        self.config = config
        self.restart_delay = restart_delay
        self.manager_options: ManagerOptions = manager_options or {}
        self._snapshot = StatusSnapshot(ConnectionState.IDLE, None, None, None, 0, False, None, None)
        self._process: asyncio.subprocess.Process | None = None
        self._channel: Channel | None = None
        self._reader: asyncio.Task[None] | None = None
        self._results: dict[int, asyncio.Future[tuple[str, str] | None]] = {}
        self._ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self._session: LiveInfo | None = None  # the session the child opened and has not ended
        self._wanted: tuple[str, bool] | None = None  # a persistent connection to restore after a crash
        self._restart: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.returncode is None else None

    def status(self) -> StatusSnapshot:
        """The latest state the child reported."""
        return self._snapshot

    @property
    def running(self) -> bool:
        """True while connecting, waiting to retry or connected."""
        return self._snapshot.state is not ConnectionState.IDLE

    async def connect(self, username: str, *, persistent: bool = True) -> StatusSnapshot:
        """Connect in the child (see ``LiveConnectionManager.connect``: same errors, same waiting)."""
        self._closing = False
        self._wanted = (username, True) if persistent else None
        try:
            await self._request("connect", username, persistent)
        except BotError:
            self._wanted = None
            raise
        return self._snapshot

    async def disconnect(self) -> None:
        """End the connection or the attempts (no alert); returns once the child is idle."""
        self._wanted = None
        self._cancel_restart()
        if self._channel is None:
            return
        try:
            await self._request("disconnect")
        except NotConnectedError:
            log.info("the TikTok process of guild %s was gone before the disconnect", self.guild_id)

    async def close(self) -> None:
        """Disconnect and stop the child process."""
        await self.disconnect()
        self._closing = True
        process, channel, reader = self._process, self._channel, self._reader
        if process is None or channel is None:
            return
        channel.close()  # stdin EOF: the child disconnects (already idle) and exits
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("the TikTok process of guild %s did not exit in time; killing it", self.guild_id)
            process.kill()
        if reader is not None:
            await asyncio.wait({reader})

    # ------------------------------------------------------------------ plumbing

    async def _request(self, kind: str, *args: object) -> None:
        channel = await self._start()
        request_id = next(self._ids)
        future: asyncio.Future[tuple[str, str] | None] = asyncio.get_running_loop().create_future()
        self._results[request_id] = future
        try:
            channel.send((kind, request_id, *args))
            error = await future
        finally:
            self._results.pop(request_id, None)
        if error is not None:
            raise _error(error)

    async def _start(self) -> Channel:
        async with self._start_lock:
            if self._channel is not None:
                return self._channel
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.tiktok.worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=_PROJECT_ROOT, env=_child_env(),
            )  # fmt: skip
            assert process.stdin is not None and process.stdout is not None
            channel = Channel(process.stdout, process.stdin)
            channel.send(("init", WorkerSettings.from_config(self.guild_id, self.config, **self.manager_options)))
            self._process, self._channel = process, channel
            self._reader = asyncio.create_task(self._read(process, channel), name=f"tiktok-worker-{self.guild_id}")
            log.info("TikTok process %s started for guild %s", process.pid, self.guild_id)
            return channel

    async def _read(self, process: asyncio.subprocess.Process, channel: Channel) -> None:
        try:
            while (message := await channel.receive()) is not None:
                await self._handle(channel, message)
        except Exception:
            log.exception("the TikTok process of guild %s sent a broken frame; stopping it", self.guild_id)
            process.kill()
        finally:
            channel.close()
            code = await process.wait()
            await self._lost(code)

    async def _handle(self, channel: Channel, message: Frame) -> None:
        kind = message[0]
        if kind == "events":
            try:
                self.listener.on_events([EngagementEvent(*row) for row in message[1]])
            except Exception:
                log.exception("engagement listener failed")
        elif kind == "state":
            self._snapshot = message[1]
            self._notify()
        elif kind == "call":
            _, call_id, name, args = message
            channel.send(("reply", call_id, await self._call(name, args)))
        elif kind == "result":
            future = self._results.get(message[1])
            if future is not None and not future.done():
                future.set_result(message[2])
        elif kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        else:
            raise ValueError(f"unknown frame kind {kind!r}")

    async def _call(self, name: str, args: Frame) -> object:
        if name not in _CALLS:
            raise ValueError(f"unknown listener call {name!r}")
        if name == "on_connected":
            self._session = args[0]
        elif name == "on_session_end":
            self._session = None
        try:
            return await getattr(self.listener, name)(*args)
        except Exception:
            log.exception("TikTok listener callback %s failed", name)
            return None

    def _notify(self) -> None:
        try:
            self.listener.on_state(self._snapshot)
        except Exception:
            log.exception("state listener failed")

    async def _lost(self, code: int) -> None:
        """The child exited: fail the waiting requests, end an open session, restart a persistent one."""
        self._process = self._channel = self._reader = None
        for future in self._results.values():
            if not future.done():
                future.set_result(("NotConnectedError", "The TikTok connection process stopped."))
        if self._closing:
            return
        reason = f"the TikTok connection process stopped (exit code {code})"
        log.error("%s for guild %s", reason, self.guild_id)
        session, self._session = self._session, None
        now = time.time()
        self._snapshot = replace(self._snapshot, state=ConnectionState.IDLE, connected_since=None,
                                 next_attempt_at=None, session_id=None, last_error=reason)  # fmt: skip
        self._notify()
        if session is not None:
            info = replace(session, last_error=reason, end_reason=EndReason.DROPPED)
            duration = max(0.0, now - (session.connected_since or now))
            await self._call("on_disconnected", (info, True, duration))
            await self._call("on_session_end", (info,))
        if self._wanted is not None:
            self._restart = asyncio.create_task(self._restore(*self._wanted), name=f"tiktok-restart-{self.guild_id}")

    async def _restore(self, username: str, persistent: bool) -> None:
        await asyncio.sleep(self.restart_delay)
        if self._wanted != (username, persistent) or self._closing:
            return
        log.info("restarting the TikTok connection to @%s for guild %s", username, self.guild_id)
        try:
            await self.connect(username, persistent=persistent)
        except Exception:
            log.exception("restarting the TikTok connection of guild %s failed", self.guild_id)

    def _cancel_restart(self) -> None:
        if self._restart is not None and self._restart is not asyncio.current_task():
            self._restart.cancel()
        self._restart = None


# ---------------------------------------------------------------------------------------------- child side


class _ForwardingListener:
    """The manager's listener inside the child: everything goes to the bot over the channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.detached = False
        self._calls: dict[int, asyncio.Future[object]] = {}
        self._ids = itertools.count(1)

    def on_events(self, events: list[EngagementEvent]) -> None:
        self.channel.send_events(events)

    def on_state(self, snapshot: StatusSnapshot) -> None:
        self.channel.send(("state", snapshot))

    async def on_connected(self, info: LiveInfo) -> SessionId | None:
        # The bot answers with what its listener's ``on_connected`` returned (a session id, or None).
        return cast("SessionId | None", await self._call("on_connected", info))

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        await self._call("on_disconnected", info, unexpected, duration)

    async def on_session_end(self, info: LiveInfo) -> None:
        await self._call("on_session_end", info)

    async def _call(self, name: str, *args: object) -> object:
        if self.detached:
            return None
        call_id = next(self._ids)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        try:
            self.channel.send(("call", call_id, name, args))
            return await future
        finally:
            self._calls.pop(call_id, None)

    def resolve(self, call_id: int, value: object) -> None:
        future = self._calls.get(call_id)
        if future is not None and not future.done():
            future.set_result(value)

    def detach(self) -> None:
        """The bot is gone: answer every waiting and future call with None."""
        self.detached = True
        for future in self._calls.values():
            if not future.done():
                future.set_result(None)


class _ForwardingHandler(logging.Handler):
    """Log records of the child become ``log`` frames; the bot's own handlers format and store them."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel
        self.formatter = self._tracebacks = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text = f"{text}\n{self._tracebacks.formatException(record.exc_info)}"
            self.channel.send(("log", record.levelno, record.name, text))
        except Exception:
            self.handleError(record)


async def _command(channel: Channel, request_id: int, operation: Awaitable[object]) -> None:
    error: tuple[str, str] | None = None
    try:
        await operation
    except BotError as exc:
        error = (type(exc).__name__, exc.message)
    except Exception as exc:
        log.exception("TikTok command failed in the worker")
        error = ("NotConnectedError", f"The TikTok connection failed: {type(exc).__name__}.")
    channel.send(("result", request_id, error))


async def _open_stdio() -> Channel:
    loop = asyncio.get_running_loop()
    protocol_out = os.dup(1)
    os.dup2(2, 1)  # from now on, anything printed goes to stderr, never into a frame
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(protocol_out, "wb", 0)
    )
    return Channel(reader, asyncio.StreamWriter(transport, protocol, None, loop))


async def child_main() -> None:
    """The child process: run one guild's ``LiveConnectionManager`` until stdin closes."""
    from services.tiktok.adapter import warm_event_classes
    from services.tiktok.live import LiveConnectionManager

    os.nice(NICENESS)
    channel = await _open_stdio()
    init = await channel.receive()
    if init is None or init[0] != "init" or not isinstance(init[1], WorkerSettings):
        raise SystemExit("the first frame must be the worker settings")
    settings: WorkerSettings = init[1]
    root = logging.getLogger()
    root.handlers[:] = [_ForwardingHandler(channel)]
    root.setLevel(settings.log_level)
    warm_event_classes()
    listener = _ForwardingListener(channel)
    manager = LiveConnectionManager(settings.guild_id, listener, config=settings, **settings.manager_options)
    commands: set[asyncio.Task[None]] = set()
    while (message := await channel.receive()) is not None:
        kind = message[0]
        if kind == "reply":
            listener.resolve(message[1], message[2])
            continue
        if kind == "connect":
            operation: Awaitable[object] = manager.connect(message[2], persistent=message[3])
        elif kind == "disconnect":
            operation = manager.disconnect()
        else:
            log.error("unknown command %r from the bot", kind)
            continue
        task = asyncio.create_task(_command(channel, message[1], operation))
        commands.add(task)
        task.add_done_callback(commands.discard)
    listener.detach()
    await manager.disconnect()
    for task in list(commands):
        task.cancel()
    channel.close()


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group: the bot decides when this process ends (by
    # closing its stdin), so that a live is always disconnected and its session closed in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Run the imported module's copy, so that the classes frames name are the ones isinstance checks use.
    from services.tiktok.worker import child_main as main

    asyncio.run(main())

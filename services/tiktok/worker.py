"""TikTok LIVE connections in a small pool of processes, so that busy lives never slow Discord down.

TikTokLive decodes every push frame (gzip, then protobuf in pure Python) on the event loop that runs it.
On discord.py's loop, a 2,000 events/s live more than doubled the p99 time to acknowledge an interaction
(``python -m bench --only discord_load``), and a thread of its own made it worse, because the decoding holds
the GIL. So the guilds' ``LiveConnectionManager``s run, unchanged, in child processes
(``python -m services.tiktok.worker``). One child hosts many guilds' lives: a process costs ~70 MB before
its first live (Python, TikTokLive, pydantic), a live in it only its client and socket
(``python -m bench --only live_pool``). ``LiveWorkerPool`` keeps ``TIKTOK_WORKERS`` children (default: the
number of cores), started lazily, and puts each new live on the child with the fewest lives.

Inside the bot each guild sees a ``PooledLive`` with the manager's surface (``connect``, ``disconnect``,
``close``, ``status``, ``running``); ``LiveWorker`` is the same with a child of its own.

The protocol is length-prefixed pickle frames on the child's stdin and stdout; the child points its own
file descriptor 1 at stderr, so nothing a library prints can corrupt a frame. Frames are unpickled with an
allowlist of the project's plain types, never arbitrary classes.

* bot -> child: ``("init", WorkerSettings)``, ``("connect", guild, id, handle, persistent)``,
  ``("disconnect", guild, id)``, ``("release", guild)`` (drop an idle manager), ``("reply", id, value)``.
* child -> bot: ``("events", [(guild, [EngagementEvent fields as tuples]), ...])`` batched every
  ``EVENT_BATCH_SECONDS`` or every ``EVENT_BATCH_ROWS`` events, whichever comes first;
  ``("state", guild, StatusSnapshot)``; ``("call", guild, id, name, args)``, a
  listener coroutine the child waits for (``on_connected``, ``on_disconnected``, ``on_session_end``);
  ``("result", guild, id, error)`` for a command; ``("log", level, logger, text)``, so the bot's handlers
  (file, redaction) see the child's log.

Order is what the manager guarantees in one process, per guild: the child sends buffered events before any
other frame, and the bot hands each guild's frames to it one at a time, awaiting a listener call before the
next frame of that guild. Guilds do not wait for each other: a slow ``on_connected`` (a Discord post under
a rate limit) holds back only its own guild's frames.

A child exits when its stdin closes (the bot stopped, or was killed), after disconnecting its lives. If a
child dies, the bot ends the open sessions of that child's lives (only those) as unexpected drops and
connects the persistent ones again, on the least-loaded child (a new one in the dead one's place).
"""

from __future__ import annotations

import asyncio
import collections
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
from collections.abc import Awaitable, Callable
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
"""How long the child gathers events before sending them (one frame per batch for all its lives)."""

EVENT_BATCH_ROWS = 100
"""A batch frame is sent as soon as it holds this many events, whatever its age. The bot handles a frame in
one step of its event loop (~7 us an event), and lives that push at the same moment would otherwise make one
frame of many hundreds: 3-4 ms in which no interaction is answered (``bench.live_pool``)."""

MAX_FRAME = 64 * 1024 * 1024
"""A frame longer than this is a broken stream, not a message."""

NICENESS = 5
"""The child's CPU priority below the bot's: when both want the CPU, a Discord interaction goes first and
the live's events wait in their buffer a few milliseconds longer (on a 2-core machine the library's decoding
alone is ~40% of a core for 2,000 events/s; the whole child took 85-95% of one in ``bench.queue_burst``).
19 gave 1.31x against 1.63x there (one quiet run each) but left the child behind other work on the host
(``bench.live_throughput``: 75% of the library-only rate), so it stays at 5. Linux's idle class (SCHED_IDLE)
cut ``bench.live_pool``'s loaded p99 by ~1.9 ms more (7.8 vs 9.7 ms, medians of 8 and 9 runs) but gives
the child only what nobody else on the host wants: on a streamer's PC busy with OBS a live would fall
behind and drop, and the events of a dropped live are lost."""

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


def default_pool_size() -> int:
    """One connection process per core (decoding is CPU-bound; more processes only cost memory)."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What a child needs: TikTok endpoints and sign key, log level, manager options (for all its lives).

    Sent as the first frame, never on the command line, where any local user could read the sign key.
    """

    guild_id: int | None = None
    sign_api_url: str | None = None
    sign_api_key: str | None = None
    tiktok_web_url: str | None = None
    tiktok_webcast_url: str | None = None
    log_level: int = logging.INFO
    manager_options: ManagerOptions = field(default_factory=ManagerOptions)

    @classmethod
    def from_config(
        cls, guild_id: int | None, config: TikTokSettings | None, **manager_options: Unpack[ManagerOptions]
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
        self._events: dict[int, list[Frame]] = {}
        self._rows = 0  # events in ``_events``
        self._flush_handle: asyncio.TimerHandle | None = None

    def send(self, message: Frame) -> None:
        """Write one frame (buffered events go first, so nothing overtakes them)."""
        if self._events:
            self._flush_events()
        self._write(message)

    def send_events(self, guild_id: int, events: list[EngagementEvent]) -> None:
        """Queue one guild's events for the next batch frame."""
        # Plain tuples: unpickling frozen dataclasses costs the bot's loop 3x more (7.9 vs 2.4 ms per 2,000).
        rows = self._events.get(guild_id)
        if rows is None:
            rows = self._events[guild_id] = []
        rows.extend(_ROW(event) for event in events)
        self._rows += len(events)
        if self._rows >= EVENT_BATCH_ROWS:
            self._flush_events()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(EVENT_BATCH_SECONDS, self._flush_events)

    def _flush_events(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batches, self._events, self._rows = self._events, {}, 0
        if batches:
            self._write(("events", list(batches.items())))

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


class _Process:
    """The bot's side of one connection process: its pipe, its reader, and the lives it hosts.

    The child starts at the first request and stays (starting Python and importing TikTokLive takes about a
    second); ``close`` stops it. After a crash the same slot starts a new child at the next request.
    """

    def __init__(self, settings: Callable[[], WorkerSettings], name: str) -> None:
        self.settings = settings
        self.name = name
        self.lives: dict[int, PooledLive] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._channel: Channel | None = None
        self._reader: asyncio.Task[None] | None = None
        self._results: dict[int, asyncio.Future[tuple[str, str] | None]] = {}
        self._ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.returncode is None else None

    @property
    def load(self) -> int:
        """Lives assigned to this process."""
        return len(self.lives)

    async def request(self, guild_id: int, kind: str, *args: object) -> None:
        """Send a command for one guild's manager and wait for its result (raises the child's error)."""
        channel = await self.start()
        request_id = next(self._ids)
        future: asyncio.Future[tuple[str, str] | None] = asyncio.get_running_loop().create_future()
        self._results[request_id] = future
        try:
            channel.send((kind, guild_id, request_id, *args))
            error = await future
        finally:
            self._results.pop(request_id, None)
        if error is not None:
            raise _error(error)

    def send(self, message: Frame) -> None:
        """A frame without an answer (``release``); dropped when no child runs."""
        if self._channel is not None:
            self._channel.send(message)

    def resolve(self, request_id: int, error: tuple[str, str] | None) -> None:
        """A command's result arrived (in its guild's order)."""
        future = self._results.get(request_id)
        if future is not None and not future.done():
            future.set_result(error)

    async def start(self) -> Channel:
        """The running child's channel; starts the child when there is none."""
        async with self._start_lock:
            if self._channel is not None:
                return self._channel
            self._closing = False
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.tiktok.worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=_PROJECT_ROOT, env=_child_env(),
            )  # fmt: skip
            assert process.stdin is not None and process.stdout is not None
            channel = Channel(process.stdout, process.stdin)
            channel.send(("init", self.settings()))
            self._process, self._channel = process, channel
            self._reader = asyncio.create_task(self._read(process, channel), name=self.name)
            log.info("TikTok process %s started (%s)", process.pid, self.name)
            return channel

    async def close(self) -> None:
        """Stop the child: stdin EOF, it disconnects what is left and exits (killed after ``STOP_TIMEOUT``)."""
        self._closing = True
        process, channel, reader = self._process, self._channel, self._reader
        if process is None or channel is None:
            return
        channel.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("the TikTok process %s (%s) did not exit in time; killing it", process.pid, self.name)
            process.kill()
        if reader is not None:
            await asyncio.wait({reader})

    async def _read(self, process: asyncio.subprocess.Process, channel: Channel) -> None:
        try:
            while (message := await channel.receive()) is not None:
                self._dispatch(channel, message)
        except Exception:
            log.exception("the TikTok process %s sent a broken frame; stopping it", process.pid)
            process.kill()
        finally:
            channel.close()
            code = await process.wait()
            self._lost(code)

    def _dispatch(self, channel: Channel, message: Frame) -> None:
        """Hand a frame to its guild (never awaits: one guild's slow listener must not hold up the others)."""
        kind = message[0]
        if kind == "events":
            for guild_id, rows in message[1]:
                live = self.lives.get(guild_id)
                if live is not None:
                    live._deliver(("events", rows), self, channel)
        elif kind in ("state", "call", "result"):
            live = self.lives.get(message[1])
            if live is not None:
                live._deliver((kind, *message[2:]), self, channel)
            elif kind == "result":
                self.resolve(message[2], message[3])
            elif kind == "call":
                channel.send(("reply", message[2], None))  # a released guild: nobody to ask
        elif kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        else:
            raise ValueError(f"unknown frame kind {kind!r}")

    def _lost(self, code: int) -> None:
        """The child exited: fail the waiting requests; its lives (only those) end as drops."""
        self._process = self._channel = self._reader = None
        lives, self.lives = self.lives, {}
        for future in self._results.values():
            if not future.done():
                future.set_result(("NotConnectedError", "The TikTok connection process stopped."))
        if self._closing:
            return
        log.error("the TikTok connection process (%s) stopped with exit code %s; %d live(s) on it end as drops",
                  self.name, code, len(lives))  # fmt: skip
        for live in lives.values():
            live._lost_process(self, code)


class PooledLive:
    """One guild's TikTok connection, run by a manager in a pool process; the manager's own surface.

    ``status()`` is the last snapshot the child sent. The live is placed on the least-loaded process at
    ``connect`` and leaves it at ``disconnect`` (so load counts lives, not guilds that once had one).
    """

    def __init__(
        self,
        guild_id: int,
        listener: LiveListener,
        assign: Callable[[], _Process],
        *,
        restart_delay: float = 5.0,
    ) -> None:
        self.guild_id = guild_id
        self.listener = listener
        self.restart_delay = restart_delay
        self._assign = assign
        self._process: _Process | None = None
        self._snapshot = StatusSnapshot(ConnectionState.IDLE, None, None, None, 0, False, None, None)
        self._lock = asyncio.Lock()  # one command at a time per guild (connect, disconnect, release)
        self._inbox: collections.deque[tuple[Frame, _Process, Channel | None]] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None
        self._session: LiveInfo | None = None  # the session the child opened and has not ended
        self._wanted: tuple[str, bool] | None = None  # a persistent connection to restore after a crash
        self._restart: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The process id of the child this live runs in (None when not placed)."""
        return self._process.pid if self._process is not None else None

    def status(self) -> StatusSnapshot:
        """The latest state the child reported."""
        return self._snapshot

    @property
    def running(self) -> bool:
        """True while connecting, waiting to retry or connected."""
        return self._snapshot.state is not ConnectionState.IDLE

    async def connect(self, username: str, *, persistent: bool = True) -> StatusSnapshot:
        """Connect in a child (see ``LiveConnectionManager.connect``: same errors, same waiting)."""
        self._closing = False
        self._wanted = (username, True) if persistent else None
        try:
            async with self._lock:
                process = self._place()
                try:
                    await process.request(self.guild_id, "connect", username, persistent)
                except BotError:
                    self._leave(process)  # the manager is idle again: free the slot
                    raise
        except BotError:
            self._wanted = None
            raise
        return self._snapshot

    async def disconnect(self) -> None:
        """End the connection or the attempts (no alert); returns once the child is idle."""
        self._wanted = None
        self._cancel_restart()
        async with self._lock:
            process = self._process
            if process is None:
                return
            try:
                await process.request(self.guild_id, "disconnect")
            except NotConnectedError:
                log.info("the TikTok process of guild %s was gone before the disconnect", self.guild_id)
            self._leave(process)

    async def close(self) -> None:
        """Disconnect; the process stays for the other lives (the pool stops it)."""
        await self.disconnect()
        self._closing = True

    # ------------------------------------------------------------------ plumbing

    def _place(self) -> _Process:
        if self._process is None:
            self._process = self._assign()
            self._process.lives[self.guild_id] = self
        return self._process

    def _leave(self, process: _Process) -> None:
        if process.lives.get(self.guild_id) is self:
            del process.lives[self.guild_id]
            process.send(("release", self.guild_id))
        if self._process is process:
            self._process = None

    def _deliver(self, message: Frame, process: _Process, channel: Channel | None) -> None:
        """A frame for this guild, handled in arrival order; inline unless a listener call is pending."""
        if self._drainer is None and message[0] not in ("call", "lost"):
            self._handle(message, process)
            return
        self._inbox.append((message, process, channel))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name=f"tiktok-live-{self.guild_id}")

    async def _drain(self) -> None:
        try:
            while self._inbox:
                message, process, channel = self._inbox.popleft()
                kind = message[0]
                if kind == "call":
                    _, call_id, name, args = message
                    value = await self._call(name, args)
                    if channel is not None:
                        channel.send(("reply", call_id, value))  # a closed channel (dead child) drops it
                elif kind == "lost":
                    await self._on_lost(message[1])
                else:
                    self._handle(message, process)
        finally:
            self._drainer = None

    def _handle(self, message: Frame, process: _Process) -> None:
        kind = message[0]
        if kind == "events":
            try:
                self.listener.on_events([EngagementEvent(*row) for row in message[1]])
            except Exception:
                log.exception("engagement listener failed")
        elif kind == "state":
            self._snapshot = message[1]
            self._notify()
        elif kind == "result":
            process.resolve(message[1], message[2])

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

    def _lost_process(self, process: _Process, code: int) -> None:
        if self._process is process:
            self._process = None
        self._deliver(("lost", code), process, None)  # after the frames that arrived before the crash

    async def _on_lost(self, code: int) -> None:
        """The child died: end an open session as a drop, restart a persistent connection."""
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


class LiveWorkerPool:
    """The bot's TikTok connection processes: ``size`` children (default: one per core), many lives each.

    ``connection(guild_id, listener)`` gives the guild's ``PooledLive`` (the same object on every call);
    ``close()`` disconnects every live and stops the children. A new live goes to the process with the
    fewest lives. ``config`` gives the TikTok endpoints and sign key: the bot's ``Config``, or a function
    returning the current one (read when a child starts, so a changed configuration reaches new children).
    """

    def __init__(
        self,
        config: TikTokSettings | Callable[[], TikTokSettings | None] | None = None,
        *,
        size: int | None = None,
        restart_delay: float = 5.0,
        manager_options: ManagerOptions | None = None,
    ) -> None:
        self.config = config
        self.size = size or getattr(self._config(), "tiktok_workers", 0) or default_pool_size()
        self.restart_delay = restart_delay
        self.manager_options: ManagerOptions = manager_options or {}
        self.processes = [_Process(self._settings, f"tiktok-pool-{n}") for n in range(self.size)]
        self._lives: dict[int, PooledLive] = {}

    def connection(self, guild_id: int, listener: LiveListener) -> PooledLive:
        """The guild's connection (created at the first call; ``listener`` receives its callbacks)."""
        live = self._lives.get(guild_id)
        if live is None:
            live = self._lives[guild_id] = PooledLive(guild_id, listener, self._least_loaded,
                                                      restart_delay=self.restart_delay)  # fmt: skip
        else:
            live.listener = listener
        return live

    def loads(self) -> list[tuple[int | None, int]]:
        """``(pid, lives)`` of every process slot (pid None: not started)."""
        return [(process.pid, process.load) for process in self.processes]

    async def close(self) -> None:
        """Disconnect every live (user-initiated: sessions close in order), then stop the children."""
        lives = list(self._lives.values())
        outcomes = await asyncio.gather(*(live.close() for live in lives), return_exceptions=True)
        for live, outcome in zip(lives, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.error("closing the TikTok live of guild %s failed", live.guild_id, exc_info=outcome)
        await asyncio.gather(*(process.close() for process in self.processes))

    def _config(self) -> TikTokSettings | None:
        return self.config() if callable(self.config) else self.config

    def _settings(self) -> WorkerSettings:
        return WorkerSettings.from_config(None, self._config(), **self.manager_options)

    def _least_loaded(self) -> _Process:
        # Ties go to a running child, then to the lowest slot: no new process while one has room for free.
        return min(self.processes, key=lambda p: (p.load, p.pid is None, self.processes.index(p)))


class LiveWorker(PooledLive):
    """A guild's connection with a child process of its own (the layout before the pool; benchmarks)."""

    def __init__(
        self,
        guild_id: int,
        listener: LiveListener,
        *,
        config: TikTokSettings | None = None,
        restart_delay: float = 5.0,
        manager_options: ManagerOptions | None = None,
    ) -> None:
        self.config = config
        self.manager_options: ManagerOptions = manager_options or {}
        self.own = _Process(lambda: WorkerSettings.from_config(guild_id, self.config, **self.manager_options),
                            f"tiktok-worker-{guild_id}")  # fmt: skip
        super().__init__(guild_id, listener, lambda: self.own, restart_delay=restart_delay)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (it stays between connects)."""
        return self.own.pid

    async def close(self) -> None:
        """Disconnect and stop the child process."""
        await super().close()
        await self.own.close()


# ---------------------------------------------------------------------------------------------- child side


class _Calls:
    """Listener calls the child waits on, answered by the bot's ``reply`` frames (ids unique per child)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.detached = False
        self._waiting: dict[int, asyncio.Future[object]] = {}
        self._ids = itertools.count(1)

    async def call(self, guild_id: int, name: str, *args: object) -> object:
        if self.detached:
            return None
        call_id = next(self._ids)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        try:
            self.channel.send(("call", guild_id, call_id, name, args))
            return await future
        finally:
            self._waiting.pop(call_id, None)

    def resolve(self, call_id: int, value: object) -> None:
        future = self._waiting.get(call_id)
        if future is not None and not future.done():
            future.set_result(value)

    def detach(self) -> None:
        """The bot is gone: answer every waiting and future call with None."""
        self.detached = True
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)


class _ForwardingListener:
    """One manager's listener inside the child: everything goes to the bot, tagged with the guild."""

    def __init__(self, channel: Channel, guild_id: int, calls: _Calls) -> None:
        self.channel = channel
        self.guild_id = guild_id
        self.calls = calls

    def on_events(self, events: list[EngagementEvent]) -> None:
        self.channel.send_events(self.guild_id, events)

    def on_state(self, snapshot: StatusSnapshot) -> None:
        self.channel.send(("state", self.guild_id, snapshot))

    async def on_connected(self, info: LiveInfo) -> SessionId | None:
        # The bot answers with what its listener's ``on_connected`` returned (a session id, or None).
        return cast("SessionId | None", await self.calls.call(self.guild_id, "on_connected", info))

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        await self.calls.call(self.guild_id, "on_disconnected", info, unexpected, duration)

    async def on_session_end(self, info: LiveInfo) -> None:
        await self.calls.call(self.guild_id, "on_session_end", info)


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


async def _command(channel: Channel, guild_id: int, request_id: int, operation: Awaitable[object]) -> None:
    error: tuple[str, str] | None = None
    try:
        await operation
    except BotError as exc:
        error = (type(exc).__name__, exc.message)
    except Exception as exc:
        log.exception("TikTok command failed in the worker")
        error = ("NotConnectedError", f"The TikTok connection failed: {type(exc).__name__}.")
    channel.send(("result", guild_id, request_id, error))


async def _nothing() -> None:
    return None


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
    """The child process: run the managers of the guilds the bot places here, until stdin closes."""
    from services.tiktok.adapter import reuse_proto_validators, start_parsed_messages_from_defaults, warm_event_classes
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
    reuse_proto_validators()
    start_parsed_messages_from_defaults()
    calls = _Calls(channel)
    managers: dict[int, LiveConnectionManager] = {}
    commands: set[asyncio.Task[None]] = set()

    def manager(guild_id: int) -> LiveConnectionManager:
        found = managers.get(guild_id)
        if found is None:
            found = managers[guild_id] = LiveConnectionManager(
                guild_id, _ForwardingListener(channel, guild_id, calls), config=settings, **settings.manager_options
            )
        return found

    def spawn(operation: Awaitable[object], guild_id: int, request_id: int) -> None:
        task = asyncio.create_task(_command(channel, guild_id, request_id, operation))
        commands.add(task)
        task.add_done_callback(commands.discard)

    while (message := await channel.receive()) is not None:
        kind = message[0]
        if kind == "reply":
            calls.resolve(message[1], message[2])
        elif kind == "connect":
            _, guild_id, request_id, handle, persistent = message
            spawn(manager(guild_id).connect(handle, persistent=persistent), guild_id, request_id)
        elif kind == "disconnect":
            _, guild_id, request_id = message
            found = managers.get(guild_id)
            spawn(found.disconnect() if found is not None else _nothing(), guild_id, request_id)
        elif kind == "release":
            found = managers.pop(message[1], None)
            if found is not None and found.running:  # the bot releases idle managers only; be safe anyway
                log.warning("released the TikTok manager of guild %s while it was running", message[1])
                spawn(found.disconnect(), message[1], 0)
        else:
            log.error("unknown command %r from the bot", kind)
    calls.detach()
    await asyncio.gather(*(found.disconnect() for found in managers.values()), return_exceptions=True)
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

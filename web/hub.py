"""Server-Sent Events fan-out: the change feed in, one coalesced snapshot per guild out to every open page.

A feed event marks the guild's snapshot stale and asks the per-guild ``Coalescer`` for a push: a burst of
changes becomes one snapshot, built and encoded once (also in HTTP's chunked framing, once) and written to
every connected page of that guild (200 open overlays cost one build, not 200). A gift promotion also sends
a ``gift`` notice at once. A token change re-checks every open page of the guild and ends those whose token
no longer opens it with ``revoked``.

Why the hub writes to the connections itself: with a writer task per page, every push woke 200 tasks (each
with its own ``wait_for`` timer for the keep-alive), and an interaction that arrived meanwhile waited behind
about a thousand callbacks: the acknowledgement p99 grew by half with 200 pages open (``bench/overlay.py``).
Now a push is one ``transport.write`` of the same bytes per page, in one pass, and one timer sends the
keep-alive comment to every page; a page's request handler only waits for its stream to end. A page whose
connection stops taking data is ended (it reconnects by itself and gets a fresh snapshot), so one slow
viewer can never make the bot buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from database import Database
from services.feed import ChangeFeed, FeedEvent, GiftPromoted, WebAccessChanged
from services.refresh import Coalescer

log = logging.getLogger(__name__)

PUSH_WINDOW = 0.25  # seconds: at most four snapshots a second per guild, well inside the 1 s promise
HEARTBEAT_SECONDS = 15.0  # a comment to every page: keeps proxies from closing an idle stream, finds dead pages
MAX_BUFFERED = 256 * 1024  # bytes waiting for one page before it is dropped (it reconnects and resyncs)
QUEUE_DEPTH = 32  # frames held for a page whose stream is not started yet
FANOUT_SLICE = 64  # pages written per event-loop turn: an interaction arriving meanwhile is read in between


class Frame:
    """One SSE message, and the same bytes framed as an HTTP/1.1 chunk (computed once, for every page)."""

    __slots__ = ("_chunk", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._chunk: bytes | None = None

    @property
    def chunk(self) -> bytes:
        """The size in hex, CRLF, the data, CRLF: what aiohttp would write for it on a chunked response."""
        if self._chunk is None:
            self._chunk = b"%x\r\n%b\r\n" % (len(self.raw), self.raw)
        return self._chunk


def frame(event: str, data: object) -> Frame:
    """One SSE message (JSON data on one line, so no newline inside can break the framing)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Frame(f"event: {event}\ndata: {payload}\n\n".encode())


REVOKED = Frame(b"event: revoked\ndata: {}\n\n")
PING = Frame(b": ping\n\n")


class Client:
    """One open page: frames go straight to its connection once ``attach``-ed; ``done`` is set when it ends.

    Until the handler has written the stream's headers and first snapshot, frames wait in a short list
    (they are newer than that snapshot, so they follow it); after that each frame is one write.
    """

    __slots__ = ("_chunked", "_pending", "_transport", "done", "guild_id", "kind", "token_hash")

    def __init__(self, guild_id: int, kind: str, token_hash: str) -> None:
        self.guild_id = guild_id
        self.kind = kind
        self.token_hash = token_hash
        self.done = asyncio.Event()
        self._transport: asyncio.BaseTransport | None = None
        self._chunked = False
        self._pending: list[Frame] = []

    def attach(self, transport: asyncio.BaseTransport | None, *, chunked: bool) -> None:
        """The stream has started on ``transport``: write what waited, then every frame as it comes."""
        self._transport, self._chunked = transport, chunked
        pending, self._pending = self._pending, []
        if transport is None:
            self.done.set()
            return
        for waiting in pending:
            self._write(waiting)

    def offer(self, data: Frame) -> bool:
        """Send a frame; False (and the stream is ended) when the page is gone or too far behind."""
        if self.done.is_set():
            return False
        if self._transport is None:
            if len(self._pending) >= QUEUE_DEPTH:
                self.end()
                return False
            self._pending.append(data)
            return True
        return self._write(data)

    def _write(self, data: Frame) -> bool:
        transport = self._transport
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            self.end()
            return False
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            self.end()
            return False
        transport.write(data.chunk if self._chunked else data.raw)
        return True

    def end(self, last: Frame | None = None) -> None:
        """End the stream after ``last`` (what was still waiting is dropped)."""
        if self.done.is_set():
            return
        self._pending.clear()
        if last is not None:
            if self._transport is None:
                self._pending.append(last)  # written by ``attach``, right after the first snapshot
            else:
                self._write(last)
        self.done.set()


class EventHub:
    """Keeps the open pages per guild and pushes coalesced snapshots to them."""

    def __init__(
        self,
        feed: ChangeFeed,
        build: Callable[[int], Awaitable[dict[str, object]]],
        check_token: Callable[[str, str], Awaitable[int | None]],
        db: Database,
        *,
        window: float = PUSH_WINDOW,
    ) -> None:
        self.feed = feed
        self.build = build
        self.check_token = check_token
        self.db = db
        self.coalescer: Coalescer[int] = Coalescer(self._push, window)
        self._clients: dict[int, set[Client]] = {}
        self._cached: dict[int, Frame] = {}
        self._version: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.pushes = 0

    def start(self) -> None:
        """Subscribe to the feed and start the one keep-alive timer."""
        self._unsubscribe = self.feed.subscribe(self._on_event)
        self._heartbeat = asyncio.create_task(self._beat(), name="overlay-heartbeat")

    async def close(self) -> None:
        """Unsubscribe, end every open stream and stop pending pushes."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for clients in self._clients.values():
            for client in clients:
                client.end()
        await self.coalescer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def client_count(self) -> int:
        """How many pages are connected, over all guilds."""
        return sum(len(c) for c in self._clients.values())

    def join(self, guild_id: int, kind: str, token_hash: str) -> Client:
        """Register an open page."""
        client = Client(guild_id, kind, token_hash)
        self._clients.setdefault(guild_id, set()).add(client)
        return client

    def leave(self, client: Client) -> None:
        """Forget a page whose stream ended."""
        clients = self._clients.get(client.guild_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._clients[client.guild_id]

    async def snapshot(self, guild_id: int) -> Frame:
        """The guild's current snapshot frame (cached until the next change)."""
        cached = self._cached.get(guild_id)
        if cached is not None:
            return cached
        version = self._version.get(guild_id, 0)
        data = frame("snapshot", await self.build(guild_id))
        if self._version.get(guild_id, 0) == version:
            self._cached[guild_id] = data  # nothing changed while building: safe to reuse
        return data

    # ------------------------------------------------------------------ feed side (must not block)

    def _on_event(self, event: FeedEvent) -> None:
        guild_id = event.guild_id
        if isinstance(event, WebAccessChanged):
            self._spawn(self._recheck(guild_id))
            return
        self._version[guild_id] = self._version.get(guild_id, 0) + 1
        self._cached.pop(guild_id, None)
        if guild_id not in self._clients:
            return
        self.coalescer.request(guild_id)
        if isinstance(event, GiftPromoted):
            self._spawn(self._gift(event))

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("overlay update failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, guild_id: int) -> None:
        if not self._clients.get(guild_id):
            return
        data = await self.snapshot(guild_id)
        self.pushes += 1
        await self._fan_out(guild_id, data)

    async def _fan_out(self, guild_id: int, data: Frame) -> None:
        """Write one frame to every page of the guild: one write each, the bytes encoded once."""
        for index, client in enumerate(list(self._clients.get(guild_id, ())), start=1):
            client.offer(data)
            if not index % FANOUT_SLICE:
                await asyncio.sleep(0)  # let an interaction that arrived meanwhile be read between slices

    async def _beat(self) -> None:
        """Every ``HEARTBEAT_SECONDS``: a comment to every page (ends those whose connection is gone)."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for guild_id in list(self._clients):
                await self._fan_out(guild_id, PING)

    async def _gift(self, event: GiftPromoted) -> None:
        sub = await self.db.get_submission(event.guild_id, event.public_id)
        if sub is None:
            return
        notice = frame(
            "gift",
            {"artist": sub.artist, "title": sub.title, "by": sub.user_name, "line": event.line, "coins": event.coins},
        )
        await self._fan_out(event.guild_id, notice)

    async def _recheck(self, guild_id: int) -> None:
        for client in list(self._clients.get(guild_id, ())):
            if await self.check_token(client.kind, client.token_hash) != guild_id:
                client.end(REVOKED)

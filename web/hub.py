"""Server-Sent Events fan-out: the change feed in, one coalesced snapshot per guild out to every open page.

A feed event marks the guild's snapshot stale and asks the per-guild ``Coalescer`` for a push: a burst of
changes becomes one snapshot, built once and written to every connected page of that guild (200 open
overlays cost one build, not 200). A gift promotion also sends a ``gift`` notice at once. A token change
re-checks every open page of the guild and ends those whose token no longer opens it with ``revoked``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from database import Database
from services.feed import ChangeFeed, FeedEvent, GiftPromoted, WebAccessChanged
from services.refresh import Coalescer

log = logging.getLogger(__name__)

PUSH_WINDOW = 0.25  # seconds: at most four snapshots a second per guild, well inside the 1 s promise
QUEUE_DEPTH = 32  # frames waiting for one slow page before it is dropped (it reconnects and resyncs)
FANOUT_SLICE = 16  # pages woken per event-loop turn when a snapshot goes out
REVOKED = b"event: revoked\ndata: {}\n\n"


def frame(event: str, data: object) -> bytes:
    """One SSE message (JSON data on one line, so no newline inside can break the framing)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


class Client:
    """One open page: the frames waiting to be written to it; ``None`` ends its stream."""

    __slots__ = ("guild_id", "kind", "queue", "token_hash")

    def __init__(self, guild_id: int, kind: str, token_hash: str) -> None:
        self.guild_id = guild_id
        self.kind = kind
        self.token_hash = token_hash
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_DEPTH)

    def offer(self, data: bytes | None) -> bool:
        """Queue a frame; False (and the stream is ended) when the page is too far behind."""
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.end()
            return False
        return True

    def end(self, last: bytes | None = None) -> None:
        """End the stream after ``last`` (dropping whatever was still waiting)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        if last is not None:
            self.queue.put_nowait(last)
        self.queue.put_nowait(None)


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
        self._cached: dict[int, bytes] = {}
        self._version: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.pushes = 0

    def start(self) -> None:
        """Subscribe to the feed."""
        self._unsubscribe = self.feed.subscribe(self._on_event)

    async def close(self) -> None:
        """Unsubscribe, end every open stream and stop pending pushes."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
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

    async def snapshot(self, guild_id: int) -> bytes:
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
        clients = self._clients.get(guild_id)
        if not clients:
            return
        data = await self.snapshot(guild_id)
        self.pushes += 1
        for index, client in enumerate(list(clients), start=1):
            client.offer(data)
            if not index % FANOUT_SLICE:
                # Each offer wakes a page's writer; in slices, an interaction arriving meanwhile is read
                # between them instead of after all 200 (this keeps the acknowledgement tail flat).
                await asyncio.sleep(0)

    async def _gift(self, event: GiftPromoted) -> None:
        sub = await self.db.get_submission(event.guild_id, event.public_id)
        if sub is None:
            return
        notice = frame(
            "gift",
            {"artist": sub.artist, "title": sub.title, "by": sub.user_name, "line": event.line, "coins": event.coins},
        )
        for client in list(self._clients.get(event.guild_id, ())):
            client.offer(notice)

    async def _recheck(self, guild_id: int) -> None:
        for client in list(self._clients.get(guild_id, ())):
            if await self.check_token(client.kind, client.token_hash) != guild_id:
                client.end(REVOKED)

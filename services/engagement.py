"""Buffered engagement writer: live events in, ledger and session records out, one transaction a flush.

The TikTok adapter hands events over with ``add`` (cheap, synchronous, never touches the database). A
flush loop writes everything buffered at least every ``flush_seconds`` and on ``stop``, so a crash loses
at most one flush window (SPEC 8 rule 10). After a flush that changed points, the queue's cached order is
dropped so the Free line and the displays reorder within a few seconds. The flush also verifies handle
link codes typed in the chat (that line earns nothing), grants gift rewards (a linked handle's coins in this
live reaching a paid line's threshold), and adds the live's per-minute buckets (the recap's chart) in the
same transaction. Anti-farming: likes and shares are capped per handle per minute, a follow earns once per
handle per live (keyed by session id).

What a flush changed is published on the change feed: ``ScoresChanged`` (the handles whose points
moved), ``HandleVerified`` and ``GiftPromoted``. The writer does not know who listens (the displays, the
notifier that thanks the member, the overlay).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from database import Database, EngagementDelta, MinuteDelta
from models import EngagementCounts, EngagementEvent, EventKind
from services.feed import ChangeFeed, GiftPromoted, HandleVerified, ScoresChanged
from services.periodic import Periodic
from services.queue import QueueService
from services.steps import rest

log = logging.getLogger(__name__)

YIELD_EVERY = 256
"""Events folded between two yields to the event loop while a flush aggregates (about 1 ms of work)."""

DELTAS_EVERY = 128
"""Handles' deltas made between two yields (a delta is two frozen records, ~4 us: about 0.5 ms of work)."""

_Row = tuple[str, str | None, float, int, int, int | None, str | None, str | None, int | None]
"""A buffered event: kind (its value), handle, at, count, coins, TikTok user id, nickname, text, viewers.

Strings and numbers only, so CPython's collector stops tracking the tuple the first time it sees it. A
second of a big live is thousands of events waiting for the flush; as ``EngagementEvent``s (each holding its
``EventKind``) every young collection walked them again, and those walks were the longest pauses of the
bot's loop under 100 lives (gen-1 collections of 3-10 ms, ``bench.live_pool``)."""

# The kinds as the plain strings a row holds.
_LIKE = EventKind.LIKE.value
_COMMENT = EventKind.COMMENT.value
_SHARE = EventKind.SHARE.value
_FOLLOW = EventKind.FOLLOW.value
_SUBSCRIBE = EventKind.SUBSCRIBE.value
_GIFT = EventKind.GIFT.value
_JOIN = EventKind.JOIN.value
_VIEWERS = EventKind.VIEWERS.value


def _row(e: EngagementEvent) -> _Row:
    return (e.kind.value, e.handle, e.at, e.count, e.coins, e.tiktok_user_id, e.nickname, e.text, e.viewers)


@dataclass(slots=True)
class _Acc:
    """Mutable per-handle accumulator of one flush."""

    likes: int = 0
    comments: int = 0
    shares: int = 0
    follows: int = 0
    subscribes: int = 0
    coins: int = 0
    gifts: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    joined_at: float | None = None
    nickname: str | None = None
    tiktok_user_id: int | None = None

    def seen(self, at: float) -> None:
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        self.last_seen = at if self.last_seen is None else max(self.last_seen, at)

    def delta(self, handle: str) -> EngagementDelta:
        return EngagementDelta(
            handle=handle,
            counts=EngagementCounts(self.likes, self.comments, self.shares, self.follows, self.subscribes, self.coins),
            gifts=self.gifts,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            joined_at=self.joined_at,
            nickname=self.nickname,
            tiktok_user_id=self.tiktok_user_id,
        )


@dataclass(slots=True)
class _GuildBuffer:
    events: list[_Row] = field(default_factory=list)
    session_id: int | None = None
    # handle -> (minute index, likes/shares counted in that minute): the per-handle caps against farming.
    like_window: dict[str, tuple[int, int]] = field(default_factory=dict)
    share_window: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Handles whose follow already earned in this session (a follow earns once per handle per live; the
    # database is asked for the ones not known here, so a restarted writer still knows).
    followed: set[str] = field(default_factory=set)
    # False for simulated events the admin did not ask to promote a song with (/tiktok simulate promote).
    rewards: bool = True


def _capped(window: dict[str, tuple[int, int]], handle: str, at: float, count: int, cap: int) -> int:
    """How much of ``count`` a handle may still earn in the minute of ``at`` (cap <= 0: no cap)."""
    if cap <= 0:
        return count
    minute = int(at // 60)
    window_minute, used = window.get(handle, (minute, 0))
    if window_minute != minute:
        used = 0
    allowed = max(0, min(count, cap - used))
    window[handle] = (minute, used + allowed)
    return allowed


def _bucket(per_minute: dict[int, list[int]], at: float) -> list[int]:
    minute = int(at // 60)
    bucket = per_minute.get(minute)
    if bucket is None:
        bucket = per_minute[minute] = [0, 0, 0]
    return bucket


def _code_owner(codes: list[tuple[int, str]] | None, text: str) -> int | None:
    """The user whose pending link code for this handle the chat line carries, if any."""
    if not codes:
        return None
    folded = text.casefold()
    for user_id, code in codes:
        if code.casefold() in folded:
            return user_id
    return None


class EngagementWriter:
    """Buffers events per guild and applies them in batches."""

    def __init__(
        self,
        db: Database,
        queue: QueueService,
        *,
        feed: ChangeFeed | None = None,
        flush_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.queue = queue
        # Without a feed (benchmarks, unit tests) the events go to a private one nobody listens to.
        self.feed = feed if feed is not None else ChangeFeed()
        self.flush_seconds = flush_seconds
        self.clock = clock
        self._buffers: dict[int, _GuildBuffer] = {}
        self._simulations: dict[int, _GuildBuffer] = {}  # per guild: simulated events, their session and caps
        # A failed flush keeps its buffer, so the next window retries it.
        self._loop = Periodic(self.flush, flush_seconds, name="engagement-flush", failure="engagement flush failed")
        self._flush_lock = asyncio.Lock()
        self.events_applied = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the flush loop (idempotent)."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loop (after the flush it is in, if any) and write what is buffered."""
        async with self._flush_lock:  # cancelled half-way, a flush would drop the events it had taken
            await self._loop.stop()
        await self.flush()

    # ------------------------------------------------------------------ intake

    def set_session(self, guild_id: int, session_id: int | None) -> None:
        """Record further events of a guild under this live session (None: ledger only)."""
        buffer = self._buffers.setdefault(guild_id, _GuildBuffer())
        if buffer.session_id != session_id:
            buffer.followed = set()  # once per live: a new live earns again
        buffer.session_id = session_id

    def session_of(self, guild_id: int) -> int | None:
        """The live session events of a guild are recorded under."""
        buffer = self._buffers.get(guild_id)
        return buffer.session_id if buffer else None

    def add(self, guild_id: int, events: Iterable[EngagementEvent]) -> None:
        """Buffer events (called from the TikTok event path: no I/O here)."""
        buffer = self._buffers.get(guild_id)
        if buffer is None:
            buffer = self._buffers[guild_id] = _GuildBuffer()
        buffer.events.extend(map(_row, events))

    @property
    def buffered(self) -> int:
        """Events waiting for the next flush."""
        return sum(len(b.events) for b in self._buffers.values())

    # ------------------------------------------------------------------ flushing

    async def flush(self) -> int:
        """Write every buffered event; returns how many were applied."""
        async with self._flush_lock:
            applied = 0
            for guild_id, buffer in list(self._buffers.items()):
                if not buffer.events:
                    continue
                events, buffer.events = buffer.events, []
                try:
                    await self._apply(guild_id, buffer, events)
                except Exception:
                    buffer.events[:0] = events  # put them back in order so nothing is lost
                    raise
                applied += len(events)
            self.events_applied += applied
            return applied

    async def _apply(self, guild_id: int, buffer: _GuildBuffer, events: list[_Row]) -> None:
        settings = await self.db.get_settings(guild_id)
        cap = settings.like_cap_per_minute
        share_cap = settings.share_cap_per_minute
        # The caps and the follow memory change only once the flush is written (a failed flush retries
        # from the same state).
        like_window, share_window = dict(buffer.like_window), dict(buffer.share_window)
        followed = set(buffer.followed)
        if buffer.session_id is not None:
            new_followers = {e[1] for e in events if e[0] == _FOLLOW and e[1]} - followed
            if new_followers:
                followed |= await self.db.session_followers(buffer.session_id, sorted(new_followers))
        # A chat line carrying the handle's link code proves the handle and earns nothing (issue 16.3).
        has_text = any(e[0] == _COMMENT and e[7] for e in events)
        pending = await self.db.pending_link_codes(guild_id) if has_text else {}
        proofs: dict[str, int] = {}
        accs: dict[str, _Acc] = {}
        # minute -> [likes, comments, coins] as counted (after the caps): the recap's chart.
        per_minute: dict[int, list[int]] = {}
        viewers: int | None = None
        for index, (kind, handle, at, count, coins, user_id, nickname, text, seen_viewers) in enumerate(events):
            if index and not index % YIELD_EVERY:
                await rest()  # a second of a big live is thousands of events: let interactions in
            if kind == _VIEWERS:
                if seen_viewers is not None:
                    viewers = seen_viewers if viewers is None else max(viewers, seen_viewers)
                continue
            if not handle:
                continue
            acc = accs.get(handle)
            if acc is None:
                acc = accs[handle] = _Acc()
            acc.seen(at)
            if nickname:
                acc.nickname = nickname
            if user_id:
                acc.tiktok_user_id = user_id
            if kind == _LIKE:
                likes = _capped(like_window, handle, at, count, cap)
                acc.likes += likes
                if likes:
                    _bucket(per_minute, at)[0] += likes
            elif kind == _COMMENT:
                owner = _code_owner(pending.get(handle), text) if text and pending else None
                if owner is None:
                    acc.comments += 1
                    _bucket(per_minute, at)[1] += 1
                else:
                    proofs.setdefault(handle, owner)
            elif kind == _GIFT:
                acc.gifts += 1
                acc.coins += coins
                if coins:
                    _bucket(per_minute, at)[2] += coins
            elif kind == _SHARE:
                acc.shares += _capped(share_window, handle, at, 1, share_cap)
            elif kind == _FOLLOW:
                if handle not in followed:  # unfollow and follow again earns nothing
                    followed.add(handle)
                    acc.follows += 1
            elif kind == _SUBSCRIBE:
                acc.subscribes += 1
            elif kind == _JOIN:
                acc.joined_at = at if acc.joined_at is None else min(acc.joined_at, at)
        deltas: list[EngagementDelta] = []
        for index, (handle, acc) in enumerate(accs.items()):
            if index and not index % DELTAS_EVERY:
                await rest()  # hundreds of fans in one second: the loop runs between slices here too
            deltas.append(acc.delta(handle))
        minutes = [MinuteDelta(m, *v) for m, v in sorted(per_minute.items())] if buffer.session_id else []
        await self.db.apply_engagement(guild_id, buffer.session_id, deltas, viewers, minutes)
        buffer.like_window, buffer.share_window, buffer.followed = like_window, share_window, followed
        nothing = EngagementCounts()  # one, not one per fan
        scored = tuple(sorted(d.handle for d in deltas if d.counts != nothing))
        if scored:
            await self.queue.scores_changed(guild_id, scored)
            self.feed.publish(ScoresChanged(guild_id, scored))
        if proofs:
            await self._verify(guild_id, proofs)
        gifters = [h for h, acc in accs.items() if acc.coins > 0]
        if gifters and buffer.session_id is not None and buffer.rewards:
            await self._grant_rewards(guild_id, buffer.session_id, gifters)

    async def _verify(self, guild_id: int, proofs: dict[str, int]) -> None:
        for handle, user_id in proofs.items():
            _, previous = await self.db.verify_link(guild_id, handle, user_id)
            await self.queue.handle_moved(guild_id, handle, (previous, user_id))
            log.info("verified @%s for user %s in guild %s", handle, user_id, guild_id)
            self.feed.publish(HandleVerified(guild_id, user_id, handle, previous))

    async def _grant_rewards(self, guild_id: int, session_id: int, gifters: list[str]) -> None:
        settings = await self.db.get_settings(guild_id)
        tiers, proven_only = settings.gift_tiers, settings.verified_handles_only
        # A gift storm must not become queries per gifter: one for the owners, one for their coins this
        # live, one for the rewards they already had (a threshold is granted once per live).
        owners = sorted(set((await self.db.handle_owners(guild_id, gifters)).values()))
        coins_of = await self.db.session_coins_by_owner(guild_id, session_id, owners, proven_only=proven_only)
        reached = {user: line for user in owners if (line := tiers.line_for(coins_of.get(user, 0))) is not None}
        granted = await self.db.granted_gift_rewards(session_id, list(reached)) if reached else set()
        for user_id, line in reached.items():
            if (user_id, line) in granted:
                continue
            coins = coins_of[user_id]
            moved = await self.queue.promote_newest(guild_id, user_id, line)
            if moved is None:
                continue  # nothing waiting to promote; checked again at the user's next gift
            await self.db.record_gift_reward(session_id, guild_id, user_id, line, moved.id, self.clock())
            log.info("gift reward: user %s reached %s coins -> %s (%s)", user_id, coins, line.value, moved.display_id)
            self.feed.publish(
                GiftPromoted(guild_id, moved.public_id, line.value, moved.tiktok_handle or "", coins, user_id)
            )

    # ------------------------------------------------------------------ simulation (issue 12 point 5)

    async def write_simulated(
        self, guild_id: int, session_id: int, events: Iterable[EngagementEvent], *, promote: bool = False
    ) -> None:
        """Apply admin-simulated events at once, recorded under ``session_id`` (a simulation's own session).

        They go through the same rules as live events (caps, ledger, link codes) but never into a real
        live's buffer or session; their gifts promote a song only when ``promote`` is asked for.
        """
        async with self._flush_lock:
            buffer = self._simulations.get(guild_id)
            if buffer is None or buffer.session_id != session_id:
                buffer = self._simulations[guild_id] = _GuildBuffer(session_id=session_id)
            buffer.rewards = promote
            batch = list(map(_row, events))
            await self._apply(guild_id, buffer, batch)
            self.events_applied += len(batch)

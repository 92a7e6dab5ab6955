"""The one translation layer from TikTokLive 7.x events to the project's ``EngagementEvent``.

It reads only raw proto fields that exist in every 7.x shape (``user.id``, ``user.display_id``,
``user.nickname``, ``gift.type``, ``gift.diamond_count``, ``repeat_count``, ``repeat_end``,
``common.msg_id``), because ``event.user`` is sometimes a plain ``User`` without the extended helpers.
It never double counts: Follow/Share are taken from their own classes (not the duplicate SocialEvent), a
gift streak counts once at its end as diamonds x repeat count, a streak whose end never arrives is
committed after a timeout (a late end adds only the difference), and a reconnect's replayed backlog is
dropped by message id. Missing attributes never raise: the event is counted as dropped instead.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models import EngagementEvent, EventKind

DEDUPE_SIZE = 50_000


@dataclass(slots=True)
class _Streak:
    handle: str
    user_id: int | None
    nickname: str | None
    diamonds: int
    count: int
    committed: int
    updated: float


def normalize(handle: str | None) -> str | None:
    """Stored handle form: every leading ``@`` removed, lower-cased; None when empty."""
    if not handle:
        return None
    text = str(handle).strip().lstrip("@").lower()
    return text or None


class EventAdapter:
    """Turns library events into domain events; keep one per live connection."""

    def __init__(self, *, streak_timeout: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.streak_timeout = streak_timeout
        self.clock = clock
        self._seen: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._streaks: dict[tuple[Any, ...], _Streak] = {}
        self.dropped = 0
        self.duplicates = 0
        self._handlers: dict[str, Callable[[Any, str, Any, float], list[EngagementEvent]]] = {
            "CommentEvent": self._comment,
            "LikeEvent": self._like,
            "ShareEvent": self._simple(EventKind.SHARE),
            "FollowEvent": self._simple(EventKind.FOLLOW),
            "SubNotifyEvent": self._simple(EventKind.SUBSCRIBE),
            "JoinEvent": self._simple(EventKind.JOIN),
            "GiftEvent": self._gift,
        }

    # The classes the connection manager subscribes to (SocialEvent and ControlEvent deliberately not).
    EVENT_NAMES = (
        "CommentEvent",
        "LikeEvent",
        "ShareEvent",
        "FollowEvent",
        "SubNotifyEvent",
        "JoinEvent",
        "GiftEvent",
        "RoomUserSeqEvent",
    )

    def handle(self, event: Any) -> list[EngagementEvent]:
        """Translate one library event (any kind); returns zero or more domain events."""
        name = type(event).__name__
        if name == "RoomUserSeqEvent":
            total = getattr(event, "total", None)
            return [] if total is None else [EngagementEvent(EventKind.VIEWERS, None, self.clock(), viewers=int(total))]
        handler = self._handlers.get(name)
        if handler is None:
            return []
        common = getattr(event, "common", None)
        msg_id = getattr(common, "msg_id", None) if common is not None else None
        if msg_id:
            if msg_id in self._seen:
                self.duplicates += 1
                return []
            self._seen[msg_id] = None
            if len(self._seen) > DEDUPE_SIZE:
                self._seen.popitem(last=False)
        user = getattr(event, "user", None)
        handle = normalize(getattr(user, "display_id", None)) if user is not None else None
        if handle is None:
            self.dropped += 1
            return []
        try:
            return handler(event, handle, user, self.clock())
        except (AttributeError, TypeError, ValueError):
            self.dropped += 1  # a shape we do not know: drop it, never crash the live
            return []

    @staticmethod
    def _ids(user: Any) -> tuple[int | None, str | None]:
        user_id = getattr(user, "id", None)
        return (int(user_id) if user_id else None), (getattr(user, "nickname", None) or None)

    def _simple(self, kind: EventKind) -> Callable[[Any, str, Any, float], list[EngagementEvent]]:
        def handler(event: Any, handle: str, user: Any, now: float) -> list[EngagementEvent]:
            user_id, nickname = self._ids(user)
            return [EngagementEvent(kind, handle, now, tiktok_user_id=user_id, nickname=nickname,
                                    msg_id=getattr(getattr(event, "common", None), "msg_id", None))]  # fmt: skip

        return handler

    def _comment(self, event: Any, handle: str, user: Any, now: float) -> list[EngagementEvent]:
        user_id, nickname = self._ids(user)
        text = getattr(event, "content", None)
        return [EngagementEvent(EventKind.COMMENT, handle, now, tiktok_user_id=user_id, nickname=nickname,
                                text=str(text) if text else None)]  # fmt: skip

    def _like(self, event: Any, handle: str, user: Any, now: float) -> list[EngagementEvent]:
        user_id, nickname = self._ids(user)
        count = int(getattr(event, "count", 0) or 0) or 1
        return [EngagementEvent(EventKind.LIKE, handle, now, count=count, tiktok_user_id=user_id, nickname=nickname)]

    def _gift(self, event: Any, handle: str, user: Any, now: float) -> list[EngagementEvent]:
        gift = getattr(event, "gift", None)
        diamonds = int(getattr(gift, "diamond_count", 0) or 0)
        repeat = int(getattr(event, "repeat_count", 0) or 0) or 1
        user_id, nickname = self._ids(user)
        if int(getattr(gift, "type", 0) or 0) != 1:
            return [self._gift_event(handle, user_id, nickname, diamonds * repeat, now)]
        gift_id = getattr(event, "gift_id", None) or getattr(gift, "id", None)
        key = (user_id or handle, gift_id, getattr(event, "group_id", None))
        streak = self._streaks.get(key)
        if streak is None:
            streak = self._streaks[key] = _Streak(handle, user_id, nickname, diamonds, repeat, 0, now)
        else:
            streak.count = max(streak.count, repeat)
            streak.updated = now
        if not getattr(event, "repeat_end", 0):
            return []  # mid-streak: counted once, at its end
        del self._streaks[key]
        return self._commit(streak, now)

    def _commit(self, streak: _Streak, now: float) -> list[EngagementEvent]:
        delta = streak.count - streak.committed
        streak.committed = streak.count
        if delta <= 0:
            return []
        return [self._gift_event(streak.handle, streak.user_id, streak.nickname, streak.diamonds * delta, now)]

    @staticmethod
    def _gift_event(handle: str, user_id: int | None, nickname: str | None, coins: int, now: float) -> EngagementEvent:
        return EngagementEvent(EventKind.GIFT, handle, now, coins=coins, tiktok_user_id=user_id, nickname=nickname)

    def flush_stale(self, now: float | None = None) -> list[EngagementEvent]:
        """Commit streaks that had no update for ``streak_timeout`` seconds (their end never came).

        The streak stays known (with what was committed) so a late end adds only the difference.
        """
        now = self.clock() if now is None else now
        out: list[EngagementEvent] = []
        for key, streak in list(self._streaks.items()):
            if now - streak.updated >= self.streak_timeout and streak.count > streak.committed:
                out.extend(self._commit(streak, now))
            if now - streak.updated >= 6 * self.streak_timeout:
                del self._streaks[key]  # long over: forget it
        return out

    def flush_all(self) -> list[EngagementEvent]:
        """Commit every open streak (the connection ended).

        The streaks stay known with what was committed, so an end replayed after a reconnect (or a
        streak that goes on) adds only the difference; ``flush_stale`` forgets them later.
        """
        now = self.clock()
        out: list[EngagementEvent] = []
        for streak in self._streaks.values():
            out.extend(self._commit(streak, now))
        return out


def warm_event_classes() -> None:
    """Build every event class's own protobuf metadata first (the 7.0.1 metadata-inheritance bug).

    Without this, a parent message parsed first makes ``CommentEvent.user`` a plain ``User`` for the whole
    process. The adapter copes either way; this keeps the library's own helpers working too.
    """
    from TikTokLive.events import EVENT_MAPPINGS
    from TikTokLive.events import custom_events as ce

    for cls in [*EVENT_MAPPINGS.values(), ce.FollowEvent, ce.ShareEvent, ce.LiveEndEvent, ce.LivePauseEvent,
                ce.LiveUnpauseEvent, ce.SuperFanEvent, ce.SuperFanJoinEvent, ce.SuperFanBoxEvent]:  # fmt: skip
        _ = cls._betterproto  # building the metadata is the side effect we want

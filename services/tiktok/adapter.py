"""The one translation layer from TikTokLive 7.x events to the project's ``EngagementEvent``.

It reads only raw proto fields that exist in every 7.x shape (``user.id``, ``user.display_id``,
``user.nickname``, ``gift.type``, ``gift.diamond_count``, ``repeat_count``, ``repeat_end``,
``common.msg_id``, ``common.create_time``), because in 7.0.1 ``event.user`` is sometimes a plain ``User``
without the extended helpers (``unique_id``, ``gift.streakable``); see ``warm_event_classes``.

It never double counts:

* Follow and share come from ``FollowEvent`` / ``ShareEvent`` only; the ``SocialEvent`` the library emits
  for the same message is ignored (as is ``ControlEvent``: the manager listens for ``LiveEndEvent``).
* A gift streak (``gift.type == 1``) counts once, at its end, as diamonds x repeat count. A streak whose
  end never arrives is committed at its highest count by ``flush_stale``; a late end adds only the
  difference. Other gifts count at once.
* A reconnect replays a backlog: messages are deduplicated by ``common.msg_id`` (bounded LRU), and
  optionally dropped when older than the connection start (``set_connected_at``).

Missing or odd attributes never raise: the event is counted in ``dropped`` and skipped. The per-event path
does no logging and builds no pydantic objects, because it runs inline in the library's socket task.
"""

from __future__ import annotations

import collections
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from models import EngagementEvent, EventKind

log = logging.getLogger(__name__)

DEDUPE_SIZE = 50_000
"""How many message ids the replay filter remembers (a reconnect backlog is a few dozen)."""

DEFAULT_STREAK_TIMEOUT = 10.0
"""Seconds without an update after which an unfinished gift streak is committed at its maximum."""

DEFAULT_BACKLOG_TOLERANCE = 5.0
"""Seconds of clock skew allowed between TikTok's ``create_time`` and our connection start."""

# The library classes the manager subscribes to. SocialEvent (doubled with Follow/Share) and ControlEvent
# (doubled with LiveEndEvent) are deliberately absent.
EVENT_NAMES: tuple[str, ...] = (
    "CommentEvent",
    "LikeEvent",
    "ShareEvent",
    "FollowEvent",
    "SubNotifyEvent",
    "JoinEvent",
    "GiftEvent",
    "RoomUserSeqEvent",
)

# Events are TikTokLive's (untyped) objects, read only through getattr with defaults: ``object`` is all we assume.
_Handler = Callable[[object], list[EngagementEvent]]


class _Unresolved(enum.Enum):
    """The marker of a class not looked up yet (an enum member, so the type checker can narrow it away)."""

    TOKEN = enum.auto()


_UNRESOLVED: Final = _Unresolved.TOKEN
_EMPTY: list[EngagementEvent] = []  # never mutated: callers only extend from or iterate it
_SHAPE_ERRORS = (AttributeError, TypeError, ValueError, OverflowError)


def normalize(handle: str | None) -> str | None:
    """Stored handle form: surrounding space and every leading ``@`` removed, lower-cased; None when empty."""
    if not handle:
        return None
    text = str(handle).strip().lstrip("@").strip().lower()
    return text or None


def event_classes() -> list[type]:
    """The TikTokLive event classes to subscribe to (imported lazily: the library takes ~1.6 s to import)."""
    from TikTokLive import events as tiktok_events

    return [getattr(tiktok_events, name) for name in EVENT_NAMES]


@dataclass(slots=True)
class _Streak:
    """One gift streak in progress (or recently finished, kept so a late or replayed end adds nothing)."""

    handle: str
    user_id: int | None
    nickname: str | None
    diamonds: int
    count: int
    committed: int
    updated: float
    ended: bool = False


class EventAdapter:
    """Turns library events into domain events; keep one per ``connect`` (it spans reconnects).

    ``handle`` is synchronous and cheap. ``flush_stale`` must be called periodically (the manager does it
    every second) and ``flush_all`` when a connection ends, so unfinished streaks are committed.
    """

    EVENT_NAMES = EVENT_NAMES

    def __init__(
        self,
        *,
        streak_timeout: float = DEFAULT_STREAK_TIMEOUT,
        clock: Callable[[], float] = time.time,
        dedupe_size: int = DEDUPE_SIZE,
    ) -> None:
        self.streak_timeout = streak_timeout
        self.clock = clock
        self.dedupe_size = dedupe_size
        self.dropped = 0
        self.duplicates = 0
        self.stale = 0
        self._seen: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._streaks: dict[tuple[object, object, object], _Streak] = {}
        self._min_create_ms = 0
        self._reported: set[tuple[str, str]] = set()
        self._by_name: dict[str, _Handler] = {
            "CommentEvent": self._comment,
            "LikeEvent": self._like,
            "ShareEvent": self._simple(EventKind.SHARE),
            "FollowEvent": self._simple(EventKind.FOLLOW),
            "SubNotifyEvent": self._simple(EventKind.SUBSCRIBE),
            "JoinEvent": self._simple(EventKind.JOIN),
            "GiftEvent": self._gift,
            "RoomUserSeqEvent": self._viewers,
        }
        # Resolved per concrete class on first sight: one dict lookup per event afterwards.
        self._by_type: dict[type, _Handler | None] = {}

    # ------------------------------------------------------------------ configuration

    def set_connected_at(self, ts: float | None, tolerance: float = DEFAULT_BACKLOG_TOLERANCE) -> None:
        """Drop events created before ``ts - tolerance`` (epoch seconds); ``None`` switches the filter off."""
        self._min_create_ms = 0 if ts is None else int((ts - tolerance) * 1000)

    def stats(self) -> dict[str, int]:
        """Counters for diagnostics: dropped (bad shape), duplicates (replayed ids), stale, open streaks."""
        open_streaks = sum(1 for s in self._streaks.values() if not s.ended)
        return {"dropped": self.dropped, "duplicates": self.duplicates, "stale": self.stale, "streaks": open_streaks}

    # ------------------------------------------------------------------ the per-event path

    def handle(self, event: object) -> list[EngagementEvent]:
        """Translate one library event (any kind); returns zero or more domain events, never raises."""
        cls = type(event)
        handler = self._by_type.get(cls, _UNRESOLVED)
        if handler is _UNRESOLVED:
            handler = self._by_type[cls] = self._by_name.get(cls.__name__)
        if handler is None:
            return _EMPTY
        try:
            common = getattr(event, "common", None)
            if common is not None:
                msg_id = getattr(common, "msg_id", 0)
                if msg_id:
                    seen = self._seen
                    if msg_id in seen:
                        self.duplicates += 1
                        return _EMPTY
                    seen[msg_id] = None
                    if len(seen) > self.dedupe_size:
                        seen.popitem(last=False)
                if self._min_create_ms and 0 < (getattr(common, "create_time", 0) or 0) < self._min_create_ms:
                    self.stale += 1
                    return _EMPTY
            return handler(event)
        except _SHAPE_ERRORS as exc:
            self._drop(cls.__name__, exc)
            return _EMPTY

    def _drop(self, name: str, exc: BaseException) -> None:
        # Counted always, logged once per (class, error type): a schema change must be visible in the log
        # without flooding it at hundreds of events per second.
        self.dropped += 1
        key = (name, type(exc).__name__)
        if key not in self._reported:
            self._reported.add(key)
            log.warning("TikTok %s dropped (unexpected shape: %s: %s); further ones are only counted",
                        name, type(exc).__name__, exc)  # fmt: skip

    def _who(self, event: object) -> tuple[str, int | None, str | None] | None:
        user = getattr(event, "user", None)
        if user is None:
            return None
        display = getattr(user, "display_id", None)
        if not display:
            return None
        handle = normalize(display)
        if handle is None:
            return None
        user_id = getattr(user, "id", None)
        return handle, (int(user_id) if user_id else None), (getattr(user, "nickname", None) or None)

    @staticmethod
    def _msg_id(event: object) -> int | None:
        common = getattr(event, "common", None)
        return (getattr(common, "msg_id", None) or None) if common is not None else None

    def _simple(self, kind: EventKind) -> _Handler:
        def handler(event: object) -> list[EngagementEvent]:
            who = self._who(event)
            if who is None:
                self.dropped += 1
                return _EMPTY
            return [EngagementEvent(kind, who[0], self.clock(), tiktok_user_id=who[1], nickname=who[2],
                                    msg_id=self._msg_id(event))]  # fmt: skip

        return handler

    def _comment(self, event: object) -> list[EngagementEvent]:
        who = self._who(event)
        if who is None:
            self.dropped += 1
            return _EMPTY
        text = getattr(event, "content", None)
        return [EngagementEvent(EventKind.COMMENT, who[0], self.clock(), tiktok_user_id=who[1], nickname=who[2],
                                msg_id=self._msg_id(event), text=str(text) if text else None)]  # fmt: skip

    def _like(self, event: object) -> list[EngagementEvent]:
        who = self._who(event)
        if who is None:
            self.dropped += 1
            return _EMPTY
        # ``count`` is what this message carries (TikTok batches likes); ``total`` is the room's running total.
        count = int(getattr(event, "count", 0) or 0) or 1
        return [EngagementEvent(EventKind.LIKE, who[0], self.clock(), count=count, tiktok_user_id=who[1],
                                nickname=who[2], msg_id=self._msg_id(event))]  # fmt: skip

    def _viewers(self, event: object) -> list[EngagementEvent]:
        total = getattr(event, "total", None)
        if total is None:
            self.dropped += 1
            return _EMPTY
        return [EngagementEvent(EventKind.VIEWERS, None, self.clock(), viewers=int(total), msg_id=self._msg_id(event))]

    def _gift(self, event: object) -> list[EngagementEvent]:
        who = self._who(event)
        if who is None:
            self.dropped += 1
            return _EMPTY
        handle, user_id, nickname = who
        gift = getattr(event, "gift", None)
        diamonds = int(getattr(gift, "diamond_count", 0) or 0)
        repeat = int(getattr(event, "repeat_count", 0) or 0) or 1
        now = self.clock()
        msg_id = self._msg_id(event)
        if int(getattr(gift, "type", 0) or 0) != 1:
            # Not streakable: sent once, whatever its repeat_end says.
            return [EngagementEvent(EventKind.GIFT, handle, now, coins=diamonds * repeat, tiktok_user_id=user_id,
                                    nickname=nickname, msg_id=msg_id)]  # fmt: skip
        gift_id = getattr(event, "gift_id", None) or getattr(gift, "id", None)
        key = (user_id or handle, gift_id, getattr(event, "group_id", None))
        streak = self._streaks.get(key)
        if streak is None:
            streak = self._streaks[key] = _Streak(handle, user_id, nickname, diamonds, repeat, 0, now)
        else:
            if repeat > streak.count:
                streak.count = repeat
            if diamonds and not streak.diamonds:
                streak.diamonds = diamonds
            streak.updated = now
        if not getattr(event, "repeat_end", 0):
            return _EMPTY  # mid-streak: counted once, at its end (or by flush_stale)
        streak.ended = True
        return self._commit(streak, now, msg_id)

    def _commit(self, streak: _Streak, now: float, msg_id: int | None = None) -> list[EngagementEvent]:
        delta = streak.count - streak.committed
        if delta <= 0:
            return _EMPTY
        streak.committed = streak.count
        return [EngagementEvent(EventKind.GIFT, streak.handle, now, coins=streak.diamonds * delta,
                                tiktok_user_id=streak.user_id, nickname=streak.nickname, msg_id=msg_id)]  # fmt: skip

    # ------------------------------------------------------------------ periodic and final commits

    def flush_stale(self, now: float | None = None) -> list[EngagementEvent]:
        """Commit streaks with no update for ``streak_timeout`` seconds (their end never came) at their max.

        The streak stays known with what was committed, so a late end adds only the difference; entries
        are forgotten once they have been quiet for a long while.
        """
        now = self.clock() if now is None else now
        forget_after = max(60.0, 6 * self.streak_timeout)
        out: list[EngagementEvent] = []
        for key, streak in list(self._streaks.items()):
            quiet = now - streak.updated
            if quiet >= self.streak_timeout and streak.count > streak.committed:
                out.extend(self._commit(streak, now))
            if quiet >= forget_after:
                del self._streaks[key]
        return out

    def flush_all(self) -> list[EngagementEvent]:
        """Commit every unfinished streak now (the connection ended, or the bot shuts down).

        Streaks stay known, so an end replayed after a reconnect (or a streak that goes on) adds only the
        difference.
        """
        now = self.clock()
        out: list[EngagementEvent] = []
        for streak in self._streaks.values():
            out.extend(self._commit(streak, now))
        return out


def warm_event_classes() -> None:
    """Build every event class's own protobuf metadata first (the 7.0.1 metadata-inheritance bug).

    betterproto2 caches metadata per class but finds it through inheritance: if a parent message (e.g.
    ``WebcastChatMessage``, parsed inside a pinned-message event) gets its metadata first, ``CommentEvent``
    inherits it and its ``user`` becomes a plain ``User`` for the whole process. Run this at start-up and
    before tests build proto messages. The adapter copes either way; this keeps the library's helpers working.
    """
    from TikTokLive.events import EVENT_MAPPINGS
    from TikTokLive.events import custom_events as ce

    for cls in [*EVENT_MAPPINGS.values(), ce.FollowEvent, ce.ShareEvent, ce.LiveEndEvent, ce.LivePauseEvent,
                ce.LiveUnpauseEvent, ce.SuperFanEvent, ce.SuperFanJoinEvent, ce.SuperFanBoxEvent]:  # fmt: skip
        _ = cls._betterproto  # building the metadata is the side effect we want

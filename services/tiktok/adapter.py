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
  difference. Other gifts count at once. TikTok sends group id 0, or reuses one, for consecutive streaks
  of the same gift, so the group id alone cannot tell two streaks apart: a new streak starts whenever
  the repeat count restarts (it goes down, or the previous streak ended), and TikTok's ``create_time``
  tells a late or repeated step of a streak from the start of the next one (``_streak_for``).
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

STREAKS_PER_KEY = 8
"""Recent streaks remembered per (viewer, gift, group): enough to place a late step, bounded against floods."""

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
_Blank = tuple[dict[str, object], tuple[tuple[str, Callable[[], object]], ...]]
"""A message class's empty message: the defaults every message shares, and a factory per mutable default."""


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
    """One gift streak in progress (or recently finished, kept so a late or replayed end adds nothing).

    ``first_ms``/``newest_ms`` are TikTok's creation times (ms) of its earliest and newest step, 0 when the
    messages carry none; ``updated`` is our clock at the last step (the timeout commit).
    """

    handle: str
    user_id: int | None
    nickname: str | None
    diamonds: int
    count: int
    committed: int
    updated: float
    ended: bool = False
    first_ms: int = 0
    newest_ms: int = 0

    def step(self, repeat: int, diamonds: int, created_ms: int, now: float) -> None:
        """Fold one step in: the count only ever grows to the highest step seen."""
        if repeat > self.count:
            self.count = repeat
        if diamonds and not self.diamonds:
            self.diamonds = diamonds
        if created_ms:
            self.first_ms = min(self.first_ms, created_ms) if self.first_ms else created_ms
            self.newest_ms = max(self.newest_ms, created_ms)
        self.updated = now

    def continues_with(self, repeat: int, end: bool) -> bool:
        """Whether a step created after this streak's newest one carries it on (rather than restarting).

        A running streak goes up one step at a time and its end repeats the last count; anything else (a
        lower or equal step, or any step after the end) is the repeat count restarting: a new streak.
        """
        return not self.ended and (repeat > self.count or (end and repeat == self.count))


def _streak_for(streaks: list[_Streak], repeat: int, end: bool, created_ms: int) -> _Streak | None:
    """The streak (of one viewer, gift and group) a step belongs to; None when it starts a new one."""
    last = streaks[-1]
    if created_ms and last.newest_ms:
        if created_ms < last.first_ms:
            # Created before the newest streak began: a late step of an earlier one (or, older than every
            # streak remembered, the first one's opening step arriving after its next).
            for streak in reversed(streaks[:-1]):
                if streak.first_ms and streak.first_ms <= created_ms:
                    return streak
            return streaks[0]
        if created_ms <= last.newest_ms:
            return last  # created within the streak: a late, out-of-order or repeated step (or end)
        return last if last.continues_with(repeat, end) else None
    # No creation times to go by: the order of arrival decides (a whole replay is caught by its message id).
    if last.continues_with(repeat, end):
        return last
    if last.ended and end and repeat == last.count:
        # The same end again: a new streak always opens with a step (TikTok sends at least two messages
        # even for a single Rose), so a lone end repeating the count is never a second streak.
        return last
    return None


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
        # (viewer, gift id, group id) -> its recent streaks, oldest first.
        self._streaks: dict[tuple[object, object, object], list[_Streak]] = {}
        # (viewer, gift id, group id) -> TikTok's creation time (ms) of the newest step of a streak already
        # forgotten: a message created before it belongs to a streak that was committed long ago.
        self._horizon: dict[tuple[object, object, object], int] = {}
        self.late = 0
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
        open_streaks = sum(1 for streaks in self._streaks.values() for s in streaks if not s.ended)
        return {"dropped": self.dropped, "duplicates": self.duplicates, "stale": self.stale, "late": self.late,
                "streaks": open_streaks}  # fmt: skip

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
        end = bool(getattr(event, "repeat_end", 0))
        common = getattr(event, "common", None)
        created_ms = int(getattr(common, "create_time", 0) or 0) if common is not None else 0
        if created_ms and created_ms <= self._horizon.get(key, 0):
            self.late += 1  # a step of a streak committed and forgotten long ago: never count it again
            return _EMPTY
        out = _EMPTY
        streaks = self._streaks.get(key)
        streak = _streak_for(streaks, repeat, end, created_ms) if streaks else None
        if streak is None:
            streak = _Streak(handle, user_id, nickname, diamonds, repeat, 0, now)
            if streaks is None:
                streaks = self._streaks[key] = []
            streaks.append(streak)
            if len(streaks) > STREAKS_PER_KEY:
                oldest = streaks.pop(0)
                self._forget(key, oldest)
                out = self._commit(oldest, now)  # forgotten early, but never with coins unpaid
        streak.step(repeat, diamonds, created_ms, now)
        if not end:
            return out  # mid-streak: counted once, at its end (or by flush_stale)
        streak.ended = True
        return out + self._commit(streak, now, msg_id)

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
        are forgotten once they have been quiet for a long while (an ended streak after a minute, one whose
        end never came after ten, as its end may still be on its way).
        """
        now = self.clock() if now is None else now
        ended_after = max(60.0, 6 * self.streak_timeout)
        open_after = max(600.0, 60 * self.streak_timeout)
        out: list[EngagementEvent] = []
        for key, streaks in list(self._streaks.items()):
            for streak in streaks:
                if now - streak.updated >= self.streak_timeout and streak.count > streak.committed:
                    out.extend(self._commit(streak, now))
            kept = [s for s in streaks if now - s.updated < (ended_after if s.ended else open_after)]
            if len(kept) != len(streaks):
                for streak in streaks:
                    if streak not in kept:
                        self._forget(key, streak)
                if kept:
                    self._streaks[key] = kept
                else:
                    del self._streaks[key]
        return out

    def _forget(self, key: tuple[object, object, object], streak: _Streak) -> None:
        if streak.newest_ms > self._horizon.get(key, 0):
            self._horizon[key] = streak.newest_ms

    def flush_all(self) -> list[EngagementEvent]:
        """Commit every unfinished streak now (the connection ended, or the bot shuts down).

        Streaks stay known, so an end replayed after a reconnect (or a streak that goes on) adds only the
        difference.
        """
        now = self.clock()
        out: list[EngagementEvent] = []
        for streaks in self._streaks.values():
            for streak in streaks:
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


def reuse_proto_validators() -> None:
    """Make betterproto2 build each message class's pydantic validator once, not on every message it parses.

    betterproto2 (0.9.1, which TikTokLive 7.0.1 pins; 0.10.0 is the same) validates every parsed message with
    ``pydantic_core.SchemaValidator(cls.__pydantic_core_schema__)``, compiling the class's schema afresh each
    time: 37% of the connection process's CPU in a 2,000 events/s live (``bench.live_throughput`` has the
    rates). This keeps one validator per class and validates exactly as before. Idempotent.
    """
    import betterproto2
    import pydantic_core

    if getattr(betterproto2.Message._validate, "reuses_validators", False):
        return
    validators: dict[type, pydantic_core.SchemaValidator] = {}

    def _validate(self: betterproto2.Message) -> None:
        cls = type(self)
        validator = validators.get(cls)
        if validator is None:  # only a pydantic class is ever kept, so the library's check runs once per class
            if not self._is_pydantic():
                raise TypeError("Validation is only available for pydantic dataclasses.")
            validator = validators[cls] = pydantic_core.SchemaValidator(cls.__pydantic_core_schema__)  # type: ignore[attr-defined]
        values = self.__dict__.copy()
        del values["_unknown_fields"]
        validator.validate_python(values)

    _validate.reuses_validators = True  # type: ignore[attr-defined]
    betterproto2.Message._validate = _validate  # type: ignore[method-assign]


def start_parsed_messages_from_defaults() -> None:
    """Make betterproto2 start each message it parses from its class's defaults, not from pydantic's ``__init__``.

    ``Message.parse`` builds an empty message with ``cls()`` and then reads the bytes into it. For the
    library's pydantic dataclasses that ``cls()`` runs the class's validator over its defaults (36 us for a
    ``User`` of 117 fields): a third of the connection process's CPU in a 2,000 events/s live (py-spy;
    ``bench.live_throughput`` has the rates). This copies the same defaults from a per-class template
    instead, with a fresh object from each default factory, and then parses and validates the whole message
    exactly as before. A class with an ``__init__`` or ``__post_init__`` of its own (``ExtendedGift``), or a
    default that is not a plain value, keeps ``cls()``. Idempotent.
    """
    import dataclasses
    import io

    import betterproto2
    from TikTokLive.proto import User

    if getattr(betterproto2.Message.parse, "starts_from_defaults", False):
        return
    pydantic_init = User.__init__.__code__  # every pydantic dataclass gets the same generated __init__
    plain_post_init = betterproto2.Message.__post_init__
    plans: dict[type, _Blank | None] = {}

    def plan_for(cls: type) -> _Blank | None:
        if getattr(cls.__init__, "__code__", None) is not pydantic_init or cls.__post_init__ is not plain_post_init:  # type: ignore[attr-defined,misc]
            return None
        defaults = cls().__dict__  # once per class: this also has pydantic build the class's schema
        fields = dataclasses.fields(cls)
        if defaults.keys() != {item.name for item in fields} | {"_unknown_fields"}:
            return None  # __init__ sets something a field list does not tell
        shared: dict[str, object] = {}
        fresh: list[tuple[str, Callable[[], object]]] = []
        for item in fields:
            if item.default_factory is not dataclasses.MISSING:
                fresh.append((item.name, item.default_factory))
            elif isinstance(item.default, (int, float, str, bytes, type(None), enum.Enum)):
                shared[item.name] = defaults[item.name]  # immutable: one object serves every message
            else:
                return None
        shared["_unknown_fields"] = b""  # what Message.__post_init__ sets
        return shared, tuple(fresh)

    def parse(cls: type[betterproto2.Message], data: bytes) -> betterproto2.Message:
        try:
            plan = plans[cls]
        except KeyError:
            plan = plans[cls] = plan_for(cls)
        if plan is None:
            message = cls()
        else:
            message = object.__new__(cls)
            values = message.__dict__
            values.update(plan[0])
            for name, factory in plan[1]:
                values[name] = factory()
        with io.BytesIO(data) as stream:
            return message.load(stream)

    parse.starts_from_defaults = True  # type: ignore[attr-defined]
    betterproto2.Message.parse = classmethod(parse)  # type: ignore[method-assign,assignment]

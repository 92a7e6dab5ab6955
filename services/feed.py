"""The change feed: services publish plain events about a guild; displays and the overlay subscribe.

Publishers know nothing of who listens. A subscriber is a plain callable that must not block (it schedules
its own work, usually through a ``services.refresh.Coalescer``); a failing subscriber is logged and never
stops the others or the publisher. Events are frozen dataclasses that carry the guild they concern, so a
subscriber can never confuse one guild's change with another's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """Something changed in one guild."""

    guild_id: int


@dataclass(frozen=True, slots=True)
class QueueChanged(FeedEvent):
    """A queue change: submit, approve, move, remove, play, clear, or a rating."""


@dataclass(frozen=True, slots=True)
class ScoresChanged(FeedEvent):
    """Points of some handles changed (an engagement flush, a reset, a link), so the Free order may move."""

    handles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SongPlayed(FeedEvent):
    """``/next`` played a submission (``public_id``) from ``line`` (a ``models.Line`` value)."""

    public_id: str
    line: str


@dataclass(frozen=True, slots=True)
class GiftPromoted(FeedEvent):
    """A gift moved a member's song into a paid line (``user_id``: the member whose coins reached the tier)."""

    public_id: str
    line: str
    handle: str
    coins: int
    user_id: int = 0


@dataclass(frozen=True, slots=True)
class HandleVerified(FeedEvent):
    """A member proved a TikTok handle is theirs (their link code appeared in the live chat)."""

    user_id: int
    handle: str


@dataclass(frozen=True, slots=True)
class LiveStarted(FeedEvent):
    """A TikTok LIVE session opened (or continued after a reconnect)."""

    session_id: int
    host: str


@dataclass(frozen=True, slots=True)
class LiveEnded(FeedEvent):
    """A TikTok LIVE session ended for good (its recap follows)."""

    session_id: int


@dataclass(frozen=True, slots=True)
class LiveConnected(FeedEvent):
    """The TikTok connection reached a live (``session_id`` is the session its events go to)."""

    host: str
    room_id: int | None
    session_id: int | None


@dataclass(frozen=True, slots=True)
class LiveDropped(FeedEvent):
    """The connection to a live ended without anyone asking (not sent for a user-initiated disconnect)."""

    host: str
    duration: float
    session_id: int | None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class LiveStatusChanged(FeedEvent):
    """The TikTok connection's state changed (connecting, waiting to retry, connected, idle)."""


@dataclass(frozen=True, slots=True)
class SettingsChanged(FeedEvent):
    """A guild setting was written."""


E = TypeVar("E", bound=FeedEvent)
Subscriber = Callable[[FeedEvent], None]


class ChangeFeed:
    """Fan-out of ``FeedEvent``s to subscribers, synchronously and in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[tuple[type[FeedEvent], ...], Subscriber]] = []

    def subscribe(self, callback: Subscriber, *kinds: type[FeedEvent]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of ``kinds`` (all events when none); returns an unsubscribe."""
        entry = (kinds or (FeedEvent,), callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, event: FeedEvent) -> None:
        """Deliver ``event`` to every interested subscriber; one failing subscriber does not stop the rest."""
        for kinds, callback in list(self._subscribers):
            if not isinstance(event, kinds):
                continue
            try:
                callback(event)
            except Exception:
                log.exception("feed subscriber %r failed on %s", callback, type(event).__name__)

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are active (a cog reload must not leave extra ones)."""
        return len(self._subscribers)

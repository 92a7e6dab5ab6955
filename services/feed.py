"""The change feed: services publish plain events about a guild; displays and the overlay subscribe.

Publishers know nothing of who listens. A subscriber is a plain callable that must not block (it schedules
its own work, usually through a ``services.refresh.Coalescer``); a failing subscriber is logged and never
stops the others or the publisher (``Subscription`` gives a subscriber its callbacks, the tasks they start
and one ``close`` for both). Events are frozen dataclasses that carry the guild they concern, so a
subscriber can never confuse one guild's change with another's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
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
    """A member proved a TikTok handle is theirs (their link code appeared in the live chat).

    ``previous_owner`` is whoever had linked it before without proof (the proof takes it over), if anyone.
    """

    user_id: int
    handle: str
    previous_owner: int | None = None


@dataclass(frozen=True, slots=True)
class LiveStarted(FeedEvent):
    """A TikTok LIVE session opened (or continued after a reconnect)."""

    session_id: int
    host: str


@dataclass(frozen=True, slots=True)
class LiveEnded(FeedEvent):
    """A TikTok LIVE session ended for good (its recap follows).

    ``reason``: "ended" (the host ended it, or a disconnect), "expired" (a drop and no reconnect within the
    grace window), or "recovered" (a crash had left it open; closed at the next start).
    """

    session_id: int
    reason: str = "ended"


@dataclass(frozen=True, slots=True)
class LiveConnected(FeedEvent):
    """The TikTok connection reached a live (``session_id`` is the session its events go to)."""

    host: str
    room_id: int | None
    session_id: int | None
    # True when this reconnect continues the session of a drop (within the grace window).
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class LiveDropped(FeedEvent):
    """The connection to a live ended without anyone asking (not sent for a user-initiated disconnect)."""

    host: str
    duration: float
    session_id: int | None
    last_error: str | None = None
    # How long the session waits for a reconnect before it ends (0: it ended with the drop).
    grace_seconds: int = 0


@dataclass(frozen=True, slots=True)
class LiveStatusChanged(FeedEvent):
    """The TikTok connection's state changed (connecting, waiting to retry, connected, idle)."""


@dataclass(frozen=True, slots=True)
class SettingsChanged(FeedEvent):
    """A guild setting was written."""


@dataclass(frozen=True, slots=True)
class WebAccessChanged(FeedEvent):
    """A guild's overlay or public page token was replaced or the page switched off: open pages re-check."""

    kind: str


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


class Subscription:
    """One subscriber's hold on the feed: its callbacks, the tasks they started, and one ``close`` for both.

        Feed callbacks must not block, so a subscriber with work to await per event runs it as a task
        (``spawn_on``). The subscription keeps a reference to every such task (the event loop keeps only weak
        ones, so an unreferenced task can vanish mid-run), logs a task's failure under the task's name (the
    subscriber, the event kind, the guild),
        and on ``close`` unsubscribes everything first and then waits for the tasks still running, so nothing
        new starts while the subscriber shuts down and nothing it started is cut off.
    """

    def __init__(self, feed: ChangeFeed, name: str) -> None:
        self.feed = feed
        self.name = name
        self._unsubscribe: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        """Whether anything is subscribed (so a ``start`` that subscribes can be idempotent)."""
        return bool(self._unsubscribe)

    def on(self, kind: type[E], callback: Callable[[E], None]) -> None:
        """Call ``callback(event)`` for every event of ``kind``, synchronously: it must not block."""

        def deliver(event: FeedEvent) -> None:
            if isinstance(event, kind):  # always: the feed delivers only ``kind``; this narrows the type
                callback(event)

        self._unsubscribe.append(self.feed.subscribe(deliver, kind))

    def spawn_on(self, kind: type[E], handler: Callable[[E], Coroutine[object, object, None]]) -> None:
        """Run ``handler(event)`` as a task for every event of ``kind``; a failure is logged, never raised."""
        self.on(kind, lambda event: self.spawn(handler(event), f"{self.name}-{type(event).__name__}-{event.guild_id}"))

    def spawn(self, work: Coroutine[object, object, None], name: str) -> None:
        """Run ``work`` as a task that ``close`` waits for; its failure is logged with the task's name."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # One event's failure must not stop the next; the traceback says what went wrong.
            log.error("%s: %s failed", self.name, task.get_name(), exc_info=exc)

    async def close(self) -> None:
        """Unsubscribe everything (idempotent), then wait for the tasks still running."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

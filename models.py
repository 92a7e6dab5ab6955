"""Plain domain objects shared by the data layer, the services and the cogs.

Nothing here imports discord or TikTokLive: these are the project's own types, built from database rows
by ``database.py`` and rendered by ``ui/``. Timestamps are UTC epoch seconds (floats) everywhere.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any


class Line(enum.StrEnum):
    """Every state a submission can be in; the four playable lines carry a priority."""

    BACK_TO_BACK = "BackToBack"
    DOUBLE_SKIP = "DoubleSkip"
    SKIP = "Skip"
    FREE = "Free"
    PENDING = "Pending Skips"
    PLAYED = "Played"
    REMOVED = "Removed"

    @property
    def priority(self) -> int | None:
        """0 is played first; ``None`` for lines that never play."""
        return _PRIORITY.get(self)

    @property
    def is_playable(self) -> bool:
        """True for the four lines ``/next`` takes from."""
        return self in _PRIORITY

    @property
    def is_active(self) -> bool:
        """True while the submission still waits to be played (a playable line or Pending Skips)."""
        return self in ACTIVE_LINES


_PRIORITY = {Line.BACK_TO_BACK: 0, Line.DOUBLE_SKIP: 1, Line.SKIP: 2, Line.FREE: 3}
PLAYABLE_LINES: tuple[Line, ...] = (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE)
ACTIVE_LINES: tuple[Line, ...] = (*PLAYABLE_LINES, Line.PENDING)


@dataclass(frozen=True, slots=True)
class Submission:
    """One song sent for review; ``line`` says where it is now."""

    id: int
    guild_id: int
    public_id: str
    user_id: int
    user_name: str
    artist: str
    title: str
    line: Line
    submitted_at: float
    entered_line_at: float
    link: str | None = None
    platform: str | None = None
    file_path: str | None = None
    file_name: str | None = None
    duration: float | None = None
    note: str | None = None
    tiktok_handle: str | None = None
    played_at: float | None = None
    played_from: Line | None = None
    removed_at: float | None = None
    rating: int | None = None
    line_entered_at: float | None = None  # played ones: when it entered the line it was played from

    @property
    def display_id(self) -> str:
        """The public id as people type it: ``#`` plus the short code."""
        return f"#{self.public_id}"

    @property
    def is_file(self) -> bool:
        """True when the song is an uploaded audio file rather than a link."""
        return self.file_path is not None

    def as_values(self) -> tuple[Any, ...]:
        """Every field in declaration order (``SUBMISSION_FIELDS``), the lines as their str values.

        A tuple of numbers and strings is one object the garbage collector stops tracking; a Submission
        stays tracked (``services.play_order`` keeps thousands of them this way).
        """
        values = [getattr(self, name) for name in SUBMISSION_FIELDS]
        for at in _LINE_FIELDS:
            if values[at] is not None:
                values[at] = values[at].value
        return tuple(values)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Submission:
        """The submission of ``as_values``, or of a database row selecting ``SUBMISSION_FIELDS`` in order."""
        fixed = list(values)
        for at in _LINE_FIELDS:
            if fixed[at] is not None:
                fixed[at] = Line(fixed[at])
        return cls(*fixed)


SUBMISSION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Submission))  # also its table's columns
_LINE_FIELDS = tuple(SUBMISSION_FIELDS.index(name) for name in ("line", "played_from"))


@dataclass(frozen=True, slots=True)
class PointsWeights:
    """How many points each kind of engagement is worth (per guild, SPEC section 6)."""

    like: int = 1
    comment: int = 2
    share: int = 5
    follow: int = 10
    subscribe: int = 25
    gift_coin: int = 2

    def with_changes(self, **changes: int) -> PointsWeights:
        """Return a copy with some weights replaced."""
        return replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The weight names, in display order."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, slots=True)
class GiftTiers:
    """Coins a linked handle must gift in one live to be moved into each paid line."""

    skip: int = 1000
    double_skip: int = 2000
    back_to_back: int = 5000

    def line_for(self, coins: int) -> Line | None:
        """The best paid line reached by ``coins``, or ``None``."""
        for threshold, line in self.thresholds():
            if threshold > 0 and coins >= threshold:
                return line
        return None

    def thresholds(self) -> list[tuple[int, Line]]:
        """(coins, line) pairs, best line first."""
        return [(self.back_to_back, Line.BACK_TO_BACK), (self.double_skip, Line.DOUBLE_SKIP), (self.skip, Line.SKIP)]


@dataclass(frozen=True, slots=True)
class EngagementCounts:
    """Counters of one handle since its last reset; points follow from the guild's weights."""

    likes: int = 0
    comments: int = 0
    shares: int = 0
    follows: int = 0
    subscribes: int = 0
    coins: int = 0

    def points(self, weights: PointsWeights) -> int:
        """Weighted sum of the counters."""
        return weighted_points(counter_values(self), weights)

    def __add__(self, other: EngagementCounts) -> EngagementCounts:
        return EngagementCounts(
            self.likes + other.likes,
            self.comments + other.comments,
            self.shares + other.shares,
            self.follows + other.follows,
            self.subscribes + other.subscribes,
            self.coins + other.coins,
        )


counter_values: Callable[[EngagementCounts], tuple[int, ...]] = operator.attrgetter(
    *(f.name for f in fields(EngagementCounts))
)
"""An ``EngagementCounts`` as a plain tuple in its field order (the order ``weighted_points`` takes)."""


def weighted_points(counters: Sequence[int], weights: PointsWeights) -> int:
    """Points of counters given in ``EngagementCounts``' field order: the one formula (SPEC 6).

    ``EngagementCounts.points`` uses it, and so does the play order, which keeps counters as plain tuples.
    """
    likes, comments, shares, follows, subscribes, coins = counters
    return (
        likes * weights.like
        + comments * weights.comment
        + shares * weights.share
        + follows * weights.follow
        + subscribes * weights.subscribe
        + coins * weights.gift_coin
    )


@dataclass(frozen=True, slots=True)
class Handle:
    """A TikTok handle seen on a live or linked by a user, with its ledger counters."""

    guild_id: int
    handle: str
    counts: EngagementCounts = field(default_factory=EngagementCounts)
    user_id: int | None = None
    verified: bool = False
    nickname: str | None = None
    tiktok_user_id: int | None = None
    last_seen: float | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A submission in play order: its 1-based position, and for Free its score and breakdown."""

    position: int
    submission: Submission
    score: int = 0
    counts: EngagementCounts = field(default_factory=EngagementCounts)


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """Per-guild configuration; channel and role ids are ``None`` when unset."""

    guild_id: int
    free_open: bool = True
    reviewer_role_id: int | None = None
    admin_role_id: int | None = None
    bookmark_channel_id: int | None = None
    now_playing_channel_id: int | None = None
    metrics_channel_id: int | None = None
    debug_channel_id: int | None = None
    submission_channel_id: int | None = None
    live_queue_channel_id: int | None = None
    reviewer_channel_id: int | None = None
    weights: PointsWeights = field(default_factory=PointsWeights)
    gift_tiers: GiftTiers = field(default_factory=GiftTiers)
    like_cap_per_minute: int = 60
    submit_cooldown_seconds: int = 30
    max_pending_per_user: int = 3
    max_track_seconds: int | None = None
    # services/settings.py describes each (label, range, default); the migrations add the columns.
    display_refresh_seconds: float | None = None
    share_cap_per_minute: int = 5
    # Only handles the submitter proved (chat code, or an admin's link) add points to their Free songs.
    verified_handles_only: bool = True
    # A drop followed by a reconnect within this many seconds continues the same live session.
    reconnect_grace_seconds: int = 300
    free_every_nth: int = 0
    public_queue_enabled: bool = False
    file_link_expiry_hours: int = 24
    setup_category_id: int | None = None

    # Settings stored as 0/1 in SQLite.
    BOOL_KEYS = ("verified_handles_only", "public_queue_enabled")
    # Tunables added by issue 14, read and written as plain columns of the same name.
    TUNABLE_KEYS = (
        "display_refresh_seconds",
        "share_cap_per_minute",
        "verified_handles_only",
        "reconnect_grace_seconds",
        "free_every_nth",
        "public_queue_enabled",
        "file_link_expiry_hours",
        "setup_category_id",
    )
    # Seconds one review takes on average: the wait estimate until the live has a pace of its own.
    avg_review_seconds: int = 240

    CHANNEL_KEYS = (
        "bookmark_channel_id",
        "now_playing_channel_id",
        "metrics_channel_id",
        "debug_channel_id",
        "submission_channel_id",
        "live_queue_channel_id",
        "reviewer_channel_id",
    )


class DisplayKind(enum.StrEnum):
    """The self-updating messages the bot keeps in a guild."""

    LIVE_QUEUE = "live_queue"
    REVIEWER_MAIN = "reviewer_main"
    REVIEWER_PENDING = "reviewer_pending"
    PORTAL = "portal"


@dataclass(frozen=True, slots=True)
class Display:
    """Where a display message lives, and the hash of what it shows now."""

    guild_id: int
    kind: DisplayKind
    channel_id: int
    message_id: int | None
    content_hash: str | None = None


class BlockKind(enum.StrEnum):
    """What a blocklist entry matches."""

    USER = "user"
    WORD = "word"
    DOMAIN = "domain"


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One blocklist rule of a guild."""

    guild_id: int
    kind: BlockKind
    value: str


class EventKind(enum.StrEnum):
    """Kinds of TikTok LIVE engagement, as the adapter reports them."""

    LIKE = "like"
    COMMENT = "comment"
    SHARE = "share"
    FOLLOW = "follow"
    SUBSCRIBE = "subscribe"
    GIFT = "gift"
    JOIN = "join"
    VIEWERS = "viewers"


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """One engagement from a live, in the project's own terms (see services/tiktok adapter).

    ``count`` is likes carried (LIKE), or 1; ``coins`` is the whole streak's value for GIFT
    (diamonds x repeat count); ``viewers`` only for VIEWERS; ``text`` is a comment's content.
    """

    kind: EventKind
    handle: str | None
    at: float
    count: int = 1
    coins: int = 0
    tiktok_user_id: int | None = None
    nickname: str | None = None
    msg_id: int | None = None
    text: str | None = None
    viewers: int | None = None
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class LiveSession:
    """One TikTok LIVE connection period, the unit of post-live analytics."""

    id: int
    guild_id: int
    host: str
    started_at: float
    room_id: int | None = None
    ended_at: float | None = None
    peak_viewers: int = 0
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class SessionStats:
    """What one handle did during one live session."""

    session_id: int
    handle: str
    counts: EngagementCounts
    gifts: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    joined_at: float | None = None
    nickname: str | None = None
    user_id: int | None = None

    @property
    def watch_seconds(self) -> float:
        """Time from joining (or first interaction) to the last interaction."""
        starts = [t for t in (self.joined_at, self.first_seen) if t is not None]
        if not starts or self.last_seen is None:
            return 0.0
        return max(0.0, self.last_seen - min(starts))

    @property
    def measured_watch_seconds(self) -> int | None:
        """Whole seconds from a viewer's first to last event; None when not measured (a single event)."""
        seconds = int(self.watch_seconds)
        return seconds if seconds > 0 else None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """Totals of a live session plus every handle's stats, most engaged first."""

    session: LiveSession
    totals: EngagementCounts
    gifts: int
    unique_viewers: int
    rows: list[SessionStats]


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One handle on the leaderboard: its rank, points and the member it is linked to (if any)."""

    rank: int
    handle: str
    points: int
    nickname: str | None = None
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class WebSettings:
    """How a guild's public queue page looks: submitted links hidden unless allowed.

    Whether the page is on at all is the ``public_queue_enabled`` setting (``GuildSettings``), one switch
    that ``/settings`` and ``/overlay public`` both write.
    """

    guild_id: int
    public_links: bool = False


@dataclass(frozen=True, slots=True)
class Supporter:
    """One handle's engagement in the current live, for the overlay's top supporters."""

    handle: str
    nickname: str | None
    points: int
    coins: int

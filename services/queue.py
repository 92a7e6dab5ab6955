"""The queue engine (SPEC section 2): every queue change goes through ``QueueService`` under one lock.

Invariants the service keeps (and the property tests check):

* each submission is in exactly one line;
* ``play_order`` is the only ordering: ``next`` plays what ``ordered_queue`` shows first, including the
  optional "every Nth song from Free" interleaving (``PlayOrder``; the guild's ``free_every_nth``);
* a user has at most one submission in Free or Pending Skips (the database enforces it too);
* the same link, or the same artist and title, is active at most once per guild;
* a Free score is read from the points ledger (when the order is built, and again for every handle whose
  points change), never stored with the row.

The order of each guild is kept sorted and updated in place on every change (``PlayOrder``; see the
consistency rules on ``QueueService``), including point changes reported by the engagement writer
(``scores_changed``), so displays and positions never show a stale order. Every change is
published on the change feed (``QueueChanged``; ``SongPlayed`` after ``next``); the service does not
know who listens.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from database import ConstraintError, Database, NewSubmission
from errors import (
    ActiveFreeExistsError,
    BlockedError,
    DuplicateSubmissionError,
    FreeLineClosedError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from models import (
    PLAYABLE_LINES,
    BlockKind,
    EngagementCounts,
    GuildSettings,
    Line,
    QueueEntry,
    Submission,
)
from services import validation
from services.feed import ChangeFeed, FeedEvent, QueueChanged, SettingsChanged, SongPlayed
from services.play_order import MAX_EVERY_NTH, Orderable, PlayOrder
from services.steps import cooperatively, rest

log = logging.getLogger(__name__)

# Names of the unique indexes (``database.ConstraintError.name``) behind two queue rules: one active Free
# or Pending submission per member, and the same link or the same artist and title active once per guild.
ONE_FREE = "one_free"
SAME_SONG = frozenset({"active_link", "active_song"})

# Gaps between plays longer than this are breaks between streams, not the pace of the queue.
_PACE_GAP_LIMIT = 30 * 60

_NEVER_SEEN = EngagementCounts()  # the counters of a handle the ledger does not have

RESCORE_CHUNK = 64
"""Handles read and re-keyed in one go after a flush (one read, then 0.4-1.0 ms of re-key at 10,000 active);
the event loop runs between chunks, so a live's 500 fans in one flush never hold it for the whole re-key."""


def _rescore(order: PlayOrder, *, chunk: dict[str, EngagementCounts], changed: list[int]) -> None:
    """``QueueService.scores_changed``'s change for one chunk of handles: re-key, note what moved."""
    changed.extend(order.set_handle_counts(chunk))


def play_order_key(submission: Orderable, score: int) -> tuple[int, int, float, int]:
    """THE ordering (SPEC 2): line priority, then Free by score, then entry time into the line, then id."""
    priority = submission.line.priority
    if priority is None:
        raise ValueError(f"{submission.line} is not a playable line")
    return (priority, -score if submission.line is Line.FREE else 0, submission.entered_line_at, submission.id)


# The live's own pace counts once this many gaps between plays are known; before, the configured average.
MIN_PACE_GAPS = 2
DEFAULT_REVIEW_SECONDS = 240


def estimate_seconds(
    play_times: Sequence[float],
    position: int,
    average_seconds: float = DEFAULT_REVIEW_SECONDS,
    *,
    now: float | None = None,
) -> float:
    """Estimated seconds until ``position`` plays (1 = the next ``/next``); never unknown.

    The median gap of recent plays (newest first in ``play_times``) once ``MIN_PACE_GAPS`` are known and the
    newest play is from this stretch of streaming; until then the guild's configured average review time.
    """
    fresh = now is None or not play_times or now - play_times[0] <= _PACE_GAP_LIMIT
    gaps = [a - b for a, b in itertools.pairwise(play_times) if 0 < a - b <= _PACE_GAP_LIMIT]
    pace = statistics.median(gaps) if fresh and len(gaps) >= MIN_PACE_GAPS else average_seconds
    return pace * max(position, 1)


@dataclass(frozen=True, slots=True)
class AudioFile:
    """An uploaded file already checked and stored durably (see ``services.audio``)."""

    path: str
    name: str
    duration: float | None


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated submission waiting for the skip question."""

    artist: str
    title: str
    note: str | None
    link: validation.ValidLink | None = None
    audio: AudioFile | None = None
    handle: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a submission stands: its line, position in play order (None if not playable) and ETA."""

    submission: Submission
    position: int | None
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class PlayResult:
    """What ``next`` played and what it was worth."""

    submission: Submission
    from_line: Line
    score: int
    counts: EngagementCounts
    remaining: int
    reset_handles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the play order: its entries (with positions), the total and the count per line.

    ``page`` is the page index after clamping, ``pages`` how many there are (at least one), ``first`` what
    plays next (for "Up next" on any page).
    """

    entries: list[QueueEntry]
    total: int
    line_totals: dict[Line, int]
    page: int = 0
    first: QueueEntry | None = None
    pages: int = 1


class QueueService:
    """Submit, approve, move, remove, play: the whole queue model, one lock, one ordering.

    The order of each guild is a ``PlayOrder`` updated in place after every change (O(k log n) for k
    changed submissions). Consistency rules, relied on by every method below:

    * a writer changes the database, then, without awaiting in between, bumps the guild's generation and
      applies the same change to the stored order (``_apply``); every applied change is idempotent (it
      sets a submission's state or a handle's counters as read after the commit), so applying it to an
      order built from a snapshot taken before or after the commit gives the same result;
    * a reader that finds no order, or one built with other weights or another "verified handles only"
      setting, builds one from one database snapshot under the lock (so writers wait instead of making
      it stale) and stores it only if the generation did not move while it read (issue 11 B1: a settings
      write does not take the lock), so a slow read never brings back an old order. Rows become models and
      the order is built in slices with the loop running between them: ten thousand songs never stall it;
    * a change of who owns a handle re-reads the contributions of the few Free songs it can count for
      (``handle_moved``); ``invalidate`` drops the order for bulk changes (every handle reset at once);
    * the every-Nth setting is read from the (cached) settings on every read and set on the order (O(1));
      a play is counted in the order's streak by the play's row id, so counting it twice is a no-op.
    """

    def __init__(self, db: Database, *, feed: ChangeFeed | None = None, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.feed = feed or ChangeFeed()
        self.clock = clock
        self._lock = asyncio.Lock()
        self._orders: dict[int, PlayOrder] = {}
        # Guilds whose stored order must be rebuilt before it is read again (it stays stored until then, so
        # the rebuild frees it a slice at a time: dropping 10,000 songs at once held the loop ~8 ms).
        self._stale: set[int] = set()
        # Bumped by every change: a read that started before a change must not store its order.
        self._generation: dict[int, int] = {}
        # A settings write may switch "every Nth from Free" on, off or to another N: the order people see
        # changes, so displays must redraw (the next read applies the new value).
        self.feed.subscribe(self._settings_changed, SettingsChanged)

    # ------------------------------------------------------------------ change notification

    def _notify(self, guild_id: int) -> None:
        self.feed.publish(QueueChanged(guild_id))

    def invalidate(self, guild_id: int) -> None:
        """Drop the order of a guild (a bulk change) and tell listeners; the next read rebuilds it."""
        self._drop(guild_id)
        self._notify(guild_id)

    def _bump(self, guild_id: int) -> None:
        """A change happened: a read that started before it must not store its order."""
        self._generation[guild_id] = self._generation.get(guild_id, 0) + 1

    def _drop(self, guild_id: int) -> None:
        """The stored order can no longer be trusted: the next read rebuilds it."""
        self._bump(guild_id)
        self._stale.add(guild_id)

    def _settings_changed(self, event: FeedEvent) -> None:
        self._bump(event.guild_id)
        self._notify(event.guild_id)

    def version(self, guild_id: int) -> int:
        """A number that moves on every change of the guild's queue (readers can tell a stale render)."""
        return self._generation.get(guild_id, 0)

    def _apply(self, guild_id: int, change: Callable[[PlayOrder], object]) -> None:
        """After a commit: bump the generation and apply the same change to the stored order (no await)."""
        self._bump(guild_id)
        order = self._orders.get(guild_id)
        if order is None:
            return
        try:
            change(order)
        except Exception:
            # Never read an order we could not update: the next reader rebuilds it from the database.
            self._stale.add(guild_id)
            log.exception("queue order update failed for guild %s; rebuilding", guild_id)

    async def _free_handles(self, submission: Submission) -> list[tuple[str, EngagementCounts]]:
        if submission.line is not Line.FREE:
            return []
        rows = await self.db.free_contributions(submission.guild_id, [submission.id])
        return [(handle, counts) for _sid, handle, counts in rows]

    async def _placed(self, submission: Submission) -> None:
        """A committed change put ``submission`` where it is now: update the order to match."""
        try:
            handles = await self._free_handles(submission)
        except BaseException:
            self._drop(submission.guild_id)
            raise
        self._apply(submission.guild_id, lambda order: order.put(submission, handles))

    async def scores_changed(self, guild_id: int, handles: Sequence[str]) -> None:
        """The points of some handles changed in the ledger (an engagement flush, a reset): re-key what they affect.

        Reads and re-keys ``RESCORE_CHUNK`` handles at a time, each chunk under the lock, O(k log n) in the
        order, with the event loop and the lock free in between; listeners hear of it only when an active
        submission's score moved (or when there is no kept order, which the next reader rebuilds from the
        ledger anyway).
        """
        async with self._lock:
            order = self._kept(guild_id)
            affecting = order.handles_affecting(sorted(set(handles))) if order is not None else []
            if not affecting:
                self._bump(guild_id)  # the ledger changed: an order being built from before it is not kept
        changed: list[int] = []
        for start in range(0, len(affecting), RESCORE_CHUNK):
            if start:
                # Between chunks, and outside the lock, so a /next or a submit (of any guild) waits for one
                # chunk at most. Each chunk is whole (every song of its handles re-keyed, the version bumped):
                # a reader in between sees a consistent order, as if the flush had ended there.
                await rest()
            handles_now = affecting[start : start + RESCORE_CHUNK]
            async with self._lock:
                if self._kept(guild_id) is None:  # dropped meanwhile: the next reader builds it afresh
                    break
                # Read a chunk at a time: 500 rows made into counters at once were ~2.5 ms of the loop.
                chunk = await self._ledger_counts(guild_id, handles_now)
                self._apply(guild_id, functools.partial(_rescore, chunk=chunk, changed=changed))
        if changed or order is None or self._kept(guild_id) is None:
            self._notify(guild_id)

    async def _ledger_counts(self, guild_id: int, handles: Sequence[str]) -> dict[str, EngagementCounts]:
        """The ledger's counters of ``handles`` (zero for one never seen); a failed read drops the kept order."""
        try:
            found = await self.db.handle_counts(guild_id, handles)
        except BaseException:
            self.invalidate(guild_id)
            raise
        return {handle: found.get(handle, _NEVER_SEEN) for handle in handles}

    async def handle_moved(self, guild_id: int, handle: str, users: Iterable[int | None]) -> None:
        """Who owns ``handle`` changed (a link, a proof in the live chat, an unlink, an admin reassign).

        ``users`` are its owners before and after (None for nobody). Only the Free songs it can count for
        change score (``PlayOrder.affected_by_owner``): their contributions are read again in one indexed
        query and re-keyed in place, O(k log n), instead of rebuilding the whole order.
        """
        async with self._lock:
            order = self._kept(guild_id)
            if order is None:
                self._bump(guild_id)
                self._notify(guild_id)
                return
            affected = order.affected_by_owner(handle, [user for user in users if user is not None])
            try:
                rows = await self.db.free_contributions(guild_id, affected) if affected else []
            except BaseException:
                self.invalidate(guild_id)
                raise
            changed: list[int] = []
            self._apply(guild_id, lambda order: changed.extend(order.set_contributions(affected, rows)))
        if changed:
            self._notify(guild_id)

    # ------------------------------------------------------------------ reading

    async def _order(self, guild_id: int, *, locked: bool = False) -> PlayOrder:
        """The guild's order, built first when there is none or its settings changed.

        ``locked``: the caller holds the queue lock (building takes it otherwise).
        """
        settings = await self.db.get_settings(guild_id)  # cached: no query once read
        order = self._current(guild_id, settings)
        if order is not None:
            return order
        if locked:
            return await self._build(guild_id, settings)
        async with self._lock:
            # Another reader may have built it while this one waited for the lock.
            return self._current(guild_id, settings) or await self._build(guild_id, settings)

    def _kept(self, guild_id: int) -> PlayOrder | None:
        """The stored order unless it must be rebuilt."""
        return None if guild_id in self._stale else self._orders.get(guild_id)

    def _current(self, guild_id: int, settings: GuildSettings) -> PlayOrder | None:
        order = self._kept(guild_id)
        if order is None or not order.matches(settings.weights, settings.verified_handles_only):
            return None
        order.set_every_nth(settings.free_every_nth)
        return order

    async def _build(self, guild_id: int, settings: GuildSettings) -> PlayOrder:
        generation = self._generation.get(guild_id, 0)
        # Read before the snapshot: a play committed in between is then counted by its own ``note_play``
        # (a different row id), and one committed before both is already in the streak (same row id).
        streak, last_play = await self.db.plays_since_free(guild_id, MAX_EVERY_NTH)
        snapshot = await self.db.queue_snapshot(guild_id, PLAYABLE_LINES)
        steps = PlayOrder.build_steps(
            snapshot.submissions,
            snapshot.contributions,
            snapshot.weights,
            play_order_key,
            proven_only=snapshot.proven_only,
            every_nth=settings.free_every_nth,
            streak=streak,
            last_play=last_play,
        )
        built = await cooperatively(steps)
        # A change happened while we were reading: our order may predate it, so it is returned to this
        # caller only and never stored over the newer state.
        if self._generation.get(guild_id, 0) == generation:
            # Builds are serialised by the lock: this replaces a stale order or one of other settings.
            old = self._orders.get(guild_id)
            self._orders[guild_id] = built
            self._stale.discard(guild_id)
            if old is not None:
                await cooperatively(old.release_steps())
        return built

    async def ordered_queue(self, guild_id: int) -> list[QueueEntry]:
        """Every playable submission in play order, with positions and Free scores."""
        return (await self._order(guild_id)).entries()

    async def queue_page(self, guild_id: int, page: int, per_page: int) -> QueuePage:
        """One page of the play order (O(log n + per_page)); a negative page counts from the end."""
        order = await self._order(guild_id)
        total = len(order)
        pages = max(1, -(-total // per_page))
        page = min(max(page + pages if page < 0 else page, 0), pages - 1)
        entries = order.page(page * per_page, per_page)
        first = entries[0] if page == 0 and entries else order.first()
        return QueuePage(entries, total, order.line_totals(), page, first, pages)

    async def first(self, guild_id: int) -> QueueEntry | None:
        """What plays next (O(log n))."""
        return (await self._order(guild_id)).first()

    async def order_view(self, guild_id: int) -> PlayOrder:
        """The current order for O(log n) reads of several songs at one instant (``PositionMemory``).

        Read-only by contract: callers use ``standing``, ``mark`` and ``removed_ahead`` and must not await
        between them, so all they read belongs to one version of the order.
        """
        return await self._order(guild_id)

    async def pending_head(self, guild_id: int, limit: int) -> tuple[list[Submission], int]:
        """The ``limit`` oldest Pending Skips and how many wait in all (cost: ``limit``, not the line)."""
        return await self.db.line_head(guild_id, Line.PENDING, limit)

    async def get(self, guild_id: int, public_id: str) -> Submission:
        """A submission by public id (``#`` optional); NotFoundError when unknown in this guild."""
        submission = await self.db.get_submission(guild_id, validation.parse_public_id(public_id))
        if submission is None:
            raise NotFoundError(f"No submission #{validation.parse_public_id(public_id)} in this server.")
        return submission

    async def placement(self, submission: Submission) -> Placement:
        """Position and estimated time of a submission (position None when it is not in a playable line)."""
        entry = (await self._order(submission.guild_id)).entry(submission.id)
        if entry is None:
            return Placement(submission, None, None)
        average = (await self.db.get_settings(submission.guild_id)).avg_review_seconds
        plays = await self.db.recent_play_times(submission.guild_id)
        eta = estimate_seconds(plays, entry.position, average, now=self.clock())
        return Placement(entry.submission, entry.position, eta)

    async def user_history(
        self, guild_id: int, user_id: int, *, page: int, per_page: int
    ) -> tuple[list[Placement], int]:
        """One page of a user's submissions (newest first) with placements, and the total count."""
        rows = await self.db.user_history(guild_id, user_id, limit=per_page, offset=page * per_page)
        total = await self.db.count_user_history(guild_id, user_id)
        return [await self.placement(s) for s in rows], total

    # ------------------------------------------------------------------ drafting and submitting

    def draft(
        self,
        *,
        artist: str | None,
        title: str | None,
        note: str | None,
        link: str | None = None,
        audio: AudioFile | None = None,
        handle: str | None = None,
    ) -> Draft:
        """Validate the form fields of a submission (raises ValidationError with a clear reason)."""
        clean_artist = validation.clean_text(artist, field="Artist", maximum=validation.ARTIST_MAX, required=True)
        clean_title = validation.clean_text(title, field="Song title", maximum=validation.TITLE_MAX, required=True)
        clean_note = validation.clean_text(note, field="Note", maximum=validation.NOTE_MAX, required=False)
        assert clean_artist is not None and clean_title is not None  # required=True guarantees text
        if (link is None) == (audio is None):
            raise ValidationError("A submission needs either a link or an audio file.")
        valid_link = validation.validate_link(link) if link is not None else None
        clean_handle = validation.normalize_handle(handle) if handle and handle.strip() else None
        return Draft(clean_artist, clean_title, clean_note, valid_link, audio, clean_handle)

    async def submit(
        self,
        guild_id: int,
        user_id: int,
        user_name: str,
        draft: Draft,
        *,
        skip: bool,
        exempt: bool = False,
    ) -> Placement:
        """Put a drafted song into Pending Skips (``skip``) or Free, applying every guard-rail (SPEC 2-3).

        In order: the blocklist, the Free line being open, the spam limits, one active Free or Pending
        song per member, the same song active once per guild, and the maximum track length.

        ``exempt`` (admins) skips the cooldown and the cap on waiting submissions, not the queue rules.
        """
        line = Line.PENDING if skip else Line.FREE
        key = validation.song_key(draft.artist, draft.title)
        async with self._lock:
            settings = await self.db.get_settings(guild_id)
            await self._check_blocklist(guild_id, user_id, draft)
            if line is Line.FREE and not settings.free_open:
                raise FreeLineClosedError(
                    "The Free line is closed right now. You can still submit a skip (answer Yes to the skip question)."
                )
            active = await self.db.user_active(guild_id, user_id)
            if not exempt:
                await self._check_spam(guild_id, user_id, settings, active)
            holder = next((s for s in active if s.line in (Line.FREE, Line.PENDING)), None)
            if holder is not None:
                raise ActiveFreeExistsError(
                    f"You already have {holder.display_id} waiting in {holder.line.value}. "
                    "Wait until it plays, or withdraw it with /mysubmissions."
                )
            duplicate = await self.db.find_active_duplicate(guild_id, draft.link.key if draft.link else None, key)
            if duplicate is not None:
                raise DuplicateSubmissionError(
                    f"That song is already in the queue ({duplicate.display_id}, {duplicate.line.value})."
                )
            if draft.audio and settings.max_track_seconds and (draft.audio.duration or 0) > settings.max_track_seconds:
                raise ValidationError(
                    f"That track is longer than this server allows ({settings.max_track_seconds // 60} min "
                    f"{settings.max_track_seconds % 60} s)."
                )
            new = NewSubmission(
                guild_id=guild_id,
                user_id=user_id,
                user_name=user_name,
                artist=draft.artist,
                title=draft.title,
                line=line,
                song_key=key,
                link=draft.link.url if draft.link else None,
                link_key=draft.link.key if draft.link else None,
                platform=draft.link.platform if draft.link else ("Audio file" if draft.audio else None),
                file_path=draft.audio.path if draft.audio else None,
                file_name=draft.audio.name if draft.audio else None,
                duration=draft.audio.duration if draft.audio else None,
                note=draft.note,
                tiktok_handle=draft.handle,
            )
            try:
                submission = await self.db.insert_submission(new, self.clock())
            except ConstraintError as exc:
                # The unique indexes are the last line of defence; the checks above normally answer first.
                if exc.name == ONE_FREE:
                    raise ActiveFreeExistsError("You already have a song waiting in Free or Pending Skips.") from exc
                if exc.name in SAME_SONG:
                    raise DuplicateSubmissionError("That song is already in the queue.") from exc
                raise
            await self._placed(submission)
        self._notify(guild_id)
        return await self.placement(submission)

    async def _check_blocklist(self, guild_id: int, user_id: int, draft: Draft) -> None:
        rules = await self.db.blocklist(guild_id)
        if not rules:
            return
        text = " ".join(filter(None, (draft.artist, draft.title, draft.note))).casefold()
        # The link's own host in normal form (not the duplicate key's): a rule on youtu.be, m.youtube.com or
        # an IDN domain in either spelling matches every alias and subdomain of it.
        host = draft.link.host if draft.link else ""
        for rule in rules:
            if rule.kind is BlockKind.USER and rule.value == str(user_id):
                raise BlockedError("You can't submit songs in this server.")
            if rule.kind is BlockKind.WORD and rule.value.casefold() in text:
                raise BlockedError("Your submission contains a word this server does not allow.")
            if rule.kind is BlockKind.DOMAIN and host and validation.domain_matches(host, rule.value):
                raise BlockedError(f"Links from {rule.value} are not accepted in this server.")

    async def _check_spam(self, guild_id: int, user_id: int, settings: GuildSettings, active: list[Submission]) -> None:
        # The cap guards against piles of unverified "I paid" claims: approved paid songs were verified by a
        # reviewer and Free has its own one-per-user rule, so only Pending Skips count (issue 11 B7).
        claims = sum(1 for s in active if s.line is Line.PENDING)
        if settings.max_pending_per_user and claims >= settings.max_pending_per_user:
            raise RateLimitedError(
                f"You already have {claims} skip{'s' if claims != 1 else ''} waiting for a reviewer to verify "
                f"(the limit is {settings.max_pending_per_user}). Wait until a reviewer handles them."
            )
        if settings.submit_cooldown_seconds:
            last = await self.db.last_submission_time(guild_id, user_id)
            if last is not None:
                wait = settings.submit_cooldown_seconds - (self.clock() - last)
                if wait > 0:
                    raise RateLimitedError(f"Slow down: you can submit again in {int(wait) + 1} s.")

    async def resubmit(
        self, guild_id: int, user_id: int, user_name: str, public_id: str, *, skip: bool, exempt: bool = False
    ) -> Placement:
        """Submit an old song of the user's again (a new row with the same song data).

        The skip question's answer for a song picked from history. Only the owner may: a forged pick of
        someone else's id fails.
        """
        old = await self.get(guild_id, public_id)
        if old.user_id != user_id:
            raise NotFoundError("You can only submit your own songs again.")
        draft = self.draft_from(old)
        return await self.submit(guild_id, user_id, user_name, draft, skip=skip, exempt=exempt)

    def draft_from(self, old: Submission) -> Draft:
        """A draft carrying an earlier submission's song data."""
        audio = AudioFile(old.file_path, old.file_name or "audio", old.duration) if old.file_path else None
        return self.draft(
            artist=old.artist,
            title=old.title,
            note=old.note,
            link=old.link if audio is None else None,
            audio=audio,
            handle=old.tiktok_handle,
        )

    # ------------------------------------------------------------------ transitions

    async def _transition(
        self, submission: Submission, target: Line, *, reset_handles: Sequence[str] = ()
    ) -> Submission:
        try:
            moved = await self.db.change_line(
                submission.guild_id,
                submission.id,
                expected=submission.line,
                target=target,
                now=self.clock(),
                reset_handles=reset_handles,
            )
        except ConstraintError as exc:
            if exc.name == ONE_FREE:
                raise ActiveFreeExistsError("That user already has another song in Free or Pending Skips.") from exc
            if exc.name in SAME_SONG:
                raise DuplicateSubmissionError("The same song is already active in the queue.") from exc
            raise
        if moved is None:
            raise InvalidTransitionError(f"{submission.display_id} changed meanwhile; try again.")
        if reset_handles:
            await self._reset_applied(moved, reset_handles)
        else:
            await self._placed(moved)
        return moved

    async def _reset_applied(self, played: Submission, handles: Sequence[str]) -> None:
        guild_id = played.guild_id
        counts = await self._ledger_counts(guild_id, handles)

        def change(order: PlayOrder) -> None:
            order.discard([played.id])
            order.set_handle_counts(counts)

        self._apply(guild_id, change)

    async def approve(self, guild_id: int, public_id: str, target: Line) -> Submission:
        """Pending Skips -> a paid line or Free (a reviewer verified or denied the payment)."""
        if not target.is_playable:
            raise InvalidTransitionError("A pending skip can only go into BackToBack, DoubleSkip, Skip or Free.")
        async with self._lock:
            submission = await self.get(guild_id, public_id)
            if submission.line is not Line.PENDING:
                raise InvalidTransitionError(
                    f"{submission.display_id} is not a pending skip (it is in {submission.line.value})."
                )
            moved = await self._transition(submission, target)
        self._notify(guild_id)
        return moved

    async def move(self, guild_id: int, public_id: str, target: Line) -> Submission:
        """Admin move between active lines (or to Removed); played and removed songs never go back."""
        if target is Line.PLAYED:
            raise InvalidTransitionError("Use /next to play a song; /move can't mark it played.")
        async with self._lock:
            submission = await self.get(guild_id, public_id)
            if not submission.line.is_active:
                raise InvalidTransitionError(
                    f"{submission.display_id} is {submission.line.value.lower()}; it can't be moved back. "
                    "The submitter can send it again from /mysubmissions."
                )
            if submission.line is target:
                raise InvalidTransitionError(f"{submission.display_id} is already in {target.value}.")
            moved = await self._transition(submission, target)
        self._notify(guild_id)
        return moved

    async def remove(self, guild_id: int, public_id: str) -> Submission:
        """Admin soft delete of an active submission."""
        return await self.move(guild_id, public_id, Line.REMOVED)

    async def withdraw(self, guild_id: int, user_id: int, public_id: str) -> Submission:
        """The owner takes back one of their active submissions."""
        async with self._lock:
            submission = await self.get(guild_id, public_id)
            if submission.user_id != user_id:
                raise NotFoundError("You can only withdraw your own submissions.")
            if not submission.line.is_active:
                raise InvalidTransitionError(f"{submission.display_id} is no longer waiting in the queue.")
            moved = await self._transition(submission, Line.REMOVED)
        self._notify(guild_id)
        return moved

    async def clear_free(self, guild_id: int) -> int:
        """Soft-remove every Free submission; returns how many."""
        async with self._lock:
            count = await self.db.clear_line(guild_id, Line.FREE, self.clock())
            self._apply(guild_id, lambda order: order.discard(order.ids_in(Line.FREE)))
        self._notify(guild_id)
        return count

    async def next(self, guild_id: int) -> PlayResult | None:
        """Archive the first submission in play order as Played; ``None`` when the queue is empty.

        A song played from Free resets, in the same transaction, the points that made up its score: every
        handle linked to its submitter, and its own handle when that is linked to nobody.
        """
        async with self._lock:
            order = await self._order(guild_id, locked=True)
            top = order.first()
            if top is None:
                return None
            submission = top.submission
            remaining = len(order) - 1  # counted now: the order is updated in place by the play below
            resets: tuple[str, ...] = ()
            if submission.line is Line.FREE:
                resets = await self._score_handles(submission)
            try:
                played = await self._transition(submission, Line.PLAYED, reset_handles=resets)
            except InvalidTransitionError:
                # The order we read no longer matches the database: drop it so the next try rereads.
                self.invalidate(guild_id)
                raise
            # No await since the transition updated the order: readers see the play and its count together.
            self._apply(guild_id, lambda order: order.note_play(played.id, submission.line))
        self._notify(guild_id)
        self.feed.publish(SongPlayed(guild_id, played.public_id, submission.line.value))
        return PlayResult(played, submission.line, top.score, top.counts, remaining, resets)

    async def _score_handles(self, submission: Submission) -> tuple[str, ...]:
        """Exactly the handles whose points make up a Free submission's score (they reset when it plays).

        Those are the submitter's linked handles (only the proven ones when the guild counts verified
        handles only) and the submission's own handle when nobody owns it and unproven handles count.
        A handle that added nothing keeps its points: playing one member's song never wipes another's.
        """
        settings = await self.db.get_settings(submission.guild_id)
        linked = await self.db.user_handles(submission.guild_id, submission.user_id)
        handles = {h.handle for h in linked if h.verified or not settings.verified_handles_only}
        own = submission.tiktok_handle
        if own and not settings.verified_handles_only and not await self.db.handle_owners(submission.guild_id, [own]):
            handles.add(own)
        return tuple(sorted(handles))

    async def promote_newest(self, guild_id: int, user_id: int, target: Line) -> Submission | None:
        """Move a user's newest Free or Pending submission into a paid line (a gift reward); None if none."""
        async with self._lock:
            active = await self.db.user_active(guild_id, user_id)
            candidates = [s for s in active if s.line in (Line.FREE, Line.PENDING)]
            if not candidates:
                return None
            newest = max(candidates, key=lambda s: s.submitted_at)
            moved = await self._transition(newest, target)
        self._notify(guild_id)
        return moved

    async def rate(self, guild_id: int, public_id: str, rating: int) -> Submission:
        """Store a reviewer's 1-10 score on a played submission."""
        if not 1 <= rating <= 10:
            raise ValidationError("Ratings go from 1 to 10.")
        submission = await self.get(guild_id, public_id)
        if submission.line is not Line.PLAYED:
            raise InvalidTransitionError("Only played songs can be rated.")
        await self.db.set_rating(guild_id, submission.id, rating)
        return await self.get(guild_id, public_id)

    async def set_free_open(self, guild_id: int, is_open: bool) -> None:
        """Open or close the Free line."""
        await self.db.update_settings(guild_id, free_open=is_open)
        self._notify(guild_id)  # the order itself is unchanged; displays show the line's state

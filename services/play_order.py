"""The play order of one guild, kept sorted and updated in place (issue 15.1).

``PlayOrder`` holds every playable submission in a ``SortedList`` keyed by ``play_order_key``, so a
change of k submissions costs O(k log n) instead of a rebuild, a position is an index lookup and a page
is a slice. It knows which handles make up each Free score (SPEC 2: the submitter's linked handles, and
the submission's own handle when it is linked to nobody), so a flush that changes the points of k
handles re-keys exactly the submissions those points belong to. It also knows each Free song's submitter
and named handle, so a change of who owns a handle touches only the few songs it can count for
(``affected_by_owner``, then ``set_contributions``).

``weights`` and ``proven_only`` are the settings the order was built with: a reader that finds other
settings rebuilds it (every Free score depends on them).

Optional fairness (SPEC 2, issue 12.9): with ``every_nth`` = N (0 = off, strict priority) every Nth song
comes from Free while a Free song waits. The rule depends only on stored state: ``streak`` is the number of
songs played from paid lines since the last Free play (read from the archive, see
``Database.plays_since_free``), and the next song is the top Free one once N-1 paid songs played in a row.
The sorted list keeps strict priority, in which every paid submission comes before every Free one, so the
played sequence interleaves two sorted runs: ``paid = keys[:p]`` and ``free = keys[p:]``. Positions,
pages and ``first`` map between that interleaving and the sorted list arithmetically, in O(log n) plus
the page size, without building the interleaved list.

Per song it keeps only tuples of numbers and strings (``_Item``, with the submission as ``_Row``) and
indexes of such tuples, never an object per song: CPython's collector stops tracking a tuple or dict that
holds nothing but such values once it has survived one collection, so a 10,000-song order adds nothing to
what every full collection walks. Holding a Submission, two EngagementCounts and three sets per song, it
added 3.45 tracked objects per song, each walked by every full collection (bench/queue_scale.py, "objects
the garbage collector tracks per song"; now 0.009). Submissions and counters are made again on the way
out, for the few entries a read returns.

It does no I/O and every method runs to completion without awaiting: the queue service mutates it under
its lock, and a reader in another coroutine sees the order either before or after a change, never half
of one. ``version`` counts the changes.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol, TypeVar

from sortedcontainers import SortedList

from models import (
    SUBMISSION_FIELDS,
    EngagementCounts,
    Line,
    PointsWeights,
    QueueEntry,
    Submission,
    counter_values,
    weighted_points,
)

OrderKey = tuple[int, int, float, int]
K = TypeVar("K")
V = TypeVar("V")

# One song of the order: its submission's fields, sort key, the handles behind its score, their summed
# counters (EngagementCounts' fields) and its score. Plain tuples, see the module docstring.
_Row = tuple[Any, ...]
_Counts = tuple[int, ...]
_Item = tuple[_Row, OrderKey, tuple[str, ...], _Counts, int]
_ROW: Final = 0
_KEY: Final = 1
_HANDLES: Final = 2
_COUNTS: Final = 3
_SCORE: Final = 4
# A set-valued index holds a tuple of ids while it is this small (untracked, see above), a set beyond.
_SMALL = 16
_Ids = tuple[int, ...] | set[int]

# Where a ``_Row`` (``Submission.as_values``) holds what the indexes and the key need.
_ID, _USER, _LINE, _ENTERED, _NAMED = (
    SUBMISSION_FIELDS.index(name) for name in ("id", "user_id", "line", "entered_line_at", "tiktok_handle")
)
_FREE = Line.FREE.value
_LINES = {line.value: line for line in Line}
_NO_COUNTS: _Counts = counter_values(EngagementCounts())


class Orderable(Protocol):
    """What the play order's key reads of a song: a Submission has it, and so has ``_Placed``."""

    @property
    def id(self) -> int:
        """The row id (the last tie-break)."""

    @property
    def line(self) -> Line:
        """The playable line it waits in."""

    @property
    def entered_line_at(self) -> float:
        """When it entered that line (the tie-break of equal scores)."""


class _Placed(NamedTuple):
    """A song's ``Orderable`` fields read from its ``_Row``: a re-key needs these three, not a Submission."""

    id: int
    line: Line
    entered_line_at: float


# The largest N the setting accepts (services.settings): a longer streak never changes the order.
MAX_EVERY_NTH = 50

# Rows handled between two pauses of ``build_steps`` (under 1.5 ms of work each on these machines).
BUILD_STEP = 150

# Removals (not plays) remembered for "Since you last looked"; a look that is older than the oldest one
# kept is explained without them (see ``removed_ahead``). Bounds the work of one look per song.
DEPARTURE_LOG = 256

_tokens = itertools.count(1)


def describe_rule(every_nth: int) -> str:
    """The play-order rule in words, for /help and /show-settings."""
    if every_nth < 2:
        return "Strict priority: paid lines always play first; Free plays when they are empty."
    nth = _ordinal(every_nth)
    paid = "1 paid song" if every_nth == 2 else f"{every_nth - 1} paid songs"
    return (
        f"Every {nth} song comes from Free: after {paid} in a row, the top Free song plays next "
        "(when one is waiting). Positions and times already count this."
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one submission stands now, split by what is ahead of it (all O(log n) to compute).

    ``paid_ahead`` / ``free_ahead``: how many songs of the paid lines / of Free play before it.
    """

    submission: Submission
    position: int
    paid_ahead: int
    free_ahead: int
    key: OrderKey


@dataclass(frozen=True, slots=True)
class Mark:
    """A point in an order's history: which order object (``token``) and its monotonic departure counters.

    ``plays_paid`` / ``plays_free`` count the songs played from paid lines / from Free, ``removals`` the
    submissions that left the order otherwise (removed, withdrawn, cleared, moved to Pending Skips).
    """

    token: int
    plays_paid: int
    plays_free: int
    removals: int


@dataclass(frozen=True, slots=True)
class _Departure:
    submission_id: int
    key: OrderKey
    free: bool


class PlayOrder:
    """Playable submissions of one guild in play order, with their Free scores."""

    def __init__(
        self, weights: PointsWeights, key: Callable[[Orderable, int], OrderKey], *, proven_only: bool = True
    ) -> None:
        self.weights = weights
        self.proven_only = proven_only
        self._key = key
        self._keys: SortedList = SortedList()
        self._items: dict[int, _Item] = {}
        self._by_handle: dict[str, _Ids] = {}
        # Free songs by submitter and by the handle they name: who a change of a handle's owner can affect.
        self._free_by_user: dict[int, _Ids] = {}
        self._free_naming: dict[str, _Ids] = {}
        self._handle_counts: dict[str, _Counts] = {}
        self._per_line: Counter[str] = Counter()  # by the line's str value
        self.version = 0
        # Every Nth song from Free (0 = strict priority), the paid plays since the last Free play, and the
        # row id of the latest play those count (so applying the same play twice counts it once).
        self.every_nth = 0
        self.streak = 0
        self.last_play: int | None = None
        # Departure counters for "Since you last looked" (services.positions): monotonic within this object;
        # ``token`` tells one order object from a rebuilt one, whose counters start again.
        self.token = next(_tokens)
        self._plays = {False: 0, True: 0}  # keyed by "played from Free"
        self._removals = 0
        self._departures: deque[_Departure] = deque(maxlen=DEPARTURE_LOG)

    @classmethod
    def build_steps(
        cls,
        submissions: Sequence[Submission],
        contributions: Sequence[tuple[int, str, EngagementCounts]],
        weights: PointsWeights,
        key: Callable[[Orderable, int], OrderKey],
        *,
        proven_only: bool = True,
        every_nth: int = 0,
        streak: int = 0,
        last_play: int | None = None,
        step: int = BUILD_STEP,
    ) -> Generator[None, None, PlayOrder]:
        """An order from scratch, ``step`` rows at a time: pauses between slices, returns the order.

        ``services.steps`` runs it (at once, or yielding to the event loop at every pause).

        ``submissions`` and ``(submission id, handle, counters)`` behind each score; ``proven_only``: the
        setting the contributions were read with; ``every_nth``, ``streak`` and ``last_play``: the fairness
        setting and the archive's state (see ``note_play``).

        The caller may let other work run at each pause (the queue service yields to the event loop): ten
        thousand songs are ~50 ms of Python, which must not stall every interaction for that long. Nothing
        else sees the order before it is returned.
        """
        order = cls(weights, key, proven_only=proven_only)
        order.every_nth = every_nth
        order.streak = min(max(streak, 0), MAX_EVERY_NTH)
        order.last_play = last_play
        handles_of: dict[int, list[str]] = {}
        for start in range(0, len(contributions), step):
            for sid, handle, counts in contributions[start : start + step]:
                handles_of.setdefault(sid, []).append(handle)
                order._handle_counts[handle] = counter_values(counts)
            yield
        # One sort of 10,000 keys is ~10 ms of comparisons: sort each slice, then merge the sorted runs a
        # slice at a time. The sorted list then takes them in one linear pass, not n insertions.
        runs: list[list[OrderKey]] = []
        for start in range(0, len(submissions), step):
            run = []
            for submission in submissions[start : start + step]:
                item = order._item(submission.as_values(), tuple(handles_of.get(submission.id, ())), submission)
                order._index(item)
                run.append(item[_KEY])
            run.sort()
            runs.append(run)
            yield
        merged = heapq.merge(*runs)
        keys: list[OrderKey] = []
        while chunk := list(itertools.islice(merged, step)):
            keys.extend(chunk)
            yield
        order._keys = SortedList(keys)
        return order

    def release_steps(self, step: int = BUILD_STEP) -> Generator[None, None, None]:
        """Empty a replaced order a slice at a time (freeing 10,000 songs at once is ~8 ms of the loop).

        Only for an order nobody reads any more: it is left empty.
        """
        yield from _emptied(self._items, step)
        yield from _emptied(self._free_by_user, step)
        yield from _emptied(self._free_naming, step)
        yield from _emptied(self._by_handle, step)
        yield from _emptied(self._handle_counts, step)
        self._keys = SortedList()  # what is left is the keys' tuples of numbers (~1 ms for 10,000)
        self._per_line.clear()

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, submission_id: object) -> bool:
        return submission_id in self._items

    def position(self, submission_id: int) -> int | None:
        """1-based position in play order (O(log n)); None when the submission is not playable."""
        item = self._items.get(submission_id)
        return None if item is None else self._played_at(self._keys.index(item[_KEY])) + 1

    def entry(self, submission_id: int) -> QueueEntry | None:
        """The entry of one submission with its current position."""
        item = self._items.get(submission_id)
        if item is None:
            return None
        return _entry(self._played_at(self._keys.index(item[_KEY])) + 1, item)

    def first(self) -> QueueEntry | None:
        """What plays next."""
        return self.page(0, 1)[0] if self._keys else None

    def page(self, offset: int, limit: int) -> list[QueueEntry]:
        """Entries ``offset .. offset+limit-1`` in play order (O(log n + limit))."""
        offset = max(offset, 0)
        stop = min(offset + max(limit, 0), len(self._keys))
        if offset >= stop:
            return []
        keys = self._interleaved_keys(offset, stop) if self._interleaving() else self._keys.islice(offset, stop)
        return [_entry(position, self._items[key[-1]]) for position, key in enumerate(keys, start=offset + 1)]

    def entries(self) -> list[QueueEntry]:
        """The whole order."""
        return self.page(0, len(self._keys))

    def standing(self, submission_id: int) -> Standing | None:
        """Position of one submission and how many paid / Free songs play before it (O(log n))."""
        item = self._items.get(submission_id)
        if item is None:
            return None
        key = item[_KEY]
        index = self._keys.index(key)
        played_at = self._played_at(index)
        paid = len(self._keys) - self._per_line[_FREE]
        submission = Submission.from_values(item[_ROW])
        if submission.line is Line.FREE:
            free_ahead = index - paid  # Free songs keep their sorted order among themselves
            return Standing(submission, played_at + 1, played_at - free_ahead, free_ahead, key)
        return Standing(submission, played_at + 1, index, played_at - index, key)

    def mark(self) -> Mark:
        """The departure counters now (O(1))."""
        return Mark(self.token, self._plays[False], self._plays[True], self._removals)

    def removed_ahead(self, since: Mark, key: OrderKey) -> tuple[int, int] | None:
        """Removals since ``since`` whose key sorts before ``key``, as (paid, Free); None when not known.

        Unknown when ``since`` belongs to another order object or more removals happened than are kept.
        The comparison is by sort key: with every Nth song from Free, a removed song of the other kind of
        line is counted by where it sorts, not by where it would have played. O(DEPARTURE_LOG).
        """
        if since.token != self.token:
            return None
        missing = self._removals - since.removals
        if missing > len(self._departures):
            return None
        paid = free = 0
        for departure in itertools.islice(reversed(self._departures), missing):
            if departure.key < key:
                if departure.free:
                    free += 1
                else:
                    paid += 1
        return paid, free

    def line_totals(self) -> dict[Line, int]:
        """How many submissions wait in each playable line."""
        return {Line(line): count for line, count in self._per_line.items() if count}

    def handles_affecting(self, handles: Iterable[str]) -> list[str]:
        """Those of ``handles`` whose points count towards a submission in the order."""
        return [h for h in handles if self._by_handle.get(h)]

    def affected_by_owner(self, handle: str, users: Iterable[int]) -> list[int]:
        """Free songs whose score may change when ``handle`` moves between ``users`` (or to or from nobody).

        Those are the songs it counts for now, the songs of ``users`` (it may start or stop counting for
        them) and the songs naming it (a named handle counts only while nobody owns it). O(1) per song.
        """
        affected = {*self._by_handle.get(handle, ()), *self._free_naming.get(handle, ())}
        for user in users:
            affected.update(self._free_by_user.get(user, ()))
        return sorted(affected)

    def matches(self, weights: PointsWeights, proven_only: bool) -> bool:
        """Whether the order was built with these settings (otherwise every Free score may differ)."""
        return self.weights == weights and self.proven_only == proven_only

    # ------------------------------------------------------------------ changing (each call is one version)

    def put(self, submission: Submission, handles: Sequence[tuple[str, EngagementCounts]] = ()) -> None:
        """Insert or replace a submission (its line, entry time or handles changed); drops it if unplayable.

        ``handles`` are the handles behind a Free score with their counters; ignored outside Free.
        """
        if not submission.line.is_playable:
            self._depart(submission.id)
        self._remove(submission.id)
        if submission.line.is_playable:
            free = submission.line is Line.FREE
            item = self._item(submission.as_values(), tuple(h for h, _ in handles) if free else (), submission)
            self._index(item)
            self._keys.add(item[_KEY])
            if free and handles:
                # Fresher counters re-key every submission sharing a handle, this one included.
                self._set_counts(dict(handles))
        self.version += 1

    def discard(self, submission_ids: Iterable[int]) -> None:
        """Remove submissions (played, removed, cleared); unknown ids are ignored."""
        for submission_id in submission_ids:
            self._depart(submission_id)
            self._remove(submission_id)
        self.version += 1

    def set_every_nth(self, every_nth: int) -> None:
        """The fairness setting changed (O(1): the interleaving is computed on read)."""
        if every_nth != self.every_nth:
            self.every_nth = every_nth
            self.version += 1

    def note_play(self, submission_id: int, from_line: Line) -> None:
        """A submission was played from ``from_line``: count it in the streak of paid plays.

        Idempotent: the play that is already the latest one counted (``last_play``, also read from the
        archive when the order is built) is not counted again, so applying a play to an order built after
        its commit changes nothing.
        """
        if submission_id != self.last_play:
            self.last_play = submission_id
            self.streak = 0 if from_line is Line.FREE else min(self.streak + 1, MAX_EVERY_NTH)
            # The play's departure was logged as a removal a moment ago (same change, no await between):
            # a play is the top of the order, ahead of every song still waiting.
            if self._departures and self._departures[-1].submission_id == submission_id:
                self._departures.pop()
                self._removals -= 1
            self._plays[from_line is Line.FREE] += 1
        self.version += 1

    def ids_in(self, line: Line) -> list[int]:
        """Row ids of the submissions in one line."""
        return [sid for sid, item in self._items.items() if item[_ROW][_LINE] == line.value]

    def set_handle_counts(self, counts: Mapping[str, EngagementCounts]) -> list[int]:
        """New counters of some handles (absolute, as read from the ledger); re-keys what they affect.

        Returns the ids of the submissions whose score changed. Applying the same counters twice is a
        no-op, so a late or repeated report can never drift the order away from the ledger.
        """
        changed = self._set_counts(counts)
        self.version += 1
        return changed

    def set_contributions(
        self, submission_ids: Iterable[int], contributions: Iterable[tuple[int, str, EngagementCounts]]
    ) -> list[int]:
        """The handles behind some Free songs' scores, as read afresh (ownership changed); re-keys them.

        ``contributions`` lists ``(submission id, handle, counters)`` for the songs of ``submission_ids``
        (a song with none scores 0). Songs not in the order are ignored. Returns the ids whose score or
        place changed; applying the same contributions twice is a no-op.
        """
        handles_of: dict[int, list[str]] = {}
        counts: dict[str, EngagementCounts] = {}
        for submission_id, handle, value in contributions:
            handles_of.setdefault(submission_id, []).append(handle)
            counts[handle] = value
        changed: list[int] = []
        for submission_id in submission_ids:
            old = self._items.get(submission_id)
            if old is None or old[_ROW][_LINE] != _FREE:
                continue
            self._unindex(old)
            self._handle_counts.update({h: counter_values(counts[h]) for h in handles_of.get(submission_id, ())})
            item = self._item(old[_ROW], tuple(handles_of.get(submission_id, ())))
            self._index(item)
            if item[_KEY] != old[_KEY]:
                self._keys.remove(old[_KEY])
                self._keys.add(item[_KEY])
            if item[_KEY] != old[_KEY] or item[_COUNTS] != old[_COUNTS]:
                changed.append(submission_id)
        # Fresher counters of a handle re-key every other song sharing it too.
        changed.extend(i for i in self._set_counts(counts) if i not in changed)
        self.version += 1
        return changed

    def _set_counts(self, counts: Mapping[str, EngagementCounts]) -> list[int]:
        changed: list[int] = []
        affected: set[int] = set()
        for handle, value in counts.items():
            if handle in self._by_handle or handle in self._handle_counts:
                self._handle_counts[handle] = counter_values(value)
            affected.update(self._by_handle.get(handle, ()))
        for submission_id in sorted(affected):
            old = self._items[submission_id]
            item = self._item(old[_ROW], old[_HANDLES])
            if item[_KEY] != old[_KEY] or item[_COUNTS] != old[_COUNTS]:
                self._keys.remove(old[_KEY])
                self._keys.add(item[_KEY])
                self._items[submission_id] = item
                changed.append(submission_id)
        return changed

    # ------------------------------------------------------------------ the every-Nth interleaving

    def _interleaving(self) -> bool:
        """True when the play order differs from the sorted list (the setting is on, both runs non-empty)."""
        free = self._per_line[Line.FREE]
        return self.every_nth >= 2 and 0 < free < len(self._keys)

    def _lead(self) -> int:
        """How many paid songs play before the first Free one (before the run of paid songs is capped)."""
        return max(self.every_nth - 1 - self.streak, 0)

    def _free_slot(self, j: int, paid: int) -> int:
        """0-based play position of the j-th Free song: each comes after N-1 more paid songs, while they last."""
        return min(paid, self._lead() + j * (self.every_nth - 1)) + j

    def _played_at(self, index: int) -> int:
        """0-based play position of the submission at ``index`` of the sorted list."""
        if not self._interleaving():
            return index
        free = self._per_line[Line.FREE]
        paid = len(self._keys) - free
        if index >= paid:
            return self._free_slot(index - paid, paid)
        lead = self._lead()
        frees_before = 0 if index < lead else min(free, (index - lead) // (self.every_nth - 1) + 1)
        return index + frees_before

    def _interleaved_keys(self, start: int, stop: int) -> list[OrderKey]:
        """The keys at play positions ``start .. stop-1`` (0-based), found without building the whole order."""
        free = self._per_line[Line.FREE]
        paid = len(self._keys) - free
        # Free songs placed before ``start``: the first j whose slot is at or after it (slots only grow).
        frees = bisect.bisect_left(range(free), start, key=lambda j: self._free_slot(j, paid))
        paids = start - frees
        paid_keys = iter(self._keys.islice(paids, paid))
        free_keys = iter(self._keys.islice(paid + frees, len(self._keys)))
        result: list[OrderKey] = []
        for position in range(start, stop):
            if frees < free and self._free_slot(frees, paid) == position:
                result.append(next(free_keys))
                frees += 1
            else:
                result.append(next(paid_keys))
        return result

    # ------------------------------------------------------------------ internals

    def _item(self, row: _Row, handles: tuple[str, ...], submission: Orderable | None = None) -> _Item:
        """The order's tuple for a song's packed fields (``submission``: the same song, when at hand).

        A re-key (``_set_counts``) passes the row alone: the key reads three of its fields through
        ``_Placed``, so 500 re-keyed songs are not 500 Submissions (~7 us each) and their counters stay
        tuples.
        """
        counts = self._summed(handles)
        score = weighted_points(counts, self.weights) if row[_LINE] == _FREE else 0
        if submission is None:
            submission = _Placed(row[_ID], _LINES[row[_LINE]], row[_ENTERED])
        return (row, self._key(submission, score), handles, counts, score)

    def _summed(self, handles: tuple[str, ...]) -> _Counts:
        """The counters of some handles added up (the handles behind one Free score)."""
        found = [value for handle in handles if (value := self._handle_counts.get(handle)) is not None]
        if len(found) == 1:
            return found[0]  # one handle behind a score: the common case
        return tuple(map(sum, zip(*found, strict=True))) if found else _NO_COUNTS

    def _index(self, item: _Item) -> None:
        row = item[_ROW]
        submission_id = row[_ID]
        self._items[submission_id] = item
        self._per_line[row[_LINE]] += 1
        for handle in item[_HANDLES]:
            _add(self._by_handle, handle, submission_id)
        if row[_LINE] == _FREE:
            _add(self._free_by_user, row[_USER], submission_id)
            if row[_NAMED]:
                _add(self._free_naming, row[_NAMED], submission_id)

    def _unindex(self, item: _Item) -> None:
        """Undo ``_index`` (the sorted keys are the caller's business)."""
        row = item[_ROW]
        submission_id = row[_ID]
        del self._items[submission_id]
        self._per_line[row[_LINE]] -= 1
        for handle in item[_HANDLES]:
            _discard(self._by_handle, handle, submission_id)
            if handle not in self._by_handle:
                self._handle_counts.pop(handle, None)  # nobody's score depends on it any more
        if row[_LINE] == _FREE:
            _discard(self._free_by_user, row[_USER], submission_id)
            if row[_NAMED]:
                _discard(self._free_naming, row[_NAMED], submission_id)

    def _depart(self, submission_id: int) -> None:
        """Log a submission leaving the order (``note_play`` turns the last one into a play)."""
        item = self._items.get(submission_id)
        if item is not None:
            self._removals += 1
            self._departures.append(_Departure(submission_id, item[_KEY], item[_ROW][_LINE] == _FREE))

    def _remove(self, submission_id: int) -> None:
        item = self._items.get(submission_id)
        if item is None:
            return
        self._keys.remove(item[_KEY])
        self._unindex(item)


def _emptied(table: dict[K, V], step: int) -> Generator[None, None, None]:
    """Empty a dict ``step`` entries at a time, pausing between slices."""
    while table:
        for _ in range(min(step, len(table))):
            table.popitem()
        yield


def _entry(position: int, item: _Item) -> QueueEntry:
    return QueueEntry(position, Submission.from_values(item[_ROW]), item[_SCORE], EngagementCounts(*item[_COUNTS]))


def _add(index: dict[K, _Ids], key: K, submission_id: int) -> None:
    """Add one id to a set-valued index: a tuple while it is small, a set once it grows past ``_SMALL``."""
    members = index.get(key, ())
    if isinstance(members, set):
        members.add(submission_id)
    elif submission_id not in members:
        index[key] = (*members, submission_id) if len(members) < _SMALL else {*members, submission_id}


def _discard(index: dict[K, _Ids], key: K, submission_id: int) -> None:
    """Remove one id from a set-valued index, dropping the key when it empties."""
    members = index.get(key)
    if members is None:
        return
    if isinstance(members, set):
        members.discard(submission_id)
    else:
        members = tuple(member for member in members if member != submission_id)
        index[key] = members
    if not members:
        del index[key]

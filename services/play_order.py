"""The play order of one guild, kept sorted and updated in place (issue 15.1).

``PlayOrder`` holds every playable submission in a ``SortedList`` keyed by ``play_order_key``, so a
change of k submissions costs O(k log n) instead of a rebuild, a position is an index lookup and a page
is a slice. It knows which handles make up each Free score (SPEC 2: the submitter's linked handles, and
the submission's own handle when it is linked to nobody), so a flush that changes the points of k
handles re-keys exactly the submissions those points belong to.

It does no I/O and every method runs to completion without awaiting: the queue service mutates it under
its lock, and a reader in another coroutine sees the order either before or after a change, never half
of one. ``version`` counts the changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sortedcontainers import SortedList

from models import EngagementCounts, Line, PointsWeights, QueueEntry, Submission

OrderKey = tuple[int, int, float, int]
_EMPTY = EngagementCounts()


@dataclass(slots=True)
class _Item:
    submission: Submission
    key: OrderKey
    handles: tuple[str, ...]
    counts: EngagementCounts
    score: int


class PlayOrder:
    """Playable submissions of one guild in play order, with their Free scores."""

    def __init__(self, weights: PointsWeights, key: Callable[[Submission, int], OrderKey]) -> None:
        self.weights = weights
        self._key = key
        self._keys: SortedList = SortedList()
        self._items: dict[int, _Item] = {}
        self._by_handle: dict[str, set[int]] = {}
        self._handle_counts: dict[str, EngagementCounts] = {}
        self._per_line: Counter[Line] = Counter()
        self.version = 0

    @classmethod
    def build(
        cls,
        submissions: Iterable[Submission],
        contributions: Iterable[tuple[int, str, EngagementCounts]],
        weights: PointsWeights,
        key: Callable[[Submission, int], OrderKey],
    ) -> PlayOrder:
        """An order from scratch: the submissions, and ``(submission id, handle, counters)`` behind each score."""
        order = cls(weights, key)
        handles_of: dict[int, list[str]] = {}
        for sid, handle, counts in contributions:
            handles_of.setdefault(sid, []).append(handle)
            order._handle_counts[handle] = counts
        keys = []
        for submission in submissions:
            item = order._item(submission, tuple(handles_of.get(submission.id, ())))
            order._index(item)
            keys.append(item.key)
        order._keys = SortedList(keys)  # one sort of n keys, not n insertions
        return order

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, submission_id: object) -> bool:
        return submission_id in self._items

    def position(self, submission_id: int) -> int | None:
        """1-based position in play order (O(log n)); None when the submission is not playable."""
        item = self._items.get(submission_id)
        return None if item is None else self._keys.index(item.key) + 1

    def entry(self, submission_id: int) -> QueueEntry | None:
        """The entry of one submission with its current position."""
        item = self._items.get(submission_id)
        if item is None:
            return None
        return QueueEntry(self._keys.index(item.key) + 1, item.submission, item.score, item.counts)

    def first(self) -> QueueEntry | None:
        """What plays next."""
        return self.page(0, 1)[0] if self._keys else None

    def page(self, offset: int, limit: int) -> list[QueueEntry]:
        """Entries ``offset .. offset+limit-1`` in play order (O(log n + limit))."""
        offset = max(offset, 0)
        result = []
        for position, key in enumerate(self._keys.islice(offset, offset + max(limit, 0)), start=offset + 1):
            item = self._items[key[-1]]
            result.append(QueueEntry(position, item.submission, item.score, item.counts))
        return result

    def entries(self) -> list[QueueEntry]:
        """The whole order."""
        return self.page(0, len(self._keys))

    def line_totals(self) -> dict[Line, int]:
        """How many submissions wait in each playable line."""
        return {line: count for line, count in self._per_line.items() if count}

    def handles_affecting(self, handles: Iterable[str]) -> list[str]:
        """Those of ``handles`` whose points count towards a submission in the order."""
        return [h for h in handles if self._by_handle.get(h)]

    # ------------------------------------------------------------------ changing (each call is one version)

    def put(self, submission: Submission, handles: Sequence[tuple[str, EngagementCounts]] = ()) -> None:
        """Insert or replace a submission (its line, entry time or handles changed); drops it if unplayable.

        ``handles`` are the handles behind a Free score with their counters; ignored outside Free.
        """
        self._remove(submission.id)
        if submission.line.is_playable:
            free = submission.line is Line.FREE
            item = self._item(submission, tuple(h for h, _ in handles) if free else ())
            self._index(item)
            self._keys.add(item.key)
            if free and handles:
                # Fresher counters re-key every submission sharing a handle, this one included.
                self._set_counts(dict(handles))
        self.version += 1

    def discard(self, submission_ids: Iterable[int]) -> None:
        """Remove submissions (played, removed, cleared); unknown ids are ignored."""
        for submission_id in submission_ids:
            self._remove(submission_id)
        self.version += 1

    def ids_in(self, line: Line) -> list[int]:
        """Row ids of the submissions in one line."""
        return [sid for sid, item in self._items.items() if item.submission.line is line]

    def set_handle_counts(self, counts: Mapping[str, EngagementCounts]) -> list[int]:
        """New counters of some handles (absolute, as read from the ledger); re-keys what they affect.

        Returns the ids of the submissions whose score changed. Applying the same counters twice is a
        no-op, so a late or repeated report can never drift the order away from the ledger.
        """
        changed = self._set_counts(counts)
        self.version += 1
        return changed

    def _set_counts(self, counts: Mapping[str, EngagementCounts]) -> list[int]:
        changed: list[int] = []
        affected: set[int] = set()
        for handle, value in counts.items():
            if handle in self._by_handle or handle in self._handle_counts:
                self._handle_counts[handle] = value
            affected.update(self._by_handle.get(handle, ()))
        for submission_id in sorted(affected):
            old = self._items[submission_id]
            item = self._item(old.submission, old.handles)
            if item.key != old.key or item.counts != old.counts:
                self._keys.remove(old.key)
                self._keys.add(item.key)
                self._items[submission_id] = item
                changed.append(submission_id)
        return changed

    # ------------------------------------------------------------------ internals

    def _item(self, submission: Submission, handles: tuple[str, ...]) -> _Item:
        counts = _EMPTY
        for handle in handles:
            counts = counts + self._handle_counts.get(handle, _EMPTY)
        score = counts.points(self.weights) if submission.line is Line.FREE else 0
        return _Item(submission, self._key(submission, score), handles, counts, score)

    def _index(self, item: _Item) -> None:
        self._items[item.submission.id] = item
        self._per_line[item.submission.line] += 1
        for handle in item.handles:
            self._by_handle.setdefault(handle, set()).add(item.submission.id)

    def _remove(self, submission_id: int) -> None:
        item = self._items.pop(submission_id, None)
        if item is None:
            return
        self._keys.remove(item.key)
        self._per_line[item.submission.line] -= 1
        for handle in item.handles:
            holders = self._by_handle.get(handle)
            if holders is not None:
                holders.discard(submission_id)
                if not holders:
                    # Nobody's score depends on it any more: forget its counters too.
                    del self._by_handle[handle]
                    self._handle_counts.pop(handle, None)

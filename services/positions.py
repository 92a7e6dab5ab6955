"""Why a song's position moved: the last position a member was shown, and what changed ahead of it.

``/queue`` (and "My position") call ``PositionMemory.observe`` with the current order; for every song of
the member that was shown before at another position, it returns a ``PositionMove`` that says what went
ahead (a paid song, a Free song with more points) or what made room (songs ahead played or left, or the
song passed others with its points). Kept in memory, bounded: after a restart the first look simply has
nothing to compare with.

A look costs O(log n) per song (issue 15): nothing is copied from the order. Each remembered song keeps
O(1) numbers: its position and line, how many paid and Free songs were ahead of it, and the order's
departure counters (``services.play_order.Mark``). The causes are derived from the differences:

* songs that left from ahead of it = the plays since (a play is always the top song) plus the removals
  since that sort before it;
* paid songs that went ahead = the change in paid songs ahead plus the paid ones that left; the same for
  Free gives "songs with more points went ahead"; a negative balance means the song passed that many.

These are net counts: when, between two looks, some Free songs passed it and it passed others, the
explanation gives the balance ("1 song with more points went ahead" for 3 ahead and 2 passed). When the
removals cannot be told (the order was rebuilt, or more removals happened than the order keeps), only
the changes that are certain are given; with no certain cause the text says "the queue changed".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from models import Line, Submission
from services.play_order import Mark, PlayOrder, Standing


@dataclass(frozen=True, slots=True)
class PositionMove:
    """A position that changed since the owner last saw it, and the causes counted."""

    submission: Submission
    old_position: int
    new_position: int
    paid_ahead: int = 0
    points_ahead: int = 0
    left_ahead: int = 0
    passed: int = 0
    old_line: Line | None = None


@dataclass(frozen=True, slots=True)
class _Seen:
    position: int
    line: Line
    paid_ahead: int
    free_ahead: int
    mark: Mark


class PositionMemory:
    """The last shown position of each song (per guild), least recently shown forgotten first."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[int, int], _Seen] = OrderedDict()

    def observe(self, guild_id: int, order: PlayOrder, submission_ids: Iterable[int]) -> list[PositionMove]:
        """Remember where ``submission_ids`` stand in ``order`` now; return the moves since the last look.

        Moves come in play order. Must be called without awaiting while reading ``order``.
        """
        mark = order.mark()
        standings = [s for s in (order.standing(sid) for sid in set(submission_ids)) if s is not None]
        standings.sort(key=lambda s: s.position)
        moves: list[PositionMove] = []
        for now in standings:
            key = (guild_id, now.submission.id)
            before = self._seen.pop(key, None)
            self._seen[key] = _Seen(now.position, now.submission.line, now.paid_ahead, now.free_ahead, mark)
            if before is None or before.position == now.position:
                continue
            moves.append(_explain(before, now, mark, order.removed_ahead(before.mark, now.key)))
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return moves


def _explain(before: _Seen, now: Standing, mark: Mark, removed: tuple[int, int] | None) -> PositionMove:
    sub = now.submission
    old_line = before.line if before.line is not sub.line else None
    if removed is None:
        # Removals unknown (see the module docstring): say only what is certain. Songs ahead that are
        # now fewer may have played, left or been passed; more paid songs ahead can only have gone ahead.
        gained = now.paid_ahead - before.paid_ahead
        return PositionMove(sub, before.position, now.position, paid_ahead=max(gained, 0), old_line=old_line)
    # Known removals imply the same order object, so its play counters are comparable too.
    left_paid = mark.plays_paid - before.mark.plays_paid + removed[0]
    left_free = mark.plays_free - before.mark.plays_free + removed[1]
    paid_in = now.paid_ahead - before.paid_ahead + left_paid
    free_in = now.free_ahead - before.free_ahead + left_free
    return PositionMove(
        submission=sub,
        old_position=before.position,
        new_position=now.position,
        paid_ahead=max(paid_in, 0),
        points_ahead=max(free_in, 0),
        left_ahead=left_paid + left_free,
        passed=max(-paid_in, 0) + max(-free_in, 0),
        old_line=old_line,
    )

"""Why a song's position moved: the last position a member was shown, and what changed ahead of it.

``/queue`` (and "My position") call ``PositionMemory.observe`` with the play order they show; for every
song of the member that was shown before at another position, it returns a ``PositionMove`` that says what
went ahead (a paid song, a Free song with more points) or what made room (songs ahead played or left, or
the song passed others with its points). Kept in memory, bounded: after a restart the first look simply
has nothing to compare with.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from models import Line, QueueEntry, Submission

PAID_LINES = frozenset({Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP})


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
    ahead: frozenset[int]


class PositionMemory:
    """The last shown position of each song (per guild), least recently shown forgotten first."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[int, int], _Seen] = OrderedDict()

    def observe(self, guild_id: int, entries: list[QueueEntry], submission_ids: Iterable[int]) -> list[PositionMove]:
        """Remember where ``submission_ids`` stand in ``entries`` now; return the moves since the last look."""
        wanted = set(submission_ids)
        moves: list[PositionMove] = []
        queued = {entry.submission.id: entry for entry in entries}
        for index, entry in enumerate(entries):
            sub = entry.submission
            if sub.id not in wanted:
                continue
            ahead = frozenset(e.submission.id for e in entries[:index])
            key = (guild_id, sub.id)
            before = self._seen.pop(key, None)
            self._seen[key] = _Seen(entry.position, sub.line, ahead)
            if before is None or before.position == entry.position:
                continue
            newcomers = [queued[i] for i in ahead - before.ahead]
            gone = before.ahead - ahead
            moves.append(
                PositionMove(
                    submission=sub,
                    old_position=before.position,
                    new_position=entry.position,
                    paid_ahead=sum(1 for e in newcomers if e.submission.line in PAID_LINES),
                    points_ahead=sum(1 for e in newcomers if e.submission.line is Line.FREE),
                    left_ahead=sum(1 for i in gone if i not in queued),
                    passed=sum(1 for i in gone if i in queued),
                    old_line=before.line if before.line is not sub.line else None,
                )
            )
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return moves

"""What the pages show, built from the services: plain dicts ready for JSON (the overlay) or a template.

The play order comes from ``QueueService.queue_page`` (the same order as ``/next`` and the pinned
displays; only the rows shown are read, never the whole order) and waiting times from
``estimate_seconds``; nothing here orders songs on its own. Only display names and song text leave this
module: no Discord ids, notes or links (links only where a page allows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from database import Database
from models import PLAYABLE_LINES, Line, LiveSession, QueueEntry, Submission
from services.queue import QueueService, estimate_seconds
from ui import palette

MAX_ENTRIES = 20  # the most "up next" rows any overlay can ask for
MAX_SUPPORTERS = 10
PUBLIC_PAGE_SIZE = 25

LINE_CLASSES = {
    Line.BACK_TO_BACK: "b2b",
    Line.DOUBLE_SKIP: "double",
    Line.SKIP: "skip",
    Line.FREE: "free",
    Line.PENDING: "pending",
}


def _song(sub: Submission) -> dict[str, object]:
    # A played song wears the badge of the line it was played from.
    line = sub.played_from or sub.line if sub.line is Line.PLAYED else sub.line
    return {
        "artist": sub.artist,
        "title": sub.title,
        "by": sub.user_name,
        "line": line.value,
        "badge": palette.badge(line),
        "cls": LINE_CLASSES.get(line, "other"),
    }


def _entry(entry: QueueEntry) -> dict[str, object]:
    row = _song(entry.submission) | {"position": entry.position}
    row["points"] = entry.score if entry.submission.line is Line.FREE else None
    return row


def eta_words(seconds: float | None) -> str:
    """A waiting time for people reading a phone: "now", "~4 min", "~1 h 20 min", or "—" without pace."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"~{minutes} min"
    return f"~{minutes // 60} h {minutes % 60:02d} min"


@dataclass(frozen=True, slots=True)
class PublicPage:
    """One page of the public queue."""

    rows: list[dict[str, object]]
    page: int
    pages: int
    total: int
    pending: int
    counts: list[dict[str, object]]


class Snapshots:
    """Builds the overlay state and the public queue pages of a guild."""

    def __init__(self, db: Database, queue: QueueService, current_session: Callable[[int], LiveSession | None]) -> None:
        self.db = db
        self.queue = queue
        self.current_session = current_session

    async def overlay(self, guild_id: int) -> dict[str, object]:
        """Everything every overlay widget needs (a page shows the widgets and row counts it asked for)."""
        head = await self.queue.queue_page(guild_id, 0, MAX_ENTRIES)  # only the rows an overlay can show
        settings = await self.db.get_settings(guild_id)
        played = await self.db.latest_played(guild_id)
        session = self.current_session(guild_id)
        supporters = []
        if session is not None:
            top = await self.db.session_supporters(session.id, settings.weights, MAX_SUPPORTERS)
            supporters = [
                {"name": s.nickname or f"@{s.handle}", "points": s.points, "coins": s.coins}
                for s in top
                if s.points > 0
            ]
        tiers = sorted(
            ((coins, line) for coins, line in settings.gift_tiers.thresholds() if coins > 0), key=lambda t: t[0]
        )
        goal = None
        if tiers:
            goal = {
                "coins": tiers[0][0],
                "line": tiers[0][1].value,
                "tiers": [{"coins": coins, "line": line.value} for coins, line in tiers],
            }
        return {
            "now": _song(played) if played else None,
            "next": [_entry(e) for e in head.entries],
            "lines": _counts(head.line_totals),
            "total": head.total,
            "supporters": supporters,
            "live": session is not None,
            "goal": goal,
        }

    async def public_page(self, guild_id: int, page: int, *, links: bool) -> PublicPage:
        """One page of every playable line in play order, with positions and estimated times."""
        # 1-based here, 0-based in the service (which clamps past the end); below 1 is the first page.
        shown = await self.queue.queue_page(guild_id, max(page, 1) - 1, PUBLIC_PAGE_SIZE)
        _, pending = await self.queue.pending_head(guild_id, 0)
        play_times = await self.db.recent_play_times(guild_id)
        pages, page = shown.pages, shown.page + 1
        rows = []
        for entry in shown.entries:
            row = _entry(entry)
            row["eta"] = eta_words(estimate_seconds(play_times, entry.position))
            link = entry.submission.link
            row["link"] = link if links and link and link.startswith(("https://", "http://")) else None
            rows.append(row)
        return PublicPage(rows, page, pages, shown.total, pending, _counts(shown.line_totals))


def _counts(totals: Mapping[Line, int]) -> list[dict[str, object]]:
    return [
        {"line": line.value, "badge": palette.badge(line), "cls": LINE_CLASSES[line], "count": totals.get(line, 0)}
        for line in PLAYABLE_LINES
    ]

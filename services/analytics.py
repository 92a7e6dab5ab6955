"""Post-live analytics (SPEC 7): a session's totals, the contributor table, and its CSV export."""

from __future__ import annotations

import csv
import io

from database import Database
from models import EngagementCounts, SessionStats, SessionSummary


async def summarize(db: Database, session_id: int) -> SessionSummary | None:
    """Totals and every handle's stats of a session, most engaged first; None for an unknown session."""
    session = await db.get_session(session_id)
    if session is None:
        return None
    rows = await db.session_stats(session_id)
    weights = (await db.get_settings(session.guild_id)).weights
    rows.sort(key=lambda r: (-r.counts.points(weights), -r.counts.coins, r.handle))
    totals = EngagementCounts()
    for row in rows:
        totals = totals + row.counts
    return SessionSummary(
        session=session,
        totals=totals,
        gifts=sum(r.gifts for r in rows),
        unique_viewers=len(rows),
        rows=rows,
    )


def format_duration(seconds: float) -> str:
    """``1h 02m``, ``12m 05s`` or ``40s``."""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


CSV_COLUMNS = (
    "handle",
    "nickname",
    "discord_user_id",
    "watch_seconds",
    "likes",
    "comments",
    "shares",
    "follows",
    "subscribes",
    "gifts",
    "coins",
    "first_seen",
    "last_seen",
    "simulated",
)


def to_csv(summary: SessionSummary) -> bytes:
    """The full contributor table as UTF-8 CSV (every row, not just the top 15)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    simulated = "yes" if summary.session.simulated else "no"  # /tiktok simulate, never a real live
    for row in summary.rows:
        writer.writerow(
            [
                _safe_cell(row.handle),
                _safe_cell(row.nickname or ""),
                row.user_id or "",
                int(row.watch_seconds),
                row.counts.likes,
                row.counts.comments,
                row.counts.shares,
                row.counts.follows,
                row.counts.subscribes,
                row.gifts,
                row.counts.coins,
                row.first_seen or "",
                row.last_seen or "",
                simulated,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def _safe_cell(text: str) -> str:
    # Spreadsheet apps run cells starting with these as formulas; a nickname must never become one.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def top_rows(summary: SessionSummary, limit: int = 15) -> tuple[list[SessionStats], list[SessionStats]]:
    """The first ``limit`` contributors and the rest."""
    return summary.rows[:limit], summary.rows[limit:]

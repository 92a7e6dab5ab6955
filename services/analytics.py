"""Post-live analytics (SPEC 7): a session's totals, the contributor table, its songs, and CSV exports."""

from __future__ import annotations

import csv
import io
import statistics
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from database import Database
from models import PLAYABLE_LINES, EngagementCounts, Line, LiveSession, SessionStats, SessionSummary, Submission


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
    """The full contributor table as UTF-8 CSV (every row, not just the top 15).

    Times are ISO 8601 UTC, watch time whole seconds and empty where it was not measured.
    """
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
                "" if row.measured_watch_seconds is None else row.measured_watch_seconds,
                row.counts.likes,
                row.counts.comments,
                row.counts.shares,
                row.counts.follows,
                row.counts.subscribes,
                row.gifts,
                row.counts.coins,
                iso_utc(row.first_seen),
                iso_utc(row.last_seen),
                simulated,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def iso_utc(ts: float | None) -> str:
    """``2026-12-01T10:02:03Z`` (ISO 8601, UTC, whole seconds); empty for no time."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe_cell(text: str) -> str:
    # Spreadsheet apps run cells starting with these as formulas; a nickname must never become one.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def top_rows(summary: SessionSummary, limit: int = 15) -> tuple[list[SessionStats], list[SessionStats]]:
    """The first ``limit`` contributors and the rest."""
    return summary.rows[:limit], summary.rows[limit:]


# ---------------------------------------------------------------------- the songs of a live (issue 12.7)


@dataclass(frozen=True, slots=True)
class LineStats:
    """Songs played from one line during a live and how long they waited (seconds, entering to played)."""

    line: Line
    played: int
    median_wait: float | None
    longest_wait: float | None


@dataclass(frozen=True, slots=True)
class PlayReport:
    """What played during a live: every play in order, per-line figures, the best rated, new members."""

    session: LiveSession
    plays: list[Submission] = field(default_factory=list)
    lines: list[LineStats] = field(default_factory=list)
    top_rated: list[Submission] = field(default_factory=list)
    new_submitters: int = 0


def wait_seconds(submission: Submission) -> float | None:
    """How long a played song waited in the line it was played from; None when not recorded."""
    if submission.played_at is None or submission.line_entered_at is None:
        return None
    return max(0.0, submission.played_at - submission.line_entered_at)


async def play_report(db: Database, session: LiveSession, *, top: int = 5) -> PlayReport:
    """The songs of a live: plays in ``[started, ended]``, waits per line, top ratings, new submitters."""
    ended = session.ended_at or session.started_at
    plays = await db.played_between(session.guild_id, session.started_at, ended)
    lines = []
    for line in PLAYABLE_LINES:
        from_line = [p for p in plays if (p.played_from or Line.FREE) is line]
        if not from_line:
            continue
        waits = [w for w in (wait_seconds(p) for p in from_line) if w is not None]
        lines.append(LineStats(line, len(from_line), statistics.median(waits) if waits else None,
                               max(waits) if waits else None))  # fmt: skip
    rated = sorted((p for p in plays if p.rating is not None), key=lambda p: (-(p.rating or 0), p.played_at or 0))
    return PlayReport(
        session=session,
        plays=plays,
        lines=lines,
        top_rated=rated[:top],
        new_submitters=await db.first_submitters_between(session.guild_id, session.started_at, ended),
    )


PLAYS_CSV_COLUMNS = ("id", "line", "submitter", "artist", "title", "link", "entered", "played", "wait", "score")


def plays_csv(report: PlayReport) -> bytes:
    """Every play of the live as UTF-8 CSV: ISO 8601 UTC times, wait in whole seconds, score = rating."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PLAYS_CSV_COLUMNS)
    for play in report.plays:
        wait = wait_seconds(play)
        writer.writerow(
            [
                play.display_id,
                (play.played_from or Line.FREE).value,
                _safe_cell(play.user_name),
                _safe_cell(play.artist),
                _safe_cell(play.title),
                _safe_cell(play.link or play.file_name or ""),
                iso_utc(play.line_entered_at),
                iso_utc(play.played_at),
                "" if wait is None else int(wait),
                "" if play.rating is None else play.rating,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def history_csv(plays: list[Submission]) -> bytes:
    """A guild's play history (any period) in the play-history CSV layout."""
    session = LiveSession(id=0, guild_id=0, host="", started_at=0.0)
    return plays_csv(PlayReport(session=session, plays=plays))


def fit_upload(data: bytes, filename: str, limit: int) -> tuple[bytes, str] | None:
    """``data`` as it can be uploaded within ``limit`` bytes: as is, else zipped; None when neither fits."""
    if len(data) <= limit:
        return data, filename
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(filename, data)
    zipped = buffer.getvalue()
    if len(zipped) <= limit:
        return zipped, filename.rsplit(".", 1)[0] + ".zip"
    return None

"""Post-live analytics: totals, ordering, watch time, CSV, and an embed that always fits Discord."""

from __future__ import annotations

import csv
import io

from database import Database, EngagementDelta
from models import EngagementCounts
from services.analytics import format_duration, summarize, to_csv
from tests.conftest import GUILD
from ui import limits
from ui.metrics_ui import metrics_embed, metrics_file


async def _session_with(db: Database, people: int) -> int:
    session = await db.start_session(GUILD, "the.host", 77, 1000.0)
    deltas = [
        EngagementDelta(
            handle=f"fan{i:03d}",
            counts=EngagementCounts(likes=i, comments=i % 3, shares=i % 2, coins=10 * (i % 5)),
            gifts=i % 5,
            first_seen=1000.0 + i,
            last_seen=1600.0 + i,
            joined_at=1000.0,
            nickname='=HYPERLINK("x")' if i == 1 else "@everyone " + "x" * 300,
        )
        for i in range(people)
    ]
    await db.apply_engagement(GUILD, session.id, deltas, viewers=123)
    await db.end_session(session.id, 4600.0)
    return session.id


async def test_summary_totals_and_order(db: Database) -> None:
    session_id = await _session_with(db, 20)
    summary = await summarize(db, session_id)
    assert summary.unique_viewers == 20 and summary.session.peak_viewers == 123
    assert summary.totals.likes == sum(range(20))
    assert summary.rows[0].handle == "fan019"  # most points first
    assert summary.rows[0].watch_seconds == 619


async def test_embed_fits_with_hundreds_of_contributors(db: Database) -> None:
    await db.link_handle(GUILD, "fan399", 555, verified=True, force=True)
    summary = await summarize(db, await _session_with(db, 400))
    embed = metrics_embed(summary)
    assert len(embed) <= limits.EMBED_TOTAL and len(embed.fields) <= limits.FIELDS
    assert all(len(f.value) <= limits.FIELD_VALUE for f in embed.fields)
    assert "the.host" in embed.title
    text = "\n".join(f.value for f in embed.fields)
    assert "<@555>" in text and "…and 385 more" in text
    assert text.count("**") // 2 == 15  # exactly the top 15 ranked lines


def test_format_duration() -> None:
    assert (format_duration(40), format_duration(725), format_duration(3720)) == ("40s", "12m 05s", "1h 02m")


async def test_csv_has_every_row_and_defuses_formulas(db: Database) -> None:
    summary = await summarize(db, await _session_with(db, 30))
    rows = list(csv.reader(io.StringIO(to_csv(summary).decode())))
    assert len(rows) == 31
    nicknames = {r[0]: r[1] for r in rows[1:]}
    assert nicknames["fan001"].startswith("'=")
    assert metrics_file(summary).filename.startswith("live-the.host-")


async def test_empty_session(db: Database) -> None:
    session = await db.start_session(GUILD, "quiet", None, 1000.0)
    await db.end_session(session.id, 1060.0)
    embed = metrics_embed(await summarize(db, session.id))
    assert "Nobody engaged" in embed.fields[-1].value


async def test_recap_reads_well_nicknames_measured_watch_time_iso_csv(db: Database, queue) -> None:
    """Issue 16.15: unlinked viewers by nickname, watch time only where measured, ISO UTC times in the CSV."""
    from models import EngagementEvent, EventKind
    from services.engagement import EngagementWriter

    session = await db.start_session(GUILD, "the.host", 77, 1_764_583_200.0)  # 2025-12-01T10:00:00Z
    writer = EngagementWriter(db, queue)
    writer.set_session(GUILD, session.id)
    writer.add(GUILD, [
        EngagementEvent(EventKind.COMMENT, "stayer", 1_764_583_210.4, nickname="Stay *Here*\nNow", text="hi"),
        EngagementEvent(EventKind.LIKE, "stayer", 1_764_583_335.9, count=3),
        EngagementEvent(EventKind.LIKE, "once", 1_764_583_300.0, count=1, nickname="Just Once"),
        EngagementEvent(EventKind.LIKE, "linked", 1_764_583_300.0, count=1, nickname="Linked Nick"),
        EngagementEvent(EventKind.LIKE, "anon", 1_764_583_300.0, count=1),
    ])  # fmt: skip
    await writer.flush()
    await db.link_handle(GUILD, "linked", 555, verified=True, force=True)
    await db.end_session(session.id, 1_764_586_800.0)
    summary = await summarize(db, session.id)
    lines = {row.handle: line for row, line in zip(summary.rows, _lines(metrics_embed(summary)), strict=False)}
    assert "Stay \\*Here\\* Now" in lines["stayer"] and "⏱ 2m 05s" in lines["stayer"]
    assert "Just Once" in lines["once"] and "⏱" not in lines["once"]  # one event: nothing measured
    assert "<@555>" in lines["linked"] and "Linked Nick" not in lines["linked"]
    assert "—" not in "".join(lines.values())
    rows = {r["handle"]: r for r in csv.DictReader(io.StringIO(to_csv(summary).decode()))}
    assert rows["stayer"]["watch_seconds"] == "125" and rows["once"]["watch_seconds"] == ""
    assert rows["stayer"]["first_seen"] == "2025-12-01T10:00:10Z"
    assert rows["stayer"]["last_seen"] == "2025-12-01T10:02:15Z"
    assert rows["stayer"]["nickname"] == "Stay *Here*\nNow"


def _lines(embed) -> list[str]:
    text = "\n".join(f.value for f in embed.fields if f.name in ("Top contributors", "\u200b"))
    return [line for line in text.splitlines() if line.startswith("**")]

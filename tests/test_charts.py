"""The recap's chart (issue 12.8): per-minute engagement from the database, songs by line, a real PNG."""

from __future__ import annotations

import io

from PIL import Image

from database import Database, MinuteDelta
from models import EngagementEvent, EventKind, Line, Submission
from services.charts import (
    EMPTY_TEXT,
    HEIGHT_PX,
    LINE_COLOURS,
    WIDTH_PX,
    ChartData,
    build_figure,
    render_png,
    session_chart,
)
from services.engagement import EngagementWriter
from tests.conftest import GUILD

START = 1_800_000_000.0  # on a minute boundary


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {colour for _count, colour in image.getcolors(maxcolors=1 << 20)}


def _played(row_id: int, at: float, line: Line) -> tuple[Submission, str, str | None]:
    sub = Submission(id=row_id, guild_id=GUILD, public_id=f"P{row_id:04d}", user_id=row_id, user_name="u",
                     artist="a", title=f"t{row_id}", line=Line.PLAYED, submitted_at=START - 100,
                     entered_line_at=at, link=f"https://x.test/{row_id}", played_at=at, played_from=line)  # fmt: skip
    return sub, f"a-t{row_id}", None


async def test_the_flush_writes_per_minute_buckets_in_its_transaction(db: Database, queue) -> None:
    await db.update_settings(GUILD, like_cap_per_minute=10)
    session = await db.start_session(GUILD, "host", 1, START)
    writer = EngagementWriter(db, queue)
    writer.set_session(GUILD, session.id)
    writer.add(GUILD, [
        EngagementEvent(EventKind.LIKE, "a", START + 5, count=8),
        EngagementEvent(EventKind.LIKE, "a", START + 6, count=8),  # capped: 2 of these count
        EngagementEvent(EventKind.COMMENT, "b", START + 30, text="hi"),
        EngagementEvent(EventKind.GIFT, "b", START + 61, coins=50),
        EngagementEvent(EventKind.COMMENT, "a", START + 125, text="later"),
    ])  # fmt: skip
    await writer.flush()
    minute = int(START // 60)
    assert await db.session_minutes(session.id) == [
        MinuteDelta(minute, likes=10, comments=1), MinuteDelta(minute + 1, coins=50),
        MinuteDelta(minute + 2, comments=1),
    ]  # fmt: skip
    writer.add(GUILD, [EngagementEvent(EventKind.COMMENT, "c", START + 10, text="same minute")])
    await writer.flush()
    assert (await db.session_minutes(session.id))[0].comments == 2  # added to the bucket, not replaced


async def test_a_four_hour_live_renders_a_real_picture_with_songs_coloured_by_line(db: Database) -> None:
    session = await db.start_session(GUILD, "big.host$", 1, START)
    minute = int(START // 60)
    await db.apply_engagement(GUILD, session.id, [], minutes=[
        MinuteDelta(minute + i, likes=(i * 37) % 500, comments=i % 40, coins=(i * 13) % 300) for i in range(240)
    ])  # fmt: skip
    lines = [Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE]
    await db.import_submissions([_played(i, START + 120 + i * 180, lines[i % 4]) for i in range(1, 70)])
    await db.import_submissions([_played(999, START - 600, Line.SKIP)])  # before the live: not on its chart
    await db.end_session(session.id, START + 4 * 3600)
    png = await session_chart(db, (await db.get_session(session.id)))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
    colours = _colours(png)
    assert len(colours) > 50  # not blank: bars, marks, text, anti-aliasing
    for hex_colour in LINE_COLOURS.values():  # every line's marks are drawn in its colour
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert any(max(abs(a - b) for a, b in zip(c, rgb, strict=True)) <= 8 for c in colours), hex_colour


async def test_a_live_without_engagement_gets_a_clear_empty_chart(db: Database) -> None:
    data = ChartData("quiet", START, START + 600)
    assert data.empty
    figure = build_figure(data)
    assert [t.get_text() for ax in figure.axes for t in ax.texts] == [EMPTY_TEXT]
    png = render_png(data)
    assert Image.open(io.BytesIO(png)).size == (WIDTH_PX, HEIGHT_PX) and len(_colours(png)) > 2
    session = await db.start_session(GUILD, "quiet", None, START)
    await db.end_session(session.id, START)  # zero-length, nothing recorded: still a picture, no error
    assert Image.open(io.BytesIO(await session_chart(db, await db.get_session(session.id)))).format == "PNG"

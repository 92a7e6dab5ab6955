"""The recap's chart of a 4-hour live with 5,000 viewers: read from the database and rendered to PNG.

The live is recorded the way the bot records one (events through the engagement writer, so the per-minute
buckets are what a real flush writes) with a song played every three minutes; then the whole chart step
the recap runs (``services.charts.session_chart``: the two queries and the Agg rendering in a worker
thread) is timed. Target: under 2 s. CPU seconds are reported next to the wall time, because the machine is
shared and wall time alone also measures the neighbours.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Result
from database import Database
from models import EngagementEvent, EventKind, Line, Submission
from services.charts import session_chart
from services.engagement import EngagementWriter
from services.queue import QueueService

GUILD = 1
VIEWERS = 5_000
HOURS = 4
TARGET_SECONDS = 2.0
START = 1_800_000_000.0
LINES = (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE, Line.FREE, Line.FREE)


async def _record_live(db: Database) -> int:
    rnd = random.Random(12)
    session = await db.start_session(GUILD, "bench.host", 1, START)
    writer = EngagementWriter(db, QueueService(db))
    writer.set_session(GUILD, session.id)
    end = START + HOURS * 3600
    kinds = (EventKind.LIKE, EventKind.LIKE, EventKind.COMMENT, EventKind.GIFT, EventKind.SHARE)
    events = []
    for viewer in range(VIEWERS):
        arrive = rnd.uniform(START, end - 60)
        for _ in range(rnd.randint(1, 8)):
            kind = rnd.choice(kinds)
            events.append(EngagementEvent(kind, f"viewer{viewer}", rnd.uniform(arrive, end), count=rnd.randint(1, 15),
                                          coins=rnd.choice((1, 5, 10, 100)) if kind is EventKind.GIFT else 0,
                                          nickname=f"Viewer {viewer}", text="hi"))  # fmt: skip
    events.sort(key=lambda e: e.at)
    for start in range(0, len(events), 2_000):  # flush windows, as the live would
        writer.add(GUILD, events[start : start + 2_000])
        await writer.flush()
    plays = [
        (Submission(id=i, guild_id=GUILD, public_id=f"B{i:04d}", user_id=i, user_name="u", artist="a",
                    title=f"t{i}", line=Line.PLAYED, submitted_at=START - 60, entered_line_at=START + i * 180,
                    link=f"https://x.test/{i}", played_at=START + i * 180, played_from=LINES[i % len(LINES)]),
         f"a-t{i}", None)
        for i in range(1, HOURS * 20)
    ]  # fmt: skip
    await db.import_submissions(plays)
    await db.end_session(session.id, end)
    return session.id


async def run(*, quick: bool = False) -> list[Result]:
    """Time the chart step of the recap."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "chart.db")
        await db.connect()
        try:
            session_id = await _record_live(db)
            session = await db.get_session(session_id)
            assert session is not None
            minutes = len(await db.session_minutes(session_id))
            await session_chart(db, session)  # warm: matplotlib's import and font cache, once per process
            walls, cpus, size = [], [], 0
            for _ in range(3 if quick else 7):
                wall, cpu = time.perf_counter(), time.process_time()
                png = await session_chart(db, session)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                size = len(png)
        finally:
            await db.close()
    median = statistics.median(walls)
    return [
        Result(
            name=f"recap chart: {HOURS} h live, {VIEWERS:,} viewers (query + render)",
            value=round(median, 3),
            unit="s",
            target=f"< {TARGET_SECONDS} s",
            passed=median < TARGET_SECONDS,
            details={
                "cpu_s_median": round(statistics.median(cpus), 3),
                "max_s": round(max(walls), 3),
                "minutes": minutes,
                "songs": HOURS * 20 - 1,
                "png_bytes": size,
            },
        )
    ]

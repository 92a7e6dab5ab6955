"""Engagement ingest: the project's adapter + batch writer versus the original bot's write pattern.

Baseline: what the bot this project replaces did for every TikTok event: its own transaction with several
statements (upsert the account, add points, insert an interaction row, bump the session totals). The SQL
of that baseline lives here on purpose: it is the old behaviour being measured, not the project's code.
Both run on the same kind of SQLite file (WAL, synchronous=NORMAL) in the same process.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import aiosqlite

from bench.common import Result
from bench.tiktok_events import adapter_available, library_events, run_adapter
from database import Database
from models import EngagementEvent, EventKind
from services.engagement import EngagementWriter
from services.queue import QueueService

GUILD = 1
TARGET_SPEEDUP = 20.0
TARGET_RATE = 20_000.0
KINDS = (EventKind.LIKE,) * 6 + (EventKind.COMMENT,) * 3 + (EventKind.GIFT, EventKind.SHARE, EventKind.FOLLOW)

BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tiktok_accounts (handle TEXT PRIMARY KEY, points INTEGER DEFAULT 0, last_seen REAL);
CREATE TABLE IF NOT EXISTS tiktok_interactions (id INTEGER PRIMARY KEY, session_id INTEGER, handle TEXT,
    kind TEXT, value INTEGER, created_at REAL);
CREATE TABLE IF NOT EXISTS live_sessions (id INTEGER PRIMARY KEY, likes INTEGER DEFAULT 0,
    comments INTEGER DEFAULT 0, gifts INTEGER DEFAULT 0);
"""


def domain_events(count: int, handles: int, seed: int = 3) -> list[EngagementEvent]:
    """Already-adapted events (used for the baseline, which had no adapter)."""
    rng = random.Random(seed)
    now = time.time()
    return [
        EngagementEvent(
            kind=kind,
            handle=f"fan{rng.randrange(handles):05d}",
            at=now + i / 1000,
            count=rng.randint(1, 15) if kind is EventKind.LIKE else 1,
            coins=rng.choice((1, 5, 10, 99)) if kind is EventKind.GIFT else 0,
            text="nice song" if kind is EventKind.COMMENT else None,
        )
        for i, kind in enumerate(rng.choice(KINDS) for _ in range(count))
    ]


async def baseline_rate(path: Path, events: list[EngagementEvent]) -> float:
    """Events per second with one commit per event and several statements each."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.executescript(BASELINE_SCHEMA)
    await conn.execute("INSERT INTO live_sessions (id) VALUES (1)")
    start = time.perf_counter()
    for event in events:
        await conn.execute("BEGIN")
        await conn.execute(
            "INSERT INTO tiktok_accounts (handle, last_seen) VALUES (?, ?) "
            "ON CONFLICT (handle) DO UPDATE SET last_seen = excluded.last_seen",
            (event.handle, event.at),
        )
        await conn.execute(
            "UPDATE tiktok_accounts SET points = points + ? WHERE handle = ?", (event.count + event.coins, event.handle)
        )
        await conn.execute(
            "INSERT INTO tiktok_interactions (session_id, handle, kind, value, created_at) VALUES (1, ?, ?, ?, ?)",
            (event.handle, event.kind.value, event.count, event.at),
        )
        await conn.execute("UPDATE live_sessions SET likes = likes + ? WHERE id = 1", (event.count,))
        await conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    await conn.close()
    return len(events) / elapsed


async def project_rate(path: Path, count: int, handles: int, window: int) -> tuple[float, bool]:
    """Events per second through the real adapter (when the library is there) and the batch writer.

    Events arrive in flush windows of ``window`` events; each window is handed over and flushed, which is
    what the writer's loop does every second during a live.
    """
    db = Database(path)
    await db.connect()
    try:
        queue = QueueService(db)
        writer = EngagementWriter(db, queue)
        session = await db.start_session(GUILD, "bench", 1, time.time())
        writer.set_session(GUILD, session.id)
        with_adapter = adapter_available()
        raw = library_events(count, handles) if with_adapter else domain_events(count, handles)
        start = time.perf_counter()
        for offset in range(0, count, window):
            chunk = raw[offset : offset + window]
            writer.add(GUILD, run_adapter(chunk) if with_adapter else chunk)
            await writer.flush()
        elapsed = time.perf_counter() - start
        return writer.events_applied / elapsed, with_adapter
    finally:
        await db.close()


async def run(quick: bool = False) -> list[Result]:
    """Measure both paths side by side."""
    handles = 2_000
    with tempfile.TemporaryDirectory() as tmp:
        base = await baseline_rate(Path(tmp) / "baseline.db", domain_events(1_000 if quick else 3_000, handles))
        rate, with_adapter = await project_rate(Path(tmp) / "project.db", 50_000 if quick else 200_000, handles, 5_000)
    speedup = rate / base
    details = {"baseline_events_per_s": round(base), "project_events_per_s": round(rate), "adapter": with_adapter}
    return [
        Result("ingest: speed-up over one commit per event", speedup, "x", f">= {TARGET_SPEEDUP:.0f}x",
               speedup >= TARGET_SPEEDUP, details),
        Result("ingest: events applied per second", rate, "ev/s", f">= {TARGET_RATE:,.0f}",
               rate >= TARGET_RATE, details),
    ]  # fmt: skip

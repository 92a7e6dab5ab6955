"""Is the bot the bottleneck of a live? The real TikTokLive client on the loopback fake webcast socket.

Library alone: a counting listener in a child process (``bench.library_client``). Bot: the connection the
way the bot runs it, in its own process (``LiveWorker``: the manager and adapter), handing batches to the
session service and the batch writer into SQLite, with the final flush included in the time. The sender
(the fake TikTok) runs in this process for both; same frames, run alternately; the figure is the bot's rate
as a share of the library's. A second figure: the library's own rate as the bot's connection process
prepares it (each message class's pydantic validator built once, ``reuse_proto_validators``, and each parsed
message started from its class's defaults, ``start_parsed_messages_from_defaults``) against the library as
shipped, which builds a validator per message it parses and runs pydantic's ``__init__`` for each.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import Result
from bench.tiktok_events import push_frames, send_frames

TARGET_SHARE = 0.90
TARGET_DECODING = 1.3


async def _library_only(fake: Any, frames: list[bytes], count: int, *flags: str) -> float:
    """The library alone in a child process: from the first frame sent to its ``done``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.library_client", fake.base_url, str(count), *flags, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    if (await asyncio.wait_for(process.stdout.readline(), 60)).strip() != b"ready":
        raise RuntimeError("the library-only client did not connect")
    start = time.perf_counter()
    await send_frames(fake, frames)
    if (await asyncio.wait_for(process.stdout.readline(), 120)).strip() != b"done":
        raise RuntimeError("the library-only client stopped early")
    elapsed = time.perf_counter() - start
    await process.wait()
    return count / elapsed


async def _with_bot(fake: Any, frames: list[bytes], count: int, db_path: Path) -> float:
    """The bot's path: its connection process, then the session service and the writer into SQLite."""
    from database import Database
    from services.engagement import EngagementWriter
    from services.live_sessions import LiveSessionService
    from services.queue import QueueService
    from services.tiktok.worker import LiveWorker

    db = Database(db_path)
    await db.connect()
    writer = EngagementWriter(db, QueueService(db), flush_seconds=1.0)
    sessions = LiveSessionService(db, writer)
    writer.start()
    handed = 0
    done = asyncio.Event()
    connected = asyncio.Event()

    class Listener:
        def on_events(self, events: list[Any]) -> None:
            nonlocal handed
            sessions.record(1, events)
            handed += len(events)
            if handed >= count:
                done.set()

        def on_state(self, snapshot: Any) -> None:
            return None

        async def on_connected(self, info: Any) -> None:
            await sessions.start(1, info.username, info.room_id)
            connected.set()

        async def on_disconnected(self, info: Any, unexpected: bool, duration: float) -> None:
            return None

        async def on_session_end(self, info: Any) -> None:
            await sessions.end(1)

    config = SimpleNamespace(sign_api_url=fake.base_url, tiktok_web_url=fake.base_url,
                             tiktok_webcast_url=fake.base_url + "/webcast")  # fmt: skip
    worker = LiveWorker(1, Listener(), config=config)
    await worker.connect("host")
    await asyncio.wait_for(connected.wait(), 60)
    start = time.perf_counter()
    await send_frames(fake, frames)
    await asyncio.wait_for(done.wait(), 120)
    await writer.flush()  # everything handed over is in the database before the clock stops
    elapsed = time.perf_counter() - start
    await worker.close()
    await writer.stop()
    await db.close()
    return count / elapsed


async def run(quick: bool = False) -> list[Result]:
    """Library alone versus library plus the bot, on the same frames."""
    from tests.faketiktok.server import FakeTikTok

    count = 10_000 if quick else 40_000
    fake = FakeTikTok()
    await fake.start()
    fake.host("host", live=True)
    try:
        frames = push_frames(count, 50)
        with tempfile.TemporaryDirectory() as tmp:
            library = []
            shipped = []
            bot = []
            for round_ in range(3):  # alternate so warm-up and noise hit all alike
                shipped.append(await _library_only(fake, frames, count, "--as-shipped"))
                library.append(await _library_only(fake, frames, count))
                bot.append(await _with_bot(fake, frames, count, Path(tmp) / f"live{round_}.db"))
    finally:
        await fake.stop()
    share = max(bot) / max(library)
    decoding = max(library) / max(shipped)
    return [
        Result("live: bot keeps this share of the library-only rate", share * 100, "%",
               f">= {TARGET_SHARE:.0%}", share >= TARGET_SHARE,
               {"library_events_per_s": round(max(library)), "bot_events_per_s": round(max(bot)), "events": count}),
        Result("live: library's rate as the connection process prepares it vs as shipped", decoding,
               "x", f">= {TARGET_DECODING}x", decoding >= TARGET_DECODING,
               {"reused_events_per_s": round(max(library)), "shipped_events_per_s": round(max(shipped)),
                "events": count}),
    ]  # fmt: skip

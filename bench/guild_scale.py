"""Many servers per bot: the real bot in 1,000 guilds of the fake Discord, each with settings, displays and songs.

The fake runs here; the bot runs in a process of its own (``bench.bot_process``), so that its resident
memory is its own. Every guild has its settings, three pinned displays (stored in the database, as after
months of use) and three queued songs. Figures:

* READY-to-serving: from the bot's READY to the acknowledgement of a ``/queue`` sent at that moment;
* start-up work: REST requests in the first 10 s after READY, with display verification spread over time
  (``VERIFY_PER_SECOND``), against the same start with every display verified at once (before);
* memory per idle guild: resident memory of the bot with 1,000 guilds minus with 10, per extra guild.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DISPLAY_LAYOUT, Result

GUILDS = 1000
SMALL = 10
SONGS = 3
WINDOW = 10.0
"""Seconds after READY in which start-up requests are counted."""
MEMORY_TARGET_KB = 50.0
READY_TO_SERVING_TARGET = 1.0
SERVING_CAP = 60.0
"""Give up waiting for a first answered interaction after this many seconds (reported as not served)."""
"""Seconds: well inside Discord's 3 s to acknowledge."""


async def _seed(fake: Any, database: Path, guilds: int) -> None:
    """Guilds in the fake and, in the bot's database, their settings, displays and queued songs."""
    from database import Database
    from services.queue import QueueService

    db = Database(database)
    await db.connect()
    queue = QueueService(db)
    try:
        for n in range(guilds):
            guild, channels = fake.add_guild(f"server {n}")
            gid = int(guild)
            await db.update_settings(gid, submit_cooldown_seconds=0, max_pending_per_user=0)
            await pin_displays(fake, db, gid, channels)
            for song in range(SONGS):
                draft = queue.draft(artist="Artist", title=f"Song {song}", note=None, link=f"https://x.test/{n}/{song}")
                await queue.submit(gid, 10_000 + song, f"fan{song}", draft, skip=False)
    finally:
        await db.close()


async def pin_displays(fake: Any, db: Any, guild_id: int, channels: dict[str, str]) -> None:
    """Three pinned messages in the fake, stored as the guild's displays (as after months of use)."""
    from models import Display

    for kind, channel in DISPLAY_LAYOUT:
        message = fake.new_message(channels[channel], {"embeds": [{"title": "queue"}]})
        message["pinned"] = True
        await db.save_display(Display(guild_id, kind, int(channels[channel]), int(message["id"]), "old"))


async def _line(process: asyncio.subprocess.Process, timeout: float = 300) -> dict[str, Any]:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), timeout)
    if not raw:
        raise RuntimeError("the bot process exited before answering")
    return json.loads(raw)


def bot_env(fake: Any, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process against ``fake`` (also used by ``bench.shard_sim``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "SHARD_", "GUILD_ID"))}
    env.update(
        {
            "DISCORD_TOKEN": "fake-token-for-tests",
            "DATA_DIR": str(data_dir),
            "GUILD_ID": fake.guild_id,
            "DISCORD_API_BASE_URL": fake.api_base_url,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "BACKUP_INTERVAL_HOURS": "0",
            "LOG_LEVEL": "WARNING",
            "DISPLAY_REFRESH_SECONDS": "2",
            "WEB_PORT": "0",  # several bot processes at once: each web server on a free port
            **extra,
        }
    )
    return env  # fmt: skip


async def start_bot(fake: Any, data_dir: Path, **extra: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Launch ``bench.bot_process`` and wait for its READY line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bot_process", env=bot_env(fake, data_dir, **extra),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return process, await _line(process)


async def stop_bot(process: asyncio.subprocess.Process) -> None:
    """``stop``, then wait for a clean exit."""
    assert process.stdin is not None
    process.stdin.write(b"stop\n")
    await process.stdin.drain()
    await asyncio.wait_for(process.wait(), 60)


async def _one_start(fake: Any, data_dir: Path, **extra: str) -> dict[str, Any]:
    """Start the bot, time READY -> an answered /queue, count the first seconds' requests, read its memory."""
    general = fake.channel_id("general")
    process, ready = await start_bot(fake, data_dir, **extra)
    at_ready = time.monotonic()
    try:
        missed = 0  # interactions not acknowledged within Discord's 3 s (the fake waits 3.5 s)
        served = False
        while not served and time.monotonic() - at_ready < SERVING_CAP:
            try:
                await fake.admin.slash(general, "queue")
                served = True
            except AssertionError:
                missed += 1
        serving = time.monotonic() - at_ready
        await asyncio.sleep(max(0.0, at_ready + WINDOW - time.monotonic()))
        window = [r for r in fake.requests if at_ready <= r.t <= at_ready + WINDOW]
        per_second = [sum(1 for r in window if at_ready + s <= r.t < at_ready + s + 1) for s in range(int(WINDOW))]
        assert process.stdin is not None
        process.stdin.write(b"rss\n")
        memory = await _line(process)
    finally:
        await stop_bot(process)
    return {"ready_s": ready["ready_s"], "serving_s": serving, "served": served, "missed": missed,
            "requests": len(window),
            "peak_per_s": max(per_second), "rss_mb": memory["rss_mb"], "guilds": memory["guilds"],
            "verify_pending": memory["verify_pending"]}  # fmt: skip


def _serving(start: dict[str, Any]) -> str:
    return f"{start['serving_s']:.2f} s" if start["served"] else f"none answered in {SERVING_CAP:.0f} s"


async def run(quick: bool = False) -> list[Result]:
    """A small and a large bot, the large one started with spread and with all-at-once verification."""
    from tests.fakediscord.server import FakeDiscord

    guilds = 300 if quick else GUILDS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small_fake = await FakeDiscord().start()
        try:
            (root / "small").mkdir()
            await _seed(small_fake, root / "small" / "music_queue.db", SMALL)
            small = await _one_start(small_fake, root / "small")
        finally:
            await small_fake.stop()
        fake = await FakeDiscord().start()
        try:
            (root / "seed").mkdir()
            await _seed(fake, root / "seed" / "music_queue.db", guilds)
            for name in ("before", "after"):
                shutil.copytree(root / "seed", root / name)
            before = await _one_start(fake, root / "before", BENCH_VERIFY_RATE="0")
            after = await _one_start(fake, root / "after")
        finally:
            await fake.stop()
    per_guild_kb = (after["rss_mb"] - small["rss_mb"]) * 1024 / (guilds - SMALL)
    bound = int(WINDOW * 10) + 20  # the verification rate (10/s) for the window, plus the bot's own start
    return [
        Result(f"guilds: READY to serving, {guilds} guilds", after["serving_s"], "s",
               f"<= {READY_TO_SERVING_TARGET:.0f} s (before: {_serving(before)})",
               after["served"] and after["serving_s"] <= READY_TO_SERVING_TARGET and after["missed"] == 0,
               {"launch_to_ready_s": round(after["ready_s"], 2), "before_serving_s": round(before["serving_s"], 3),
                "before_served": before["served"],
                "before_missed_interactions": before["missed"], "missed_interactions": after["missed"],
                "small_serving_s": round(small["serving_s"], 3)}),
        Result(f"guilds: REST requests in the first {WINDOW:.0f} s after READY, {guilds} guilds", after["requests"],
               "requests", f"<= {bound} (before: {before['requests']}; {guilds * 3} displays)",
               after["requests"] <= bound,
               {"peak_per_s": after["peak_per_s"], "before_peak_per_s": before["peak_per_s"],
                "displays_left_to_verify": after["verify_pending"], "before_requests": before["requests"]}),
        Result("guilds: resident memory per idle guild", per_guild_kb, "KB", f"<= {MEMORY_TARGET_KB:.0f} KB",
               per_guild_kb <= MEMORY_TARGET_KB,
               {"rss_small_mb": round(small["rss_mb"], 1), "rss_large_mb": round(after["rss_mb"], 1),
                "guilds_small": small["guilds"], "guilds_large": after["guilds"],
                "rss_large_before_mb": round(before["rss_mb"], 1)}),
    ]  # fmt: skip

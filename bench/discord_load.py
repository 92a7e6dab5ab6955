"""The bot on the fake Discord: interaction latency under a live burst, request economy, memory, start-up.

* latency: time from an injected ``/queue`` to its acknowledgement at the fake, idle versus during an
  engagement burst of 2,000 events/s, in alternating rounds with the live connected. The fake TikTok sends
  the burst from a process of its own (``bench.tiktok_load``: TikTok is another machine); the bot takes it
  as in production, through the real TikTokLive client in the connection's process, into the writer;
* request economy: REST edits of the three displays during 200 queue changes in 10 s (2 s window),
  against one edit per change per display, with the fake enforcing a 5-per-5-s bucket per channel;
* memory: resident memory after those load steps versus right after start, and the same for the TikTok
  connection's process (after the burst versus right after connecting);
* start-up: time to READY with a large database (100k archived) versus an empty one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import DISPLAY_LAYOUT, Result, percentile

LATENCY_TARGET = 1.5
MEMORY_TARGET = 1.5
STARTUP_TARGET = 1.2
ROUNDS = 4
"""Idle and loaded samples alternate in this many rounds, so that drift in the machine hits both alike."""
SETTLE_SECONDS = 1.5
"""Pause after switching the burst on or off (longer than the writer's 1 s flush)."""


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of this process (or of ``pid``)."""
    with open(f"/proc/{pid or 'self'}/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1048576


async def _latencies(env: Any, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        await env.member.slash(env.channels["general"], "queue")
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)
    return out


async def _submit_many(env: Any, count: int, spread: float) -> None:
    queue = env.bot.queue
    for n in range(count):
        draft = queue.draft(artist="Load", title=f"Song {n} {time.time_ns()}", note=None,
                            link=f"https://x.test/{time.time_ns()}")  # fmt: skip
        await queue.submit(env.guild_id, 50_000 + n + int(time.time() * 1000) % 10_000_000, "load", draft, skip=False)
        await asyncio.sleep(spread / count)


@contextlib.asynccontextmanager
async def load_generator(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The fake TikTok and its burst in a process of their own (``bench.tiktok_load`` with ``args``).

    On the way out, after a failure too, its stdin closes (which ends the live) and the process is awaited.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.tiktok_load", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdin is not None
    try:
        yield process
    finally:
        process.stdin.close()
        await process.wait()


async def _expect(process: asyncio.subprocess.Process, word: str, timeout: float = 120) -> str:
    """The rest of the load generator's next line, which must start with ``word``."""
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode().strip()
    if not line.startswith(word):
        raise RuntimeError(f"the TikTok load generator said {line!r}, expected {word!r}")
    return line[len(word) :].strip()


async def run(quick: bool = False) -> list[Result]:
    """All four figures from one running bot (plus one start on an empty and one on a large database)."""
    from bench.queue_scale import build
    from tests.fakediscord.harness import close_env, create_env, endpoint_defaults, restore_endpoints

    saved_endpoints = endpoint_defaults()
    results: list[Result] = []
    samples = 400 if quick else 1600
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # Start-up: empty database, then the large one.
            started = time.perf_counter()
            empty = await create_env(Path(tmp) / "empty", DISPLAY_REFRESH_SECONDS="2")
            empty_ready = time.perf_counter() - started
            await close_env(empty)
            large_dir = Path(tmp) / "large"
            large_dir.mkdir()
            seeded = await build(large_dir / "music_queue.db", 100_000)
            await seeded.close()
            started = time.perf_counter()
            env = await create_env(large_dir, DISPLAY_REFRESH_SECONDS="2")
            large_ready = time.perf_counter() - started
            ratio = large_ready / empty_ready
            results.append(Result("start-up: time to READY, 100k-archive vs empty database", ratio, "x",
                                  f"<= {STARTUP_TARGET}x", ratio <= STARTUP_TARGET,
                                  {"empty_s": round(empty_ready, 3), "large_s": round(large_ready, 3)}))  # fmt: skip
            # The displays the database seeding did not create.
            guild = env.guild_id
            rss_start = rss_mb()
            for kind, channel in DISPLAY_LAYOUT:
                await env.bot.displays.ensure(guild, kind, env.bot.get_partial_messageable(int(env.channels[channel])))
            # --- latency idle vs under a 2,000 events/s live burst, in alternating rounds
            async with load_generator("--rate", "2000", "--seconds", str(15 if quick else 40)) as tiktok:
                url = await _expect(tiktok, "url")
                env.bot.config = replace(env.bot.config, sign_api_url=url, tiktok_web_url=url,
                                         tiktok_webcast_url=url + "/webcast")  # fmt: skip
                connection: Any = env.bot.lives.connection(guild)
                await connection.connect("host")
                await _expect(tiktok, "burst")
                worker_pid = connection.pid
                worker_start = rss_mb(worker_pid)
                idle, loaded = await _idle_and_loaded(env, tiktok, samples)
                assert tiktok.stdin is not None
                tiktok.stdin.write(b"stop\n")
                sent = int(await _expect(tiktok, "sent"))
                worker_end = rss_mb(worker_pid)  # after the whole burst, still connected
                await connection.disconnect()
            idle_p99, load_p99 = percentile(idle, 99), percentile(loaded, 99)
            ratio = load_p99 / idle_p99
            results.append(Result("latency: p99 ack under a 2,000 ev/s burst vs idle", ratio, "x",
                                  f"<= {LATENCY_TARGET}x (and << 3 s)", ratio <= LATENCY_TARGET and load_p99 < 0.5,
                                  {"idle_p50_ms": round(statistics.median(idle) * 1000, 2),
                                   "idle_p99_ms": round(idle_p99 * 1000, 2),
                                   "load_p50_ms": round(statistics.median(loaded) * 1000, 2),
                                   "load_p99_ms": round(load_p99 * 1000, 2), "samples": samples,
                                   "events_sent": sent}))  # fmt: skip
            # --- request economy: 200 changes in 10 s, 2 s window, Discord-like bucket on the fake
            env.fake.channel_bucket = (5, 5.0)
            await env.settle()
            before = {m: env.fake.count("PATCH", rf"/messages/{m}$") for m in _display_ids(env)}
            errors_before = env.fake.count_status(429)
            started = time.perf_counter()
            await _submit_many(env, 200, 10.0)
            await env.settle()
            elapsed = time.perf_counter() - started
            edits = {m: env.fake.count("PATCH", rf"/messages/{m}$") - before[m] for m in before}
            allowed = math.ceil(elapsed / env.bot.config.display_refresh_seconds) + 1
            limited = env.fake.count_status(429) - errors_before
            worst = max(edits.values()) if edits else 0
            results.append(Result("requests: edits per display in 200 changes / 10 s", worst, "edits",
                                  f"<= {allowed} (1 per window; naive: 200), 0 x 429", worst <= allowed and
                                  limited == 0, {"edits": list(edits.values()), "naive": 200, "429s": limited,
                                                 "seconds": round(elapsed, 1)}))  # fmt: skip
            env.fake.channel_bucket = None
            rss_end = rss_mb()
            ratio = rss_end / rss_start
            results.append(Result("memory: RSS after the load steps vs right after start", ratio, "x",
                                  f"<= {MEMORY_TARGET}x", ratio <= MEMORY_TARGET,
                                  {"start_mb": round(rss_start, 1), "end_mb": round(rss_end, 1)}))  # fmt: skip
            ratio = worker_end / worker_start
            results.append(Result("memory: TikTok process RSS after the burst vs right after connecting", ratio, "x",
                                  f"<= {MEMORY_TARGET}x", ratio <= MEMORY_TARGET,
                                  {"start_mb": round(worker_start, 1), "end_mb": round(worker_end, 1)}))  # fmt: skip
            await close_env(env)
        finally:
            restore_endpoints(saved_endpoints)
    return results


async def _idle_and_loaded(
    env: Any, tiktok: asyncio.subprocess.Process, samples: int
) -> tuple[list[float], list[float]]:
    """``samples`` latencies with the burst held and as many with it flowing, in ``ROUNDS`` alternating rounds."""
    assert tiktok.stdin is not None
    idle: list[float] = []
    loaded: list[float] = []
    for _ in range(ROUNDS):
        tiktok.stdin.write(b"pause\n")
        await asyncio.sleep(SETTLE_SECONDS)  # the last frames of the burst are written to the database
        idle += await _latencies(env, samples // ROUNDS)
        tiktok.stdin.write(b"resume\n")
        await asyncio.sleep(SETTLE_SECONDS)  # the burst is flowing through the writer again
        loaded += await _latencies(env, samples // ROUNDS)
        _forget_answers(env)
    return idle, loaded


def _forget_answers(env: Any) -> None:
    """Drop the fake Discord's record of the interactions so far (untimed, between rounds).

    The fake runs in this process and keeps every interaction, request and ephemeral answer; without this
    the memory figure would count thousands of the fake's records as the bot's. The soak does the same.
    """
    for record in env.fake.interactions.values():
        for message in record.messages():
            env.fake.delete_stored(message)
    env.fake.interactions.clear()
    env.fake.requests.clear()


def _display_ids(env: Any) -> list[str]:
    return [m["id"] for channel in ("queue", "reviewers") for m in env.fake.pins(env.channels[channel])]

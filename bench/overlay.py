"""The overlay's web server on the running bot: change → visible in a page, and the cost of 200 open pages.

* visibility: time from a queue change (a submission through the queue service) to the snapshot that shows
  it arriving at a connected SSE client, p95, including the coalescing window; measured while the 200
  pages below are connected, with changes at random gaps so some land inside a window and wait for it;
* memory: the bot's resident memory with 200 connected overlay pages (in a process of their own, as OBS
  is) minus without, per page;
* acknowledgement: interaction p99 (``/queue`` injected at the fake Discord until acknowledged, as in
  ``bench.discord_load``) with 200 pages connected versus none, in alternating rounds, while changes keep
  flowing (each change is pushed to every page).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Result, percentile
from bench.discord_load import _forget_answers, _latencies, rss_mb
from services.web_access import OVERLAY

VISIBLE_TARGET = 1.5
ACK_TARGET = 1.1
MEMORY_TARGET_KB = 64.0
CLIENTS = 200
ROUNDS = 6


class Watcher:
    """An in-process SSE client that notes when each queue size first became visible."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def run(self, url: str) -> None:
        """Follow the stream until cancelled."""
        async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "snapshot":
                    total = json.loads(line[6:])["total"]
                    self.seen.setdefault(total, time.monotonic())


async def _changes(env: Any, count: int, marks: dict[int, float], stop: asyncio.Event | None = None) -> None:
    """``count`` submissions at random gaps of 0.1-1 s; ``marks[total]`` is when each one started."""
    queue = env.bot.queue
    total = len(await queue.ordered_queue(env.guild_id))
    for _ in range(count):
        if stop is not None and stop.is_set():
            return
        draft = queue.draft(artist="Bench", title=f"Song {time.time_ns()}", note=None,
                            link=f"https://x.test/{time.time_ns()}")  # fmt: skip
        total += 1
        marks[total] = time.monotonic()
        await queue.submit(env.guild_id, 70_000_000 + total, "bench", draft, skip=False)
        await asyncio.sleep(random.uniform(0.1, 1.0))


async def _command(process: asyncio.subprocess.Process, command: str, answer: str) -> str:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(command.encode() + b"\n")
    await process.stdin.drain()
    line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode().strip()
    if not line.startswith(answer):
        raise RuntimeError(f"the overlay clients said {line!r} to {command!r}")
    return line


async def run(quick: bool = False) -> list[Result]:
    """The three figures from one running bot."""
    from tests.fakediscord.harness import close_env, create_env, endpoint_defaults, restore_endpoints

    saved = endpoint_defaults()
    samples = 300 if quick else 900
    changes = 40 if quick else 120
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Real pages come from many addresses; here all 200 share 127.0.0.1, so the per-address limit is lifted.
        env = await create_env(Path(tmp), DISPLAY_REFRESH_SECONDS="2", WEB_RATE_PER_MINUTE="1000000")
        try:
            token = await env.bot.web_access.rotate(env.guild_id, OVERLAY)
            url = f"{env.bot.web.local_url}/o/{token}/events"
            clients = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.overlay_clients", "--url", url, "--clients", str(CLIENTS),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            watcher = Watcher()
            watcher.task = asyncio.create_task(watcher.run(url))
            await asyncio.sleep(0.5)
            await _latencies(env, 50)  # warm-up, untimed
            _forget_answers(env)
            rss_none = rss_mb()
            none: list[float] = []
            connected: list[float] = []
            marks: dict[int, float] = {}
            rss_connected = 0.0
            cpu = {"none": 0.0, "connected": 0.0}
            for round_number in range(ROUNDS):
                stop = asyncio.Event()
                background = asyncio.create_task(_changes(env, 10_000, {}, stop))
                cpu_start = time.process_time()
                none += await _latencies(env, samples // ROUNDS)
                cpu["none"] += time.process_time() - cpu_start
                stop.set()
                await background
                _forget_answers(env)
                await _command(clients, "open", "open")
                await asyncio.sleep(0.5)
                if round_number == 0:
                    rss_connected = rss_mb()
                stop = asyncio.Event()
                background = asyncio.create_task(_changes(env, 10_000, marks, stop))
                cpu_start = time.process_time()
                connected += await _latencies(env, samples // ROUNDS)
                cpu["connected"] += time.process_time() - cpu_start
                stop.set()
                await background
                await _command(clients, "close", "closed")
                _forget_answers(env)
            # Visibility with the 200 pages connected, the changes alone.
            await _command(clients, "open", "open")
            visible_marks: dict[int, float] = {}
            await _changes(env, changes, visible_marks)
            await asyncio.sleep(1.5)
            # A coalesced push can skip a size (two changes in one window): a change is visible in the first
            # snapshot whose size reaches it.
            seen = sorted(watcher.seen.items())
            lags = []
            for size, started in visible_marks.items():
                shown = [at for total, at in seen if total >= size and at >= started]
                if shown:
                    lags.append(min(shown) - started)
            missing = len(visible_marks) - len(lags)
            await _command(clients, "stop", "stopped")
            await clients.wait()
            watcher.task.cancel()
            pushes = env.bot.web.hub.pushes
        finally:
            await close_env(env)
            restore_endpoints(saved)
    p95 = percentile(lags, 95)
    results.append(Result("overlay: change -> visible in a connected page, p95 (200 pages open)", p95, "s",
                          f"<= {VISIBLE_TARGET} s", p95 <= VISIBLE_TARGET and missing == 0,
                          {"p50_ms": round(statistics.median(lags) * 1000, 1), "p95_ms": round(p95 * 1000, 1),
                           "max_ms": round(max(lags) * 1000, 1), "changes": len(visible_marks),
                           "never_seen": missing, "pushes": pushes}))  # fmt: skip
    per_client = (rss_connected - rss_none) * 1024 / CLIENTS
    results.append(Result("overlay: bot memory per connected page (200 pages)", per_client, "KB",
                          f"<= {MEMORY_TARGET_KB:.0f} KB", per_client <= MEMORY_TARGET_KB,
                          {"rss_none_mb": round(rss_none, 1), "rss_200_mb": round(rss_connected, 1)}))  # fmt: skip
    ratio = percentile(connected, 99) / percentile(none, 99)
    results.append(Result("overlay: p99 ack with 200 pages connected vs none", ratio, "x", f"<= {ACK_TARGET}x",
                          ratio <= ACK_TARGET,
                          {"none_p50_ms": round(statistics.median(none) * 1000, 2),
                           "none_p99_ms": round(percentile(none, 99) * 1000, 2),
                           "connected_p50_ms": round(statistics.median(connected) * 1000, 2),
                           "connected_p99_ms": round(percentile(connected, 99) * 1000, 2),
                           "samples": len(none) + len(connected),
                           "bot_cpu_s_none": round(cpu["none"], 2),
                           "bot_cpu_s_connected": round(cpu["connected"], 2)}))  # fmt: skip
    return results

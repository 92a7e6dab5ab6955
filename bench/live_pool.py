"""Many lives on one machine: 100 concurrent lives at 20 events/s each through the bot's connection pool.

The bot runs on the fake Discord as in ``bench.discord_load``; the fake TikTok runs in a process of its own
(``bench.tiktok_load --lives 100``: TikTok is another machine) and sends every frame to every live, so each
of the 100 lives gets 20 events/s (2,000 events/s in all) through the real TikTokLive client in the pool's
children (``TIKTOK_WORKERS``, default one per core), then the cog's listener, the session service and the
batch writer into SQLite. Figures:

* memory: resident memory of all pool children with 100 lives connected and after the burst, minus the
  same with one live, per extra live (``<= 15 MB``); and, before the pool, one process per live (measured
  here with a few ``LiveWorker``s, each a child of its own);
* no event lost: every guild's listener received exactly what the fake sent to its live;
* latency: p99 acknowledgement of ``/queue`` while the 100 lives send, versus with no lives connected
  (rounds before connecting and after disconnecting, so that drift hits both sides).

The bot runs on its own cadences (1 s engagement flush, 2 s display window), its start-up heap frozen as
``bot.main`` freezes it, and the fake Discord without its contract checks (as in ``bench.queue_burst``):
validating every request against the OpenAPI spec on this loop is work Discord does on its own machines.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import Result, freeze_the_fake, percentile, until
from bench.discord_load import _expect, _forget_answers, _latencies, load_generator, rss_mb

LIVES = 100
RATE = 20
"""Events per second per live."""
PER_FRAME = 10
MEMORY_TARGET_MB = 15.0
LATENCY_TARGET = 1.5
BEFORE_LIVES = 3
"""Dedicated processes measured for the layout before the pool (each costs a whole interpreter)."""


class _Quiet:
    """A listener that drops everything (the dedicated-process memory figure needs no bot)."""

    def on_events(self, events: list[Any]) -> None:
        return None

    def on_state(self, snapshot: Any) -> None:
        return None

    async def on_connected(self, info: Any) -> None:
        return None

    async def on_disconnected(self, info: Any, unexpected: bool, duration: float) -> None:
        return None

    async def on_session_end(self, info: Any) -> None:
        return None


async def _before(url: str) -> list[float]:
    """RSS of each process when every live has a process of its own (``LiveWorker``), connected and idle."""
    from services.tiktok.live import ConnectionState
    from services.tiktok.worker import LiveWorker

    config = SimpleNamespace(sign_api_url=url, tiktok_web_url=url, tiktok_webcast_url=url + "/webcast")
    workers = [LiveWorker(900_000 + n, _Quiet(), config=config) for n in range(BEFORE_LIVES)]
    try:
        for worker in workers:
            await worker.connect("host")
        await until(lambda: all(w.status().state is ConnectionState.CONNECTED for w in workers), "dedicated", 300)
        await asyncio.sleep(2.0)
        return [rss_mb(w.pid) for w in workers]
    finally:
        await asyncio.gather(*(w.close() for w in workers))


def _pool_rss(pool: Any) -> float:
    return sum(rss_mb(pid) for pid, _ in pool.loads() if pid is not None)


async def run(quick: bool = False) -> list[Result]:
    """Before (a process per live) and after (the pool): memory, completeness and latency."""
    from services.tiktok.live import ConnectionState
    from tests.fakediscord.harness import close_env, create_env, endpoint_defaults, restore_endpoints
    from tests.fakediscord.openapi import ContractChecker

    freeze_the_fake()  # and the bot's modules, imported above: as bot.main, collections skip the start-up heap

    seconds = 15.0 if quick else 40.0
    samples = 200 if quick else 600
    saved = endpoint_defaults()
    results: list[Result] = []
    args = ("--rate", str(RATE), "--per-frame", str(PER_FRAME), "--seconds", str(seconds),
            "--lives", str(LIVES + BEFORE_LIVES))  # fmt: skip
    try:
        async with load_generator(*args) as tiktok:
            assert tiktok.stdin is not None
            url = await _expect(tiktok, "url")
            tiktok.stdin.write(b"pause\n")  # nothing is sent until every live is connected and measured
            before = await _before(url)
            with tempfile.TemporaryDirectory() as tmp:
                # The bot's own cadences (the harness's defaults, 0.1 s flushes, are for quick tests), and the
                # fake without its contract checks: they validate each request against the OpenAPI spec on
                # this loop (41% of its busy time under the lives, in a profile), work Discord does elsewhere.
                env = await create_env(Path(tmp), contract=ContractChecker.off(), DISPLAY_REFRESH_SECONDS="2",
                                       ENGAGEMENT_FLUSH_SECONDS="1")  # fmt: skip
                try:
                    env.bot.config = replace(env.bot.config, sign_api_url=url, tiktok_web_url=url,
                                             tiktok_webcast_url=url + "/webcast")  # fmt: skip
                    sessions: Any = env.bot.sessions  # counted on its way in: the connections hand events to it
                    received: Counter[int] = Counter()
                    record = sessions.record

                    def counting(guild_id: int, events: list[Any]) -> None:
                        received[guild_id] += len(events)
                        record(guild_id, events)

                    sessions.record = counting
                    idle = await _latencies(env, samples // 2)  # no lives yet
                    _forget_answers(env)
                    guilds = [env.guild_id + 1 + n for n in range(LIVES)]
                    lives = [env.bot.lives.connection(guild) for guild in guilds]
                    await lives[0].connect("host")
                    await until(lambda: lives[0].status().state is ConnectionState.CONNECTED, "the first live", 300)
                    await asyncio.sleep(2.0)
                    pool = env.bot.tiktok
                    one_rss = _pool_rss(pool)
                    bot_one = rss_mb()
                    started = time.perf_counter()
                    for live in lives[1:]:
                        await live.connect("host")
                    await until(lambda: all(lv.status().state is ConnectionState.CONNECTED for lv in lives),
                                 "every live", 600)  # fmt: skip
                    connect_s = time.perf_counter() - started
                    await asyncio.sleep(2.0)
                    all_rss = _pool_rss(pool)
                    await _expect(tiktok, "burst")
                    tiktok.stdin.write(b"resume\n")
                    await asyncio.sleep(2.0)
                    loaded: list[float] = []
                    deadline = time.monotonic() + seconds - 6.0
                    while time.monotonic() < deadline:
                        loaded += await _latencies(env, 50)
                    _forget_answers(env)
                    sent = int(await _expect(tiktok, "sent"))
                    await until(lambda: all(received[g] >= sent for g in guilds), "every event", 120)
                    await asyncio.sleep(1.0)  # anything beyond what was sent would show up now
                    after_rss = _pool_rss(pool)
                    bot_all = rss_mb()
                    loads = pool.loads()
                    lost = sum(max(0, sent - received[g]) for g in guilds)
                    extra = sum(max(0, received[g] - sent) for g in guilds)
                    await asyncio.gather(*(live.disconnect() for live in lives))
                    await asyncio.sleep(1.0)
                    idle += await _latencies(env, samples // 2)  # no lives again
                    _forget_answers(env)
                finally:
                    await close_env(env)
    finally:
        restore_endpoints(saved)
    per_live = (max(all_rss, after_rss) - one_rss) / (LIVES - 1)
    before_mean = statistics.mean(before)
    results.append(Result(f"lives: RSS per extra live, {LIVES} lives in the pool", per_live, "MB",
                          f"<= {MEMORY_TARGET_MB:.0f} MB (before: {before_mean:.0f} MB, a process each)",
                          per_live <= MEMORY_TARGET_MB,
                          {"pool_processes": len(loads), "lives_per_process": [n for _, n in loads],
                           "pool_rss_one_live_mb": round(one_rss, 1), "pool_rss_connected_mb": round(all_rss, 1),
                           "pool_rss_after_burst_mb": round(after_rss, 1),
                           "before_rss_per_process_mb": [round(r, 1) for r in before],
                           "bot_rss_one_live_mb": round(bot_one, 1), "bot_rss_all_lives_mb": round(bot_all, 1),
                           "connect_all_s": round(connect_s, 1)}))  # fmt: skip
    results.append(Result(f"lives: events lost, {LIVES} lives x {RATE} ev/s", lost, "events",
                          "0 lost, 0 extra", lost == 0 and extra == 0,
                          {"sent_per_live": sent, "received_total": sum(received[g] for g in guilds),
                           "extra": extra, "seconds": seconds}))  # fmt: skip
    idle_p99, load_p99 = percentile(idle, 99), percentile(loaded, 99)
    ratio = load_p99 / idle_p99
    results.append(Result(f"lives: p99 ack with {LIVES} lives sending vs no lives", ratio, "x",
                          f"<= {LATENCY_TARGET}x", ratio <= LATENCY_TARGET,
                          {"idle_p50_ms": round(statistics.median(idle) * 1000, 2),
                           "idle_p99_ms": round(idle_p99 * 1000, 2),
                           "load_p50_ms": round(statistics.median(loaded) * 1000, 2),
                           "load_p99_ms": round(load_p99 * 1000, 2), "idle_samples": len(idle),
                           "load_samples": len(loaded)}))  # fmt: skip
    return results

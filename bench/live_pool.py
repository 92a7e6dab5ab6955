"""Many lives on one machine: 100 concurrent lives at 20 events/s each through the bot's connection pool.

The bot runs in a process of its own (``bench.bot_process``, its start-up heap frozen as ``bot.main`` does,
on its own cadences: 1 s engagement flush, 2 s display window) against the fake Discord in this process,
which leaves out its contract checks, as in ``bench.queue_burst``: validating every request against the
OpenAPI spec is Discord's work on Discord's machines. The fake TikTok runs in a process of its own too
(``bench.tiktok_load --lives 100 --background``: the lowest CPU class, as TikTok's servers are not on the
bot's machine) and sends every frame to every live, so each of the 100 lives gets 20 events/s (2,000
events/s in all) through the real TikTokLive client in the pool's children (``TIKTOK_WORKERS``, default
one per core), then the cog's listener, the session service and the batch writer into SQLite. Figures:

* memory: resident memory of all pool children with 100 lives connected and after the burst, minus the
  same with one live, per extra live (``<= 15 MB``); and, before the pool, one process per live (measured
  here with a few ``LiveWorker``s, each a child of its own);
* no event lost: every guild's session service received exactly what the fake sent to its live;
* latency: p99 acknowledgement of ``/queue`` while the 100 lives send, versus with no lives connected
  (rounds before connecting and after disconnecting, so that drift hits both sides; the second once the
  bot has finished ending the lives, which takes it seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import Result, freeze_the_fake, percentile, until
from bench.discord_load import _expect, _forget_answers, _latencies, load_generator, rss_mb
from bench.guild_scale import start_bot, stop_bot
from bench.queue_burst import RemoteBot

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


async def _until_connected(bot: RemoteBot, count: int, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while (state := await bot.ask("lives"))["connected"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {state['connected']} of {count} lives connected after 600 s")
        await asyncio.sleep(0.2)
    return state


async def _until_settled(bot: RemoteBot, resting: int) -> float:
    """Seconds until the ends of the lives are handled (sessions closed, recaps sent).

    That is when the bot has as many tasks as before the first live, plus one reader per pool process.
    Sampling "no lives" while the bot still ends 100 of them would measure that work, not an idle bot.
    """
    started = time.monotonic()
    while (state := await bot.ask("lives"))["tasks"] > resting + len(state["loads"]):
        if time.monotonic() - started > 120:
            raise RuntimeError(f"the bot was still busy with the ended lives after 120 s ({state['tasks']} tasks)")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    return time.monotonic() - started


async def run(quick: bool = False) -> list[Result]:
    """Before (a process per live) and after (the pool): memory, completeness and latency."""
    from tests.fakediscord.openapi import ContractChecker
    from tests.fakediscord.server import FakeDiscord

    freeze_the_fake()  # this process is Discord here, and times the bot's answers
    seconds = 15.0 if quick else 40.0
    samples = 200 if quick else 1200  # idle samples, half on each side: their p99 is the 12th-worst of them
    results: list[Result] = []
    args = ("--rate", str(RATE), "--per-frame", str(PER_FRAME), "--seconds", str(seconds),
            "--lives", str(LIVES + BEFORE_LIVES), "--background")  # fmt: skip
    async with load_generator(*args) as tiktok, contextlib.AsyncExitStack() as stack:
        assert tiktok.stdin is not None
        url = await _expect(tiktok, "url")
        tiktok.stdin.write(b"pause\n")  # nothing is sent until every live is connected and measured
        before = await _before(url)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        fake = await FakeDiscord(contract=ContractChecker.off()).start()
        stack.push_async_callback(fake.stop)
        tiktok_urls = {"SIGN_API_URL": url, "TIKTOK_WEB_URL": url, "TIKTOK_WEBCAST_URL": url + "/webcast"}
        process, _ready = await start_bot(fake, tmp / "bot", ENGAGEMENT_FLUSH_SECONDS="1", **tiktok_urls)
        stack.push_async_callback(stop_bot, process)
        bot = RemoteBot(fake, fake.member("max"), {"general": fake.channel_id("general")}, process)
        await _latencies(bot, 20)  # warm-up, untimed
        _forget_answers(bot)
        idle = await _latencies(bot, samples // 2)  # no lives yet
        _forget_answers(bot)
        resting = (await bot.ask("lives"))["tasks"]
        guilds = [int(fake.guild_id) + 1 + n for n in range(LIVES)]
        await bot.ask(f"connect host {guilds[0]}")
        await _until_connected(bot, 1, "the first live")
        await asyncio.sleep(2.0)
        one = await bot.ask("lives")
        started = time.perf_counter()
        await bot.ask("connect host " + " ".join(map(str, guilds[1:])))
        await _until_connected(bot, LIVES, "every live")
        connect_s = time.perf_counter() - started
        await asyncio.sleep(2.0)
        connected = await bot.ask("lives")
        await _expect(tiktok, "burst")
        tiktok.stdin.write(b"resume\n")
        await asyncio.sleep(2.0)
        loaded: list[float] = []
        deadline = time.monotonic() + seconds - 6.0
        while time.monotonic() < deadline:
            loaded += await _latencies(bot, 50)
        _forget_answers(bot)
        sent = int(await _expect(tiktok, "sent"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # past it, what is missing counts as lost below
            counts = (await bot.ask("lives"))["received"]
            if all(counts.get(str(g), 0) >= sent for g in guilds):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything beyond what was sent would show up now
        after = await bot.ask("lives")
        received = {g: after["received"].get(str(g), 0) for g in guilds}
        lost = sum(max(0, sent - received[g]) for g in guilds)
        extra = sum(max(0, received[g] - sent) for g in guilds)
        await bot.ask("disconnect")
        settled = await _until_settled(bot, resting)
        idle += await _latencies(bot, samples // 2)  # no lives again
        _forget_answers(bot)
    one_rss, all_rss, after_rss = one["pool_rss_mb"], connected["pool_rss_mb"], after["pool_rss_mb"]
    loads, bot_one, bot_all = after["loads"], one["rss_mb"], after["rss_mb"]
    per_live = (max(all_rss, after_rss) - one_rss) / (LIVES - 1)
    before_mean = statistics.mean(before)
    results.append(Result(f"lives: RSS per extra live, {LIVES} lives in the pool", per_live, "MB",
                          f"<= {MEMORY_TARGET_MB:.0f} MB (before: {before_mean:.0f} MB, a process each)",
                          per_live <= MEMORY_TARGET_MB,
                          {"pool_processes": len(loads), "lives_per_process": loads,
                           "pool_rss_one_live_mb": round(one_rss, 1), "pool_rss_connected_mb": round(all_rss, 1),
                           "pool_rss_after_burst_mb": round(after_rss, 1),
                           "before_rss_per_process_mb": [round(r, 1) for r in before],
                           "bot_rss_one_live_mb": round(bot_one, 1), "bot_rss_all_lives_mb": round(bot_all, 1),
                           "connect_all_s": round(connect_s, 1)}))  # fmt: skip
    results.append(Result(f"lives: events lost, {LIVES} lives x {RATE} ev/s", lost, "events",
                          "0 lost, 0 extra", lost == 0 and extra == 0,
                          {"sent_per_live": sent, "received_total": sum(received.values()),
                           "extra": extra, "seconds": seconds}))  # fmt: skip
    idle_p99, load_p99 = percentile(idle, 99), percentile(loaded, 99)
    ratio = load_p99 / idle_p99
    results.append(Result(f"lives: p99 ack with {LIVES} lives sending vs no lives", ratio, "x",
                          f"<= {LATENCY_TARGET}x", ratio <= LATENCY_TARGET,
                          {"idle_p50_ms": round(statistics.median(idle) * 1000, 2),
                           "idle_p99_ms": round(idle_p99 * 1000, 2),
                           "load_p50_ms": round(statistics.median(loaded) * 1000, 2),
                           "load_p99_ms": round(load_p99 * 1000, 2), "idle_samples": len(idle),
                           "load_samples": len(loaded), "settled_after_disconnect_s": round(settled, 1)}))  # fmt: skip
    return results

"""A big queue under a live burst (issue 15.1): the interaction p99 against an idle bot with a short queue.

The figure: the p99 ``/queue`` acknowledgement with 10,000 active songs while a 2,000 events/s live burst
arrives, against an idle bot with 10 active songs (target: within 1.5x).

Two bots on the fake Discord, one after the other, each seeded in its own database by
``bench.queue_scale``'s builder (1,000 archived rows, the same 10,000 handles), with the three displays
posted. The small one answers idle. The large one answers while ``bench.tiktok_load`` sends the burst
through the real TikTokLive client in the connection pool's process, from fans named like the handles the
queued songs carry, so every engagement flush (each second) moves songs in the play order. Its burst and
idle rounds alternate, so the large bot's own idle figure is reported beside it (no target).

The interpreter's start-up heap is frozen first, as ``bot.main`` freezes the bot's, and the last events are
waited for until every one sent is applied, so a lost event fails the run.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import Result, freeze_like_the_bot, percentile, until
from bench.discord_load import _expect, _forget_answers, _idle_and_loaded, _latencies, load_generator
from models import DisplayKind

TARGET = 1.5
ACTIVE_SMALL = 10
ACTIVE_LARGE = 10_000


async def _bot(data_dir: Path, active: int) -> Any:
    """A bot with ``active`` songs waiting and its three displays posted, warmed up."""
    from bench.queue_scale import fill
    from tests.fakediscord.harness import create_env

    env = await create_env(data_dir, DISPLAY_REFRESH_SECONDS="2")
    await fill(env.bot.db, 1_000, active=active, guild=env.guild_id)
    env.bot.queue.invalidate(env.guild_id)  # seeded behind the service's back: build the order afresh
    for kind, channel in ((DisplayKind.LIVE_QUEUE, "queue"), (DisplayKind.REVIEWER_MAIN, "reviewers"),
                          (DisplayKind.REVIEWER_PENDING, "reviewers")):  # fmt: skip
        await env.bot.displays.ensure(env.guild_id, kind, env.bot.get_partial_messageable(int(env.channels[channel])))
    await _latencies(env, 20)  # the order is built and the first renders are done before anything is timed
    _forget_answers(env)
    return env


async def run(quick: bool = False) -> list[Result]:
    """Idle with 10 active, then 10,000 active with the burst on and off in alternating rounds."""
    from tests.fakediscord.harness import close_env, endpoint_defaults, restore_endpoints

    freeze_like_the_bot()
    samples = 300 if quick else 1200
    seconds = 15 if quick else 40
    saved = endpoint_defaults()
    # The load generator builds its frames first (minutes of CPU for 80,000 messages): started and waited
    # for before anything is timed, so that work never overlaps a measurement.
    load = load_generator("--rate", "2000", "--seconds", str(seconds), "--queued-handles")
    try:
        async with load as tiktok:
            url = await _expect(tiktok, "url", timeout=900)
            with tempfile.TemporaryDirectory() as tmp:
                small = await _bot(Path(tmp) / "small", ACTIVE_SMALL)
                try:
                    idle_small = await _latencies(small, samples)
                finally:
                    await close_env(small)
                large = await _bot(Path(tmp) / "large", ACTIVE_LARGE)
                try:
                    large.bot.config = replace(large.bot.config, sign_api_url=url, tiktok_web_url=url,
                                               tiktok_webcast_url=url + "/webcast")  # fmt: skip
                    connection = large.bot.lives.connection(large.guild_id)
                    await connection.connect("host")
                    await _expect(tiktok, "burst")
                    idle_large, loaded = await _idle_and_loaded(large, tiktok, samples)
                    assert tiktok.stdin is not None
                    tiktok.stdin.write(b"stop\n")
                    sent = int(await _expect(tiktok, "sent"))
                    # The last events may still be on their way from the pool or in the next flush's buffer.
                    engagement = large.bot.engagement
                    await until(lambda: engagement.events_applied >= sent, "every event applied", 60)
                    applied = engagement.events_applied
                    await connection.disconnect()
                finally:
                    await close_env(large)
    finally:
        restore_endpoints(saved)
    small_p99, load_p99, large_idle_p99 = percentile(idle_small, 99), percentile(loaded, 99), percentile(idle_large, 99)
    ratio = load_p99 / small_p99
    return [
        Result(
            f"queue burst: p99 ack, {ACTIVE_LARGE:,} active + 2,000 ev/s vs {ACTIVE_SMALL} active idle",
            ratio,
            "x",
            f"<= {TARGET}x",
            ratio <= TARGET,
            {
                "small_idle_p50_ms": round(statistics.median(idle_small) * 1000, 2),
                "small_idle_p99_ms": round(small_p99 * 1000, 2),
                "large_burst_p50_ms": round(statistics.median(loaded) * 1000, 2),
                "large_burst_p99_ms": round(load_p99 * 1000, 2),
                "large_idle_p99_ms": round(large_idle_p99 * 1000, 2),
                "events_sent": sent,
                "events_applied": applied,
                "samples": len(loaded),
            },
        ),
    ]

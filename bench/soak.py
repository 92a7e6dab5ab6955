"""Soak: minutes of mixed load against the fakes, watching memory, open files and the log.

``python -m bench.soak --minutes 10``. Members submit and look at the queue, reviewers play songs, a live
sends engagement through the real TikTokLive client, displays refresh. Every 30 s it samples resident
memory and open file descriptors of the bot's process and of its TikTok connection's process; at the end
it prints the samples, the error count, and a verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import DISPLAY_LAYOUT, RESULTS_DIR, machine
from bench.discord_load import rss_mb


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


def open_fds(pid: int | None = None) -> int:
    """Open file descriptors of this process (or of ``pid``)."""
    return len(os.listdir(f"/proc/{pid or 'self'}/fd"))


async def soak(minutes: float) -> dict[str, Any]:
    """Run the mixed load; returns the samples and the verdict."""
    from bench.tiktok_events import push_frames, send_frames
    from services.tiktok.adapter import warm_event_classes
    from tests.fakediscord.harness import close_env, create_env
    from tests.faketiktok.server import FakeTikTok

    warm_event_classes()
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    frames = push_frames(20_000, 20)
    rng = random.Random(1)
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = await create_env(Path(tmp) / "data", DISPLAY_REFRESH_SECONDS="2", ENGAGEMENT_FLUSH_SECONDS="1")
        tiktok = FakeTikTok()
        await tiktok.start()
        tiktok.host("host", live=True)
        env.bot.config = replace(env.bot.config, sign_api_url=tiktok.base_url, tiktok_web_url=tiktok.base_url,
                                 tiktok_webcast_url=tiktok.base_url + "/webcast")  # fmt: skip
        guild = env.guild_id
        for kind, channel in DISPLAY_LAYOUT:
            await env.bot.displays.ensure(guild, kind, int(env.channels[channel]))
        connection: Any = env.bot.lives.connection(guild)
        await connection.connect("host")
        await tiktok.wait_connected()
        worker = connection.pid  # the TikTok connection's process: sampled too
        members = [env.fake.member(f"soak{i}") for i in range(50)]
        deadline = time.monotonic() + minutes * 60
        next_sample = time.monotonic()
        counter = 0
        frame_index = 0
        while time.monotonic() < deadline:
            counter += 1
            who = rng.choice(members)
            draft = env.bot.queue.draft(artist="Soak", title=f"Song {counter}", note=None,
                                        link=f"https://x.test/soak/{counter}")  # fmt: skip
            try:
                await env.bot.queue.submit(guild, who.id, who.user_id, draft, skip=rng.random() < 0.2)
            except Exception as exc:  # the queue's own refusals (one Free per user) are expected under load
                if type(exc).__module__ != "errors":
                    raise
            await who.slash(env.channels["general"], "queue")
            if counter % 3 == 0:
                await env.reviewer.slash(env.channels["reviewers"], "next")
            await send_frames(tiktok, frames[frame_index : frame_index + 5])  # about 100 events
            frame_index = (frame_index + 5) % (len(frames) - 5)
            if counter % 50 == 0:
                # The fake's own bookkeeping, not the bot's: dropped once answers in flight have landed.
                await asyncio.sleep(1.0)
                env.fake.interactions.clear()
                env.fake.requests.clear()
            if time.monotonic() >= next_sample:
                elapsed = round(minutes * 60 - (deadline - time.monotonic()), 1)
                samples.append({"t": elapsed, "rss_mb": round(rss_mb(), 1), "fds": open_fds(),
                                "worker_rss_mb": round(rss_mb(worker), 1), "worker_fds": open_fds(worker)})  # fmt: skip
                next_sample += 30
            await asyncio.sleep(0.5)
        await connection.disconnect()
        await tiktok.stop()
        await close_env(env)
    logging.getLogger().removeHandler(errors)
    warm = samples[min(2, len(samples) - 1)]  # after the first minute: caches and pools are warm
    last = samples[-1]
    rss_growth = last["rss_mb"] / warm["rss_mb"]
    fd_drift = last["fds"] - warm["fds"]
    worker_growth = last["worker_rss_mb"] / warm["worker_rss_mb"]
    worker_fd_drift = last["worker_fds"] - warm["worker_fds"]
    passed = (rss_growth <= 1.2 and worker_growth <= 1.2 and abs(fd_drift) <= 5 and abs(worker_fd_drift) <= 5
              and not errors.records)  # fmt: skip
    return {
        "minutes": minutes,
        "operations": counter,
        "samples": samples,
        "rss_growth_after_warmup": round(rss_growth, 3),
        "fd_drift_after_warmup": fd_drift,
        "worker_rss_growth_after_warmup": round(worker_growth, 3),
        "worker_fd_drift_after_warmup": worker_fd_drift,
        "errors": errors.records[:20],
        "passed": passed,
        "machine": machine(),
    }


def main() -> int:
    """Run and print the soak; exit 1 when memory or file descriptors drift, or anything logged an error."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(soak(args.minutes))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The real bot in a process of its own, for the scale and shard benchmarks: ``python -m bench.bot_process``.

Configured like ``bot.py``, from the environment (each benchmark points it at its fake Discord, which runs
in the benchmark's process, so that the fake's memory is not counted as the bot's). It writes one JSON line
on stdout when ready: pid, the guilds it serves, seconds from launch to READY and resident memory; then one
JSON line for every ``rss`` line on stdin (memory, guilds, displays left to verify, engagement events
applied); it closes (as on SIGTERM) at ``stop`` or the end of stdin. Its start-up heap is frozen before
the loop runs, as ``bot.main`` freezes the bot's. ``BENCH_VERIFY_RATE`` overrides the displays' start-up
verification rate (0: all at once, as before it was spread).

For ``bench.live_pool``: ``connect HOST GUILD...`` connects those guilds' lives to TikTok user ``HOST``,
``disconnect`` ends them, and ``lives`` answers with how many are connected, the events each guild's
session service received, the resident memory of the connection pool's processes, and how many asyncio
tasks the bot has (the ends of 100 lives keep it busy for seconds after they disconnected).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

LAUNCHED = time.monotonic()


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _no_wait(shard_id: int | None, *, initial: bool = False) -> None:
    """The fake Discord has no IDENTIFY rate limit (discord.py waits 5 s per further shard for Discord's)."""


async def main() -> None:
    """Start the bot, report READY, answer ``rss``, stop at ``stop``."""
    from bench.discord_load import rss_mb
    from bot import MusicQueueBot, apply_endpoint_overrides, setup_logging
    from config import load_config
    from services.tiktok.live import ConnectionState
    from ui.displays import DisplayManager

    rate = os.environ.get("BENCH_VERIFY_RATE")
    if rate is not None:
        original = DisplayManager.refresh_all

        async def refresh_all(self: DisplayManager) -> None:
            self.verify_rate = float(rate)
            await original(self)

        DisplayManager.refresh_all = refresh_all  # type: ignore[method-assign]
    config = load_config(env_file=None)
    setup_logging(config)
    apply_endpoint_overrides(config)
    bot = MusicQueueBot(config)
    bot.before_identify_hook = _no_wait  # type: ignore[method-assign]
    gc.freeze()  # as bot.main does: full collections skip what start-up imported
    task = asyncio.create_task(bot.start(config.token))
    ready = asyncio.create_task(bot.wait_until_ready())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # start-up failed: raise why
    _say({"event": "ready", "pid": os.getpid(), "guilds": sorted(g.id for g in bot.guilds),
          "shards": sorted(bot.shards), "ready_s": time.monotonic() - LAUNCHED, "rss_mb": rss_mb()})  # fmt: skip
    received: dict[int, int] = {}
    record = bot.sessions.record

    def counting(guild_id: int, events: Any) -> None:
        batch = events if isinstance(events, list) else list(events)
        received[guild_id] = received.get(guild_id, 0) + len(batch)
        record(guild_id, batch)

    bot.sessions.record = counting  # type: ignore[method-assign]
    lives: list[int] = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := (await reader.readline()).strip()) and line != b"stop":
        if line == b"rss":
            _say({"event": "rss", "rss_mb": rss_mb(), "guilds": len(bot.guilds),
                  "verify_pending": len(bot.displays._verify),
                  "events_applied": bot.engagement.events_applied})  # fmt: skip
        elif line.startswith(b"connect "):
            host, *guilds = line.decode().split()[1:]
            for guild in map(int, guilds):
                await bot.lives.connection(guild).connect(host)
                lives.append(guild)
            _say({"event": "connect", "lives": len(lives)})
        elif line == b"disconnect":
            await asyncio.gather(*(bot.lives.connection(guild).disconnect() for guild in lives))
            lives.clear()
            _say({"event": "disconnect"})
        elif line == b"lives":
            loads = bot.tiktok.loads()
            connected = sum(bot.lives.connection(g).status().state is ConnectionState.CONNECTED for g in lives)
            _say({"event": "lives", "connected": connected, "received": received, "rss_mb": rss_mb(),
                  "tasks": len(asyncio.all_tasks()),
                  "pool_rss_mb": sum(rss_mb(pid) for pid, _ in loads if pid is not None),
                  "loads": [n for _, n in loads]})  # fmt: skip
    await bot.close()
    await task


if __name__ == "__main__":
    asyncio.run(main())

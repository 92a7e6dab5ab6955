"""A big queue under a live burst (issue 15.1): the interaction p99 against an idle bot with a short queue.

The figure: the p99 ``/queue`` acknowledgement with 10,000 active songs while a 2,000 events/s live burst
arrives, against an idle bot with 10 active songs (target: within 1.5x).

Each bot is the real bot in a process of its own (``bench.bot_process``, frozen and configured like
``bot.main``, with the default 1 s engagement flush), against a fake Discord that runs here, one fake per
bot. So the bot's garbage collections walk only the bot, as in production, and not the fake's interaction
records, gateway frames and stored messages; and the fake leaves out its contract checks, Discord's work
inline in every timed request (the test suite makes them). Each bot's database is seeded by
``bench.queue_scale``'s builder (1,000 archived rows, the same 10,000 handles), with its three displays
pinned. The large one is connected with ``/tiktok connect`` to the fake TikTok of ``bench.tiktok_load``
(another process: TikTok is another machine), which sends the burst from 500 fans whose proven handles
count for Free songs (checked at seeding), so every engagement flush re-keys songs in the play order. Both
bots run through the whole measurement, in rounds of: the small one idle, the large one idle (reported
beside, no target), the large one under the burst; so drift in the machine hits all three alike. The run
waits until every event sent is applied, so a lost event fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Result, freeze_the_fake, percentile
from bench.discord_load import ROUNDS, SETTLE_SECONDS, _expect, _forget_answers, _latencies, load_generator
from bench.guild_scale import _line, pin_displays, start_bot, stop_bot
from models import Line

TARGET = 1.5
ACTIVE_SMALL = 10
ACTIVE_LARGE = 10_000


@dataclass
class RemoteBot:
    """A bot in a process of its own, seen from its fake Discord: what ``bench.discord_load``'s helpers read."""

    fake: Any
    member: Any
    channels: dict[str, str]
    process: asyncio.subprocess.Process

    async def ask(self, command: str, timeout: float = 300) -> dict[str, Any]:
        """One ``bench.bot_process`` command and its one-line JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        return await _line(self.process, timeout)

    async def stats(self) -> dict[str, Any]:
        """The bot's own report: memory, guilds, displays left to verify, engagement events applied."""
        return await self.ask("rss")


async def _seed(fake: Any, database: Path, active: int) -> None:
    """The bot's database: ``bench.queue_scale``'s songs and handles, and three displays pinned in the fake."""
    from bench.queue_scale import fill, free_fans
    from database import Database

    guild = int(fake.guild_id)
    db = Database(database)
    await db.connect()
    try:
        await fill(db, 1_000, active=active, guild=guild)
        if active == ACTIVE_LARGE:  # the burst's fans own Free songs, so that every flush re-keys the order
            free, _total = await db.line_head(guild, Line.FREE, active)
            owners = await db.handle_owners(guild, free_fans(active, 500))
            if len(owners) != 500 or not set(owners.values()) <= {song.user_id for song in free}:
                raise RuntimeError("the burst's fans do not own Free songs of the seeded queue")
        await pin_displays(fake, db, guild, {name: fake.channel_id(name) for name in ("queue", "reviewers")})
    finally:
        await db.close()


async def _start(fake: Any, data_dir: Path, active: int, **extra: str) -> RemoteBot:
    """Seed, start the bot, wait for its displays' start-up verification, and warm it up (untimed)."""
    await _seed(fake, data_dir / "music_queue.db", active)  # the database makes its folder
    process, _ready = await start_bot(fake, data_dir, **extra)
    bot = RemoteBot(fake, fake.member("max"), {"general": fake.channel_id("general")}, process)
    deadline = time.monotonic() + 60
    while (await bot.stats())["verify_pending"]:  # the start-up pass edits the displays: not while timing
        if time.monotonic() > deadline:
            raise RuntimeError("the displays were not verified within 60 s")
        await asyncio.sleep(0.1)
    await _latencies(bot, 20)  # the order is built and the first renders are done before anything is timed
    _forget_answers(bot)
    return bot


async def run(quick: bool = False) -> list[Result]:
    """Both bots up; rounds of: the small one idle, the large one idle, the large one under the burst."""
    from tests.fakediscord.openapi import ContractChecker
    from tests.fakediscord.server import FakeDiscord

    samples = 300 if quick else 1200
    seconds = 15 if quick else 40
    per_round = samples // ROUNDS
    freeze_the_fake()  # this process is Discord here, and times the bot's answers
    # The load generator builds its frames first (minutes of CPU for 80,000 messages): started and waited
    # for before anything is timed, so that work never overlaps a measurement.
    load = load_generator("--rate", "2000", "--seconds", str(seconds), "--queued-handles")
    idle_small: list[float] = []
    idle_large: list[float] = []
    loaded: list[float] = []
    async with load as tiktok, contextlib.AsyncExitStack() as stack:
        assert tiktok.stdin is not None
        url = await _expect(tiktok, "url", timeout=900)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bots: list[RemoteBot] = []
        for name, active, extra in (("small", ACTIVE_SMALL, {}), ("large", ACTIVE_LARGE, {
                "SIGN_API_URL": url, "TIKTOK_WEB_URL": url, "TIKTOK_WEBCAST_URL": url + "/webcast"})):  # fmt: skip
            fake = await FakeDiscord(contract=ContractChecker.off()).start()
            stack.push_async_callback(fake.stop)
            bots.append(await _start(fake, tmp / name, active, **extra))
            stack.push_async_callback(stop_bot, bots[-1].process)
        small, large = bots
        general = large.channels["general"]
        await large.fake.admin.slash(general, "tiktok", "connect", username="host")
        await _expect(tiktok, "burst")
        # Rounds, so that drift in the machine hits all three alike; the small bot idles through the burst.
        for _ in range(ROUNDS):
            tiktok.stdin.write(b"pause\n")
            await asyncio.sleep(SETTLE_SECONDS)  # the last frames of the burst are written to the database
            idle_small += await _latencies(small, per_round)
            idle_large += await _latencies(large, per_round)
            tiktok.stdin.write(b"resume\n")
            await asyncio.sleep(SETTLE_SECONDS)  # the burst is flowing through the writer again
            loaded += await _latencies(large, per_round)
            for bot in bots:
                _forget_answers(bot)
        tiktok.stdin.write(b"stop\n")
        sent = int(await _expect(tiktok, "sent"))
        # The last events may still be on their way from the pool or in the next flush's buffer.
        deadline = time.monotonic() + 60
        while (applied := (await large.stats())["events_applied"]) < sent:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{applied} of {sent} events applied after 60 s")
            await asyncio.sleep(0.1)
        await large.fake.admin.slash(general, "tiktok", "disconnect")
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

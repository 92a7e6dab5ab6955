"""Shared fixtures: a real SQLite database in a temp folder, and the services built on it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from database import Database
from services.points import PointsService
from services.queue import QueueService

GUILD = 1000


class FakeClock:
    """A controllable clock: every call advances a millisecond so entry times are distinct."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._tick = itertools.count()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "test.db")
    await database.connect()
    # Tests exercise queue rules, not spam control; the spam tests switch these back on.
    await database.update_settings(GUILD, submit_cooldown_seconds=0, max_pending_per_user=0)
    yield database
    await database.close()


@pytest.fixture
def queue(db: Database, clock: FakeClock) -> QueueService:
    return QueueService(db, clock=clock)


@pytest.fixture
def points(db: Database, queue: QueueService, clock: FakeClock) -> PointsService:
    return PointsService(db, queue, clock=clock)


# ---------------------------------------------------------------------- the real bot against the fake Discord

import asyncio  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import discord  # noqa: E402

from bot import MusicQueueBot, apply_endpoint_overrides  # noqa: E402
from config import Config, load_config  # noqa: E402
from tests.fakediscord import Actor, FakeDiscord  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_violations: the test provokes rule violations on purpose")


@dataclass
class BotEnv:
    """The fake Discord, the running bot, and the people and channels of the test server."""

    fake: FakeDiscord
    config: Config
    bot: MusicQueueBot
    admin: Actor
    reviewer: Actor
    member: Actor
    channels: dict[str, str]
    reviewer_role: str
    task: asyncio.Task[None] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def guild_id(self) -> int:
        return int(self.fake.guild_id)

    async def start(self) -> MusicQueueBot:
        self.bot = MusicQueueBot(self.config, guild_ready_timeout=0.05)
        self.task = asyncio.create_task(self.bot.start(self.config.token))
        await self.fake.wait_for(lambda: self.bot.is_ready() or self.task.done(), 15, "the bot to be ready")
        if self.task.done():
            self.task.result()  # start-up failed: raise why
        return self.bot

    async def stop(self) -> None:
        await self.bot.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def restart(self) -> MusicQueueBot:
        await self.stop()
        return await self.start()

    async def settle(self) -> None:
        """Wait for pending display refreshes and engagement flushes."""
        await self.bot.engagement.flush()
        await self.bot.displays.coalescer.flush()


@pytest.fixture
async def bot_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    fake = FakeDiscord()
    await fake.start()
    channels = {name: fake.add_channel(name) for name in ("general", "queue", "reviewers", "debug", "now", "bookmarks",
                                                          "metrics", "submit")}  # fmt: skip
    reviewer_role = fake.add_role("Reviewer")
    env = BotEnv(
        fake=fake,
        config=load_config(
            {
                "DISCORD_TOKEN": "fake-token-for-tests",
                "DATA_DIR": str(tmp_path / "data"),
                "GUILD_ID": fake.guild_id,
                "DISCORD_API_BASE_URL": fake.api_base_url,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
                "DISPLAY_REFRESH_SECONDS": "0.3",
                "ENGAGEMENT_FLUSH_SECONDS": "0.1",
                "BACKUP_INTERVAL_HOURS": "0",
            }
        ),
        bot=None,  # type: ignore[arg-type]  # set by start()
        admin=fake.member("ada", admin=True),
        reviewer=fake.member("rita", roles=[reviewer_role]),
        member=fake.member("max"),
        channels=channels,
        reviewer_role=reviewer_role,
    )
    # Record the originals so the class attributes the bot changes are restored after the test.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    apply_endpoint_overrides(env.config)
    await env.start()
    await env.bot.db.update_settings(env.guild_id, reviewer_role_id=int(reviewer_role), submit_cooldown_seconds=0,
                                     max_pending_per_user=0)  # fmt: skip
    try:
        yield env
    finally:
        if env.bot is not None and not env.bot.is_closed():
            await env.stop()
        await fake.stop()
    if request.node.get_closest_marker("allow_violations") is None:
        fake.assert_clean()

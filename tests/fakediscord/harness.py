"""The real bot running against the fake Discord: used by the pytest fixture and by the benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import discord
import yarl

from bot import MusicQueueBot, apply_endpoint_overrides
from config import Config, load_config
from tests.fakediscord.server import Actor, FakeDiscord

CHANNELS = ("general", "queue", "reviewers", "debug", "now", "bookmarks", "metrics", "submit")


@dataclass
class BotEnv:
    """The fake Discord, the running bot, and the people and channels of the test server."""

    fake: FakeDiscord
    config: Config
    admin: Actor
    reviewer: Actor
    member: Actor
    channels: dict[str, str]
    reviewer_role: str
    bot: MusicQueueBot = None  # type: ignore[assignment]  # set by start()
    task: asyncio.Task[None] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def guild_id(self) -> int:
        """The test server's id."""
        return int(self.fake.guild_id)

    async def start(self) -> MusicQueueBot:
        """Start the bot and wait until it is ready."""
        self.bot = MusicQueueBot(self.config, guild_ready_timeout=0.05)
        self.bot.before_identify_hook = _no_identify_wait  # type: ignore[method-assign]
        self.task = asyncio.create_task(self.bot.start(self.config.token))
        await self.fake.wait_for(lambda: self.bot.is_ready() or self.task.done(), 30, "the bot to be ready")
        if self.task.done():
            self.task.result()  # start-up failed: raise why
        return self.bot

    async def stop(self) -> None:
        """Close the bot (as a SIGTERM would)."""
        await self.bot.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def restart(self) -> MusicQueueBot:
        """Stop and start again on the same database."""
        await self.stop()
        return await self.start()

    async def settle(self) -> None:
        """Wait for pending display refreshes and engagement flushes."""
        await self.bot.engagement.flush()
        await self.bot.displays.flush()  # the start-up verification pass included


async def _no_identify_wait(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before each further shard's IDENTIFY (Discord's limit); the fake has no limit."""


async def create_env(
    data_dir: Path, *, prepare: Callable[[FakeDiscord], dict[str, str] | None] | None = None, **settings: str
) -> BotEnv:
    """Start a fake Discord and the real bot against it (endpoint class attributes are changed globally).

    ``prepare`` shapes the fake before the bot connects (more guilds, the recommended shard count) and may
    return settings that depend on it (``SHARD_IDS`` of the test guild's shard).
    """
    fake = FakeDiscord()
    await fake.start()
    if prepare is not None:
        settings = {**settings, **(prepare(fake) or {})}
    channels = {name: fake.ensure_channel(name) for name in CHANNELS}
    reviewer_role = fake.add_role("Reviewer")
    values = {
        "DISCORD_TOKEN": "fake-token-for-tests",
        "DATA_DIR": str(data_dir),
        "GUILD_ID": fake.guild_id,
        "DISCORD_API_BASE_URL": fake.api_base_url,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISPLAY_REFRESH_SECONDS": "0.3",
        "ENGAGEMENT_FLUSH_SECONDS": "0.1",
        "BACKUP_INTERVAL_HOURS": "0",
        "WEB_PORT": "0",  # a free port per bot: tests never collide on the default 8765
        **settings,
    }
    env = BotEnv(
        fake=fake,
        config=load_config(values),
        admin=fake.member("ada", admin=True),
        reviewer=fake.member("rita", roles=[reviewer_role]),
        member=fake.member("max"),
        channels=channels,
        reviewer_role=reviewer_role,
    )
    apply_endpoint_overrides(env.config)
    await env.start()
    await env.bot.db.update_settings(env.guild_id, reviewer_role_id=int(reviewer_role), submit_cooldown_seconds=0,
                                     max_pending_per_user=0)  # fmt: skip
    return env


async def close_env(env: BotEnv) -> None:
    """Stop the bot and the fake."""
    if env.bot is not None and not env.bot.is_closed():
        await env.stop()
    await env.fake.stop()


def endpoint_defaults() -> tuple[str, yarl.URL]:
    """discord.py's REST base and gateway, to restore after a run."""
    return discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


def restore_endpoints(saved: tuple[str, yarl.URL]) -> None:
    """Put discord.py's endpoints back."""
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved

"""Sharding: the fake Discord splits guilds over shards by Discord's rule, and a bot process serves only its own.

The fake routes every guild's events to the session of shard ``(guild_id >> 22) % shard_count``; the bot
(``AutoShardedBot``) takes its shard count from ``GET /gateway/bot`` or ``SHARD_COUNT``, runs ``SHARD_IDS``
only, and its start-up work (display verification) skips guilds of other processes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import yarl

from models import Display, DisplayKind
from tests.fakediscord.gateway import shard_of
from tests.fakediscord.harness import close_env, create_env, endpoint_defaults, restore_endpoints
from tests.fakediscord.server import FakeDiscord


async def _no_wait(shard_id: int | None, *, initial: bool = False) -> None:
    return None


async def test_the_fake_delivers_each_guild_only_to_its_shard() -> None:
    fake = await FakeDiscord().start()
    saved = endpoint_defaults()
    client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    client.before_identify_hook = _no_wait  # type: ignore[method-assign]
    try:
        for n in range(12):
            fake.add_guild(f"server {n}")
        fake.gateway.shard_count = 3  # what GET /gateway/bot recommends
        discord.http.Route.BASE = fake.api_base_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
        task = asyncio.create_task(client.start("fake-token-for-tests"))
        await fake.wait_for(lambda: client.is_ready() or task.done(), 30, "every shard to be ready")
        assert client.shard_count == 3 and sorted(fake.gateway.identified) == [(0, 3), (1, 3), (2, 3)]
        seen: dict[int, set[str]] = {}
        for guild in client.guilds:
            assert guild.shard_id == shard_of(guild.id, 3)
            seen.setdefault(guild.shard_id, set()).add(str(guild.id))
        expected = {s: {g for g in fake.guild_ids() if shard_of(g, 3) == s} for s in range(3)}
        assert seen == expected and all(expected.values())  # every shard has guilds, each guild once
    finally:
        await client.close()
        restore_endpoints(saved)
        await fake.stop()


async def test_a_bot_process_serves_only_its_shards_guilds(tmp_path: Path) -> None:
    saved = endpoint_defaults()

    def prepare(fake: FakeDiscord) -> dict[str, str]:
        for n in range(10):
            fake.add_guild(f"server {n}")
        # Two shards; this process runs the test guild's one (so that its interactions reach this bot).
        return {"SHARD_COUNT": "2", "SHARD_IDS": str(shard_of(fake.guild_id, 2))}

    env = await create_env(tmp_path, prepare=prepare)
    try:
        main_shard = shard_of(env.guild_id, 2)
        mine = {g for g in env.fake.guild_ids() if shard_of(g, 2) == main_shard}
        assert {str(g.id) for g in env.bot.guilds} == mine and len(mine) < len(env.fake.guild_ids())
        assert env.bot.shard_count == 2 and env.fake.gateway.identified == [(main_shard, 2)]
        other = next(g for g in env.fake.guild_ids() if g not in mine)
        assert env.bot.owns_guild(env.guild_id) and not env.bot.owns_guild(int(other))
        await env.member.slash(env.channels["general"], "queue")  # answered: it serves its guild
        # A display stored for a guild of the other shard is left to the process that serves it.
        channel = next(iter(env.fake.extra_guilds[other]["channels"].values()))
        message = env.fake.new_message(channel, {"content": "another process's display"})
        display = Display(int(other), DisplayKind.LIVE_QUEUE, int(channel), int(message["id"]), "x")
        await env.bot.db.save_display(display)
        env.bot.displays._startup_requested = False  # as at the next start
        before = len(env.fake.requests)
        await env.bot.displays.refresh_all()
        await env.bot.displays.flush()
        assert [r for r in env.fake.requests[before:] if channel in r.path] == []
    finally:
        await close_env(env)
        restore_endpoints(saved)

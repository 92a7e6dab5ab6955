"""The reviewer cog: ``/setup-reviewer-channel`` and ``/next``.

The reviewer panels' buttons belong to the bot (registered in ``bot.py``); what they and ``/next`` do is
in ``ui.queue_actions``, which checks the clicker's role on every click.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from models import DisplayKind
from ui import queue_actions
from ui.checks import admin_only, reviewer_only
from ui.respond import defer, guild_id_of, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot


class Reviewer(commands.Cog):
    """What reviewers use to pull songs, approve paid skips and keep notes on what played."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    @app_commands.command(name="setup-reviewer-channel")
    @app_commands.describe(channel="Where the reviewer panel goes (keep it private to reviewers)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def setup_reviewer_channel(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Post (or move, or repair) the reviewer panel: the queue with points, and the pending skips."""
        await defer(interaction)
        guild_id = guild_id_of(interaction)
        await self.bot.displays.ensure(guild_id, DisplayKind.REVIEWER_MAIN, channel)
        await self.bot.displays.ensure(guild_id, DisplayKind.REVIEWER_PENDING, channel)
        await self.bot.db.update_settings(guild_id, reviewer_channel_id=channel.id)
        await respond(
            interaction,
            f"✅ The reviewer panel is pinned in {channel.mention}. Keep that channel private to reviewers.",
        )

    @app_commands.command(name="next")
    @app_commands.guild_only()
    @reviewer_only()
    async def next(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Play the next song: archive it, announce it, and get its link or file."""
        await queue_actions.play_next(interaction)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Reviewer(bot))

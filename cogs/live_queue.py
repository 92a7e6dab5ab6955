"""The live queue cog: ``/setup-live-queue`` and ``/queue``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from models import DisplayKind
from ui.checks import admin_only
from ui.respond import defer, respond
from ui.views import show_queue

if TYPE_CHECKING:
    from bot import MusicQueueBot


class LiveQueue(commands.Cog):
    """The pinned public queue and the private view of it."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    @app_commands.command(name="setup-live-queue")
    @app_commands.describe(channel="Where the pinned live queue goes")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def setup_live_queue(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Post (or move) the pinned public live queue."""
        await defer(interaction)
        guild_id = interaction.guild_id or 0
        await self.bot.db.update_settings(guild_id, live_queue_channel_id=channel.id)
        await self.bot.displays.ensure(guild_id, DisplayKind.LIVE_QUEUE, channel)
        await respond(interaction, f"✅ The live queue is pinned in {channel.mention}.")

    @app_commands.command(name="queue")
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction) -> None:
        """See the queue and where your own songs are (only you see this)."""
        await show_queue(interaction, 0)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(LiveQueue(bot))

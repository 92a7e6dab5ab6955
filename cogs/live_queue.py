"""The live queue cog: ``/setup-live-queue`` and ``/queue``.

The display manager and the public queue's buttons belong to the bot (built and registered in
``bot.py``); what the buttons and ``/queue`` show is in ``ui.queue_actions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from models import DisplayKind
from ui import queue_actions
from ui.checks import admin_command
from ui.respond import defer, guild_id_of, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot


class LiveQueue(commands.Cog):
    """The pinned public queue and each member's private view of it."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Remove the "pinned a message" notices the displays' own pins leave behind."""
        if message.type is discord.MessageType.pins_add:
            await self.bot.displays.clear_pin_notice(message)

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="setup-live-queue")
    @app_commands.describe(channel="Where the pinned live queue goes")
    @admin_command()
    async def setup_live_queue(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Post (or move, or repair) the pinned public live queue."""
        await defer(interaction)
        guild_id = guild_id_of(interaction)
        # Posted first: the setting only points at a channel once the display really lives there.
        await self.bot.displays.ensure(guild_id, DisplayKind.LIVE_QUEUE, channel)
        await self.bot.db.update_settings(guild_id, live_queue_channel_id=channel.id)
        await respond(interaction, f"✅ The live queue is pinned in {channel.mention}.")

    @app_commands.command(name="queue")
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """See the queue and where your own songs are, with an estimated wait (only you see this)."""
        await queue_actions.show_queue(interaction, 0, with_mine=True)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(LiveQueue(bot))

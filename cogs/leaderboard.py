"""The leaderboard cog: ``/leaderboard`` for everyone, the ranking of this live or of all lives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from ui.leaderboard_ui import board_for, leaderboard_embed, leaderboard_view
from ui.respond import respond

if TYPE_CHECKING:
    from bot import MusicQueueBot

SCOPE_CHOICES = [
    app_commands.Choice(name="This live", value="live"),
    app_commands.Choice(name="All lives", value="all"),
]


class Leaderboard(commands.Cog):
    """Who gave most on the streamer's TikTok LIVE."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    @app_commands.command(name="leaderboard")
    @app_commands.describe(scope="This live (the default) or every live added up")
    @app_commands.choices(scope=SCOPE_CHOICES)
    @app_commands.guild_only()
    async def leaderboard(self, interaction: discord.Interaction[MusicQueueBot], scope: str = "live") -> None:
        """Who earned the most points: this live or all lives, and where you stand."""
        board = await board_for(interaction, all_time=scope == "all", page=0)
        await respond(interaction, embed=leaderboard_embed(board), view=leaderboard_view(board))


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Leaderboard(bot))

"""The live queue cog (commands arrive with the Discord issue)."""

from __future__ import annotations

from discord.ext import commands


class LiveQueue(commands.Cog):
    """Placeholder until the Discord issue lands its commands."""


async def setup(bot: commands.Bot) -> None:
    """Add the cog."""
    await bot.add_cog(LiveQueue())

"""The setup cog: ``/setup run``, ``/setup check``, ``/settings``, the welcome and the start-up check (issue 14).

Thin, like every cog: it declares the commands and the listeners and calls ``ui.setup_actions``, which
does the work (the run's steps, the doctor, the settings panel) and which the wizard's buttons and the
panel's select and modal call too; so unloading this cog leaves an open wizard or panel working.

``/setup`` is a command group because Discord does not let a command with subcommands run by itself:
``/setup run`` sets up, ``/setup check`` is the permission doctor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from services import permissions as perms
from ui import setup_actions
from ui.checks import admin_only

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)


class Setup(commands.Cog):
    """One-command setup, the permission doctor, the settings panel and the welcome."""

    setup_group = app_commands.Group(
        name="setup",
        description="Set the bot up in this server, or check its permissions.",
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        self._startup_checked = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def cog_unload(self) -> None:
        """Stop the start-up check if it is still running (open wizards and panels keep working)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ /setup run, /setup check

    @setup_group.command(name="run")
    @admin_only()
    async def setup_run(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Create (or adopt) the channels, the reviewer role and the pinned displays; run again to repair."""
        await setup_actions.open_wizard(interaction)

    @setup_group.command(name="check")
    @admin_only()
    async def setup_check(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """List every permission I'm missing per channel, deleted channels, and configuration problems."""
        await setup_actions.check(interaction)

    # ------------------------------------------------------------------ start-up, joining, welcome

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Once per process: the invite URL when in no server, and the doctor for every server."""
        if self._startup_checked:
            return
        self._startup_checked = True
        if not self.bot.guilds:
            client_id = self.bot.application_id or (self.bot.user.id if self.bot.user else 0)
            log.info("I am in no server yet; invite me with %s", perms.invite_url(client_id))
        self._spawn(setup_actions.report_all(self.bot), "doctor-startup")

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Welcome (system channel, else the owner), then the doctor."""
        await setup_actions.welcome(self.bot, guild)
        await setup_actions.report_problems(self.bot, guild)

    # ------------------------------------------------------------------ /settings

    @app_commands.command(name="settings")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def settings(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Every setting with its value and default; choose one to change it."""
        await setup_actions.show_settings(interaction)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Setup(bot))

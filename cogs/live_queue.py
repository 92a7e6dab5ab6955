"""The live queue cog: ``/setup-live-queue``, ``/queue``, and the public queue's buttons.

It also owns the display manager's life: it adopts the one ``bot.py`` built or creates it, registers the
public queue's persistent view and dynamic buttons before the bot connects, and starts the one start-up
refresh of every stored display once the bot is ready.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from models import DisplayKind, Line
from ui import limits, queue_ui
from ui.checks import admin_only
from ui.displays import DisplayManager
from ui.queue_ui import on_private_message
from ui.respond import defer, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)


class LiveQueue(commands.Cog):
    """The pinned public queue and each member's private view of it."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        self._owns_displays = False
        self._views: list[discord.ui.View] = []

    async def cog_load(self) -> None:
        """Create (or adopt) the display manager and register the persistent components (before connecting)."""
        if getattr(self.bot, "displays", None) is None:
            self.bot.displays = DisplayManager(self.bot)
            self._owns_displays = True
        # Waits for READY inside a task: nothing here calls Discord before the bot is connected.
        self.bot.displays.start()
        view = queue_ui.LiveQueueView()
        self.bot.add_view(view)
        self._views.append(view)
        self.bot.add_dynamic_items(queue_ui.QueuePageButton)

    async def cog_unload(self) -> None:
        """Unregister the components; close the display manager if this cog created it."""
        for view in self._views:
            view.stop()
        self._views.clear()
        self.bot.remove_dynamic_items(queue_ui.QueuePageButton)
        if self._owns_displays:
            await self.bot.displays.close()
            del self.bot.displays
            self._owns_displays = False

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Remove the "pinned a message" notices the displays' own pins leave behind."""
        if message.type is discord.MessageType.pins_add:
            await self.bot.displays.clear_pin_notice(message)

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="setup-live-queue")
    @app_commands.describe(channel="Where the pinned live queue goes")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def setup_live_queue(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Post (or move, or repair) the pinned public live queue."""
        await defer(interaction)
        guild_id = interaction.guild_id or 0
        # Posted first: the setting only points at a channel once the display really lives there.
        await self.bot.displays.ensure(guild_id, DisplayKind.LIVE_QUEUE, channel)
        await self.bot.db.update_settings(guild_id, live_queue_channel_id=channel.id)
        await respond(interaction, f"✅ The live queue is pinned in {channel.mention}.")

    @app_commands.command(name="queue")
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction) -> None:
        """See the queue and where your own songs are, with an estimated wait (only you see this)."""
        await self._answer(interaction, 0, with_mine=True)

    # ------------------------------------------------------------------ button actions (see ui.queue_ui)

    async def show_page(self, interaction: discord.Interaction, page: int) -> None:
        """A private page of the queue; ``-1`` is the last page. Paging never touches the public message."""
        await self._answer(interaction, page)

    async def show_mine(self, interaction: discord.Interaction) -> None:
        """The clicker's own songs, on the page where the first of them is."""
        await self._answer(interaction, None, with_mine=True)

    async def refresh(self, interaction: discord.Interaction) -> None:
        """A fresh first page for the clicker; the public message is redrawn by the coalescer if it changed."""
        self.bot.displays.request_kind(interaction.guild_id or 0, DisplayKind.LIVE_QUEUE)
        await self._answer(interaction, 0)

    async def _answer(self, interaction: discord.Interaction, page: int | None, *, with_mine: bool = False) -> None:
        guild_id = interaction.guild_id or 0
        entries = await self.bot.queue.ordered_queue(guild_id)
        settings = await self.bot.db.get_settings(guild_id)
        played = await self.bot.db.latest_played(guild_id)
        mine = None
        moves = []
        if with_mine:
            active = await self.bot.db.user_active(guild_id, interaction.user.id)
            placements = [await self.bot.queue.placement(sub) for sub in active]
            # Playable songs first, in play order; pending skips after them.
            placements.sort(key=lambda p: (p.position is None, p.position or 0, p.submission.submitted_at))
            mine = placements
            moves = self.bot.positions.observe(guild_id, entries, [p.submission.id for p in placements])
            if page is None:
                first = next((p.position for p in placements if p.position is not None), None)
                page = (first - 1) // queue_ui.PAGE_SIZE if first else 0
        page = page or 0
        if page < 0:
            page = queue_ui.page_count(len(entries)) + page
        page = queue_ui.clamp_page(page, len(entries))
        embed = queue_ui.live_queue_embed(entries, page, free_open=settings.free_open, now_playing=played)
        if mine is not None:
            embed.add_field(name="Your songs", value=queue_ui.positions_text(mine), inline=False)
            if moves:
                text = "\n".join(queue_ui.move_text(move) for move in moves)
                embed.add_field(name="Since you last looked", value=limits.clip(text, limits.FIELD_VALUE), inline=False)
            if any(p.submission.line is Line.PENDING for p in mine):
                embed.add_field(
                    name="Pending skips",
                    value="A reviewer checks your payment, then your song moves into its line.",
                    inline=False,
                )
        embed = limits.fit(embed)
        view = queue_ui.queue_pager(page, len(entries))
        if on_private_message(interaction):
            await update(interaction, embed=embed, view=view)  # the clicker's own page: edit it in place
        else:
            await respond(interaction, embed=embed, view=view)  # ephemeral: nobody else's view changes


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(LiveQueue(bot))

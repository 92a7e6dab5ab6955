"""The self-updating pinned displays: render, coalesce, skip unchanged, recreate, replace.

``DisplayManager`` listens to every queue change and asks a ``Coalescer`` for one refresh per display per
window. A refresh renders the display, hashes it, and edits the message only when the hash changed. A
deleted message is posted again and re-pinned; a message Discord refuses to edit any more (error 30046,
or a long rate limit surfacing as ``discord.RateLimited``) is replaced by a new one. A channel where the
bot lacks permissions is reported once and left alone until the display is set up again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING

import discord

from models import Display, DisplayKind
from services.refresh import Coalescer
from ui import queue_ui
from ui.respond import NO_MENTIONS

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)

QUEUE_DISPLAYS = (DisplayKind.LIVE_QUEUE, DisplayKind.REVIEWER_MAIN, DisplayKind.REVIEWER_PENDING)
EDIT_CAP_CODE = 30046


def payload_hash(embed: discord.Embed, view: discord.ui.View | None) -> str:
    """A stable hash of what a message shows (the timestamp is left out: it changes every render)."""
    data = embed.to_dict()
    data.pop("timestamp", None)
    components = view.to_components() if view is not None else []
    raw = json.dumps([data, components], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class DisplayManager:
    """Keeps every guild's display messages in step with the queue."""

    def __init__(self, bot: MusicQueueBot, window: float) -> None:
        self.bot = bot
        self.coalescer: Coalescer[tuple[int, DisplayKind]] = Coalescer(self._refresh, window)
        self._blocked: set[tuple[int, DisplayKind]] = set()
        self.edits = 0
        self.recreated = 0
        bot.queue.add_listener(self.request)

    def request(self, guild_id: int) -> None:
        """Ask for a refresh of every display of a guild (coalesced)."""
        for kind in QUEUE_DISPLAYS:
            if (guild_id, kind) not in self._blocked:
                self.coalescer.request((guild_id, kind))

    async def refresh_all(self) -> None:
        """Refresh every stored display (after a restart)."""
        for display in await self.bot.db.all_displays():
            if display.kind in QUEUE_DISPLAYS:
                self.coalescer.request((display.guild_id, display.kind))

    async def render(self, guild_id: int, kind: DisplayKind) -> tuple[discord.Embed, discord.ui.View]:
        """The embed and persistent view of a display as it should look now."""
        from ui.views import LiveQueueView, PendingView, ReviewerMainView

        if kind is DisplayKind.LIVE_QUEUE:
            settings = await self.bot.db.get_settings(guild_id)
            entries = await self.bot.queue.ordered_queue(guild_id)
            return queue_ui.live_queue_embed(entries, free_open=settings.free_open), LiveQueueView()
        if kind is DisplayKind.REVIEWER_MAIN:
            settings = await self.bot.db.get_settings(guild_id)
            entries = await self.bot.queue.ordered_queue(guild_id)
            return queue_ui.reviewer_main_embed(entries, settings.weights), ReviewerMainView()
        pending = await self.bot.queue.pending(guild_id)
        return queue_ui.pending_embed(pending), PendingView(pending)

    async def ensure(self, guild_id: int, kind: DisplayKind, channel: discord.abc.Messageable) -> int:
        """Post and pin a display, or reuse the one already there (no duplicate after a repeated setup)."""
        self._blocked.discard((guild_id, kind))
        existing = await self.bot.db.get_display(guild_id, kind)
        channel_id = getattr(channel, "id", 0)
        if existing and existing.message_id and existing.channel_id == channel_id:
            try:
                message = await channel.fetch_message(existing.message_id)  # type: ignore[attr-defined]
            except discord.NotFound:
                message = None
            if message is not None:
                await self._refresh((guild_id, kind))
                return message.id
        elif existing and existing.message_id:
            await self._delete_quietly(existing)  # moved to another channel: take the old one down
        return await self._post(guild_id, kind, channel_id)

    async def _post(self, guild_id: int, kind: DisplayKind, channel_id: int) -> int:
        embed, view = await self.render(guild_id, kind)
        channel = self.bot.get_partial_messageable(channel_id)
        message = await channel.send(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
        try:
            await message.pin(reason="queue display")
        except discord.HTTPException as exc:
            log.warning("could not pin the %s display in channel %s: %s", kind.value, channel_id, exc)
        await self.bot.db.save_display(Display(guild_id, kind, channel_id, message.id, payload_hash(embed, view)))
        return message.id

    async def _delete_quietly(self, display: Display) -> None:
        if display.message_id is None:
            return
        try:
            await self.bot.get_partial_messageable(display.channel_id).get_partial_message(display.message_id).delete()
        except discord.HTTPException as exc:
            log.info("old %s display %s not deleted: %s", display.kind.value, display.message_id, exc)

    async def _refresh(self, key: tuple[int, DisplayKind]) -> None:
        guild_id, kind = key
        display = await self.bot.db.get_display(guild_id, kind)
        if display is None or display.message_id is None:
            return
        embed, view = await self.render(guild_id, kind)
        digest = payload_hash(embed, view)
        if digest == display.content_hash:
            return
        message = self.bot.get_partial_messageable(display.channel_id).get_partial_message(display.message_id)
        try:
            await message.edit(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
            self.edits += 1
        except discord.NotFound:
            log.info("%s display of guild %s was deleted; posting it again", kind.value, guild_id)
            self.recreated += 1
            await self._post(guild_id, kind, display.channel_id)
            return
        except discord.RateLimited:
            await self._replace(display, "a long rate limit on edits")
            return
        except discord.Forbidden as exc:
            await self._block(display, exc)
            return
        except discord.HTTPException as exc:
            if exc.code == EDIT_CAP_CODE:
                await self._replace(display, "Discord's edit cap on old messages")
                return
            raise
        await self.bot.db.save_display(Display(guild_id, kind, display.channel_id, display.message_id, digest))

    async def _replace(self, display: Display, why: str) -> None:
        log.info("replacing the %s display of guild %s (%s)", display.kind.value, display.guild_id, why)
        self.recreated += 1
        await self._delete_quietly(display)
        await self._post(display.guild_id, display.kind, display.channel_id)

    async def _block(self, display: Display, exc: discord.HTTPException) -> None:
        key = (display.guild_id, display.kind)
        self._blocked.add(key)
        # One warning (which also reaches the debug channel, grouped); no retries until set up again.
        log.warning(
            "missing permissions for the %s display in channel %s (%s); run the setup command again once fixed",
            display.kind.value,
            display.channel_id,
            exc.text or exc.status,
        )

    async def close(self) -> None:
        """Cancel pending refreshes."""
        await self.coalescer.close()

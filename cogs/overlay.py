"""The overlay cog: ``/overlay links|rotate|public``, the admin side of the bot's web pages (SPEC 9).

Links carry a secret token that the bot stores only as a hash, so it can show a link once, when it is
made; ``/overlay rotate`` makes new ones and the old ones stop at once (an open overlay says so). Every
answer is ephemeral: a link posted where others read would give the page to everyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import BotError
from services.web_access import OVERLAY, PUBLIC
from ui.checks import admin_only
from ui.respond import defer, guild_id_of, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot

_OPTIONS_HELP = (
    "Options (add to a link): `&widgets=now,next` picks widgets (now, next, lines, top, goal, gift), "
    "`&n=8` rows, `&scale=1.3` text size, `&accent=ff2d55` colour."
)


def overlay_text(base: str, token: str, *, fresh: bool) -> str:
    """The overlay links and how to use them."""
    url = f"{base}/o/{token}"
    head = "🔁 New overlay links; the old ones stopped working." if fresh else "🎥 Your overlay links."
    return (
        f"{head} Keep them private: anyone with a link sees your queue overlay. "
        "I store only a fingerprint, so copy them now.\n"
        f"**Portrait** (TikTok LIVE Studio, browser source 1080×1920):\n{url}?layout=portrait\n"
        f"**Landscape** (OBS, browser source 1920×1080):\n{url}?layout=landscape\n"
        f"{_OPTIONS_HELP}"
    )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Overlay(commands.GroupCog, group_name="overlay", group_description="Stream overlay and public queue page."):
    """Overlay and public page links (admins)."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        super().__init__()

    def _base(self) -> str:
        if not self.bot.web.running:
            raise BotError("The web server is off (WEB_ENABLED=false in the bot's settings), so there are no links.")
        return self.bot.web.base_url

    @app_commands.command(name="links")
    @admin_only()
    async def links(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Get the overlay links for TikTok LIVE Studio or OBS (made once; rotate for new ones)."""
        base = self._base()
        await defer(interaction)
        guild_id = guild_id_of(interaction)
        issued = await self.bot.web_access.issued_at(guild_id, OVERLAY)
        if issued is not None:
            await respond(
                interaction,
                f"Your overlay links were made <t:{int(issued)}:R>. I keep only a fingerprint of them, so I can't "
                "show them again: copy the URL from your browser source, or run **/overlay rotate** for new "
                "links (the old ones stop working at once).",
            )
            return
        token = await self.bot.web_access.rotate(guild_id, OVERLAY)
        await respond(interaction, overlay_text(base, token, fresh=False))

    @app_commands.command(name="rotate")
    @admin_only()
    async def rotate(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Make new overlay links; the old ones stop working at once (open overlays show "link revoked")."""
        base = self._base()
        await defer(interaction)
        token = await self.bot.web_access.rotate(guild_id_of(interaction), OVERLAY)
        await respond(interaction, overlay_text(base, token, fresh=True))

    @app_commands.command(name="public")
    @app_commands.describe(
        state="Switch the public read-only queue page on or off",
        show_links="Show the submitted links on the page (default: hidden)",
        new_link="Make a new page link (the old one stops working)",
    )
    @app_commands.choices(state=[app_commands.Choice(name=v, value=v) for v in ("on", "off")])
    @admin_only()
    async def public(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        state: str,
        show_links: bool | None = None,
        new_link: bool = False,
    ) -> None:
        """A public, read-only queue page for your TikTok bio (display names only)."""
        base = self._base()
        await defer(interaction)
        access = self.bot.web_access
        guild_id = guild_id_of(interaction)
        if state == "off":
            await access.set_public(guild_id, enabled=False, links=show_links)
            await respond(interaction, "🔒 The public queue page is off; its link shows nothing now.")
            return
        settings = await access.set_public(guild_id, enabled=True, links=show_links)
        shown = "with" if settings.public_links else "without"
        issued = await access.issued_at(guild_id, PUBLIC)
        if issued is not None and not new_link:
            await respond(
                interaction,
                f"🌐 The public queue page is on ({shown} links), at the link made <t:{int(issued)}:R>. "
                "I keep only a fingerprint of it; use `new_link: True` for a new one.",
            )
            return
        token = await access.rotate(guild_id, PUBLIC)
        note = (
            ""
            if self.bot.config.public_base_url
            else (
                "\n⚠️ No PUBLIC_BASE_URL is set, so this link only works on the bot's computer; see the README "
                "for putting it behind a reverse proxy."
            )
        )
        await respond(
            interaction,
            f"🌐 The public queue page is on ({shown} links). Put this in your TikTok bio:\n{base}/q/{token}{note}",
        )


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Overlay(bot))

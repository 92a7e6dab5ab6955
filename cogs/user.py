"""The user cog: history, TikTok handle links, DM opt-in and help."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from services import play_order
from ui import limits, palette
from ui.checks import is_admin
from ui.respond import guild_id_of, respond
from ui.setup_ui import ADMIN_STEPS
from ui.submission_ui import show_history

if TYPE_CHECKING:
    from bot import MusicQueueBot


async def own_handles(interaction: discord.Interaction[MusicQueueBot], current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete from the caller's own linked handles."""
    handles = await interaction.client.points.handles_of(guild_id_of(interaction), interaction.user.id)
    typed = current.lstrip("@").lower()
    return [app_commands.Choice(name=f"@{h.handle}", value=h.handle) for h in handles if h.handle.startswith(typed)][
        :25
    ]


def link_text(handle: str, code: str | None) -> str:
    """What ``/link-tiktok`` answers: what to do now, and what the link does once it is proven."""
    if code is None:
        return f"✅ @{limits.safe(handle)} is linked to you and already proven; its points count for your Free songs."
    return (
        f"🔗 @{limits.safe(handle)} is linked to you, but not proven yet.\n"
        f"**To prove it**, type `{code}` in the live chat from @{limits.safe(handle)}; "
        "if the stream is not live yet, at the start of the next live.\n"
        "Once it is proven, its points count for your Free songs and it wins over anyone else's unproven link."
    )


class User(commands.Cog):
    """Commands every member has."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    @app_commands.command(name="mysubmissions")
    @app_commands.guild_only()
    async def mysubmissions(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Your submissions: where they are, withdraw one, or submit one again."""
        await show_history(interaction)

    @app_commands.command(name="link-tiktok")
    @app_commands.describe(handle="Your TikTok handle, like @yourname")
    @app_commands.guild_only()
    async def link_tiktok(self, interaction: discord.Interaction[MusicQueueBot], handle: str) -> None:
        """Link your TikTok handle so your engagement points count for your songs."""
        result = await self.bot.points.link(guild_id_of(interaction), interaction.user.id, handle)
        name = f"@{result.handle.handle}"
        if result.claim:
            text = (
                f"🔐 {name} is linked to another member, but they have not proven it. To take it over, type "
                f"`{result.code}` in the live chat from that TikTok account (if you are not live yet, at the "
                "start of the next live). Until then its points are not yours."
            )
        elif result.code:
            text = (
                f"🔗 {name} is linked to you. Now type `{result.code}` in the live chat from that TikTok account "
                "(if you are not live yet, at the start of the next live). Its points count for your Free "
                "songs once it is proven."
            )
        else:
            text = f"✅ {name} is linked to you and proven: its points count for your Free songs."
        await respond(interaction, text)

    @app_commands.command(name="unlink-tiktok")
    @app_commands.describe(handle="One of your linked handles")
    @app_commands.autocomplete(handle=own_handles)
    @app_commands.guild_only()
    async def unlink_tiktok(self, interaction: discord.Interaction[MusicQueueBot], handle: str) -> None:
        """Unlink one of your TikTok handles."""
        await self.bot.points.unlink(guild_id_of(interaction), interaction.user.id, handle)
        await respond(interaction, "✅ Unlinked.")

    @app_commands.command(name="my-tiktok-handles")
    @app_commands.guild_only()
    async def my_tiktok_handles(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Your linked TikTok handles and their points."""
        guild_id = guild_id_of(interaction)
        handles = await self.bot.points.handles_of(guild_id, interaction.user.id)
        if not handles:
            await respond(interaction, "You have no TikTok handles linked. Use /link-tiktok.")
            return
        weights = (await self.bot.db.get_settings(guild_id)).weights
        lines = [
            f"{'✅' if h.verified else '▫️'} @{limits.safe(h.handle)} · {h.counts.points(weights)} pts" for h in handles
        ]
        await respond(interaction, limits.clip("\n".join(lines), 2000))

    @app_commands.command(name="notify")
    @app_commands.describe(enabled="DM me when my song is next and when it plays")
    @app_commands.guild_only()
    async def notify(self, interaction: discord.Interaction[MusicQueueBot], enabled: bool) -> None:
        """Turn DMs about your songs on or off."""
        await self.bot.db.set_dm_notify(guild_id_of(interaction), interaction.user.id, enabled)
        await respond(interaction, "🔔 DMs on." if enabled else "🔕 DMs off.")

    @app_commands.command(name="help")
    @app_commands.guild_only()
    async def help(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """How the queue works and how to earn points."""
        settings = await self.bot.db.get_settings(guild_id_of(interaction))
        w = settings.weights
        embed = palette.embed(f"{palette.EMOJI['help']} How the queue works", "queue")
        if interaction.guild is not None and await is_admin(interaction):
            embed.add_field(name="Admins: get started", value=ADMIN_STEPS, inline=False)
        embed.add_field(
            name="Lines",
            value="**BackToBack** > **DoubleSkip** > **Skip** > **Free**. Paid lines play first, in the order "
            "songs entered them. Skips wait in **Pending Skips** until a reviewer checks them.\n"
            f"**Play order here:** {play_order.describe_rule(settings.free_every_nth)}",
            inline=False,
        )
        embed.add_field(
            name="Points (Free line)",
            value=f"On the TikTok LIVE: like {w.like} per like · comment {w.comment} · share {w.share} · "
            f"follow {w.follow} · subscribe {w.subscribe} · gifts {w.gift_coin} per coin. Link your handle with "
            "/link-tiktok. **Points reset when your Free song plays.**",
            inline=False,
        )
        limit = limits.megabytes(limits.upload_limit(interaction))
        embed.add_field(
            name="Audio files",
            value=f"/submitfile takes MP3, WAV, M4A or FLAC up to 25 MB. This server lets me send reviewers files "
            f"up to {limit} MB. An MP3 of a song is 5–10 MB, but WAV and FLAC are 20–40 MB: send an MP3 unless "
            "the admins have set up download links.",
            inline=False,
        )
        embed.add_field(
            name="Commands",
            value="/submit · /submitfile · /mysubmissions · /queue · /link-tiktok · /unlink-tiktok · "
            "/my-tiktok-handles · /notify",
            inline=False,
        )
        embed.add_field(
            name="Admins",
            value="Admin commands (/setup-…, /move, /tiktok …) are shown only to members with Manage Server. To "
            "let the bot's admin role see them: Server Settings → Integrations → the bot → add the role to each "
            "command (or to all). The bot still checks the role on every use. /next is visible to everyone and "
            "works for reviewers only.",
            inline=False,
        )
        await respond(interaction, embed=embed)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(User(bot))

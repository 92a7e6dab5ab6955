"""The admin cog: queue moderation, channels and roles, points settings, blocklist and backups.

Every command here is an ``admin_command``: hidden by default (Manage Server, guild only) and checked at
runtime on every call, because server owners can re-grant command visibility in their integration settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import ValidationError
from models import BlockEntry, BlockKind, GuildSettings, Line
from services import play_order, validation
from services import settings as registry
from services.analytics import format_duration
from ui import limits, palette
from ui.checks import admin_command
from ui.respond import defer, guild_id_of, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot

MOVE_TARGETS = [
    app_commands.Choice(name=line.value, value=line.value)
    for line in (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE, Line.PENDING, Line.REMOVED)
]
# Each label reads both as "<label> channel set to #x" and as a row of /show-settings.
CHANNEL_LABELS = {
    "bookmark_channel_id": "Bookmarks",
    "now_playing_channel_id": "Now playing",
    "metrics_channel_id": "Post-live metrics",
    "debug_channel_id": "Debug",
    "submission_channel_id": "Submissions",
    "live_queue_channel_id": "Live queue",
    "reviewer_channel_id": "Reviewer panel",
}


class Admin(commands.Cog):
    """Server configuration and queue moderation."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    # ------------------------------------------------------------------ queue moderation

    @app_commands.command(name="move")
    @app_commands.describe(submission_id="The id, like #AB12C", line="Where it goes")
    @app_commands.choices(line=MOVE_TARGETS)
    @admin_command()
    async def move(self, interaction: discord.Interaction[MusicQueueBot], submission_id: str, line: str) -> None:
        """Move a submission to another line."""
        moved = await self.bot.queue.move(guild_id_of(interaction), submission_id, Line(line))
        await respond(interaction, f"✅ {moved.display_id} is now in **{moved.line.value}**.")

    @app_commands.command(name="remove")
    @app_commands.describe(submission_id="The id, like #AB12C")
    @admin_command()
    async def remove(self, interaction: discord.Interaction[MusicQueueBot], submission_id: str) -> None:
        """Remove a submission from the queue (it stays in the history)."""
        removed = await self.bot.queue.remove(guild_id_of(interaction), submission_id)
        await respond(interaction, f"🗑️ Removed {removed.display_id}.")

    @app_commands.command(name="clearfree")
    @admin_command()
    async def clearfree(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Remove every song from the Free line (kept in history as removed)."""
        count = await self.bot.queue.clear_free(guild_id_of(interaction))
        await respond(interaction, f"🗑️ Cleared the Free line: {count} removed.")

    @app_commands.command(name="opensubmissions")
    @admin_command()
    async def opensubmissions(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Open the Free line to new submissions."""
        await self.bot.queue.set_free_open(guild_id_of(interaction), True)
        await respond(interaction, "✅ The Free line is open.")

    @app_commands.command(name="closesubmissions")
    @admin_command()
    async def closesubmissions(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Close the Free line (skips are still accepted)."""
        await self.bot.queue.set_free_open(guild_id_of(interaction), False)
        await respond(interaction, "🚫 The Free line is closed. Skips are still accepted.")

    # ------------------------------------------------------------------ channels and roles

    async def _set_channel(
        self, interaction: discord.Interaction[MusicQueueBot], key: str, channel: discord.TextChannel
    ) -> None:
        # The composite settings passed explicitly: ``key`` is a plain column, never one of them.
        await self.bot.db.update_settings(guild_id_of(interaction), **{key: channel.id}, weights=None, gift_tiers=None)
        await respond(interaction, f"✅ {CHANNEL_LABELS[key]} channel set to {channel.mention}.")

    @app_commands.command(name="setbookmarkchannel")
    @admin_command()
    async def setbookmarkchannel(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Where bookmarked songs are posted."""
        await self._set_channel(interaction, "bookmark_channel_id", channel)

    @app_commands.command(name="setnowplayingchannel")
    @admin_command()
    async def setnowplayingchannel(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Where "Now playing" is announced."""
        await self._set_channel(interaction, "now_playing_channel_id", channel)

    @app_commands.command(name="setup-post-live-metrics")
    @admin_command()
    async def setup_post_live_metrics(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Where the recap of each TikTok LIVE is posted."""
        await self._set_channel(interaction, "metrics_channel_id", channel)

    @app_commands.command(name="setdebugchannel")
    @admin_command()
    async def setdebugchannel(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Where connection alerts and warnings go."""
        await self._set_channel(interaction, "debug_channel_id", channel)

    @app_commands.command(name="set-submission-channel")
    @admin_command()
    async def set_submission_channel(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """A channel kept for submissions: other chatter there is removed."""
        await self._set_channel(interaction, "submission_channel_id", channel)

    @app_commands.command(name="set-reviewer-role")
    @admin_command()
    async def set_reviewer_role(self, interaction: discord.Interaction[MusicQueueBot], role: discord.Role) -> None:
        """The role that may use the reviewer panel and /next."""
        await self.bot.db.update_settings(guild_id_of(interaction), reviewer_role_id=role.id)
        await respond(interaction, f"✅ Reviewers are members with {role.mention}.")

    @app_commands.command(name="set-admin-role")
    @admin_command()
    async def set_admin_role(self, interaction: discord.Interaction[MusicQueueBot], role: discord.Role) -> None:
        """A role with admin rights here (besides Manage Server)."""
        await self.bot.db.update_settings(guild_id_of(interaction), admin_role_id=role.id)
        await respond(interaction, f"✅ Admins are members with Manage Server or {role.mention}.")

    @app_commands.command(name="show-settings")
    @admin_command()
    async def show_settings(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Every setting and its state; missing channels are flagged."""
        guild = interaction.guild
        settings = await self.bot.db.get_settings(guild_id_of(interaction))
        await respond(interaction, embed=settings_embed(settings, guild))

    # ------------------------------------------------------------------ points

    @app_commands.command(name="resetpoints")
    @app_commands.describe(
        user="Reset this member and their handles", handle="Reset one TikTok handle", everything="Reset every handle"
    )
    @admin_command()
    async def resetpoints(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        user: discord.Member | None = None,
        handle: str | None = None,
        everything: bool = False,
    ) -> None:
        """Reset points: one member, one handle, or everything."""
        chosen = sum(x for x in (user is not None, bool(handle), everything))
        if chosen != 1:
            raise ValidationError("Choose exactly one: a user, a handle, or everything.")
        guild_id = guild_id_of(interaction)
        if user is not None:
            count = await self.bot.points.reset_user(guild_id, user.id)
            await respond(interaction, f"✅ Reset {count} {'handle' if count == 1 else 'handles'} of {user.mention}.")
        elif handle:
            await self.bot.points.reset_handle(guild_id, handle)
            await respond(interaction, f"✅ Reset @{validation.normalize_handle(handle)}.")
        else:
            count = await self.bot.points.reset_all(guild_id)
            await respond(interaction, f"✅ Reset every handle ({count} in all).")

    @app_commands.command(name="points-weights")
    @admin_command()
    async def points_weights(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        like: app_commands.Range[int, 0, 10_000] | None = None,
        comment: app_commands.Range[int, 0, 10_000] | None = None,
        share: app_commands.Range[int, 0, 10_000] | None = None,
        follow: app_commands.Range[int, 0, 10_000] | None = None,
        subscribe: app_commands.Range[int, 0, 10_000] | None = None,
        gift_coin: app_commands.Range[int, 0, 10_000] | None = None,
    ) -> None:
        """Show the points each engagement is worth, or change some of them."""
        guild_id = guild_id_of(interaction)
        changes = {
            k: v
            for k, v in dict(
                like=like, comment=comment, share=share, follow=follow, subscribe=subscribe, gift_coin=gift_coin
            ).items()
            if v is not None
        }
        if changes:
            weights = await self.bot.points.set_weights(guild_id, **changes)
        else:
            weights = (await self.bot.db.get_settings(guild_id)).weights
        text = " · ".join(f"{name.replace('_', ' ')} {getattr(weights, name)}" for name in weights.names())
        await respond(interaction, ("✅ Updated. " if changes else "") + f"Points: {text}")

    @app_commands.command(name="gift-tiers")
    @admin_command()
    async def gift_tiers(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        skip: app_commands.Range[int, 0, 10_000_000] | None = None,
        double_skip: app_commands.Range[int, 0, 10_000_000] | None = None,
        back_to_back: app_commands.Range[int, 0, 10_000_000] | None = None,
    ) -> None:
        """Show or set the coins a linked handle must gift in one live to move a song into each paid line."""
        guild_id = guild_id_of(interaction)
        current = (await self.bot.db.get_settings(guild_id)).gift_tiers
        if any(v is not None for v in (skip, double_skip, back_to_back)):
            current = await self.bot.points.set_gift_tiers(
                guild_id,
                skip=current.skip if skip is None else skip,
                double_skip=current.double_skip if double_skip is None else double_skip,
                back_to_back=current.back_to_back if back_to_back is None else back_to_back,
            )
        await respond(
            interaction,
            f"🎁 Skip {current.skip} coins · DoubleSkip {current.double_skip} coins · "
            f"BackToBack {current.back_to_back} coins (0 switches a tier off).",
        )

    @app_commands.command(name="link-handle")
    @app_commands.describe(member="Who owns the handle", handle="The TikTok handle")
    @admin_command()
    async def link_handle(
        self, interaction: discord.Interaction[MusicQueueBot], member: discord.Member, handle: str
    ) -> None:
        """Link (or reassign) a TikTok handle to a member directly; counts as verified."""
        result = await self.bot.points.admin_link(guild_id_of(interaction), member.id, handle)
        moved = f" (was <@{result.previous_owner}>)" if result.previous_owner not in (None, member.id) else ""
        await respond(interaction, f"✅ @{result.handle.handle} → {member.mention}{moved}.")

    # ------------------------------------------------------------------ blocklist and backups

    @app_commands.command(name="blocklist")
    @app_commands.describe(
        action="add, remove or list", kind="user, word or domain", value="The user id, word or domain"
    )
    @app_commands.choices(
        action=[app_commands.Choice(name=a, value=a) for a in ("add", "remove", "list")],
        kind=[app_commands.Choice(name=k.value, value=k.value) for k in BlockKind],
    )
    @admin_command()
    async def blocklist(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        action: str,
        kind: str | None = None,
        value: str | None = None,
    ) -> None:
        """Refuse submissions from users, with words, or from link domains."""
        guild_id = guild_id_of(interaction)
        if action == "list":
            rules = await self.bot.db.blocklist(guild_id)
            text = "\n".join(f"{r.kind.value}: {limits.safe(r.value, 100)}" for r in rules) or "The blocklist is empty."
            await respond(interaction, limits.clip(text, 2000))
            return
        if kind is None or not value or not value.strip():
            raise ValidationError("Give a kind (user, word or domain) and a value.")
        entry = BlockEntry(guild_id, BlockKind(kind), validation.normalize_block(BlockKind(kind), value))
        if action == "add":
            added = await self.bot.db.add_block(entry)
            await respond(interaction, "✅ Added." if added else "It was already on the blocklist.")
        else:
            removed = await self.bot.db.remove_block(entry)
            await respond(interaction, "✅ Removed." if removed else "That was not on the blocklist.")

    @app_commands.command(name="backup")
    @admin_command()
    async def backup(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Take a database backup now."""
        await defer(interaction)
        path = await self.bot.backups.backup_now()
        await respond(interaction, f"💾 Backup saved: `{path.name}` ({path.stat().st_size / 1024:.0f} KiB).")


def settings_embed(settings: GuildSettings, guild: discord.Guild | None) -> discord.Embed:
    """Every setting; channels that no longer exist or where the bot can't post are flagged."""
    embed = palette.embed(f"{palette.EMOJI['settings']} Settings", "info")
    lines = []
    for key, label in CHANNEL_LABELS.items():
        channel_id = getattr(settings, key)
        if channel_id is None:
            state = "❓ not set"
        else:
            channel = guild.get_channel(channel_id) if guild else None
            if channel is None:
                state = f"❌ missing (was {channel_id})"
            elif (
                isinstance(channel, discord.TextChannel)
                and guild
                and not channel.permissions_for(guild.me).send_messages
            ):
                state = f"⚠️ {channel.mention} (I can't post there)"
            else:
                state = f"✅ {channel.mention}"
        lines.append(f"**{label}**: {state}")
    embed.add_field(name="Channels", value="\n".join(lines), inline=False)
    role = lambda rid: f"<@&{rid}>" if rid else "not set"  # noqa: E731 - tiny local formatter
    embed.add_field(name="Reviewer role", value=role(settings.reviewer_role_id))
    embed.add_field(name="Admin role", value=role(settings.admin_role_id))
    embed.add_field(name="Free line", value="open" if settings.free_open else "closed")
    embed.add_field(name="Play order", value=play_order.describe_rule(settings.free_every_nth), inline=False)
    w = settings.weights
    embed.add_field(
        name="Points",
        value=f"like {w.like} · comment {w.comment} · share {w.share} · follow {w.follow} · "
        f"subscribe {w.subscribe} · gift coin {w.gift_coin} · like cap {settings.like_cap_per_minute}/min · "
        f"share cap {settings.share_cap_per_minute}/min",
        inline=False,
    )
    t = settings.gift_tiers
    embed.add_field(
        name="Gift tiers", value=f"Skip {t.skip} · DoubleSkip {t.double_skip} · BackToBack {t.back_to_back}"
    )
    # Every setting of the registry (change them with /settings).
    embed.add_field(
        name="Average review time",
        value=f"{format_duration(settings.avg_review_seconds)} per song (waits, until a live sets its own pace)",
    )
    embed.add_field(
        name="Limits and features (/settings)",
        value="\n".join(f"{s.label}: {s.describe(getattr(settings, s.key))}" for s in registry.SETTINGS),
        inline=False,
    )
    return limits.fit(embed)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Admin(bot))

"""The submission cog: ``/submit``, ``/submitfile``, ``/setup-submission-portal`` and the channel rule."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import ValidationError
from services import permissions, validation
from services.audio import MAX_BYTES, inspect_audio
from services.queue import AudioFile
from ui import limits
from ui.checks import admin_command
from ui.respond import NO_MENTIONS, defer, guild_id_of, respond
from ui.submission_ui import PortalView, SubmitModal, ask_skip, portal_embed

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)


async def handle_autocomplete(
    interaction: discord.Interaction[MusicQueueBot], current: str
) -> list[app_commands.Choice[str]]:
    """The caller's linked handles first, then known ones, by prefix (an index range; fast)."""
    try:
        handles = await interaction.client.points.autocomplete(
            guild_id_of(interaction), interaction.user.id, current[:30]
        )
    except Exception:
        log.exception("handle autocomplete failed")
        return []
    return [app_commands.Choice(name=f"@{h}", value=h) for h in handles[:25]]


def _checked_handle(value: str | None) -> str | None:
    """The ``tiktok_handle`` option normalised, None when left empty; a bad one raises ``ValidationError``."""
    return validation.normalize_handle(value) if value and value.strip() else None


class Submission(commands.Cog):
    """How members send songs."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot

    @app_commands.command(name="submit")
    @app_commands.describe(tiktok_handle="Your TikTok handle, so your engagement points count for this song")
    @app_commands.autocomplete(tiktok_handle=handle_autocomplete)
    @app_commands.guild_only()
    async def submit(self, interaction: discord.Interaction[MusicQueueBot], tiktok_handle: str | None = None) -> None:
        """Submit a song by link (opens a form)."""
        # Checked before the form opens: a member must not fill in the whole form to learn the handle is bad.
        await interaction.response.send_modal(SubmitModal(_checked_handle(tiktok_handle)))

    @app_commands.command(name="submitfile")
    @app_commands.describe(
        file="An MP3, WAV, M4A or FLAC file (up to 25 MB)",
        artist="The artist",
        song="The song title",
        note="Anything the reviewer should know",
        tiktok_handle="Your TikTok handle, so your engagement points count for this song",
    )
    @app_commands.autocomplete(tiktok_handle=handle_autocomplete)
    @app_commands.guild_only()
    async def submitfile(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        file: discord.Attachment,
        artist: str,
        song: str,
        note: str | None = None,
        tiktok_handle: str | None = None,
    ) -> None:
        """Submit a song as an audio file."""
        tiktok_handle = _checked_handle(tiktok_handle)  # before reading and storing the upload
        await defer(interaction)
        if file.size > MAX_BYTES:
            raise ValidationError(f"That file is {file.size / 1048576:.1f} MB; the limit is 25 MB.")
        limit = limits.upload_limit(interaction)
        if file.size > limit and not self.bot.web.links_available:
            # The reviewer could neither receive it as an attachment nor through a download link.
            raise ValidationError(
                f"This server lets me send files up to {limits.megabytes(limit)} MB; this one is "
                f"{limits.megabytes(file.size)} MB, so the reviewer could not get it. Send an MP3 instead "
                "(WAV and FLAC of a song are 20–40 MB), or ask an admin to set PUBLIC_BASE_URL so I can give "
                "reviewers a download link (a boosted server also allows bigger files)."
            )
        data = await file.read()
        # mutagen parses synchronously; a thread keeps the event loop free for everyone else.
        info = await asyncio.to_thread(inspect_audio, file.filename, data)
        guild_id = guild_id_of(interaction)
        path = await self.bot.audio.save(guild_id, info.extension, data)
        try:
            draft = self.bot.queue.draft(
                artist=artist,
                title=song,
                note=note,
                audio=AudioFile(path, file.filename[:100], info.duration),
                handle=tiktok_handle,
            )
        except ValidationError:
            await self.bot.audio.delete(path)  # nothing partial stays behind
            raise
        await ask_skip(interaction, draft)

    @app_commands.command(name="setup-submission-portal")
    @app_commands.describe(channel="Where the portal message goes")
    @admin_command()
    async def setup_submission_portal(
        self, interaction: discord.Interaction[MusicQueueBot], channel: discord.TextChannel
    ) -> None:
        """Post the submission portal with its buttons."""
        await defer(interaction)
        await channel.send(embed=portal_embed(), view=PortalView(), allowed_mentions=NO_MENTIONS)
        await respond(interaction, f"✅ The submission portal is in {channel.mention}.")

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """In the submission channel, ordinary chatter is removed (admins and reviewers are exempt)."""
        if message.author.bot or message.guild is None or not isinstance(message.author, discord.Member):
            return
        settings = await self.bot.db.get_settings(message.guild.id)
        if settings.submission_channel_id != message.channel.id:
            return
        roles = {role.id for role in message.author.roles}
        if permissions.is_reviewer(
            manage_guild=message.author.guild_permissions.manage_guild, role_ids=roles, settings=settings
        ):
            return
        try:
            await message.delete()
        except (discord.Forbidden, discord.NotFound) as exc:
            log.info("could not remove chatter in the submission channel: %s", exc)


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Submission(bot))

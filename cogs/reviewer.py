"""The reviewer cog: ``/setup-reviewer-channel``, ``/next``, and every reviewer button's behaviour.

The buttons themselves (layout and stable custom ids) are built in ``ui.queue_ui`` and hand their clicks
to the methods here. Every action checks the clicker's role at click time (``check_reviewer``), because a
custom id can be replayed by anyone on any message; a refusal is a short ephemeral message.

Answer rule (research, rate limits): when a click changes the very message it sits on, it answers with
that message redrawn (interaction type 7), which costs no channel PATCH; otherwise it defers and the
display manager's coalescer redraws the displays.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePath
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import BotError
from models import DisplayKind, Line, Submission
from services.queue import PlayResult
from ui import limits, queue_ui
from ui.checks import admin_only, check_reviewer, reviewer_only
from ui.queue_ui import on_private_message
from ui.respond import NO_MENTIONS, defer, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)

_REVIEWER_ITEMS = (
    queue_ui.ReviewerPageButton,
    queue_ui.ApproveButton,
    queue_ui.RateButton,
    queue_ui.BookmarkButton,
)


def _bookmarked(message: discord.Message | None, public_id: str) -> bool:
    """Whether the Bookmark button on a "now playing" answer is already used up."""
    if message is None:
        return False
    custom_id = f"mq:rv:bm:{public_id}"
    for row in message.components:
        for item in getattr(row, "children", []):
            if getattr(item, "custom_id", None) == custom_id:
                return bool(getattr(item, "disabled", False))
    return False


class Reviewer(commands.Cog):
    """What reviewers use to pull songs, approve paid skips and keep notes on what played."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        self._views: list[discord.ui.View] = []

    async def cog_load(self) -> None:
        """Register the reviewer panels' persistent components before the bot connects (restarts keep them)."""
        for view in (queue_ui.ReviewerMainView(), queue_ui.PendingView()):
            self.bot.add_view(view)
            self._views.append(view)
        self.bot.add_dynamic_items(*_REVIEWER_ITEMS)

    async def cog_unload(self) -> None:
        """Unregister the components."""
        for view in self._views:
            view.stop()
        self._views.clear()
        self.bot.remove_dynamic_items(*_REVIEWER_ITEMS)

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="setup-reviewer-channel")
    @app_commands.describe(channel="Where the reviewer panel goes (keep it private to reviewers)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def setup_reviewer_channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Post (or move, or repair) the reviewer panel: the queue with points, and the pending skips."""
        await defer(interaction)
        guild_id = interaction.guild_id or 0
        await self.bot.displays.ensure(guild_id, DisplayKind.REVIEWER_MAIN, channel)
        await self.bot.displays.ensure(guild_id, DisplayKind.REVIEWER_PENDING, channel)
        await self.bot.db.update_settings(guild_id, reviewer_channel_id=channel.id)
        await respond(
            interaction,
            f"✅ The reviewer panel is pinned in {channel.mention}. Keep that channel private to reviewers.",
        )

    @app_commands.command(name="next")
    @app_commands.guild_only()
    @reviewer_only()
    async def next(self, interaction: discord.Interaction) -> None:
        """Play the next song: archive it, announce it, and get its link or file."""
        await self.play_next(interaction)

    # ------------------------------------------------------------------ playing

    async def play_next(self, interaction: discord.Interaction) -> None:
        """``/next`` and the Next button: archive the top song, announce it, hand the reviewer everything."""
        await check_reviewer(interaction)
        # Reading a stored file and posting the announcement can take a moment: acknowledge first.
        await defer(interaction, ephemeral=True)
        guild_id = interaction.guild_id or 0
        result = await self.bot.queue.next(guild_id)
        if result is None:
            await respond(interaction, "📭 The queue is empty: nothing to play.")
            return
        sub = result.submission
        settings = await self.bot.db.get_settings(guild_id)
        if settings.now_playing_channel_id:
            await self._announce(settings.now_playing_channel_id, sub)
        embed = queue_ui.now_playing_embed(sub, result.from_line, result.score, result.counts, settings.weights)
        view = queue_ui.now_playing_view(sub.public_id)
        file, problem = await self._file_for(interaction, sub)
        try:
            await respond(interaction, problem, embed=embed, view=view, file=file)
        except discord.HTTPException as exc:
            if file is None or exc.status != 413:
                raise
            # Discord refused the upload size here: the details (and a link, if any) still reach the reviewer.
            await respond(
                interaction,
                self._link_text(sub) or "⚠️ The file is too large to attach here.",
                embed=embed,
                view=queue_ui.now_playing_view(sub.public_id),
            )
        await self._notify_players(guild_id, result)

    async def _announce(self, channel_id: int, sub: Submission) -> None:
        try:
            await self.bot.get_partial_messageable(channel_id).send(
                queue_ui.announcement(sub), allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException as exc:
            # The song still plays; the admins see why the announcement is missing.
            log.warning("now-playing announcement failed in channel %s: %s", channel_id, exc)

    async def _file_for(
        self, interaction: discord.Interaction, sub: Submission
    ) -> tuple[discord.File | None, str | None]:
        """The stored audio as an attachment, or a short note on why it is missing."""
        if not sub.file_path:
            return None, None
        try:
            size = self.bot.audio.resolve(sub.file_path).stat().st_size
            if size > limits.upload_limit(interaction):
                # Over this server's upload limit: a signed download link instead (files are accepted only then).
                return None, self._link_text(sub) or "⚠️ The file is too large to attach in this server."
            data = await self.bot.audio.read(sub.file_path)
        except OSError:
            log.exception("the stored file of %s (%s) can't be read", sub.display_id, sub.file_path)
            return None, "⚠️ The stored file could not be read; ask the submitter to send it again."
        name = sub.file_name or f"{sub.public_id}{PurePath(sub.file_path).suffix}"
        return discord.File(io.BytesIO(data), filename=limits.clip(name, 100)), None

    def _link_text(self, sub: Submission) -> str | None:
        """A private download link for a file too large to attach (None without a public address)."""
        url = self.bot.web.file_url(sub)
        if url is None:
            return None
        hours = self.bot.config.file_link_hours
        return f"🔗 The file is larger than this server lets me attach. Listen or download (valid {hours:g} h): {url}"

    async def _notify_players(self, guild_id: int, result: PlayResult) -> None:
        sub = result.submission
        await self._dm(guild_id, sub, f"🎶 Your song {queue_ui.song(sub)} is playing now!")
        upcoming = await self.bot.queue.ordered_queue(guild_id)
        if upcoming:
            top = upcoming[0].submission
            await self._dm(guild_id, top, f"⏭️ Your song {queue_ui.song(top)} is next in the queue!")

    async def _dm(self, guild_id: int, sub: Submission, text: str) -> None:
        """DM a submitter who opted in; closed DMs are normal, not an error."""
        if not await self.bot.db.get_dm_notify(guild_id, sub.user_id):
            return
        try:
            user = self.bot.get_user(sub.user_id) or await self.bot.fetch_user(sub.user_id)
            await user.send(limits.clip(text, limits.CONTENT), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not DM user %s: %s", sub.user_id, exc)

    # ------------------------------------------------------------------ panel buttons

    async def refresh(self, interaction: discord.Interaction) -> None:
        """Redraw the reviewer panel: in place when clicked on it, every other display coalesced."""
        await check_reviewer(interaction)
        guild_id = interaction.guild_id or 0
        displays = self.bot.displays
        answered = False
        async with displays.holding(guild_id, DisplayKind.REVIEWER_MAIN) as held:
            if held:
                answered = await displays.answer_in_place(interaction, DisplayKind.REVIEWER_MAIN)
        if not answered:
            await defer(interaction, thinking=False)
        displays.request(guild_id)

    async def browse(self, interaction: discord.Interaction, page: int) -> None:
        """A private page of the full reviewer queue (with ids, handles and points)."""
        await check_reviewer(interaction)
        guild_id = interaction.guild_id or 0
        entries = await self.bot.queue.ordered_queue(guild_id)
        settings = await self.bot.db.get_settings(guild_id)
        page = queue_ui.clamp_page(page, len(entries))
        embed = queue_ui.reviewer_main_embed(entries, settings.weights, page)
        view = queue_ui.reviewer_pager(page, len(entries))
        if on_private_message(interaction):
            await update(interaction, embed=embed, view=view)
        else:
            await respond(interaction, embed=embed, view=view)

    async def choose_pending(self, interaction: discord.Interaction, public_id: str) -> None:
        """Offer approve/deny buttons for one pending skip, privately."""
        await check_reviewer(interaction)
        if public_id == "none":
            await respond(interaction, "There is nothing pending.")
            return
        sub = await self.bot.queue.get(interaction.guild_id or 0, public_id)
        if sub.line is not Line.PENDING:
            await respond(interaction, f"{sub.display_id} was already handled (it is in {sub.line.value}).")
            return
        handle = f" (@{limits.safe(sub.tiktok_handle, 30)})" if sub.tiktok_handle else ""
        await respond(
            interaction,
            f"Approve {sub.display_id} **{queue_ui.song(sub)}** by {limits.safe(sub.user_name, 60)}{handle} "
            "into a line, or deny it (it goes to Free):",
            view=queue_ui.pending_action_view(sub.public_id),
        )

    async def approve(self, interaction: discord.Interaction, public_id: str, line: Line) -> None:
        """Approve a pending skip into ``line``, or deny it into Free."""
        await check_reviewer(interaction)
        guild_id = interaction.guild_id or 0
        displays = self.bot.displays
        in_place = False
        async with displays.holding(guild_id, DisplayKind.REVIEWER_PENDING) as held:
            moved = await self.bot.queue.approve(guild_id, public_id, line)
            if held:
                # Under the display's lock, so the coalesced refresh that approve() asked for finds
                # the hash stored here and sends nothing.
                in_place = await displays.answer_in_place(interaction, DisplayKind.REVIEWER_PENDING)
        if line is Line.FREE:
            text = f"↩️ {moved.display_id} **{queue_ui.song(moved)}** was denied; it waits in Free."
        else:
            text = f"✅ {moved.display_id} **{queue_ui.song(moved)}** is now in **{line.value}**."
        if in_place:
            await respond(interaction, text)  # a private note for the reviewer who clicked
        elif on_private_message(interaction):
            await update(interaction, text, view=discord.ui.View(timeout=None))  # the offer is used up
        else:
            await respond(interaction, text)

    # ------------------------------------------------------------------ after /next

    async def rate(self, interaction: discord.Interaction, public_id: str, score: int) -> None:
        """Store the reviewer's 1-10 score on a played song."""
        await check_reviewer(interaction)
        rated = await self.bot.queue.rate(interaction.guild_id or 0, public_id, score)
        text = f"⭐ Rated {rated.display_id} **{score}/10**."
        if on_private_message(interaction):
            view = queue_ui.now_playing_view(
                public_id, rating=score, bookmarked=_bookmarked(interaction.message, public_id)
            )
            await update(interaction, text, view=view)
        else:
            await respond(interaction, text)

    async def bookmark(self, interaction: discord.Interaction, public_id: str) -> None:
        """Post the song to the bookmark channel."""
        await check_reviewer(interaction)
        guild_id = interaction.guild_id or 0
        settings = await self.bot.db.get_settings(guild_id)
        if settings.bookmark_channel_id is None:
            await respond(interaction, "No bookmark channel is set (an admin can use /setbookmarkchannel).")
            return
        sub = await self.bot.queue.get(guild_id, public_id)
        # Posting to another channel may wait on a rate limit: acknowledge first (type 6, nothing shown).
        await defer(interaction, thinking=False)
        try:
            await self.bot.get_partial_messageable(settings.bookmark_channel_id).send(
                embed=queue_ui.bookmark_embed(sub, interaction.user.display_name), allowed_mentions=NO_MENTIONS
            )
        except discord.Forbidden as exc:
            raise BotError(f"I can't post in <#{settings.bookmark_channel_id}>; check my permissions there.") from exc
        if on_private_message(interaction):
            await update(interaction, view=queue_ui.now_playing_view(public_id, rating=sub.rating, bookmarked=True))
        else:
            await respond(interaction, f"🔖 {sub.display_id} bookmarked in <#{settings.bookmark_channel_id}>.")


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Reviewer(bot))

"""Persistent and ephemeral views of the queue displays, and the actions their buttons share with commands.

Persistent views have ``timeout=None`` and stable custom ids (``mq:lq:*`` public queue, ``mq:rv:*``
reviewer panel); they are registered before the bot connects, so buttons keep working after a restart.
Every reviewer button checks the clicker's role on every click.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import discord

from models import Line, Submission
from ui import limits, queue_ui
from ui.checks import check_reviewer
from ui.respond import NO_MENTIONS, BaseView, defer, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)


def _bot(interaction: discord.Interaction) -> MusicQueueBot:
    return interaction.client  # type: ignore[return-value]  # always our bot class


# ---------------------------------------------------------------------- shared actions


async def play_next(interaction: discord.Interaction) -> None:
    """``/next`` and the Next button: archive the top song, announce it, hand the reviewer everything."""
    await check_reviewer(interaction)
    await defer(interaction, ephemeral=True)
    bot = _bot(interaction)
    guild_id = interaction.guild_id or 0
    result = await bot.queue.next(guild_id)
    if result is None:
        await respond(interaction, "📭 The queue is empty.")
        return
    sub = result.submission
    settings = await bot.db.get_settings(guild_id)
    if settings.now_playing_channel_id:
        try:
            await bot.get_partial_messageable(settings.now_playing_channel_id).send(
                queue_ui.announcement(sub), allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException as exc:
            log.warning("now-playing announcement failed in channel %s: %s", settings.now_playing_channel_id, exc)
    file = None
    if sub.file_path:
        try:
            data = await bot.audio.read(sub.file_path)
            file = discord.File(io.BytesIO(data), filename=sub.file_name or "song")
        except OSError:
            log.exception("stored file of %s is missing", sub.display_id)
    embed = queue_ui.now_playing_embed(sub, result.from_line, result.score)
    await respond(interaction, embed=embed, view=NowPlayingView(sub.public_id), file=file)
    await _notify(bot, guild_id, sub, f"🎶 Your song {queue_ui.song(sub)} is playing now!")
    upcoming = await bot.queue.ordered_queue(guild_id)
    if upcoming:
        await _notify(
            bot, guild_id, upcoming[0].submission, f"⏭️ Your song {queue_ui.song(upcoming[0].submission)} is next!"
        )


async def _notify(bot: MusicQueueBot, guild_id: int, sub: Submission, text: str) -> None:
    """DM a submitter who opted in; a closed DM is fine."""
    if not await bot.db.get_dm_notify(guild_id, sub.user_id):
        return
    try:
        user = bot.get_user(sub.user_id) or await bot.fetch_user(sub.user_id)
        await user.send(limits.clip(text, 2000), allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.info("could not DM user %s: %s", sub.user_id, exc)


async def show_queue(interaction: discord.Interaction, page: int = 0) -> None:
    """An ephemeral page of the queue plus the caller's own positions (``/queue`` and the public buttons)."""
    bot = _bot(interaction)
    guild_id = interaction.guild_id or 0
    entries = await bot.queue.ordered_queue(guild_id)
    settings = await bot.db.get_settings(guild_id)
    embed = queue_ui.live_queue_embed(entries, page, free_open=settings.free_open)
    mine = [e for e in entries if e.submission.user_id == interaction.user.id]
    if mine:
        lines = []
        for entry in mine[:5]:
            placement = await bot.queue.placement(entry.submission)
            lines.append(
                f"#{entry.position} {queue_ui.song(entry.submission, 60)} · {queue_ui.eta_text(placement.eta_seconds)}"
            )
        embed.add_field(name="Your songs", value=limits.clip("\n".join(lines), 1024), inline=False)
    await respond(interaction, embed=limits.fit(embed), view=QueuePager(interaction.user.id, page, len(entries)))


# ---------------------------------------------------------------------- public live queue


class LiveQueueView(BaseView):
    """Buttons under the pinned public queue; each answers only the clicker."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Browse", emoji="📄", style=discord.ButtonStyle.secondary, custom_id="mq:lq:browse")
    async def browse(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Ephemeral paging for the clicker only."""
        await show_queue(interaction, 0)

    @discord.ui.button(label="My position", emoji="📍", style=discord.ButtonStyle.primary, custom_id="mq:lq:mine")
    async def mine(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Where the clicker's songs are."""
        await show_queue(interaction, 0)


class QueuePager(BaseView):
    """Ephemeral Previous/Next for one user's private page of the queue."""

    def __init__(self, owner_id: int, page: int, total: int) -> None:
        super().__init__(timeout=300)
        self.owner_id = owner_id
        self.page = page
        self.pages = queue_ui.page_count(total)
        self.previous.disabled = page <= 0
        self.next.disabled = page >= self.pages - 1

    @discord.ui.button(label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Page back."""
        await self._go(interaction, self.page - 1)

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Page forward."""
        await self._go(interaction, self.page + 1)

    async def _go(self, interaction: discord.Interaction, page: int) -> None:
        bot = _bot(interaction)
        guild_id = interaction.guild_id or 0
        entries = await bot.queue.ordered_queue(guild_id)
        settings = await bot.db.get_settings(guild_id)
        page = min(max(page, 0), queue_ui.page_count(len(entries)) - 1)
        embed = queue_ui.live_queue_embed(entries, page, free_open=settings.free_open)
        await update(interaction, embed=embed, view=QueuePager(self.owner_id, page, len(entries)))


# ---------------------------------------------------------------------- reviewer panel


class ReviewerMainView(BaseView):
    """Next and Refresh under the reviewer queue."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Next", emoji="⏭️", style=discord.ButtonStyle.success, custom_id="mq:rv:next")
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Play the next song."""
        await play_next(interaction)

    @discord.ui.button(label="Refresh", emoji="🔄", style=discord.ButtonStyle.secondary, custom_id="mq:rv:refresh")
    async def refresh(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Redraw the reviewer displays now."""
        await check_reviewer(interaction)
        await defer(interaction, thinking=False)
        bot = _bot(interaction)
        if bot.displays is not None:
            bot.displays.request(interaction.guild_id or 0)


class PendingSelect(discord.ui.Select[Any]):
    """Pick a pending skip to approve or deny."""

    def __init__(self, pending: list[Submission]) -> None:
        options = [
            discord.SelectOption(
                label=limits.clip(f"{s.display_id} {s.artist} – {s.title}", limits.OPTION_TEXT),
                description=limits.clip(f"by {s.user_name}", limits.OPTION_TEXT),
                value=s.public_id,
            )
            for s in pending[: limits.SELECT_OPTIONS]
        ] or [discord.SelectOption(label="No pending skips", value="none")]
        super().__init__(
            custom_id="mq:rv:pending",
            placeholder="Choose a pending skip to approve or deny…",
            options=options,
            disabled=not pending,
        )

    async def callback(self, interaction: discord.Interaction) -> None:
        """Offer the line buttons for the chosen submission (ephemeral, reviewer only)."""
        await check_reviewer(interaction)
        public_id = self.values[0] if self.values else "none"
        if public_id == "none":
            await respond(interaction, "There is nothing pending.")
            return
        sub = await _bot(interaction).queue.get(interaction.guild_id or 0, public_id)
        await respond(
            interaction,
            f"Approve {sub.display_id} **{queue_ui.song(sub)}** into a line, or deny it (it goes to Free):",
            view=PendingActionView(sub.public_id),
        )


class PendingView(BaseView):
    """The select under the pending-skips panel."""

    def __init__(self, pending: list[Submission] | None = None) -> None:
        super().__init__(timeout=None)
        self.add_item(PendingSelect(pending or []))


class PendingActionView(BaseView):
    """Ephemeral approve/deny buttons for one pending submission; the role is checked on every click."""

    def __init__(self, public_id: str) -> None:
        super().__init__(timeout=600)
        self.public_id = public_id
        for line in (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP):
            self.add_item(_ApproveButton(public_id, line))
        self.add_item(_ApproveButton(public_id, Line.FREE, label="Deny (to Free)", style=discord.ButtonStyle.danger))


class _ApproveButton(discord.ui.Button[Any]):
    def __init__(
        self, public_id: str, line: Line, *, label: str | None = None, style: discord.ButtonStyle | None = None
    ) -> None:
        super().__init__(label=label or f"Approve: {line.value}", style=style or discord.ButtonStyle.success)
        self.public_id = public_id
        self.line = line

    async def callback(self, interaction: discord.Interaction) -> None:
        await check_reviewer(interaction)
        moved = await _bot(interaction).queue.approve(interaction.guild_id or 0, self.public_id, self.line)
        await update(interaction, f"{moved.display_id} is now in **{moved.line.value}**.", view=None)


# ---------------------------------------------------------------------- after /next


class NowPlayingView(BaseView):
    """Bookmark and 1-10 rating for the song that just played (ephemeral, reviewer only)."""

    def __init__(self, public_id: str) -> None:
        super().__init__(timeout=3600)
        self.public_id = public_id
        for score in range(1, 11):
            self.add_item(_RateButton(public_id, score, row=0 if score <= 5 else 1))

    @discord.ui.button(label="Bookmark", emoji="🔖", style=discord.ButtonStyle.primary, row=2)
    async def bookmark(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        """Post the song to the bookmark channel."""
        await check_reviewer(interaction)
        bot = _bot(interaction)
        guild_id = interaction.guild_id or 0
        settings = await bot.db.get_settings(guild_id)
        if settings.bookmark_channel_id is None:
            await respond(interaction, "No bookmark channel is set (an admin can use /setbookmarkchannel).")
            return
        sub = await bot.queue.get(guild_id, self.public_id)
        await defer(interaction, thinking=False)
        await bot.get_partial_messageable(settings.bookmark_channel_id).send(
            embed=queue_ui.bookmark_embed(sub, interaction.user.display_name), allowed_mentions=NO_MENTIONS
        )
        button.disabled = True
        button.label = "Bookmarked"
        await interaction.edit_original_response(view=self)


class _RateButton(discord.ui.Button[Any]):
    def __init__(self, public_id: str, score: int, row: int) -> None:
        super().__init__(label=str(score), style=discord.ButtonStyle.secondary, row=row)
        self.public_id = public_id
        self.score = score

    async def callback(self, interaction: discord.Interaction) -> None:
        await check_reviewer(interaction)
        rated = await _bot(interaction).queue.rate(interaction.guild_id or 0, self.public_id, self.score)
        await respond(interaction, f"Rated {rated.display_id} **{self.score}/10**.")


PERSISTENT_VIEWS = (LiveQueueView, ReviewerMainView, PendingView)

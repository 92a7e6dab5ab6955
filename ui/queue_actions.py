"""What the queue's commands and buttons do: the public queue pages, ``/next``, and the reviewer panels.

The one dispatch pattern of the bot: a component (a ``DynamicItem`` owning its custom-id template, or a
persistent view's button) calls one of these functions with its interaction; commands (``/next``,
``/queue``) call the same ones. They reach the services through ``interaction.client``, typed as
``MusicQueueBot``, never through a cog, so unloading a cog never breaks a button on an old message.

Every reviewer action checks the clicker's role at click time (``check_reviewer``), because a custom id
can be replayed by anyone on any message; a refusal is a short ephemeral message.

Answer rule (Discord rate limits): when a click changes the very message it sits on, it answers with that
message redrawn (interaction type 7), which costs no channel PATCH; otherwise it defers and the display
manager's coalescer redraws the displays.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePath
from typing import TYPE_CHECKING

import discord

from errors import BotError
from models import DisplayKind, GuildSettings, Line, Submission
from services.queue import PlayResult
from ui import limits, queue_ui
from ui.checks import check_reviewer
from ui.respond import REMOVE, defer, guild_id_of, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot
    from services.positions import PositionMove

    Interaction = discord.Interaction[MusicQueueBot]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- the public queue


def on_private_message(interaction: Interaction) -> bool:
    """True for a click on an ephemeral message: the only non-display message a click may rewrite in place.

    A forged or replayed custom id on a public message must never turn that message into one user's page.
    """
    message = interaction.message
    return interaction.type is discord.InteractionType.component and message is not None and message.flags.ephemeral


async def show_queue(
    interaction: Interaction, page: int | None, *, with_mine: bool = False, keep_mine: bool = False
) -> None:
    """A private page of the queue (``-1`` is the last; None: the page of the clicker's first song).

    Paging never touches the public message: the answer is ephemeral, or the clicker's own ephemeral
    page edited in place.
    """
    bot = interaction.client
    guild_id = guild_id_of(interaction)
    settings = await bot.db.get_settings(guild_id)
    played = await bot.db.latest_played(guild_id)
    mine = None
    moves: list[PositionMove] = []
    if with_mine or keep_mine:
        active = await bot.db.user_active(guild_id, interaction.user.id)
        placements = [await bot.queue.placement(sub) for sub in active]
        # Playable songs first, in play order; pending skips after them.
        placements.sort(key=lambda p: (p.position is None, p.position or 0, p.submission.submitted_at))
        # Paging keeps the clicker's own block (when they have songs); /queue and My position always show it.
        mine = placements if with_mine or placements else None
        # What moved since this member last looked, and why (a paid song, more points, songs played):
        # O(log n) per song, read from the order with no await in between.
        order = await bot.queue.order_view(guild_id)
        moves = bot.positions.observe(guild_id, order, [p.submission.id for p in placements])
        if page is None:
            first = next((p.position for p in placements if p.position is not None), None)
            page = (first - 1) // queue_ui.PAGE_SIZE if first else 0
    # One page of the order (negative pages count from the end; the service clamps), never all of it.
    view_page = await bot.queue.queue_page(guild_id, page or 0, queue_ui.PAGE_SIZE)
    embed = queue_ui.live_queue_embed(view_page, free_open=settings.free_open, now_playing=played)
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
    view = queue_ui.queue_pager(view_page.page, view_page.total)
    if on_private_message(interaction):
        await update(interaction, embed=embed, view=view)  # the clicker's own page: edit it in place
    else:
        await respond(interaction, embed=embed, view=view)  # ephemeral: nobody else's view changes


async def refresh_public(interaction: Interaction) -> None:
    """A fresh first page for the clicker; the public message is redrawn by the coalescer if it changed."""
    interaction.client.displays.request_kind(guild_id_of(interaction), DisplayKind.LIVE_QUEUE)
    await show_queue(interaction, 0)


# ---------------------------------------------------------------------- playing


async def play_next(interaction: Interaction) -> None:
    """``/next`` and the Next button: archive the top song, announce it, hand the reviewer everything."""
    await check_reviewer(interaction)
    # Reading a stored file and posting the announcement can take a moment: acknowledge first.
    await defer(interaction, ephemeral=True)
    bot = interaction.client
    guild_id = guild_id_of(interaction)
    result = await bot.queue.next(guild_id)
    if result is None:
        await respond(interaction, "📭 The queue is empty: nothing to play.")
        return
    sub = result.submission
    settings = await bot.db.get_settings(guild_id)
    # The song plays even when the announcement can't be posted; the notifier logs why it is missing.
    await bot.notifier.post_to_setting(
        guild_id, "now_playing_channel_id", queue_ui.announcement(sub), what="the now-playing announcement"
    )
    embed = queue_ui.now_playing_embed(sub, result.from_line, result.score, result.counts, settings.weights)
    file, problem = await _file_for(interaction, sub)
    try:
        view = queue_ui.now_playing_view(sub.public_id, bookmark_channel=_bookmark_channel(interaction, settings))
        await respond(interaction, problem, embed=embed, view=view, file=file)
    except discord.HTTPException as exc:
        if file is None or exc.status != 413:
            raise
        # Discord refused the upload size for this server: the details (and a link, if any) still reach the reviewer.
        await respond(
            interaction,
            await _link_text(interaction, sub) or "⚠️ The file is too large to attach here.",
            embed=embed,
            view=queue_ui.now_playing_view(sub.public_id, bookmark_channel=_bookmark_channel(interaction, settings)),
        )
    await _notify_players(interaction.client, guild_id, result)


def _bookmark_channel(interaction: Interaction, settings: GuildSettings) -> str | None:
    """The bookmark channel's name for the Bookmark button's label (None when none is set)."""
    channel_id = settings.bookmark_channel_id
    if channel_id is None:
        return None
    channel = interaction.guild.get_channel(channel_id) if interaction.guild else None
    return channel.name if channel is not None else "bookmarks"


async def _file_for(interaction: Interaction, sub: Submission) -> tuple[discord.File | None, str | None]:
    """The stored audio as an attachment, or a short note on why it is missing."""
    if not sub.file_path:
        return None, None
    try:
        size = interaction.client.audio.resolve(sub.file_path).stat().st_size
        # Discord's upload cap for this server (10 MiB unboosted; boosts raise it), sent with every interaction.
        if size > limits.upload_limit(interaction):
            # Such files are accepted only with a public address: the reviewer gets a signed download link.
            return None, await _link_text(interaction, sub) or "⚠️ The file is too large to attach in this server."
        data = await interaction.client.audio.read(sub.file_path)
    except OSError:
        log.exception("the stored file of %s (%s) can't be read", sub.display_id, sub.file_path)
        return None, "⚠️ The stored file could not be read; ask the submitter to send it again."
    name = sub.file_name or f"{sub.public_id}{PurePath(sub.file_path).suffix}"
    return discord.File(io.BytesIO(data), filename=limits.clip(name, 100)), None


async def _link_text(interaction: Interaction, sub: Submission) -> str | None:
    """A private download link for a file too large to attach (None without a public address)."""
    link = await interaction.client.web.file_link(sub)  # valid for the guild's File-link expiry setting
    if link is None:
        return None
    return (
        f"🔗 The file is larger than this server lets me attach. Listen or download (valid {link.hours} h): {link.url}"
    )


async def _notify_players(bot: MusicQueueBot, guild_id: int, result: PlayResult) -> None:
    """DM the submitters who opted in: the one whose song plays, and the one who is next."""
    sub = result.submission
    await bot.notifier.dm_if_opted_in(guild_id, sub.user_id, f"🎶 Your song {queue_ui.song(sub)} is playing now!")
    upcoming = await bot.queue.first(guild_id)
    if upcoming is not None:
        top = upcoming.submission
        await bot.notifier.dm_if_opted_in(
            guild_id, top.user_id, f"🔜 Your song {queue_ui.song(top)} is up next in the queue!"
        )


# ---------------------------------------------------------------------- reviewer panels


async def refresh_panel(interaction: Interaction) -> None:
    """Redraw the reviewer panel: in place when clicked on it, every other display coalesced."""
    await check_reviewer(interaction)
    guild_id = guild_id_of(interaction)
    displays = interaction.client.displays
    answered = False
    async with displays.holding(guild_id, DisplayKind.REVIEWER_MAIN) as held:
        if held:
            answered = await displays.answer_in_place(interaction, DisplayKind.REVIEWER_MAIN)
    if not answered:
        await defer(interaction, thinking=False)
    displays.request(guild_id)


async def browse(interaction: Interaction, page: int) -> None:
    """A private page of the full reviewer queue (with ids, handles and points)."""
    await check_reviewer(interaction)
    bot = interaction.client
    guild_id = guild_id_of(interaction)
    settings = await bot.db.get_settings(guild_id)
    # One page, clamped into range (a page below 0 is the first, as the pager's buttons expect).
    shown = await bot.queue.queue_page(guild_id, max(page, 0), queue_ui.PAGE_SIZE)
    embed = queue_ui.reviewer_main_embed(shown, settings.weights)
    view = queue_ui.reviewer_pager(shown.page, shown.total)
    if on_private_message(interaction):
        await update(interaction, embed=embed, view=view)
    else:
        await respond(interaction, embed=embed, view=view)


async def choose_pending(interaction: Interaction, public_id: str | None) -> None:
    """Offer approve/deny buttons for one pending skip, privately (None: the select had nothing)."""
    await check_reviewer(interaction)
    if public_id is None:
        await respond(interaction, "There is nothing pending.")
        return
    sub = await interaction.client.queue.get(guild_id_of(interaction), public_id)
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


async def approve(interaction: Interaction, public_id: str, line: Line) -> None:
    """Approve a pending skip into ``line``, or deny it into Free."""
    await check_reviewer(interaction)
    bot = interaction.client
    guild_id = guild_id_of(interaction)
    displays = bot.displays
    in_place = False
    async with displays.holding(guild_id, DisplayKind.REVIEWER_PENDING) as held:
        moved = await bot.queue.approve(guild_id, public_id, line)
        if held:
            # Under the display's lock, so the coalesced refresh that approve() asked for finds the hash
            # stored here and sends nothing.
            in_place = await displays.answer_in_place(interaction, DisplayKind.REVIEWER_PENDING)
    if line is Line.FREE:
        text = f"↩️ {moved.display_id} **{queue_ui.song(moved)}** was denied; it waits in Free."
    else:
        text = f"✅ {moved.display_id} **{queue_ui.song(moved)}** is now in **{line.value}**."
    if in_place:
        await respond(interaction, text)  # a private note for the reviewer who clicked
    elif on_private_message(interaction):
        await update(interaction, text, view=REMOVE)  # the offer is used up: its buttons go
    else:
        await respond(interaction, text)


# ---------------------------------------------------------------------- after /next


async def rate(interaction: Interaction, public_id: str, score: int) -> None:
    """Store the reviewer's 1-10 score on a played song."""
    await check_reviewer(interaction)
    guild_id = guild_id_of(interaction)
    rated = await interaction.client.queue.rate(guild_id, public_id, score)
    text = f"⭐ Rated {rated.display_id} **{score}/10**."
    if on_private_message(interaction):
        settings = await interaction.client.db.get_settings(guild_id)
        bookmarked = queue_ui.BookmarkButton.used_on(interaction.message, public_id)
        view = queue_ui.now_playing_view(
            public_id, rating=score, bookmarked=bookmarked, bookmark_channel=_bookmark_channel(interaction, settings)
        )
        await update(interaction, text, view=view)
    else:
        await respond(interaction, text)


async def bookmark(interaction: Interaction, public_id: str) -> None:
    """Post the song to the bookmark channel, and say where it went."""
    await check_reviewer(interaction)
    bot = interaction.client
    guild_id = guild_id_of(interaction)
    settings = await bot.db.get_settings(guild_id)
    channel_id = settings.bookmark_channel_id
    if channel_id is None:
        await respond(interaction, "No bookmark channel is set (an admin can use /setbookmarkchannel).")
        return
    sub = await bot.queue.get(guild_id, public_id)
    # Posting to another channel may wait on a rate limit: acknowledge first (type 6, nothing shown).
    await defer(interaction, thinking=False)
    posted = await bot.notifier.post(
        channel_id, embed=queue_ui.bookmark_embed(sub, interaction.user.display_name), what="a bookmark"
    )
    if posted is None:
        raise BotError(f"I can't post in <#{channel_id}>; check my permissions there.")
    text = f"🔖 {sub.display_id} bookmarked in <#{channel_id}>: {posted.jump_url}"
    if on_private_message(interaction):
        view = queue_ui.now_playing_view(
            public_id, rating=sub.rating, bookmarked=True, bookmark_channel=_bookmark_channel(interaction, settings)
        )
        await update(interaction, text, view=view)
    else:
        await respond(interaction, text)

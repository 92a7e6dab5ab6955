"""Submitting: the modal, the skip question, confirmations, the portal and the history views.

Components follow the bot's one dispatch pattern (see ``ui.queue_actions``): a callback reaches the
services through ``interaction.client`` (typed ``MusicQueueBot``), never through a cog. The portal's
buttons are persistent (fixed custom ids, registered by ``bot.py`` before connecting); the skip question
and the history views belong to one member and one ephemeral message, so they keep their state (the
draft, the page) in the view and check the clicker on every click.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord

from errors import BotError
from models import Line, Submission
from services.points import HandleStanding
from services.queue import Draft, Placement
from services.validation import ARTIST_MAX, LINK_MAX, NOTE_MAX, TITLE_MAX
from ui import limits, palette, queue_ui
from ui.checks import is_admin
from ui.expiry import ExpiringView
from ui.respond import REMOVE, BaseModal, BaseView, defer, guild_id_of, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)
HISTORY_PAGE = 5
# How long each member's menu listens (seconds); then it says it expired (ui.expiry).
SKIP_TIMEOUT = 180.0
PICKER_TIMEOUT = 180.0
HISTORY_TIMEOUT = 300.0


def status_text(placement: Placement) -> str:
    """Where a submission is, in words."""
    sub = placement.submission
    if sub.line is Line.PLAYED and sub.played_at:
        return f"played <t:{int(sub.played_at)}:d>" + (f" · rated {sub.rating}/10" if sub.rating else "")
    if sub.line is Line.REMOVED:
        return "removed"
    if sub.line is Line.PENDING:
        return "pending skip (a reviewer will check it)"
    return (
        f"{queue_ui.LINE_TAGS.get(sub.line, sub.line.value)} · #{placement.position}"
        f" · plays in {queue_ui.eta_text(placement.eta_seconds, placement.position)}"
    )


def standing_text(standing: HandleStanding) -> str | None:
    """One line when the song's TikTok handle carries no points for it, saying how to change that."""
    if standing.counts:
        return None
    name = f"@{limits.safe(standing.handle, 40)}"
    if standing.other_owner:
        return f"⚠️ {name} is linked to another member, so it carries no points for this song."
    if standing.code:
        how = f"type `{standing.code}` in the live chat from {name}"
    else:
        how = f"run `/link-tiktok {standing.handle}` to get a code to type in the live chat"
    return f"⚠️ {name} carries no points for this song until it is proven: {how}."


def confirmation_embed(placement: Placement, standing: HandleStanding | None = None) -> discord.Embed:
    """The ephemeral receipt after submitting: id, line, position and ETA; and why its handle adds nothing."""
    sub = placement.submission
    description = f"**{queue_ui.song(sub, 300)}**"
    note = standing_text(standing) if standing is not None else None
    if note:
        description += f"\n{note}"
    embed = palette.embed(f"{palette.EMOJI['success']} Submitted", "success", description=description)
    embed.add_field(name="Id", value=sub.display_id)
    embed.add_field(name="Line", value=queue_ui.LINE_TAGS.get(sub.line, sub.line.value))
    if placement.position is not None:
        embed.add_field(name="Position", value=f"#{placement.position}")
        embed.add_field(name="Estimated wait", value=queue_ui.eta_text(placement.eta_seconds, placement.position))
    else:
        embed.add_field(name="Next step", value="A reviewer checks your skip, then it joins its line.")
    if sub.platform:
        embed.add_field(name="Source", value=sub.platform)
    embed.set_footer(text="Follow it with /mysubmissions. /notify gets you a DM when it is next.")
    return limits.fit(embed)


def history_embed(rows: list[Placement], page: int, total: int) -> discord.Embed:
    """A page of the caller's own submissions, newest first."""
    pages = max(1, -(-total // HISTORY_PAGE))
    embed = palette.embed(f"{palette.EMOJI['history']} Your submissions", "queue")
    if not rows:
        embed.description = "You have not submitted anything yet. Use /submit!"
    for placement in rows:
        sub = placement.submission
        embed.add_field(
            name=limits.clip(f"{sub.display_id} · {sub.artist} – {sub.title}", limits.FIELD_NAME),
            value=limits.clip(f"{status_text(placement)} · sent <t:{int(sub.submitted_at)}:R>", 1024),
            inline=False,
        )
    embed.set_footer(text=f"Page {page + 1}/{pages} · {total} submissions")
    return limits.fit(embed)


FILE_HOWTO = (
    "Use **/submitfile** and attach an MP3, WAV, M4A or FLAC file (up to 25 MB), then fill in the artist and "
    "the song title. The file is kept safely, and the reviewer gets it when your song plays."
)


# ---------------------------------------------------------------------- the skip question


class SkipQuestionView(ExpiringView):
    """The skip question: Yes goes to Pending Skips, No to Free. Only the submitter can answer."""

    menu = "skip"
    timeout_note = "⌛ This question expired, so nothing was submitted. Run /submit (or /submitfile) again."

    def __init__(self, draft: Draft, owner_id: int, *, resubmit_of: str | None = None) -> None:
        super().__init__(timeout=SKIP_TIMEOUT)
        self.draft = draft
        self.owner_id = owner_id
        self.resubmit_of = resubmit_of
        self.done = False
        self.origin: discord.Interaction[MusicQueueBot] | None = None

    async def interaction_check(self, interaction: discord.Interaction[MusicQueueBot]) -> bool:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Only the person who filled the form answers it."""
        await super().interaction_check(interaction)
        if interaction.user.id != self.owner_id:
            await respond(interaction, "This question belongs to someone else's submission.")
            return False
        return True

    @discord.ui.button(label="Yes, it's a skip", style=discord.ButtonStyle.success)
    async def yes(
        self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[SkipQuestionView]
    ) -> None:
        """Pending Skips: a reviewer verifies the payment."""
        await self._submit(interaction, skip=True)

    @discord.ui.button(label="No, Free line", style=discord.ButtonStyle.secondary)
    async def no(
        self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[SkipQuestionView]
    ) -> None:
        """The Free line, ordered by engagement points."""
        await self._submit(interaction, skip=False)

    async def _submit(self, interaction: discord.Interaction[MusicQueueBot], *, skip: bool) -> None:
        bot = interaction.client
        guild_id = guild_id_of(interaction)
        exempt = await is_admin(interaction)
        name = interaction.user.display_name
        try:
            if self.resubmit_of is not None:
                placement = await bot.queue.resubmit(
                    guild_id, interaction.user.id, name, self.resubmit_of, skip=skip, exempt=exempt
                )
            else:
                placement = await bot.queue.submit(
                    guild_id, interaction.user.id, name, self.draft, skip=skip, exempt=exempt
                )
        except BotError as exc:
            # A refusal is the last word: stopped, the view's timeout can no longer overwrite the reason.
            self.stop()
            await self._drop_upload()
            await update(interaction, f"❌ {exc.message}", view=REMOVE)
            return
        self.done = True
        self.stop()
        handle = placement.submission.tiktok_handle
        standing = await bot.points.handle_standing(guild_id, interaction.user.id, handle) if handle else None
        # The question is answered: its text and both buttons go, only the receipt stays.
        await update(interaction, REMOVE, embed=confirmation_embed(placement, standing), view=REMOVE)

    async def _drop_upload(self) -> None:
        """Delete the uploaded file of a draft that will never be submitted (a copy's file is the original's)."""
        if self.draft.audio is not None and self.origin is not None and self.resubmit_of is None:
            try:
                await self.origin.client.audio.delete(self.draft.audio.path)
            except OSError:
                log.exception("could not delete an abandoned upload")

    async def on_timeout(self) -> None:
        """Tell the user it expired (the buttons go) and drop an uploaded file nobody will use."""
        if self.done:
            return
        await self._drop_upload()
        await super().on_timeout()


async def ask_skip(
    interaction: discord.Interaction[MusicQueueBot], draft: Draft, *, resubmit_of: str | None = None
) -> None:
    """Show the skip question for a drafted song."""
    view = SkipQuestionView(draft, interaction.user.id, resubmit_of=resubmit_of)
    view.origin = interaction
    text = f"**{limits.safe(f'{draft.artist} – {draft.title}', 300)}**\nIs this submission a skip (did you pay)?"
    await respond(interaction, text, view=view)


# ---------------------------------------------------------------------- the modal


class SubmitModal(BaseModal, title="Submit a song"):
    """Artist, title, link and an optional note."""

    artist: discord.ui.TextInput[SubmitModal] = discord.ui.TextInput(label="Artist", max_length=ARTIST_MAX)
    song_title: discord.ui.TextInput[SubmitModal] = discord.ui.TextInput(label="Song title", max_length=TITLE_MAX)
    link: discord.ui.TextInput[SubmitModal] = discord.ui.TextInput(
        label="Link", max_length=LINK_MAX, placeholder="https://…"
    )
    note: discord.ui.TextInput[SubmitModal] = discord.ui.TextInput(
        label="Note (optional)", style=discord.TextStyle.paragraph, max_length=NOTE_MAX, required=False
    )

    def __init__(self, handle: str | None = None) -> None:
        # discord.py keys open modals by custom_id alone: a fixed id would let one member's form replace
        # another's, so each form gets the library's random id.
        super().__init__(timeout=900)
        self.handle = handle

    async def on_submit(self, interaction: discord.Interaction[MusicQueueBot]) -> None:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Validate, then ask the skip question."""
        draft = interaction.client.queue.draft(
            artist=self.artist.value,
            title=self.song_title.value,
            note=self.note.value,
            link=self.link.value,
            handle=self.handle,
        )
        await ask_skip(interaction, draft)


# ---------------------------------------------------------------------- history and resubmission


class HistorySelect(discord.ui.Select[BaseView]):
    """Pick one of your songs to act on."""

    def __init__(self, rows: list[Submission], *, placeholder: str) -> None:
        options = [
            discord.SelectOption(
                label=limits.clip(f"{s.artist} – {s.title}", limits.OPTION_TEXT),
                description=limits.clip(f"{s.display_id} · {s.line.value}", limits.OPTION_TEXT),
                value=s.public_id,
            )
            for s in rows[: limits.SELECT_OPTIONS]
        ]
        super().__init__(placeholder=placeholder, options=options)

    async def callback(self, interaction: discord.Interaction[MusicQueueBot]) -> None:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Hand the choice to the view."""
        view = self.view
        assert isinstance(view, HistoryView | ResubmitPicker)
        await view.chosen(interaction, self.values[0])


class ResubmitPicker(ExpiringView):
    """From the portal: choose an old song to submit again."""

    menu = "picker"

    def __init__(self, owner_id: int, rows: list[Submission]) -> None:
        super().__init__(timeout=PICKER_TIMEOUT)
        self.owner_id = owner_id
        self.add_item(HistorySelect(rows, placeholder="Choose a song to submit again…"))

    async def chosen(self, interaction: discord.Interaction[MusicQueueBot], public_id: str) -> None:
        """Ask the skip question for a copy of the chosen song."""
        bot = interaction.client
        old = await bot.queue.get(guild_id_of(interaction), public_id)
        if old.user_id != interaction.user.id:
            await respond(interaction, "You can only submit your own songs again.")
            return
        await ask_skip(interaction, bot.queue.draft_from(old), resubmit_of=public_id)


class HistoryView(ExpiringView):
    """``/mysubmissions``: pages, withdraw an active song, or submit an old one again. Owner only.

    Controls appear only when they can be used: paging arrows only where there is another page, the select
    only when the page shows more than one song, and Withdraw / Submit again only for a song they work on
    (an active song can be withdrawn, an old one submitted again).
    """

    menu = "history"

    def __init__(
        self, owner_id: int, page: int, total: int, rows: list[Submission], *, selected: Submission | None = None
    ) -> None:
        super().__init__(timeout=HISTORY_TIMEOUT)
        self.owner_id = owner_id
        self.page = page
        self.total = total
        self.selected: str | None = None
        pages = max(1, -(-total // HISTORY_PAGE))
        if len(rows) > 1:
            self.add_item(HistorySelect(rows, placeholder="Choose one of these songs…"))
        elif rows:
            selected = rows[0]  # one song: nothing to choose
        if page > 0:
            self._button(palette.EMOJI["previous"], None, discord.ButtonStyle.secondary, self._previous, row=1)
        if page < pages - 1:
            self._button(palette.EMOJI["next_page"], None, discord.ButtonStyle.secondary, self._next, row=1)
        if selected is not None:
            self.selected = selected.public_id
            if selected.line.is_active:
                label = f"Withdraw {selected.display_id}"
                self._button(palette.EMOJI["withdraw"], label, discord.ButtonStyle.danger, self._withdraw, row=2)
            else:
                label = f"Submit {selected.display_id} again"
                self._button(palette.EMOJI["again"], label, discord.ButtonStyle.primary, self._again, row=2)

    def _button(
        self,
        emoji: str,
        label: str | None,
        style: discord.ButtonStyle,
        action: Callable[[discord.Interaction[MusicQueueBot]], Awaitable[None]],
        *,
        row: int,
    ) -> None:
        button: discord.ui.Button[HistoryView] = discord.ui.Button(emoji=emoji, label=label, style=style, row=row)
        button.callback = action  # type: ignore[method-assign, assignment]  # a plain coroutine taking the interaction
        self.add_item(button)

    async def interaction_check(self, interaction: discord.Interaction[MusicQueueBot]) -> bool:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Only the owner may use their history."""
        await super().interaction_check(interaction)
        if interaction.user.id != self.owner_id:
            await respond(interaction, "These are someone else's submissions.")
            return False
        return True

    async def chosen(self, interaction: discord.Interaction[MusicQueueBot], public_id: str) -> None:
        """Show what can be done with the chosen song."""
        self.stop()  # the redrawn page's view replaces this one; this one's timeout must not edit the message
        await show_history(interaction, self.page, edit=True, selected=public_id)

    async def _previous(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Newer songs."""
        self.stop()  # the new page's view replaces this one; this one's timeout must not edit the message
        await show_history(interaction, self.page - 1, edit=True)

    async def _next(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Older songs."""
        self.stop()
        await show_history(interaction, self.page + 1, edit=True)

    async def _withdraw(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Take the selected song out of the queue, and show the page as it is now."""
        assert self.selected is not None  # the button exists only for a selected song
        sub = await interaction.client.queue.withdraw(guild_id_of(interaction), interaction.user.id, self.selected)
        await show_history(interaction, self.page, edit=True, note=f"🗑️ Withdrew {sub.display_id}.")

    async def _again(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """A new submission with the selected song's data."""
        assert self.selected is not None
        bot = interaction.client
        old = await bot.queue.get(guild_id_of(interaction), self.selected)
        await ask_skip(interaction, bot.queue.draft_from(old), resubmit_of=self.selected)


async def show_history(
    interaction: discord.Interaction[MusicQueueBot],
    page: int = 0,
    *,
    edit: bool = False,
    selected: str | None = None,
    note: str | None = None,
) -> None:
    """Show (or page) the caller's own submissions; ``selected`` offers what can be done with one of them."""
    bot = interaction.client
    guild_id = guild_id_of(interaction)
    total = await bot.db.count_user_history(guild_id, interaction.user.id)
    pages = max(1, -(-total // HISTORY_PAGE))
    page = min(max(page, 0), pages - 1)
    rows, total = await bot.queue.user_history(guild_id, interaction.user.id, page=page, per_page=HISTORY_PAGE)
    embed = history_embed(rows, page, total)
    subs = [p.submission for p in rows]
    chosen = next((s for s in subs if s.public_id == selected), None)
    view = HistoryView(interaction.user.id, page, total, subs, selected=chosen)
    content = note or (f"Selected {chosen.display_id} **{queue_ui.song(chosen)}**." if chosen else None)
    view.shown_by(interaction)
    if edit:
        await update(interaction, content if content is not None else REMOVE, embed=embed, view=view)
    else:
        await respond(interaction, content, embed=embed, view=view)


# ---------------------------------------------------------------------- the portal


class PortalView(BaseView):
    """The persistent submission portal message."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Submit a link", emoji="🔗", style=discord.ButtonStyle.primary, custom_id="mq:portal:link")
    async def link(
        self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[PortalView]
    ) -> None:
        """Open the submission form."""
        await interaction.response.send_modal(SubmitModal())

    @discord.ui.button(
        label="How to submit a file", emoji="📁", style=discord.ButtonStyle.secondary, custom_id="mq:portal:file"
    )
    async def file(
        self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[PortalView]
    ) -> None:
        """Explain /submitfile."""
        await respond(interaction, FILE_HOWTO)

    @discord.ui.button(
        label="Submit again from history", emoji="♻️", style=discord.ButtonStyle.success, custom_id="mq:portal:history"
    )
    async def history(
        self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[PortalView]
    ) -> None:
        """Pick an old song to submit again."""
        await defer(interaction)
        rows = await interaction.client.db.user_history(guild_id_of(interaction), interaction.user.id, limit=25)
        if not rows:
            await respond(interaction, "You have no earlier submissions yet.")
            return
        picker = ResubmitPicker(interaction.user.id, rows)
        picker.shown_by(interaction)
        await respond(interaction, "Choose a song to submit again:", view=picker)


def portal_embed() -> discord.Embed:
    """The portal's explanation."""
    embed = palette.embed(f"{palette.EMOJI['portal']} Music submission portal", "queue")
    embed.description = (
        "**Submit a link**: YouTube, Spotify, SoundCloud, Apple Music and more.\n"
        f"**Submit a file**: {FILE_HOWTO}\n"
        "**Submit again**: send one of your earlier songs again.\n\n"
        "Skips (paid) are checked by a reviewer; the Free line is ordered by TikTok LIVE engagement points."
    )
    embed.timestamp = datetime.now(UTC)
    return embed


# Registered once by bot.py before connecting, so the portal's buttons work right after a restart.
PERSISTENT_VIEWS: tuple[type[BaseView], ...] = (PortalView,)

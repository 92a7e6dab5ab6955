"""Builders for the queue displays: public live queue, reviewer panels, now playing, bookmark.

The embed builders are pure functions from ``models`` objects to ``discord.Embed``; the view classes only
lay out components (labels, styles, stable custom ids) and hand every click to the function of
``ui.queue_actions`` that does it (the same functions serve ``/next`` and ``/queue``). Each
``DynamicItem`` is the only code that builds and parses its custom ids. So everything here can be built and
checked without Discord, and a display rendered by ``ui.displays`` carries exactly the components that
the persistent registration answers after a restart.

All user text is markdown-escaped and clipped, and every embed and view stays inside Discord's limits
(embeds, fields, buttons, select options): long queues become pages, never an oversized embed.

Custom ids (stable across restarts and releases, because old messages keep them; at most 100 characters):

* ``mq:lq:prev`` / ``mq:lq:next`` / ``mq:lq:refresh`` / ``mq:lq:mine`` on the public live queue;
* ``mq:lq:page:<n>:<p|n>`` on a clicker's private (ephemeral) page of it;
* ``mq:rv:next`` / ``mq:rv:refresh`` / ``mq:rv:browse`` on the reviewer main panel;
* ``mq:rv:page:<n>:<p|n>`` on a reviewer's private page of the full queue;
* ``mq:rv:pending`` (select) and ``mq:rv:ap:<id>:<b2b|ds|skip|free>`` on the pending-skips panel;
* ``mq:rv:rate:<id>:<1-10>`` and ``mq:rv:bm:<id>`` on the reviewer's "now playing" answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord

from models import PLAYABLE_LINES, EngagementCounts, Line, PointsWeights, QueueEntry, Submission
from services.analytics import format_duration
from ui import limits, palette, queue_actions
from ui.respond import BaseView, report_error

if TYPE_CHECKING:
    from bot import MusicQueueBot
    from services.positions import PositionMove
    from services.queue import Placement, QueuePage

    Interaction = discord.Interaction[MusicQueueBot]

PAGE_SIZE = 10
# Pending skips that get their own row of approve buttons; the rest are reached through the select
# (4 rows of 4 buttons plus the select row = Discord's 5 action rows).
PENDING_BUTTON_ROWS = 4
PENDING_LISTED = 20
# The most pending skips the pending display uses (its list, its buttons, its menu): all it reads.
PENDING_SHOWN = max(PENDING_LISTED, PENDING_BUTTON_ROWS, limits.SELECT_OPTIONS)
# Each line's own badge (emoji + full name, never wrapping; see ui.palette): no button uses these emoji.
LINE_TAGS = {line: palette.badge(line) for line in (*PLAYABLE_LINES, Line.PENDING)}
# A play older than this is no longer "now playing" but "last played" (a break, or the live ended).
NOW_PLAYING_FRESH = 30 * 60
# Short, stable tokens for lines inside custom ids (never the display labels, which may change).
LINE_CODES = {Line.BACK_TO_BACK: "b2b", Line.DOUBLE_SKIP: "ds", Line.SKIP: "skip", Line.FREE: "free"}
CODE_LINES = {code: line for line, code in LINE_CODES.items()}
PUBLIC_ID = r"[A-Za-z0-9]{1,12}"

LQ_PREV = "mq:lq:prev"
LQ_NEXT = "mq:lq:next"
LQ_REFRESH = "mq:lq:refresh"
LQ_MINE = "mq:lq:mine"
RV_NEXT = "mq:rv:next"
RV_REFRESH = "mq:rv:refresh"
RV_BROWSE = "mq:rv:browse"
RV_PENDING = "mq:rv:pending"
NOTHING_PENDING = "none"  # the value of the select's only option when nothing is pending


# ---------------------------------------------------------------------- small text helpers


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    """Pages needed for ``total`` entries (at least one)."""
    return max(1, math.ceil(total / size))


def clamp_page(page: int, total: int) -> int:
    """``page`` moved inside ``0 .. pages-1``."""
    return min(max(page, 0), page_count(total) - 1)


def song(sub: Submission, limit: int = 120) -> str:
    """``Artist – Title`` escaped and clipped."""
    return limits.safe(f"{sub.artist} – {sub.title}", limit)


def wait_words(seconds: float) -> str:
    """``about a minute``, ``about 12 min``, ``about 1 h 05 min``: a wait rounded the way people say it."""
    minutes = max(1, round(seconds / 60))
    if minutes <= 1:
        return "about a minute"
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest:02d} min"


def eta_text(seconds: float | None, position: int | None = None) -> str:
    """``about 12 min (3 songs ahead)``: the estimated wait and how many songs play first.

    ``position`` 1 is the next song to play; the song playing now is not counted as "ahead".
    """
    if seconds is None:  # only a caller without a placement ends here; placements always carry an estimate
        return "after the songs ahead of it"
    words = wait_words(seconds)
    if position is None:
        return words
    ahead = position - 1
    if ahead <= 0:
        return f"{words} (next up)"
    return f"{words} ({ahead} song{'s' if ahead != 1 else ''} ahead)"


def line_totals(totals: Mapping[Line, int]) -> str:
    """``💎 BackToBack 1 · ⚡ DoubleSkip 0 · 🎟️ Skip 2 · 🆓 Free 7`` (badges glued by no-break spaces).

    ``totals``: songs waiting per playable line (``QueuePage.line_totals``; a missing line counts 0).
    """
    return " · ".join(f"{LINE_TAGS[line]} {totals.get(line, 0)}" for line in PLAYABLE_LINES)


def breakdown_parts(counts: EngagementCounts, weights: PointsWeights) -> list[tuple[str, int, int]]:
    """(emoji, count, points) for 👍 💬 🔁 ➕ 🎁; the points always add up to ``counts.points(weights)``."""
    return [
        ("👍", counts.likes, counts.likes * weights.like),
        ("💬", counts.comments, counts.comments * weights.comment),
        ("🔁", counts.shares, counts.shares * weights.share),
        # Follows and subscriptions share one symbol but keep their own weights.
        (
            "➕",
            counts.follows + counts.subscribes,
            counts.follows * weights.follow + counts.subscribes * weights.subscribe,
        ),
        ("🎁", counts.coins, counts.coins * weights.gift_coin),
    ]


def breakdown(counts: EngagementCounts, weights: PointsWeights) -> str:
    """``👍 12 (+12) · 💬 3 (+6) → 18 pts``: the non-zero counters, what each is worth, and the total."""
    parts = [f"{emoji} {count} (+{points})" for emoji, count, points in breakdown_parts(counts, weights) if count]
    total = counts.points(weights)
    return (" · ".join(parts) if parts else "no engagement yet") + f" → {total} pts"


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- public live queue


def now_playing_block(played: Submission | None, *, reviewer: bool = False, now: float | None = None) -> str:
    """The "Now playing" block both displays open with: song, submitter, line, and since when.

    The time is a Discord timestamp (``<t:…:R>``), so every reader sees "12 minutes ago" counting up without
    the bot editing the message. A play older than ``NOW_PLAYING_FRESH`` reads "Last played".
    """
    icon = palette.EMOJI["playing"]
    if played is None or played.played_at is None:
        return f"{icon} **Now playing**: nothing yet"
    current = _now().timestamp() if now is None else now
    heading = "Now playing" if current - played.played_at <= NOW_PLAYING_FRESH else "Last played"
    line = played.played_from or Line.FREE
    ident = f"`{played.display_id}` " if reviewer else ""
    return (
        f"{icon} **{heading}**: {ident}**{song(played, 120)}**\n"
        f"> by {limits.safe(played.user_name, 32)} · {LINE_TAGS.get(line, line.value)}"
        f" · started <t:{int(played.played_at)}:R>"
    )


def up_next_block(first: QueueEntry | None) -> str | None:
    """``🔜 Up next: Artist – Title — who · badge`` for the public queue; None when the queue is empty."""
    if first is None:
        return None
    sub = first.submission
    return (
        f"{palette.EMOJI['up_next']} **Up next**: **{song(sub, 120)}** — {limits.safe(sub.user_name, 32)}"
        f" · {LINE_TAGS[sub.line]}"
    )


def live_queue_embed(
    view: QueuePage,
    *,
    free_open: bool = True,
    now_playing: Submission | None = None,
    now: datetime | None = None,
) -> discord.Embed:
    """The public queue: now playing and up next, then position, song, submitter, line, and points for Free.

    ``view``: the one page shown (``QueueService.queue_page`` with ``PAGE_SIZE``), never the whole order.
    """
    page, pages = view.page, view.pages
    embed = palette.embed(f"{palette.EMOJI['queue']} Live Music Queue", "queue")
    moment = now or _now()
    head = [now_playing_block(now_playing, now=moment.timestamp())]
    upcoming = up_next_block(view.first)
    if upcoming:
        head.append(upcoming)
    shown = view.entries
    if not shown:
        rows = ["The queue is empty. Submit a song with /submit to get it started!"]
    else:
        rows = []
        for entry in shown:
            sub = entry.submission
            points = f" · {entry.score} pts" if sub.line is Line.FREE else ""
            rows.append(
                f"**{entry.position}.** {song(sub, 90)} — {limits.safe(sub.user_name, 32)}"
                f" · {LINE_TAGS[sub.line]}{points}"
            )
    embed.description = limits.clip("\n".join(head) + "\n\n" + "\n".join(rows), limits.DESCRIPTION)
    closed = " · Free line closed" if not free_open else ""
    embed.set_footer(text=f"Page {page + 1}/{pages} · {view.total} songs · {line_totals(view.line_totals)}{closed}")
    # "Last update": shown by Discord in each reader's time zone; left out of the content hash.
    embed.timestamp = moment
    return limits.fit(embed)


def positions_text(placements: list[Placement], limit: int = 5) -> str:
    """The caller's own songs with position and estimated wait (for ``/queue`` and "My position")."""
    rows = []
    for placement in placements[:limit]:
        sub = placement.submission
        if placement.position is None:
            where = f"in {sub.line.value}" if sub.line is Line.PENDING else sub.line.value.lower()
            rows.append(f"`{sub.display_id}` {song(sub, 60)} · {where}")
        else:
            rows.append(
                f"`{sub.display_id}` {song(sub, 60)} · **#{placement.position}** {LINE_TAGS[sub.line]}"
                f" · plays in {eta_text(placement.eta_seconds, placement.position)}"
            )
    if len(placements) > limit:
        rows.append(f"…and {len(placements) - limit} more (see /mysubmissions)")
    return limits.clip("\n".join(rows), limits.FIELD_VALUE) if rows else "You have no songs waiting."


def move_text(move: PositionMove) -> str:
    """Why a song's position changed since its owner last looked, in one line."""
    sub = move.submission
    direction = "up" if move.new_position < move.old_position else "down"
    causes = []
    if move.old_line is not None:
        causes.append(f"it moved from {move.old_line.value} into {sub.line.value}")
    if move.paid_ahead:
        causes.append(f"{_count(move.paid_ahead, 'paid song')} went ahead")
    if move.points_ahead:
        causes.append(f"{_count(move.points_ahead, 'song')} with more points went ahead")
    if move.left_ahead:
        causes.append(f"{_count(move.left_ahead, 'song')} ahead of it played or left")
    if move.passed and move.old_line is None:
        causes.append(f"it passed {_count(move.passed, 'song')} with its points")
    why = "; ".join(causes) if causes else "the queue changed"
    return (
        f"{palette.EMOJI['moved']} `{sub.display_id}` moved {direction} from #{move.old_position} to "
        f"#{move.new_position}: {why}."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---------------------------------------------------------------------- reviewer panels


def reviewer_main_embed(
    view: QueuePage,
    weights: PointsWeights,
    *,
    pending_count: int | None = None,
    now_playing: Submission | None = None,
    now: datetime | None = None,
) -> discord.Embed:
    """The reviewer's queue: now playing, then ids, submitters, handles, and the points breakdown of Free.

    ``view``: the one page shown (``QueueService.queue_page`` with ``PAGE_SIZE``).
    """
    page, pages = view.page, view.pages
    embed = palette.embed(f"{palette.EMOJI['reviewer']} Reviewer queue", "reviewer")
    moment = now or _now()
    head = now_playing_block(now_playing, reviewer=True, now=moment.timestamp())
    shown = view.entries
    if not shown:
        blocks = ["Nothing to review. 🎉"]
    else:
        blocks = []
        for entry in shown:
            sub = entry.submission
            handle = f" · @{limits.safe(sub.tiktok_handle, 30)}" if sub.tiktok_handle else ""
            kind = " · 📁 file" if sub.is_file else ""
            text = f"**{entry.position}.** `{sub.display_id}` {song(sub, 90)} · {LINE_TAGS[sub.line]}\n"
            text += f"> by {limits.safe(sub.user_name, 32)}{handle}{kind}"
            if sub.line is Line.FREE:
                text += f"\n> {breakdown(entry.counts, weights)}"
            blocks.append(text)
    embed.description = limits.clip(head + "\n\n" + "\n".join(blocks), limits.DESCRIPTION)
    pending = f" · {palette.EMOJI['pending']} {pending_count} pending" if pending_count else ""
    embed.set_footer(text=f"Page {page + 1}/{pages} · {view.total} songs · {line_totals(view.line_totals)}{pending}")
    embed.timestamp = moment
    return limits.fit(embed)


def pending_embed(pending: list[Submission], *, total: int | None = None, now: datetime | None = None) -> discord.Embed:
    """Pending skips, first in first out, with who sent them and since when.

    ``pending``: the oldest ones (at least ``PENDING_LISTED``, or all); ``total``: how many wait in all.
    """
    total = len(pending) if total is None else total
    embed = palette.embed(f"{palette.EMOJI['pending']} Pending skips", "reviewer")
    if not pending:
        embed.description = "No pending skips."
    else:
        rows = []
        for index, sub in enumerate(pending[:PENDING_LISTED], start=1):
            handle = f" · @{limits.safe(sub.tiktok_handle, 30)}" if sub.tiktok_handle else ""
            rows.append(
                f"**{index}.** `{sub.display_id}` {song(sub, 90)} — {limits.safe(sub.user_name, 32)}{handle}"
                f" · <t:{int(sub.entered_line_at)}:R>"
            )
        if total > PENDING_LISTED:
            rows.append(f"…and {total - PENDING_LISTED} more")
        embed.description = limits.clip("\n".join(rows), limits.DESCRIPTION)
    hint = "buttons approve the first ones; the menu reaches the rest" if pending else "nothing to check"
    embed.set_footer(text=f"{total} pending · {hint}")
    embed.timestamp = now or _now()
    return limits.fit(embed)


# ---------------------------------------------------------------------- now playing and bookmarks


def now_playing_embed(
    sub: Submission,
    from_line: Line,
    score: int,
    counts: EngagementCounts | None = None,
    weights: PointsWeights | None = None,
) -> discord.Embed:
    """Full details of the song that plays (for the reviewer)."""
    embed = palette.embed(f"{palette.EMOJI['playing']} Now playing", "reviewer")
    embed.description = f"**{song(sub, 300)}**"
    embed.add_field(name="Id", value=sub.display_id)
    embed.add_field(name="Submitted by", value=f"<@{sub.user_id}> ({limits.safe(sub.user_name, 60)})")
    embed.add_field(name="From line", value=LINE_TAGS.get(from_line, from_line.value))
    embed.add_field(name="Artist", value=limits.safe(sub.artist, 200) or "—")
    embed.add_field(name="Song", value=limits.safe(sub.title, 200) or "—")
    if sub.tiktok_handle:
        embed.add_field(name="TikTok", value=f"@{limits.safe(sub.tiktok_handle, 30)}")
    if from_line is Line.FREE:
        detail = breakdown(counts, weights) if counts is not None and weights is not None else f"{score} pts"
        embed.add_field(name="Score", value=limits.clip(detail, limits.FIELD_VALUE), inline=False)
    if sub.link:
        embed.add_field(name=limits.clip(sub.platform or "Link", 200), value=limits.clip(sub.link, 1000), inline=False)
    elif sub.file_path:
        name = limits.safe(sub.file_name or "audio file", 200)
        embed.add_field(name="File", value=f"attached: {name}", inline=False)
    if sub.duration:
        embed.add_field(name="Duration", value=format_duration(sub.duration))
    if sub.note:
        embed.add_field(name="Note", value=limits.safe(sub.note, 1000), inline=False)
    embed.set_footer(text="Rate it below (1–10), or bookmark it to come back to it later.")
    return limits.fit(embed)


def announcement(sub: Submission) -> str:
    """The public "Now playing" line (sent with mentions disabled)."""
    line = LINE_TAGS.get(sub.played_from or Line.FREE, "")
    return limits.clip(
        f"{palette.EMOJI['playing']} Now playing: **{song(sub, 200)}** · submitted by "
        f"{limits.safe(sub.user_name, 60)} · {line}",
        limits.CONTENT,
    )


def bookmark_embed(sub: Submission, by: str) -> discord.Embed:
    """A bookmarked submission for the bookmark channel."""
    embed = palette.embed(f"{palette.EMOJI['bookmark']} Bookmarked", "reviewer", description=f"**{song(sub, 300)}**")
    embed.add_field(name="Id", value=sub.display_id)
    embed.add_field(name="Submitted by", value=f"<@{sub.user_id}> ({limits.safe(sub.user_name, 60)})")
    line = sub.played_from or sub.line
    embed.add_field(name="Line", value=LINE_TAGS.get(line, line.value))
    if sub.link:
        embed.add_field(name=limits.clip(sub.platform or "Link", 200), value=limits.clip(sub.link, 1000), inline=False)
    elif sub.file_path:
        embed.add_field(name="File", value=limits.safe(sub.file_name or "audio file", 200), inline=False)
    if sub.tiktok_handle:
        embed.add_field(name="TikTok", value=f"@{limits.safe(sub.tiktok_handle, 30)}")
    if sub.rating is not None:
        embed.add_field(name="Rating", value=f"{sub.rating}/10")
    if sub.note:
        embed.add_field(name="Note", value=limits.safe(sub.note, 1000), inline=False)
    embed.set_footer(text=limits.clip(f"Bookmarked by {by}", 200))
    return limits.fit(embed)


# ---------------------------------------------------------------------- views of the public queue


class LiveQueueView(BaseView):
    """Buttons under the pinned public queue; each answers only the clicker, so the public page never moves.

    ``pages`` is how many pages the queue has: on "Page 1/1" the paging arrows are disabled.
    """

    def __init__(self, pages: int = 2) -> None:
        super().__init__(timeout=None)
        self.previous.disabled = self.next.disabled = pages <= 1

    @discord.ui.button(emoji=palette.EMOJI["previous"], style=discord.ButtonStyle.secondary, custom_id=LQ_PREV)
    async def previous(self, interaction: Interaction, button: discord.ui.Button[LiveQueueView]) -> None:
        """The last page (the public message always shows the first), privately."""
        await queue_actions.show_queue(interaction, -1, keep_mine=True)

    @discord.ui.button(emoji=palette.EMOJI["next_page"], style=discord.ButtonStyle.secondary, custom_id=LQ_NEXT)
    async def next(self, interaction: Interaction, button: discord.ui.Button[LiveQueueView]) -> None:
        """The second page, privately."""
        await queue_actions.show_queue(interaction, 1, keep_mine=True)

    @discord.ui.button(label="Refresh", emoji="🔄", style=discord.ButtonStyle.secondary, custom_id=LQ_REFRESH)
    async def refresh(self, interaction: Interaction, button: discord.ui.Button[LiveQueueView]) -> None:
        """A fresh first page, privately."""
        await queue_actions.refresh_public(interaction)

    @discord.ui.button(label="My position", emoji="📍", style=discord.ButtonStyle.primary, custom_id=LQ_MINE)
    async def mine(self, interaction: Interaction, button: discord.ui.Button[LiveQueueView]) -> None:
        """Where the clicker's songs are."""
        await queue_actions.show_queue(interaction, None, with_mine=True)


class _SafeDynamic:
    """Mixin: a dynamic item's failure still reaches the user (discord.py would only log it)."""

    # Its ``callback`` is the client-generic hook of ui/respond.py, narrowed to MusicQueueBot; mypy reports
    # that on every class that mixes it in, hence the ``type: ignore[misc]`` on each of them.

    async def callback(self, interaction: Interaction) -> None:
        """Run the action through the one error path."""
        try:
            await self.run(interaction)
        except Exception as exc:  # reported to the user; unexpected ones are logged with a traceback
            await report_error(interaction, exc)

    async def run(self, interaction: Interaction) -> None:
        """The action (subclasses)."""
        raise NotImplementedError


class QueuePageButton(  # type: ignore[misc]  # _SafeDynamic.callback: see its comment
    _SafeDynamic,
    discord.ui.DynamicItem[discord.ui.Button[BaseView]],
    template=r"mq:lq:page:(?P<page>\d{1,4}):(?P<dir>[pn])",
):
    """Previous/Next on a clicker's private page of the public queue (survives restarts)."""

    def __init__(self, page: int, direction: str, *, disabled: bool = False) -> None:
        super().__init__(_page_button("mq:lq:page", page, direction, disabled))
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[BaseView], match: re.Match[str], /
    ) -> QueuePageButton:
        """Cheap: only parses the id."""
        return cls(int(match["page"]), match["dir"])

    async def run(self, interaction: Interaction) -> None:
        """Show the page this button points at."""
        await queue_actions.show_queue(interaction, self.page, keep_mine=True)


def _page_button(prefix: str, page: int, direction: str, disabled: bool) -> discord.ui.Button[BaseView]:
    """The Previous ("p") or Next ("n") button of a private page; the target page is in the custom id."""
    # Arrows only: "Next" is the word for playing the next song, never for a page.
    emoji = palette.EMOJI["previous"] if direction == "p" else palette.EMOJI["next_page"]
    return discord.ui.Button(emoji=emoji, style=discord.ButtonStyle.secondary,
                             custom_id=f"{prefix}:{page}:{direction}", disabled=disabled)  # fmt: skip


def dynamic_view(*items: discord.ui.DynamicItem[Any]) -> BaseView:
    """A view made only of DynamicItems, finished from the start.

    The bot dispatches a DynamicItem from its custom id on whatever message it is, so nothing has to keep
    the view. A view that is not finished is kept by discord.py with a timeout task, 15 minutes for every
    ephemeral answer: thousands of them during a busy live, for nothing.
    """
    view = BaseView(timeout=None)
    for item in items:
        view.add_item(item)
    view.stop()
    return view


def _pager(button: type[QueuePageButton | ReviewerPageButton], page: int, total: int) -> BaseView:
    page = clamp_page(page, total)
    last = page_count(total) - 1
    return dynamic_view(button(max(page - 1, 0), "p", disabled=page <= 0),
                        button(min(page + 1, last), "n", disabled=page >= last))  # fmt: skip


def queue_pager(page: int, total: int) -> BaseView:
    """Previous/Next under a private page (no per-user state: the page number is in the custom id)."""
    return _pager(QueuePageButton, page, total)


# ---------------------------------------------------------------------- views of the reviewer panels


class ReviewerMainView(BaseView):
    """Next, Refresh and Full queue under the reviewer queue."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    # "Next" means one thing: play the next song (pages use arrows only).
    @discord.ui.button(label="Play next", emoji=palette.EMOJI["playing"], style=discord.ButtonStyle.success,
                       custom_id=RV_NEXT)  # fmt: skip
    async def next(self, interaction: Interaction, button: discord.ui.Button[ReviewerMainView]) -> None:
        """Play the next song."""
        await queue_actions.play_next(interaction)

    @discord.ui.button(label="Refresh", emoji="🔄", style=discord.ButtonStyle.secondary, custom_id=RV_REFRESH)
    async def refresh(self, interaction: Interaction, button: discord.ui.Button[ReviewerMainView]) -> None:
        """Redraw the reviewer displays now."""
        await queue_actions.refresh_panel(interaction)

    @discord.ui.button(label="Full queue", emoji="📄", style=discord.ButtonStyle.secondary, custom_id=RV_BROWSE)
    async def browse(self, interaction: Interaction, button: discord.ui.Button[ReviewerMainView]) -> None:
        """Page through the whole queue privately."""
        await queue_actions.browse(interaction, 0)


class ReviewerPageButton(  # type: ignore[misc]  # _SafeDynamic.callback: see its comment
    _SafeDynamic,
    discord.ui.DynamicItem[discord.ui.Button[BaseView]],
    template=r"mq:rv:page:(?P<page>\d{1,4}):(?P<dir>[pn])",
):
    """Previous/Next on a reviewer's private page of the full queue."""

    def __init__(self, page: int, direction: str, *, disabled: bool = False) -> None:
        super().__init__(_page_button("mq:rv:page", page, direction, disabled))
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[BaseView], match: re.Match[str], /
    ) -> ReviewerPageButton:
        """Cheap: only parses the id."""
        return cls(int(match["page"]), match["dir"])

    async def run(self, interaction: Interaction) -> None:
        """Show the page this button points at (reviewers only)."""
        await queue_actions.browse(interaction, self.page)


def reviewer_pager(page: int, total: int) -> BaseView:
    """Previous/Next under a reviewer's private page."""
    return _pager(ReviewerPageButton, page, total)


_APPROVE_STYLE = {
    Line.BACK_TO_BACK: discord.ButtonStyle.success,
    Line.DOUBLE_SKIP: discord.ButtonStyle.success,
    Line.SKIP: discord.ButtonStyle.primary,
    Line.FREE: discord.ButtonStyle.danger,
}


class ApproveButton(  # type: ignore[misc]  # _SafeDynamic.callback: see its comment
    _SafeDynamic,
    discord.ui.DynamicItem[discord.ui.Button[BaseView]],
    template=rf"mq:rv:ap:(?P<pid>{PUBLIC_ID}):(?P<line>b2b|ds|skip|free)",
):
    """Approve one pending skip into a paid line, or deny it (into Free)."""

    def __init__(self, public_id: str, line: Line, *, label: str | None = None, row: int | None = None) -> None:
        default = "Deny → Free" if line is Line.FREE else f"Approve: {line.value}"
        super().__init__(
            discord.ui.Button(
                label=limits.clip(label or default, limits.BUTTON_LABEL),
                style=_APPROVE_STYLE[line],
                custom_id=f"mq:rv:ap:{public_id}:{LINE_CODES[line]}",
                row=row,
            )
        )
        self.public_id = public_id
        self.line = line

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[BaseView], match: re.Match[str], /
    ) -> ApproveButton:
        """Cheap: only parses the id (the submission is looked up in the callback, after the role check)."""
        return cls(match["pid"], CODE_LINES[match["line"]])

    async def run(self, interaction: Interaction) -> None:
        """Approve or deny (reviewers only)."""
        await queue_actions.approve(interaction, self.public_id, self.line)


def approve_buttons(public_id: str, *, row: int | None = None, compact: bool = False) -> list[ApproveButton]:
    """The four approve/deny buttons of one pending skip (``compact`` labels carry the id for panel rows)."""
    buttons = []
    for line in (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE):
        label = None
        if compact:
            label = f"#{public_id} ✖ Deny" if line is Line.FREE else f"#{public_id} {LINE_TAGS[line]}"
        buttons.append(ApproveButton(public_id, line, label=label, row=row))
    return buttons


class PendingSelect(discord.ui.Select["PendingView"]):
    """Pick any pending skip (up to 25, oldest first) to get its approve/deny buttons privately."""

    def __init__(self, pending: list[Submission] | None = None) -> None:
        pending = pending or []
        options = [
            discord.SelectOption(
                label=limits.clip(f"{s.display_id} {s.artist} – {s.title}", limits.OPTION_TEXT),
                description=limits.clip(
                    f"by {s.user_name}" + (f" · @{s.tiktok_handle}" if s.tiktok_handle else ""), limits.OPTION_TEXT
                ),
                value=s.public_id,
            )
            for s in pending[: limits.SELECT_OPTIONS]
        ] or [discord.SelectOption(label="No pending skips", value=NOTHING_PENDING)]
        super().__init__(
            custom_id=RV_PENDING,
            placeholder="Choose a pending skip to approve or deny…",
            options=options,
            disabled=not pending,
            row=PENDING_BUTTON_ROWS,
        )

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Offer the line buttons for the chosen submission (ephemeral, reviewer only)."""
        chosen = self.values[0] if self.values else NOTHING_PENDING
        await queue_actions.choose_pending(interaction, None if chosen == NOTHING_PENDING else chosen)


class PendingView(BaseView):
    """Approve/deny rows for the oldest pending skips, and a select for any of them."""

    def __init__(self, pending: list[Submission] | None = None) -> None:
        super().__init__(timeout=None)
        pending = pending or []
        for row, sub in enumerate(pending[:PENDING_BUTTON_ROWS]):
            for button in approve_buttons(sub.public_id, row=row, compact=True):
                self.add_item(button)
        self.add_item(PendingSelect(pending))


def pending_action_view(public_id: str) -> BaseView:
    """The approve/deny buttons for one chosen pending skip (sent privately to the reviewer)."""
    return dynamic_view(*approve_buttons(public_id))


class RateButton(  # type: ignore[misc]  # _SafeDynamic.callback: see its comment
    _SafeDynamic,
    discord.ui.DynamicItem[discord.ui.Button[BaseView]],
    template=rf"mq:rv:rate:(?P<pid>{PUBLIC_ID}):(?P<score>10|[1-9])",
):
    """One of the 1-10 score buttons under a played song."""

    def __init__(self, public_id: str, score: int, *, chosen: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=str(score),
                style=discord.ButtonStyle.success if chosen else discord.ButtonStyle.secondary,
                custom_id=f"mq:rv:rate:{public_id}:{score}",
                row=0 if score <= 5 else 1,
            )
        )
        self.public_id = public_id
        self.score = score

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[BaseView], match: re.Match[str], /
    ) -> RateButton:
        """Cheap: only parses the id."""
        return cls(match["pid"], int(match["score"]))

    async def run(self, interaction: Interaction) -> None:
        """Store the rating (reviewers only)."""
        await queue_actions.rate(interaction, self.public_id, self.score)


class RateSelect(  # type: ignore[misc]  # _SafeDynamic.callback: see its comment
    _SafeDynamic,
    discord.ui.DynamicItem[discord.ui.Select[BaseView]],
    template=rf"mq:rv:score:(?P<pid>{PUBLIC_ID})",
):
    """The reviewer's score for a played song: one select, 1 to 10 (one row on a phone, not ten buttons)."""

    def __init__(self, public_id: str, *, rating: int | None = None) -> None:
        options = [
            discord.SelectOption(label=f"{score}/10", value=str(score), default=score == rating)
            for score in range(10, 0, -1)
        ]
        placeholder = f"Rated {rating}/10 (change it here)" if rating else "⭐ Rate it: 1 to 10…"
        super().__init__(
            discord.ui.Select(custom_id=f"mq:rv:score:{public_id}", placeholder=placeholder, options=options, row=0)
        )
        self.public_id = public_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RateSelect:
        """Cheap: only parses the id."""
        return cls(match["pid"])

    async def run(self, interaction: Interaction) -> None:
        """Store the chosen rating (reviewers only)."""
        data: dict[str, object] = dict(interaction.data or {})
        values = data.get("values")
        first = str(values[0]) if isinstance(values, list) and values else ""
        score = int(first) if first.isdigit() else 0
        await queue_actions.rate(interaction, self.public_id, score)


class BookmarkButton(  # type: ignore[misc]  # _SafeDynamic.callback: see its comment
    _SafeDynamic,
    discord.ui.DynamicItem[discord.ui.Button[BaseView]],
    template=rf"mq:rv:bm:(?P<pid>{PUBLIC_ID})",
):
    """Posts a played song to the bookmark channel; its label says which channel."""

    def __init__(self, public_id: str, *, done: bool = False, channel: str | None = None) -> None:
        where = f" #{channel}" if channel else ""
        if channel is None and not done:
            # Still pressable: the answer says how to set a channel, and a later press works once one is set.
            label, disabled = "Bookmark (no bookmark channel set yet)", False
        else:
            label, disabled = (f"Bookmarked in{where}" if done else f"Bookmark to{where}"), done
        super().__init__(
            discord.ui.Button(
                label=limits.clip(label, limits.BUTTON_LABEL),
                emoji=palette.EMOJI["bookmark"],
                style=discord.ButtonStyle.primary,
                custom_id=self.custom_id_for(public_id),
                disabled=disabled,
                row=1,
            )
        )
        self.public_id = public_id

    @staticmethod
    def custom_id_for(public_id: str) -> str:
        """The custom id of the Bookmark button of one played song."""
        return f"mq:rv:bm:{public_id}"

    @classmethod
    def used_on(cls, message: discord.Message | None, public_id: str) -> bool:
        """Whether the Bookmark button of ``public_id`` on ``message`` is already used up (disabled)."""
        if message is None:
            return False
        wanted = cls.custom_id_for(public_id)
        for row in message.components:
            for item in getattr(row, "children", []):
                if getattr(item, "custom_id", None) == wanted:
                    return bool(getattr(item, "disabled", False)) and "Bookmarked" in (getattr(item, "label", "") or "")
        return False

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[BaseView], match: re.Match[str], /
    ) -> BookmarkButton:
        """Cheap: only parses the id."""
        return cls(match["pid"], channel="")

    async def run(self, interaction: Interaction) -> None:
        """Bookmark (reviewers only)."""
        await queue_actions.bookmark(interaction, self.public_id)


def now_playing_view(
    public_id: str, *, rating: int | None = None, bookmarked: bool = False, bookmark_channel: str | None = None
) -> BaseView:
    """The score select (1-10) and Bookmark (naming its channel), under the reviewer's answer."""
    return dynamic_view(RateSelect(public_id, rating=rating),
                        BookmarkButton(public_id, done=bookmarked, channel=bookmark_channel))  # fmt: skip


# Registered once by bot.py before connecting, so the buttons of every display work right after a restart.
PERSISTENT_VIEWS: tuple[type[BaseView], ...] = (LiveQueueView, ReviewerMainView, PendingView)
DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    QueuePageButton,
    ReviewerPageButton,
    ApproveButton,
    RateSelect,
    RateButton,  # the ten buttons of answers sent before the select: they keep working
    BookmarkButton,
)

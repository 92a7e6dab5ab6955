"""The ``/leaderboard`` answer: an embed of one page and the buttons that page through it.

The page buttons are DynamicItems that carry everything they need in their custom id (scope and page),
so a click works on any copy of the answer, also after a restart, and no view has to be kept in memory.
Handles are shown with the linked member as a mention: mentions inside an embed never ping anyone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord

from models import LeaderboardRow
from services.points import Leaderboard
from ui import limits
from ui.queue_ui import dynamic_view
from ui.respond import BaseView, report_error, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

PER_PAGE = 10
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}
SCOPES = {"live": False, "all": True}


def row_text(row: LeaderboardRow) -> str:
    """``🥇 **@handle** (member) · 1,234 pts``: rank, handle, linked member or TikTok nickname, points."""
    rank = MEDALS.get(row.rank, f"`{row.rank:>3}.`")
    who = f" · <@{row.user_id}>" if row.user_id else (f" · {limits.safe(row.nickname, 40)}" if row.nickname else "")
    return f"{rank} **@{limits.safe(row.handle, 30)}**{who} · {row.points:,} pts"


def leaderboard_embed(board: Leaderboard) -> discord.Embed:
    """The page as an embed: the ranking, then the caller's own ranks (or how to get on the board)."""
    if board.all_time:
        title = "🏆 Leaderboard · all lives"
    elif board.session is not None:
        when = datetime.fromtimestamp(board.session.started_at, UTC)
        state = "this live" if board.session.ended_at is None else f"last live, {when:%d %b %Y}"
        title = f"🏆 Leaderboard · {state} (@{limits.safe(board.session.host, 30)})"
    else:
        title = "🏆 Leaderboard · this live"
    embed = discord.Embed(title=limits.clip(title, 256), colour=discord.Colour.gold())
    if board.rows:
        embed.description = limits.clip("\n".join(row_text(r) for r in board.rows), 4000)
    elif board.session is None and not board.all_time:
        embed.description = "No TikTok LIVE has been followed here yet."
    else:
        embed.description = "Nobody has earned points yet."
    if board.mine:
        mine = "\n".join(
            f"#{r.rank} of {board.total} · @{limits.safe(r.handle, 30)} · {r.points:,} pts" for r in board.mine
        )
        embed.add_field(name="You", value=limits.clip(mine, 1024), inline=False)
    else:
        embed.add_field(
            name="You",
            value="Not on this board yet: link your TikTok handle with `/link-tiktok`, then like, comment, "
            "share or gift during the live.",
            inline=False,
        )
    embed.set_footer(text=f"Page {board.page + 1}/{board.pages} · {board.total} handle(s) with points")
    return limits.fit(embed)


class LeaderboardButton(
    discord.ui.DynamicItem[discord.ui.Button[BaseView]],
    template=r"mq:lb:(?P<scope>live|all):(?P<page>\d{1,5})",
):
    """One button of the leaderboard answer: a page of a scope (this live / all lives)."""

    def __init__(
        self,
        scope: str,
        page: int,
        *,
        label: str | None = None,
        emoji: str | None = None,
        disabled: bool = False,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        button: discord.ui.Button[BaseView] = discord.ui.Button(
            label=label, emoji=emoji, style=style, disabled=disabled, custom_id=f"mq:lb:{scope}:{page}"
        )
        super().__init__(button)
        self.scope = scope
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[discord.Client], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> LeaderboardButton:
        """Cheap: only parses the id (the click's 3 s window is shared with the callback)."""
        return cls(match["scope"], int(match["page"]))

    async def callback(self, interaction: discord.Interaction[MusicQueueBot]) -> None:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Show the page this button points at, in place."""
        try:
            board = await board_for(interaction, all_time=SCOPES[self.scope], page=self.page)
            await update(interaction, embed=leaderboard_embed(board), view=leaderboard_view(board))
        except Exception as exc:  # reported to the user; unexpected ones are logged with a traceback
            await report_error(interaction, exc)


async def board_for(interaction: discord.Interaction[MusicQueueBot], *, all_time: bool, page: int) -> Leaderboard:
    """The caller's view of a leaderboard page."""
    guild_id = interaction.guild_id
    if guild_id is None:
        raise RuntimeError("the leaderboard is a server command")
    return await interaction.client.points.leaderboard(
        guild_id, interaction.user.id, all_time=all_time, page=page, per_page=PER_PAGE
    )


def leaderboard_view(board: Leaderboard) -> BaseView:
    """◀️ ▶️ arrows (disabled at the ends) and a switch between this live and all lives."""
    scope = "all" if board.all_time else "live"
    other, other_label = ("live", "This live") if board.all_time else ("all", "All lives")
    return dynamic_view(
        LeaderboardButton(scope, max(board.page - 1, 0), emoji="◀️", disabled=board.page <= 0),
        LeaderboardButton(
            scope, min(board.page + 1, board.pages - 1), emoji="▶️", disabled=board.page >= board.pages - 1
        ),
        LeaderboardButton(other, 0, label=other_label, style=discord.ButtonStyle.primary),
    )

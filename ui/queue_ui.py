"""Builders for the queue displays: public live queue, reviewer panels, now playing, bookmark.

Pure functions from ``models`` objects to embeds (and the view classes' shapes), so each can be tested
without Discord. All user text is escaped and clipped; every embed stays inside Discord's limits.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import discord

from models import EngagementCounts, Line, PointsWeights, QueueEntry, Submission
from services.analytics import format_duration
from ui import limits

PAGE_SIZE = 10
LINE_TAGS = {
    Line.BACK_TO_BACK: "⏩ B2B",
    Line.DOUBLE_SKIP: "⏭️ 2×Skip",
    Line.SKIP: "▶️ Skip",
    Line.FREE: "🆓 Free",
    Line.PENDING: "⏳ Pending",
}


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    """Pages needed for ``total`` entries (at least one)."""
    return max(1, math.ceil(total / size))


def song(sub: Submission, limit: int = 120) -> str:
    """``Artist – Title`` escaped and clipped."""
    return limits.safe(f"{sub.artist} – {sub.title}", limit)


def eta_text(seconds: float | None) -> str:
    """An estimated wait in words."""
    if seconds is None:
        return "unknown yet"
    if seconds < 90:
        return "about a minute"
    return f"about {format_duration(seconds)}"


def live_queue_embed(entries: list[QueueEntry], page: int = 0, *, free_open: bool = True) -> discord.Embed:
    """The public queue: position, song, submitter, line, and points for Free."""
    pages = page_count(len(entries))
    page = min(max(page, 0), pages - 1)
    embed = discord.Embed(title="🎵 Live Music Queue", colour=discord.Colour.dark_purple())
    shown = entries[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    if not shown:
        embed.description = "The queue is empty. Submit a song with /submit to get it started!"
    else:
        lines = []
        for entry in shown:
            sub = entry.submission
            points = f" · {entry.score} pts" if sub.line is Line.FREE else ""
            lines.append(
                f"**{entry.position}.** {song(sub, 90)} — {limits.safe(sub.user_name, 32)}"
                f" `{LINE_TAGS[sub.line]}`{points}"
            )
        embed.description = limits.clip("\n".join(lines), limits.DESCRIPTION)
    closed = "" if free_open else " · Free line closed"
    embed.set_footer(text=f"Page {page + 1}/{pages} · {len(entries)} songs{closed}")
    embed.timestamp = datetime.now(UTC)
    return limits.fit(embed)


def breakdown(counts: EngagementCounts, weights: PointsWeights) -> str:
    """👍 💬 🔁 ➕ 🎁 counters with the total they are worth."""
    parts = [
        f"👍 {counts.likes}",
        f"💬 {counts.comments}",
        f"🔁 {counts.shares}",
        f"➕ {counts.follows + counts.subscribes}",
        f"🎁 {counts.coins}",
    ]
    return " ".join(parts) + f" → {counts.points(weights)} pts"


def reviewer_main_embed(entries: list[QueueEntry], weights: PointsWeights, page: int = 0) -> discord.Embed:
    """The reviewer's queue with ids, handles and the points breakdown."""
    pages = page_count(len(entries))
    page = min(max(page, 0), pages - 1)
    embed = discord.Embed(title="🎧 Reviewer queue", colour=discord.Colour.orange())
    shown = entries[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    if not shown:
        embed.description = "Nothing to review. 🎉"
    blocks = []
    for entry in shown:
        sub = entry.submission
        handle = f" · @{limits.safe(sub.tiktok_handle, 30)}" if sub.tiktok_handle else ""
        text = f"**{entry.position}.** `{sub.display_id}` {song(sub, 90)} `{LINE_TAGS[sub.line]}`\n"
        text += f"> by {limits.safe(sub.user_name, 32)}{handle}"
        if sub.line is Line.FREE:
            text += f"\n> {breakdown(entry.counts, weights)}"
        blocks.append(text)
    if blocks:
        embed.description = limits.clip("\n".join(blocks), limits.DESCRIPTION)
    embed.set_footer(text=f"Page {page + 1}/{pages} · {len(entries)} songs")
    return limits.fit(embed)


def pending_embed(pending: list[Submission]) -> discord.Embed:
    """Pending skips, first in first out."""
    embed = discord.Embed(title="⏳ Pending skips", colour=discord.Colour.blurple())
    if not pending:
        embed.description = "No pending skips."
    else:
        lines = [
            f"**{i}.** `{s.display_id}` {song(s, 90)} — {limits.safe(s.user_name, 32)}"
            for i, s in enumerate(pending[:20], start=1)
        ]
        if len(pending) > 20:
            lines.append(f"…and {len(pending) - 20} more")
        embed.description = limits.clip("\n".join(lines), limits.DESCRIPTION)
    embed.set_footer(text=f"{len(pending)} pending · pick one below to approve or deny")
    return limits.fit(embed)


def now_playing_embed(sub: Submission, from_line: Line, score: int) -> discord.Embed:
    """Full details of the song that plays (for the reviewer)."""
    embed = discord.Embed(title="🎶 Now playing", colour=discord.Colour.gold())
    embed.description = f"**{song(sub, 300)}**"
    embed.add_field(name="Id", value=sub.display_id)
    embed.add_field(name="Submitted by", value=f"<@{sub.user_id}> ({limits.safe(sub.user_name, 60)})")
    embed.add_field(name="From line", value=from_line.value)
    if from_line is Line.FREE:
        embed.add_field(name="Points", value=str(score))
    if sub.tiktok_handle:
        embed.add_field(name="TikTok", value=f"@{limits.safe(sub.tiktok_handle, 30)}")
    if sub.link:
        embed.add_field(name=sub.platform or "Link", value=limits.clip(sub.link, 1000), inline=False)
    elif sub.file_path:
        duration = f" ({format_duration(sub.duration)})" if sub.duration else ""
        embed.add_field(name="File", value=f"attached{duration}", inline=False)
    if sub.note:
        embed.add_field(name="Note", value=limits.safe(sub.note, 1000), inline=False)
    return limits.fit(embed)


def announcement(sub: Submission) -> str:
    """The public "Now playing" line (sent with mentions disabled)."""
    return limits.clip(f"🎶 Now playing: **{song(sub, 200)}** (submitted by {limits.safe(sub.user_name, 60)})", 2000)


def bookmark_embed(sub: Submission, by: str) -> discord.Embed:
    """A bookmarked submission for the bookmark channel."""
    embed = discord.Embed(title="🔖 Bookmarked", description=f"**{song(sub, 300)}**", colour=discord.Colour.gold())
    embed.add_field(name="Id", value=sub.display_id)
    embed.add_field(name="Submitted by", value=f"<@{sub.user_id}>")
    embed.add_field(name="Line", value=(sub.played_from or sub.line).value)
    if sub.link:
        embed.add_field(name="Link", value=limits.clip(sub.link, 1000), inline=False)
    if sub.tiktok_handle:
        embed.add_field(name="TikTok", value=f"@{limits.safe(sub.tiktok_handle, 30)}")
    if sub.note:
        embed.add_field(name="Note", value=limits.safe(sub.note, 1000), inline=False)
    embed.set_footer(text=limits.clip(f"Bookmarked by {by}", 200))
    return limits.fit(embed)

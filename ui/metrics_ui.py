"""The post-live metrics message: embed with totals and the top-15 table, plus the full CSV."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import discord

from models import SessionStats, SessionSummary
from services.analytics import format_duration, to_csv, top_rows
from ui import limits

SIMULATED_NOTE = "🧪 Simulated engagement only (/tiktok simulate), kept apart from every real live."


def _row_line(rank: int, row: SessionStats) -> str:
    who = f"<@{row.user_id}>" if row.user_id else "—"
    counts = row.counts
    return (
        f"**{rank}.** {who} · `@{limits.clip(row.handle, 24)}` · ⏱ {format_duration(row.watch_seconds)}"
        f" · 👍 {counts.likes} 💬 {counts.comments} 🔁 {counts.shares} 🎁 {row.gifts} ({counts.coins} coins)"
    )


def metrics_embed(summary: SessionSummary) -> discord.Embed:
    """Totals as fields and the top 15 contributors; always inside Discord's limits."""
    session = summary.session
    ended = session.ended_at or session.started_at
    heading = "🧪 Simulation recap" if session.simulated else f"📊 Live recap: @{session.host}"
    embed = discord.Embed(
        title=limits.clip(heading, limits.TITLE),
        description=(
            f"<t:{int(session.started_at)}:f> · lasted {format_duration(ended - session.started_at)}"
            + (f"\n{SIMULATED_NOTE}" if session.simulated else "")
        ),
        colour=discord.Colour.purple(),
        timestamp=datetime.fromtimestamp(ended, UTC),
    )
    totals = summary.totals
    for name, value in (
        ("Viewers (peak)", session.peak_viewers),
        ("People engaged", summary.unique_viewers),
        ("Likes", totals.likes),
        ("Comments", totals.comments),
        ("Shares", totals.shares),
        ("Follows", totals.follows),
        ("Subscribes", totals.subscribes),
        ("Gifts", summary.gifts),
        ("Coins", totals.coins),
    ):
        embed.add_field(name=name, value=f"{value:,}", inline=True)
    top, rest = top_rows(summary, 15)
    lines = [_row_line(i, row) for i, row in enumerate(top, start=1)]
    if rest:
        rest_likes = sum(r.counts.likes for r in rest)
        rest_comments = sum(r.counts.comments for r in rest)
        rest_coins = sum(r.counts.coins for r in rest)
        lines.append(
            f"…and {len(rest)} more: 👍 {rest_likes} 💬 {rest_comments} 🎁 {rest_coins} coins (full table attached)"
        )
    if not lines:
        lines = ["Nobody engaged this time."]
    for index, block in enumerate(limits.chunk_lines(lines)):
        embed.add_field(name="Top contributors" if index == 0 else "\u200b", value=block, inline=False)
    embed.set_footer(text=f"Session {session.id}")
    return limits.fit(embed)


def metrics_file(summary: SessionSummary) -> discord.File:
    """The full table as a CSV attachment."""
    stamp = datetime.fromtimestamp(summary.session.started_at, UTC).strftime("%Y%m%d-%H%M")
    return discord.File(io.BytesIO(to_csv(summary)), filename=f"live-{summary.session.host}-{stamp}.csv")

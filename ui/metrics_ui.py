"""The post-live metrics message: embed with totals and the top-15 table, plus the full CSV."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import discord

from models import SessionStats, SessionSummary
from services.analytics import PlayReport, format_duration, plays_csv, to_csv, top_rows
from ui import limits, palette

SIMULATED_NOTE = "🧪 Simulated engagement only (/tiktok simulate), kept apart from every real live."


def _row_line(rank: int, row: SessionStats) -> str:
    # A linked viewer is their Discord mention; an unlinked one their TikTok nickname (user text: escaped).
    if row.user_id:
        who = f"<@{row.user_id}> · "
    elif row.nickname:
        who = f"{limits.safe(' '.join(row.nickname.split()), 32)} · "  # one line, whatever it contains
    else:
        who = ""
    watched = row.measured_watch_seconds
    counts = row.counts
    return (
        f"**{rank}.** {who}`@{limits.clip(row.handle, 24)}`"
        + (f" · ⏱ {format_duration(watched)}" if watched is not None else "")
        + f" · 👍 {counts.likes} 💬 {counts.comments} 🔁 {counts.shares} 🎁 {row.gifts} ({counts.coins} coins)"
    )


CHART_NAME = "live-chart.png"


def metrics_embed(summary: SessionSummary, *, chart: bool = False) -> discord.Embed:
    """Totals as fields and the top 15 contributors; always inside Discord's limits.

    ``chart``: the chart PNG is attached (``chart_file``) and shown as the embed's image.
    """
    session = summary.session
    ended = session.ended_at or session.started_at
    heading = "🧪 Simulation recap" if session.simulated else f"📊 Live recap: @{session.host}"
    embed = discord.Embed(
        title=limits.clip(heading, limits.TITLE),
        description=(
            f"<t:{int(session.started_at)}:f> · lasted {format_duration(ended - session.started_at)}"
            + (f"\n{SIMULATED_NOTE}" if session.simulated else "")
        ),
        colour=palette.LIVE,
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
    if chart:
        embed.set_image(url=f"attachment://{CHART_NAME}")
    return limits.fit(embed)


def chart_file(png: bytes) -> discord.File:
    """The live's chart as an attachment the recap embed shows."""
    return discord.File(io.BytesIO(png), filename=CHART_NAME)


def metrics_file(summary: SessionSummary) -> discord.File:
    """The full table as a CSV attachment."""
    stamp = datetime.fromtimestamp(summary.session.started_at, UTC).strftime("%Y%m%d-%H%M")
    return discord.File(io.BytesIO(to_csv(summary)), filename=f"live-{summary.session.host}-{stamp}.csv")


def songs_embed(report: PlayReport) -> discord.Embed:
    """The songs of the live: per line played, median and longest wait; the best rated; new members."""
    embed = discord.Embed(title=limits.clip(f"🎵 Songs of the live: @{report.session.host}", limits.TITLE),
                          colour=palette.LIVE)  # fmt: skip
    embed.description = (
        f"**{len(report.plays)}** songs played · **{report.new_submitters}** new members submitted for the first time"
    )
    for stats in report.lines:
        waits = (
            f"median wait {format_duration(stats.median_wait)} · longest {format_duration(stats.longest_wait or 0)}"
            if stats.median_wait is not None
            else "wait not recorded"
        )
        embed.add_field(name=stats.line.value, value=f"{stats.played} played\n{waits}", inline=True)
    if report.top_rated:
        lines = [
            f"**{play.rating}/10** {limits.safe(play.artist, 60)} – {limits.safe(play.title, 80)}"
            f" ({play.display_id}, <@{play.user_id}>)"
            for play in report.top_rated
        ]
        for index, block in enumerate(limits.chunk_lines(lines)):
            embed.add_field(name="Top rated" if index == 0 else "\u200b", value=block, inline=False)
    embed.set_footer(text=f"Session {report.session.id} · full play history attached")
    return limits.fit(embed)


def plays_file(report: PlayReport) -> discord.File:
    """The live's play history as a CSV attachment."""
    stamp = datetime.fromtimestamp(report.session.started_at, UTC).strftime("%Y%m%d-%H%M")
    return discord.File(io.BytesIO(plays_csv(report)), filename=f"plays-{report.session.host}-{stamp}.csv")


# How a recap's title says its live did not end the ordinary way (``LiveEnded.reason``).
RECAP_MARKS = {"recovered": "recovered after a restart", "expired": "the connection did not come back"}

Messages = list[tuple[list[discord.Embed], list[discord.File]]]


def recap_messages(
    summary: SessionSummary, report: PlayReport, chart_png: bytes | None, *, reason: str = "ended"
) -> Messages:
    """The recap as messages of (embeds, files); the engagement CSV always comes first.

    A live that did not end the ordinary way (``reason``, see ``RECAP_MARKS``) has it said in the title.
    """
    metrics = metrics_embed(summary, chart=chart_png is not None)
    mark = RECAP_MARKS.get(reason)
    if mark is not None:
        mark_title(metrics, mark)
    files = [metrics_file(summary), plays_file(report)]
    if chart_png is not None:
        files.append(chart_file(chart_png))
    return as_messages([metrics, songs_embed(report)], files)


def mark_title(embed: discord.Embed, mark: str) -> None:
    """Append `` · mark`` to an embed's title; a long host name is what gets cut, never the mark."""
    suffix = f" · {mark}"
    embed.title = limits.clip(embed.title or "Live recap", limits.TITLE - len(suffix)) + suffix
    limits.fit(embed)


def as_messages(embeds: list[discord.Embed], files: list[discord.File]) -> Messages:
    """One message when the embeds fit Discord's 6,000 characters per message together, else one each.

    The files go with the first message.
    """
    if sum(len(e) for e in embeds) <= limits.EMBED_TOTAL:
        return [(embeds, files)]
    return [([embeds[0]], files), *(([embed], []) for embed in embeds[1:])]

"""Embeds of the TikTok LIVE connection: status, connected, unexpected disconnect, and the end-of-live summary.

Colours come from ``ui.palette`` by meaning: a connected live is "live", a connection being set up "info",
an unexpected drop "warning", nothing running "idle". While live, the status leads with what a streamer
watches (viewers now, likes, coins, songs played, time live); room and session ids sit in the footer.
"""

from __future__ import annotations

import time

import discord

from services.analytics import format_duration
from services.live_sessions import LiveFigures
from ui import limits, palette


def grace_words(seconds: float) -> str:
    """A grace window in words: ``20 s`` under a minute, ``5 min`` (or ``1 min 30 s``) from one minute on."""
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _ids(room_id: int | None, session_id: int | None) -> str:
    return f"Room {room_id or '—'} · Session {session_id or '—'}"


def connected_embed(username: str, room_id: int | None, session_id: int | None) -> discord.Embed:
    """Debug channel: the bot is connected to a live."""
    embed = palette.embed("🟢 Connected to TikTok LIVE", "live")
    embed.add_field(name="Username", value=f"@{limits.safe(username, 40)}")
    embed.add_field(name="Room id", value=str(room_id or "—"))
    embed.add_field(name="Session id", value=str(session_id or "—"))
    return embed


def disconnected_embed(
    username: str, duration_seconds: float, session_id: int | None, reason: str | None
) -> discord.Embed:
    """Debug channel: the live connection dropped without anyone asking."""
    embed = palette.embed("🟠 TikTok LIVE disconnected unexpectedly", "warning")
    embed.add_field(name="Username", value=f"@{limits.safe(username, 40)}")
    embed.add_field(name="Duration", value=format_duration(duration_seconds))
    embed.add_field(name="Session id", value=str(session_id or "—"))
    if reason:
        embed.add_field(name="Reason", value=limits.clip(reason, 1000), inline=False)
    return embed


def _figures_fields(embed: discord.Embed, figures: LiveFigures, now: float) -> None:
    viewers = f"{figures.viewers_now:,}" if figures.viewers_now is not None else "not reported yet"
    embed.add_field(name="Viewers now", value=viewers)
    embed.add_field(name="Likes", value=f"{figures.likes:,}")
    embed.add_field(name="Coins", value=f"{figures.coins:,}")
    embed.add_field(name="Songs played", value=f"{figures.songs_played:,}")
    embed.add_field(name="Live for", value=format_duration(now - figures.started_at))


def status_embed(
    *,
    state: str,
    username: str | None,
    room_id: int | None = None,
    session_id: int | None = None,
    connected_since: float | None = None,
    attempts: int = 0,
    persistent: bool = False,
    started_at: float | None = None,
    last_error: str | None = None,
    figures: LiveFigures | None = None,
    now: float | None = None,
    reconnect_until: float | None = None,
) -> discord.Embed:
    """Active (live colour: what matters during a live; ids in the footer), In progress (info), Not connected.

    ``reconnect_until`` is set while a dropped live's session waits for its reconnect: then the connection
    is not waiting for a new live but getting back to the same one (warning colour, until when it waits).
    """
    now = time.time() if now is None else now
    if reconnect_until is not None and state in {"connecting", "waiting_to_retry"}:
        embed = palette.embed(f"🟠 Reconnecting to the same live: @{limits.safe(username, 40)}", "warning")
        embed.description = (
            f"The connection dropped. If the live is back before <t:{int(reconnect_until)}:T> "
            f"(<t:{int(reconnect_until)}:R>), it stays one session with one recap; otherwise the live ends "
            "there and its recap is posted."
        )
        embed.add_field(name="Attempts", value=str(attempts))
        embed.set_footer(text=_ids(room_id, session_id))
    elif state == "connected":
        embed = palette.embed(f"🟢 Active: @{limits.safe(username, 40)}", "live")
        if figures is not None:
            _figures_fields(embed, figures, now)
        elif connected_since:  # the channel message: a Discord timestamp keeps counting without edits
            embed.add_field(name="Live since", value=f"<t:{int(connected_since)}:R>")
            embed.description = "/tiktok status shows viewers, likes, coins and songs played."
        embed.set_footer(text=_ids(room_id, session_id))
    elif state in {"connecting", "waiting_to_retry", "disconnecting"}:
        label = {"connecting": "connecting", "waiting_to_retry": "waiting for the host to go live",
                 "disconnecting": "disconnecting"}[state]  # fmt: skip
        embed = palette.embed(f"🔵 In progress: {label}", "info")
        embed.add_field(name="Username", value=f"@{limits.safe(username, 40)}")
        embed.add_field(name="Attempts", value=str(attempts))
        embed.add_field(name="Persistent", value="yes" if persistent else "no")
        if started_at:
            embed.add_field(name="Elapsed", value=format_duration(now - started_at))
    else:
        embed = palette.embed("⚪ Not connected", "idle")
        embed.description = "Start with /tiktok connect."
    if last_error:
        embed.add_field(name="Last error", value=limits.clip(last_error, 500), inline=False)
    return embed


def ended_embed(host: str, figures: LiveFigures, recap_where: str, session_id: int | None = None) -> discord.Embed:
    """What the status message of a connect becomes when its live ends: a short summary, and where the recap is."""
    ended = figures.ended_at or time.time()
    embed = palette.embed(f"⚫ Live ended: @{limits.safe(host, 40)}", "idle")
    embed.description = (
        f"Lasted {format_duration(ended - figures.started_at)} · 👍 {figures.likes:,} likes · "
        f"🎁 {figures.coins:,} coins · {palette.EMOJI['playing']} {figures.songs_played:,} "
        f"{'song' if figures.songs_played == 1 else 'songs'} played\n{recap_where}"
    )
    embed.set_footer(text=f"Session {session_id or '—'}")
    return embed

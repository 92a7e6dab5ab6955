"""Embeds of the TikTok LIVE connection: status, connected (green), unexpected disconnect (orange)."""

from __future__ import annotations

import time

import discord

from services.analytics import format_duration
from ui import limits

GREEN = discord.Colour.green()
ORANGE = discord.Colour.orange()
GREY = discord.Colour.light_grey()
BLUE = discord.Colour.blurple()


def connected_embed(username: str, room_id: int | None, session_id: int | None) -> discord.Embed:
    """Debug channel: the bot is connected to a live."""
    embed = discord.Embed(title="🟢 Connected to TikTok LIVE", colour=GREEN)
    embed.add_field(name="Username", value=f"@{limits.clip(username, 40)}")
    embed.add_field(name="Room id", value=str(room_id or "—"))
    embed.add_field(name="Session id", value=str(session_id or "—"))
    return embed


def disconnected_embed(
    username: str, duration_seconds: float, session_id: int | None, reason: str | None
) -> discord.Embed:
    """Debug channel: the live connection dropped without anyone asking."""
    embed = discord.Embed(title="🟠 TikTok LIVE disconnected unexpectedly", colour=ORANGE)
    embed.add_field(name="Username", value=f"@{limits.clip(username, 40)}")
    embed.add_field(name="Duration", value=format_duration(duration_seconds))
    embed.add_field(name="Session id", value=str(session_id or "—"))
    if reason:
        embed.add_field(name="Reason", value=limits.clip(reason, 1000), inline=False)
    return embed


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
    now: float | None = None,
) -> discord.Embed:
    """Active (green: room, session, uptime), In progress (blue: attempts, elapsed) or Not connected (grey)."""
    now = time.time() if now is None else now
    if state == "connected":
        embed = discord.Embed(title="🟢 Active", colour=GREEN)
        embed.add_field(name="Username", value=f"@{username}")
        embed.add_field(name="Room id", value=str(room_id or "—"))
        embed.add_field(name="Session id", value=str(session_id or "—"))
        if connected_since:
            embed.add_field(name="Uptime", value=format_duration(now - connected_since))
    elif state in {"connecting", "waiting_to_retry", "disconnecting"}:
        label = {"connecting": "connecting", "waiting_to_retry": "waiting for the host to go live",
                 "disconnecting": "disconnecting"}[state]  # fmt: skip
        embed = discord.Embed(title=f"🔵 In progress: {label}", colour=BLUE)
        embed.add_field(name="Username", value=f"@{username}")
        embed.add_field(name="Attempts", value=str(attempts))
        embed.add_field(name="Persistent", value="yes" if persistent else "no")
        if started_at:
            embed.add_field(name="Elapsed", value=format_duration(now - started_at))
    else:
        embed = discord.Embed(title="⚪ Not connected", colour=GREY)
        if username:
            embed.add_field(name="Last username", value=f"@{username}")
    if last_error:
        embed.add_field(name="Last error", value=limits.clip(last_error, 500), inline=False)
    return embed

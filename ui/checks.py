"""Runtime role checks for commands and buttons, on every call and every click.

Default permissions only hide commands, and server owners can re-grant them; a custom id can be replayed
by anyone on any message. So admin and reviewer rights are decided here, at the moment of use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from services import permissions
from ui.respond import Denied, guild_id_of

if TYPE_CHECKING:
    from bot import MusicQueueBot

ADMIN_REFUSAL = "Only admins (Manage Server, or the admin role) can do that."
REVIEWER_REFUSAL = "Only reviewers can do that."


async def _member_flags(interaction: discord.Interaction[MusicQueueBot]) -> tuple[bool, set[int]]:
    member = interaction.user
    if interaction.guild is None or not isinstance(member, discord.Member):
        raise Denied("This only works inside a server.")
    return member.guild_permissions.manage_guild, {role.id for role in member.roles}


async def check_admin(interaction: discord.Interaction[MusicQueueBot]) -> None:
    """Raise ``Denied`` unless the user is an admin of this guild."""
    manage, roles = await _member_flags(interaction)
    settings = await interaction.client.db.get_settings(guild_id_of(interaction))
    if not permissions.is_admin(manage_guild=manage, role_ids=roles, settings=settings):
        raise Denied(ADMIN_REFUSAL)


async def check_reviewer(interaction: discord.Interaction[MusicQueueBot]) -> None:
    """Raise ``Denied`` unless the user is a reviewer or an admin."""
    manage, roles = await _member_flags(interaction)
    settings = await interaction.client.db.get_settings(guild_id_of(interaction))
    if not permissions.is_reviewer(manage_guild=manage, role_ids=roles, settings=settings):
        raise Denied(REVIEWER_REFUSAL)


async def is_admin(interaction: discord.Interaction[MusicQueueBot]) -> bool:
    """True for admins (no exception)."""
    try:
        await check_admin(interaction)
    except Denied:
        return False
    return True


def admin_only() -> Any:
    """App-command check: admins only, decided at runtime on every call."""

    async def predicate(interaction: discord.Interaction[MusicQueueBot]) -> bool:
        await check_admin(interaction)
        return True

    return app_commands.check(predicate)


def reviewer_only() -> Any:
    """App-command check: reviewers and admins, decided at runtime on every call."""

    async def predicate(interaction: discord.Interaction[MusicQueueBot]) -> bool:
        await check_reviewer(interaction)
        return True

    return app_commands.check(predicate)

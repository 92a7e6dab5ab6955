"""Runtime role checks for commands and buttons, on every call and every click.

Default permissions only hide commands, and server owners can re-grant them; a custom id can be replayed
by anyone on any message. So admin and reviewer rights are decided here, at the moment of use.
``admin_command()`` is the one way to mark an admin slash command: it sets what Discord hides and where
(Manage Server as the default permission, guild context only) and adds the runtime admin check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands

from services import permissions
from ui.respond import Denied, guild_id_of

if TYPE_CHECKING:
    from bot import MusicQueueBot

_T = TypeVar("_T")

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


def admin_only() -> Callable[[_T], _T]:
    """App-command check: admins only, decided at runtime on every call."""

    async def predicate(interaction: discord.Interaction[MusicQueueBot]) -> bool:
        await check_admin(interaction)
        return True

    return app_commands.check(predicate)


def reviewer_only() -> Callable[[_T], _T]:
    """App-command check: reviewers and admins, decided at runtime on every call."""

    async def predicate(interaction: discord.Interaction[MusicQueueBot]) -> bool:
        await check_reviewer(interaction)
        return True

    return app_commands.check(predicate)


def admin_command() -> Callable[[_T], _T]:
    """Mark an admin command: hidden unless Manage Server, guild only, and checked at runtime on every call.

    Use it under ``@app_commands.command``. discord.py applies ``default_permissions``/``guild_only`` only to a
    ``GroupCog`` or to each command, never through a plain ``Cog``, so they live here, per command. The
    default permission just hides the command; a server admin can show it to the bot's admin role in
    Server Settings → Integrations, and ``admin_only`` still decides on every call.
    """

    def decorate(command: _T) -> _T:
        command = admin_only()(command)
        command = app_commands.guild_only()(command)
        return app_commands.default_permissions(manage_guild=True)(command)

    return decorate

"""The one response helper and the one error path (SPEC 8 rules 1-3).

Every reply goes through ``respond``/``update`` so the code never has to know whether the interaction
was already acknowledged, and every failure goes through ``report_error`` so the user always gets a short
ephemeral answer and the log gets the traceback. Mentions are always disabled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from errors import BotError
from services.log_context import set_guild

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
GENERIC_FAILURE = "Something went wrong on our side. It has been logged; please try again in a moment."
# Discord error codes that mean the interaction can no longer be answered (expired, or answered already).
_GONE_CODES = {10062, 40060, 10015}


class Denied(app_commands.CheckFailure):
    """A permission check failed; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def guild_id_of(interaction: discord.Interaction[MusicQueueBot]) -> int:
    """The guild an interaction happened in; every queue, setting and handle belongs to exactly one guild.

    Guild-only commands and components never run in DMs (Discord hides the commands there, and the
    components only sit on guild messages), so a missing guild is a forged or stray interaction: it gets
    the clear "only inside a server" answer instead of reading or writing some other guild's data.
    """
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage("This only works inside a server.")
    return interaction.guild_id


class _Remove:
    """The type of ``REMOVE``."""

    def __repr__(self) -> str:
        return "REMOVE"


# ``update(interaction, REMOVE, embed=…, view=REMOVE)``: clear the text and the buttons of the edited message.
# ``None`` keeps meaning "leave as it is", so clearing is always said out loud.
REMOVE = _Remove()


def _kwargs(
    content: str | _Remove | None,
    embed: discord.Embed | None,
    embeds: list[discord.Embed] | None,
    view: discord.ui.View | _Remove | None,
    file: discord.File | None,
    files: list[discord.File] | None,
) -> dict[str, Any]:
    # Any: one dict feeds send_message, followup.send and both edits, whose discord.py overloads are split by
    # embed/embeds and file/files; no TypedDict matches them all.
    kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    if content is not None:
        kwargs["content"] = None if isinstance(content, _Remove) else content
    if embed is not None:
        kwargs["embed"] = embed
    if embeds is not None:
        kwargs["embeds"] = embeds
    if view is not None:
        kwargs["view"] = None if isinstance(view, _Remove) else view
    if file is not None:
        kwargs["file"] = file
    if files is not None:
        kwargs["files"] = files
    return kwargs


async def defer(
    interaction: discord.Interaction[MusicQueueBot], *, ephemeral: bool = True, thinking: bool = True
) -> None:
    """Acknowledge now (a slow step follows); does nothing if already acknowledged."""
    if not interaction.response.is_done():
        if interaction.type is discord.InteractionType.component and not thinking:
            await interaction.response.defer()
        else:
            await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)


async def respond(
    interaction: discord.Interaction[MusicQueueBot],
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
    embeds: list[discord.Embed] | None = None,
    view: discord.ui.View | None = None,
    file: discord.File | None = None,
    files: list[discord.File] | None = None,
    ephemeral: bool = True,
) -> None:
    """Send a reply: the initial response if none was sent yet, else a followup."""
    kwargs = _kwargs(content, embed, embeds, view, file, files)
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=ephemeral, **kwargs)
    else:
        await interaction.response.send_message(ephemeral=ephemeral, **kwargs)


async def update(
    interaction: discord.Interaction[MusicQueueBot],
    content: str | _Remove | None = None,
    *,
    embed: discord.Embed | None = None,
    embeds: list[discord.Embed] | None = None,
    view: discord.ui.View | _Remove | None = None,
) -> None:
    """Edit the message a component sits on (type 7), or the original response once acknowledged.

    ``None`` leaves a part as it is; ``REMOVE`` clears the content or every component.
    """
    kwargs = _kwargs(content, embed, embeds, view, None, None)
    if interaction.response.is_done():
        await interaction.edit_original_response(**kwargs)
    else:
        await interaction.response.edit_message(**kwargs)


def user_message(error: BaseException) -> str | None:
    """The short text a user sees for an expected error, or None for an unexpected one."""
    error = getattr(error, "original", error)  # CommandInvokeError wraps what the command raised
    if isinstance(error, BotError):
        return error.message
    if isinstance(error, Denied):
        return error.message
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works inside a server."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "You don't have permission to do that."
    if isinstance(error, app_commands.TransformerError):
        return f"That value doesn't work for {error.transformer.type.name.lower()}: {error.value!r}"[:200]
    return None


async def report_error(interaction: discord.Interaction[MusicQueueBot], error: BaseException) -> None:
    """Answer any failure with a short ephemeral message; log unexpected ones with a traceback."""
    original = getattr(error, "original", error)
    message = user_message(original)
    if message is None:
        command = interaction.command.qualified_name if interaction.command else None
        custom_id = (interaction.data or {}).get("custom_id") if interaction.data else None
        log.error(
            "unhandled error in %s (user %s, guild %s)",
            command or custom_id or interaction.type,
            interaction.user.id if interaction.user else None,
            interaction.guild_id,
            exc_info=original,
            extra={"guild_id": interaction.guild_id},
        )
        message = GENERIC_FAILURE
    try:
        await respond(interaction, message, ephemeral=True)
    except discord.HTTPException as exc:
        if exc.code in _GONE_CODES:
            log.warning("could not deliver an error reply (interaction gone, code %s)", exc.code,
                        extra={"guild_id": interaction.guild_id})  # fmt: skip
        else:
            log.exception("could not deliver an error reply", extra={"guild_id": interaction.guild_id})


# Typing convention for every component hook (``interaction_check``, ``on_submit``, ``on_error``, an item's
# ``callback``): it takes ``discord.Interaction[MusicQueueBot]``. discord.py declares these hooks generic over
# the client (``Interaction[ClientT]``), so mypy reports any concrete client as an incompatible override;
# this process has exactly one client, so each such hook carries
# ``# type: ignore[override]  # client-generic hook, see ui/respond.py`` and nothing else is silenced.
# ``DynamicItem.from_custom_id`` only parses the id: it takes ``discord.Interaction[discord.Client]``.


class BaseView(discord.ui.View):
    """A view whose failures take the one error path."""

    async def interaction_check(self, interaction: discord.Interaction[MusicQueueBot]) -> bool:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Tag this click's task with its guild for the debug channel (subclasses that refuse call this too)."""
        set_guild(interaction.guild_id)
        return True

    async def on_error(
        self,
        interaction: discord.Interaction[MusicQueueBot],  # type: ignore[override]  # client-generic hook, see above
        error: Exception,
        item: discord.ui.Item[BaseView],
    ) -> None:
        """Route to ``report_error``."""
        await report_error(interaction, error)


class BaseModal(discord.ui.Modal):
    """A modal whose failures take the one error path."""

    async def interaction_check(self, interaction: discord.Interaction[MusicQueueBot]) -> bool:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Tag this submission's task with its guild for the debug channel."""
        set_guild(interaction.guild_id)
        return True

    async def on_error(self, interaction: discord.Interaction[MusicQueueBot], error: Exception) -> None:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Route to ``report_error``."""
        await report_error(interaction, error)

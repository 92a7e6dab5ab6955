"""Who may do what (SPEC 1), and what the bot itself needs.

Admins have Manage Server or the admin role; reviewers the reviewer role. ``BOT_PERMISSIONS`` is the one
list of Discord permissions the bot asks for: the invite URL and the permission doctor both read it.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from models import GuildSettings


def is_admin(*, manage_guild: bool, role_ids: Collection[int], settings: GuildSettings) -> bool:
    """Manage Server, or the configured admin role."""
    return manage_guild or (settings.admin_role_id is not None and settings.admin_role_id in role_ids)


def is_reviewer(*, manage_guild: bool, role_ids: Collection[int], settings: GuildSettings) -> bool:
    """The configured reviewer role, or an admin."""
    if is_admin(manage_guild=manage_guild, role_ids=role_ids, settings=settings):
        return True
    return settings.reviewer_role_id is not None and settings.reviewer_role_id in role_ids


# ---------------------------------------------------------------------- what the bot itself needs (issue 14)
# The ONE list: the invite URL's permission integer and the permission doctor both read it. Names are
# discord.py's ``Permissions`` attribute names (a test checks every bit against discord.py), so the doctor
# can ask ``channel.permissions_for(me)`` by name without this module importing discord.


@dataclass(frozen=True, slots=True)
class BotPermission:
    """One permission the bot asks for, with the reason a server owner sees."""

    name: str
    bit: int
    label: str
    why: str


VIEW_CHANNEL = BotPermission("view_channel", 1 << 10, "View Channel", "see its channels")
SEND_MESSAGES = BotPermission("send_messages", 1 << 11, "Send Messages", "post displays and announcements")
MANAGE_MESSAGES = BotPermission(
    "manage_messages", 1 << 13, "Manage Messages", "remove chatter in the submission channel"
)
EMBED_LINKS = BotPermission("embed_links", 1 << 14, "Embed Links", "show the queue as embeds")
ATTACH_FILES = BotPermission("attach_files", 1 << 15, "Attach Files", "post charts and bookmarked files")
READ_MESSAGE_HISTORY = BotPermission(
    "read_message_history", 1 << 16, "Read Message History", "find and repair its pinned displays"
)
MANAGE_ROLES = BotPermission("manage_roles", 1 << 28, "Manage Roles", "/setup: create the reviewer role and overwrites")
MANAGE_CHANNELS = BotPermission("manage_channels", 1 << 4, "Manage Channels", "/setup: create the channels")
USE_APPLICATION_COMMANDS = BotPermission(
    "use_application_commands", 1 << 31, "Use Application Commands", "/setup: open the submission channel to commands"
)
PIN_MESSAGES = BotPermission("pin_messages", 1 << 51, "Pin Messages", "pin the displays (since 12 January 2026)")

BOT_PERMISSIONS: tuple[BotPermission, ...] = (
    VIEW_CHANNEL,
    SEND_MESSAGES,
    EMBED_LINKS,
    ATTACH_FILES,
    READ_MESSAGE_HISTORY,
    MANAGE_MESSAGES,
    PIN_MESSAGES,
    MANAGE_CHANNELS,
    MANAGE_ROLES,
    USE_APPLICATION_COMMANDS,
)
INVITE_PERMISSIONS = sum(p.bit for p in BOT_PERMISSIONS)
INVITE_SCOPES = ("bot", "applications.commands")


def client_id_from_token(token: str) -> int | None:
    """The application id a bot token starts with (its first segment is the id in base64), or None."""
    first = token.strip().split(".", 1)[0]
    padded = first + "=" * (-len(first) % 4)
    try:
        decoded = base64.b64decode(padded, altchars=b"-_", validate=False).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return int(decoded) if decoded.isdigit() else None


def invite_url(client_id: int, permissions: int = INVITE_PERMISSIONS) -> str:
    """The OAuth2 URL that adds the bot with its slash commands and exactly the permissions it needs."""
    query = urlencode(
        {"client_id": client_id, "permissions": permissions, "scope": " ".join(INVITE_SCOPES)}, quote_via=quote
    )
    return f"https://discord.com/oauth2/authorize?{query}"


def missing(granted: int, needed: Iterable[BotPermission]) -> list[BotPermission]:
    """The permissions of ``needed`` that the ``granted`` bit field lacks."""
    return [p for p in needed if not granted & p.bit]

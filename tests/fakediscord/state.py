"""The fake's in-memory world: ids, the guild with its roles, channels and members, messages, commands and logs.

Payload builders return exactly the shapes discord.py's parsers need (member ``flags``, message fields,
a full GUILD_CREATE). Nothing here does I/O; the REST and gateway layers read and change this state.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tests.fakediscord.actors import InteractionRecord

ACK_WINDOW = 3.0
TOKEN_LIFETIME = 15 * 60.0  # interaction tokens (followups, @original edits) die 15 minutes after creation
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
PIN_MESSAGES = 1 << 51  # split from Manage Messages; required for pins since 12 January 2026
BASIC_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
# What the README's invite link grants the bot's managed role.
BOT_PERMISSIONS = BASIC_PERMISSIONS | MANAGE_MESSAGES | PIN_MESSAGES
ALL_BITS = (1 << 52) - 1
ALL_PERMISSIONS = str(ALL_BITS)
MiB = 1024 * 1024
# Upload limit per request for bots, webhooks and interaction responses by boost level (since 16 January 2025).
UPLOAD_LIMITS = {0: 10 * MiB, 1: 10 * MiB, 2: 50 * MiB, 3: 100 * MiB}
# Gateway intents the fake models; privileged ones need the developer portal's switch.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT
# Interaction context types.
CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2
MAX_PINS = 50
DEFAULT_CHANNELS = ("general", "queue", "reviewers", "debug")
TIMESTAMP = "2026-01-01T00:00:00+00:00"

Message = dict[str, Any]


@dataclass
class Fault:
    """A scripted failure for the next ``times`` requests whose method and path match."""

    method: str
    pattern: re.Pattern[str]
    status: int
    code: int | None = None
    retry_after: float = 0.2
    global_: bool = False
    times: int = 1
    headers: bool = True


class RequestLog(NamedTuple):
    """One REST request the bot made, and the status the fake answered."""

    t: float
    method: str
    path: str
    json: Any
    status: int


@dataclass(frozen=True)
class GuildInfo:
    """The test guild at a glance: ids by name."""

    id: str
    name: str
    everyone_role_id: str
    admin_id: str
    channels: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)


class State:
    """Everything the fake knows; one guild, its people, and what the bot did."""

    def __init__(self) -> None:
        self._ids = itertools.count(int(time.time() * 1000) << 22)
        self.port = 0
        self.app_id = self.snowflake()
        self.bot_user = self.user_payload(self.app_id, "QueueBot") | {"bot": True}
        self.guild_id = self.snowflake()
        self.guild_name = "Test Server"
        self.owner_id = self.snowflake()
        self.roles: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, Message] = {}
        self.channel_order: dict[str, list[str]] = {}
        self.attachments: dict[str, bytes] = {}
        self.attachment_types: dict[str, str] = {}
        self.global_commands: dict[str, dict[str, Any]] = {}
        self.guild_commands: dict[str, dict[str, dict[str, Any]]] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.requests: list[RequestLog] = []
        self.violations: list[str] = []
        self.unknown_routes: list[str] = []
        self.faults: list[Fault] = []
        self.forbidden_channels: set[str] = set()
        self.closed_dms: set[str] = set()
        self.dm_channels: dict[str, str] = {}
        # Optional Discord-like bucket on channel message writes: (requests, per seconds); None = off.
        self.channel_bucket: tuple[int, float] | None = None
        self.premium_tier = 0
        # Server Settings → Integrations → the bot → a command: role/user/channel id → allowed (Discord's
        # application command permissions); they override the command's ``default_member_permissions``.
        self.command_overrides: dict[str, dict[str, bool]] = {}
        # Privileged intents switched on in the developer portal (none by default, as for a new application).
        self.portal_intents = 0
        self.intents = 0  # what the client asked for in IDENTIFY
        # Added to time.monotonic() by now(), so a test can age interaction tokens without sleeping.
        self.clock_offset = 0.0
        self.extra_guilds: dict[str, dict[str, Any]] = {}  # more servers the bot is in (scale, shards)
        self._guild_ms = int(time.time() * 1000) - 10_000_000  # their ids: one creation millisecond each
        self.roles[self.guild_id] = self.role_payload(self.guild_id, "@everyone", BASIC_PERMISSIONS)
        self.bot_role_id = self.snowflake()
        self.roles[self.bot_role_id] = self.role_payload(self.bot_role_id, "QueueBot", BOT_PERMISSIONS) | {
            "managed": True, "tags": {"bot_id": self.app_id}}  # fmt: skip
        self.members[self.app_id] = self.member_payload(self.bot_user, [self.bot_role_id])

    # ------------------------------------------------------------------ payload builders

    def snowflake(self) -> str:
        """A fresh, increasing id (so ids sort like Discord's by creation time)."""
        return str(next(self._ids))

    @staticmethod
    def user_payload(user_id: str, name: str) -> dict[str, Any]:
        """A user object."""
        return {"id": user_id, "username": name, "discriminator": "0", "global_name": name.title(), "avatar": None}

    def role_payload(self, role_id: str, name: str, permissions: int) -> dict[str, Any]:
        """A role object."""
        return {"id": role_id, "name": name, "permissions": str(permissions), "position": len(self.roles),
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}  # fmt: skip

    @staticmethod
    def member_payload(user: dict[str, Any], roles: list[str]) -> dict[str, Any]:
        """A guild member object; discord.py requires ``flags``."""
        return {"user": user, "roles": roles, "joined_at": TIMESTAMP, "deaf": False, "mute": False, "flags": 0,
                "nick": None}  # fmt: skip

    def member_without_user(self, user_id: str, *, with_permissions: bool = False) -> dict[str, Any]:
        """The member object as nested in messages and ``resolved`` (no ``user`` key)."""
        member = {k: v for k, v in self.members[user_id].items() if k != "user"}
        if with_permissions:
            member["permissions"] = str(self.permissions_of(user_id))
        return member

    def guild_payload(self) -> dict[str, Any]:
        """GUILD_CREATE data: the full guild, with ``member_count`` matching so no chunking is needed."""
        return {
            "id": self.guild_id, "name": self.guild_name, "unavailable": False, "owner_id": self.owner_id,
            "member_count": len(self.members), "members": list(self.members.values()),
            "channels": [c for c in self.channels.values() if c.get("guild_id") == self.guild_id],
            "roles": list(self.roles.values()),
            "features": [], "emojis": [], "stickers": [], "threads": [], "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [], "large": False,
            "icon": None, "preferred_locale": "en-US", "premium_tier": self.premium_tier, "afk_timeout": 300,
        }  # fmt: skip

    def now(self) -> float:
        """The fake's clock: monotonic time plus whatever a test advanced it by."""
        return time.monotonic() + self.clock_offset

    @property
    def upload_limit(self) -> int:
        """Bytes a bot may upload in one request to this guild (its boost level decides)."""
        return UPLOAD_LIMITS[self.premium_tier]

    def upload_limit_for(self, channel_id: str) -> int:
        """The upload limit in a channel: the guild's, or the unboosted default in DMs."""
        return UPLOAD_LIMITS[0] if (self.channels.get(channel_id) or {}).get("type") == 1 else self.upload_limit

    def guild_ids(self) -> list[str]:
        """Every guild the bot is in: the test guild first, then the extra ones."""
        return [self.guild_id, *self.extra_guilds]

    def guild_create_payload(self, guild_id: str) -> dict[str, Any]:
        """GUILD_CREATE data of any guild (an extra guild has its channels, @everyone and the bot)."""
        if guild_id == self.guild_id:
            return self.guild_payload()
        extra = self.extra_guilds[guild_id]
        channels = [self.channels[c] for c in extra["channels"].values()]
        return self.guild_payload() | {
            "id": guild_id, "name": extra["name"], "owner_id": self.owner_id, "member_count": 1,
            "members": [self.members[self.app_id]], "channels": channels, "roles": [extra["everyone"]],
        }  # fmt: skip

    def add_guild(self, name: str, channels: tuple[str, ...] = ("queue", "reviewers")) -> tuple[str, dict[str, str]]:
        """Another guild the bot is in, with text channels; returns its id and channel ids by name.

        Ids get a creation millisecond each (as real guilds created apart do), so that Discord's shard rule
        ``(guild_id >> 22) % shard_count`` spreads them over the shards.
        """
        self._guild_ms += 1
        guild_id = str((self._guild_ms << 22) | 1)
        everyone = self.role_payload(guild_id, "@everyone", BASIC_PERMISSIONS)
        ids: dict[str, str] = {}
        for position, channel_name in enumerate(channels):
            channel_id = ids[channel_name] = self.snowflake()
            self.channels[channel_id] = {"id": channel_id, "type": 0, "name": channel_name, "position": position,
                                         "permission_overwrites": [], "guild_id": guild_id, "parent_id": None,
                                         "nsfw": False, "rate_limit_per_user": 0, "topic": None}  # fmt: skip
            self.channel_order[channel_id] = []
        self.extra_guilds[guild_id] = {"name": name, "everyone": everyone, "channels": ids}
        return guild_id, ids

    # ------------------------------------------------------------------ world building

    def new_role(self, name: str, permissions: int = 0) -> str:
        """Create a role; returns its id."""
        role_id = self.snowflake()
        self.roles[role_id] = self.role_payload(role_id, name, permissions)
        return role_id

    def new_channel(self, name: str, kind: int = 0) -> str:
        """Create a guild channel (text by default); returns its id."""
        channel_id = self.snowflake()
        self.channels[channel_id] = {"id": channel_id, "type": kind, "name": name, "position": len(self.channels),
                                     "permission_overwrites": [], "guild_id": self.guild_id, "parent_id": None,
                                     "nsfw": False, "rate_limit_per_user": 0, "topic": None}  # fmt: skip
        self.channel_order[channel_id] = []
        return channel_id

    def new_member(self, name: str, roles: list[str]) -> str:
        """Create a member; returns the user id."""
        user_id = self.snowflake()
        self.members[user_id] = self.member_payload(self.user_payload(user_id, name), list(roles))
        return user_id

    def channel_id(self, name: str) -> str:
        """The id of the guild channel called ``name``."""
        for channel in self.channels.values():
            if channel.get("name") == name:
                return channel["id"]
        raise KeyError(f"no channel named {name!r}")

    def permissions_of(self, user_id: str) -> int:
        """@everyone's permissions plus the member's roles' (Administrator or ownership means all)."""
        value = int(self.roles[self.guild_id]["permissions"])
        for role_id in self.members[user_id]["roles"]:
            value |= int(self.roles[role_id]["permissions"])
        if value & ADMINISTRATOR or user_id == self.owner_id:
            return ALL_BITS
        return value

    def channel_permissions(self, user_id: str, channel_id: str) -> int:
        """A member's effective permissions in a channel: Discord's overwrite order (@everyone, roles, member)."""
        base = self.permissions_of(user_id)
        channel = self.channels.get(channel_id) or {}
        if base == ALL_BITS or channel.get("type") == 1:
            return base
        overwrites = {o["id"]: o for o in channel.get("permission_overwrites") or []}
        everyone = overwrites.get(self.guild_id)
        if everyone:
            base = (base & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in self.members[user_id]["roles"]:
            if role_id in overwrites:
                allow |= int(overwrites[role_id]["allow"])
                deny |= int(overwrites[role_id]["deny"])
        base = (base & ~deny) | allow
        mine = overwrites.get(user_id)
        if mine:
            base = (base & ~int(mine["deny"])) | int(mine["allow"])
        return base if base & VIEW_CHANNEL else 0  # no View Channel: nothing else applies

    def command_visible(self, user_id: str, command: dict[str, Any], channel_id: str) -> bool:
        """Whether Discord would show (and let this member run) ``command`` in ``channel_id``.

        Explicit overrides from the server's integration settings win, member before role before the
        @everyone entry (the guild id); otherwise the member needs every bit of ``default_member_permissions``.
        """
        overrides = self.command_overrides.get(command["name"], {})
        if channel_id in overrides and not overrides[channel_id]:
            return False
        roles = self.members[user_id]["roles"]
        if user_id in overrides:
            return overrides[user_id]
        granted = [overrides[r] for r in roles if r in overrides]
        if granted:
            return any(granted)
        if self.guild_id in overrides:
            return overrides[self.guild_id]
        required = command.get("default_member_permissions")
        if required is None:
            return True
        have = self.permissions_of(user_id)
        if have == ALL_BITS:  # Administrator sees everything
            return True
        return int(required) != 0 and (have & int(required)) == int(required)  # "0": administrators only

    def dm_channel_of(self, user_id: str) -> str:
        """The DM channel id of a member (created on first use)."""
        if user_id not in self.dm_channels:
            channel_id = self.dm_channels[user_id] = self.snowflake()
            self.channels[channel_id] = {"id": channel_id, "type": 1, "recipients": [self.members[user_id]["user"]],
                                         "last_message_id": None}  # fmt: skip
            self.channel_order[channel_id] = []
        return self.dm_channels[user_id]

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        """Registered commands by name, as seen in the test guild (guild commands shadow global ones)."""
        return {**self.global_commands, **self.guild_commands.get(self.guild_id, {})}

    # ------------------------------------------------------------------ messages

    def store_attachment(self, filename: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        """Keep the bytes and return the attachment object, whose URL the fake itself serves."""
        att_id = self.snowflake()
        self.attachments[att_id] = data
        kind = content_type or "application/octet-stream"
        self.attachment_types[att_id] = kind
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename).lstrip(".") or "file"  # names like ../x must not escape
        url = f"http://127.0.0.1:{self.port}/attachments/{att_id}/{safe}"
        return {"id": att_id, "filename": filename, "size": len(data), "url": url, "proxy_url": url,
                "content_type": kind}  # fmt: skip

    def new_message(self, channel_id: str, payload: dict[str, Any], files: list[dict[str, Any]] | None = None,
                    author: dict[str, Any] | None = None, flags: int = 0) -> Message:  # fmt: skip
        """Store a message; ``files`` are attachment objects from :meth:`store_attachment`."""
        channel = self.channels.get(channel_id, {})
        message: Message = {
            "id": self.snowflake(), "channel_id": channel_id, "type": 0,
            "author": author or self.bot_user, "content": payload.get("content") or "",
            "embeds": payload.get("embeds") or [], "components": payload.get("components") or [],
            "attachments": list(files or []), "flags": flags | (payload.get("flags") or 0),
            "pinned": False, "timestamp": TIMESTAMP, "edited_timestamp": None,
            "mentions": [], "mention_roles": [], "mention_everyone": False, "tts": bool(payload.get("tts")),
            "allowed_mentions": payload.get("allowed_mentions"),
        }  # fmt: skip
        if channel.get("type") != 1:
            message["guild_id"] = channel.get("guild_id", self.guild_id)
        self.messages[message["id"]] = message
        self.channel_order.setdefault(channel_id, []).append(message["id"])
        return message

    @staticmethod
    def edit_message(message: Message, payload: dict[str, Any], files: list[dict[str, Any]]) -> None:
        """Apply an edit; ``attachments`` in the body is the keep-list of existing attachment ids."""
        for key in ("content", "embeds", "components", "flags"):
            if key in payload and payload[key] is not None:
                message[key] = payload[key]
            elif key in payload and key != "flags":  # Discord: null clears the field (discord.py's content=None)
                message[key] = "" if key == "content" else []
        if "allowed_mentions" in payload:
            message["allowed_mentions"] = payload["allowed_mentions"]
        if payload.get("attachments") is not None:
            keep = {str(a.get("id")) for a in payload["attachments"]}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
        message["attachments"] = message["attachments"] + files
        message["edited_timestamp"] = "2026-01-01T00:00:01+00:00"

    def delete_stored(self, message: Message) -> None:
        """Forget a message."""
        self.messages.pop(message["id"], None)
        order = self.channel_order.get(message["channel_id"], [])
        if message["id"] in order:
            order.remove(message["id"])

    @staticmethod
    def public(message: Message) -> Message:
        """The message as the API returns it (without the fake's bookkeeping)."""
        return {k: v for k, v in message.items() if k != "allowed_mentions"}

    def history(self, channel_id: str, limit: int = 50, before: str | None = None, after: str | None = None,
                around: str | None = None) -> list[Message]:  # fmt: skip
        """Messages newest first, paged like ``GET /channels/{c}/messages``."""
        ids = self.channel_order.get(channel_id, [])
        limit = max(1, min(limit, 100))
        if around is not None:
            older = [i for i in ids if int(i) < int(around)][-(limit // 2) :] if limit > 1 else []
            newer = [i for i in ids if int(i) >= int(around)][: limit - len(older)]
            chosen = older + newer
        elif after is not None:
            chosen = [i for i in ids if int(i) > int(after)][:limit]
        else:
            chosen = [i for i in ids if before is None or int(i) < int(before)][-limit:]
        return [self.messages[i] for i in reversed(chosen)]

    # ------------------------------------------------------------------ test-facing reads

    def channel_messages(self, channel_id: str) -> list[Message]:
        """Visible (non-ephemeral) messages of a channel, oldest first, in their current state."""
        return [self.messages[i] for i in self.channel_order.get(channel_id, [])
                if not self.messages[i]["flags"] & EPHEMERAL]  # fmt: skip

    def pins(self, channel_id: str) -> list[Message]:
        """Pinned messages of a channel, oldest first."""
        return [m for m in self.channel_messages(channel_id) if m["pinned"]]

    def count(self, method: str, pattern: str) -> int:
        """How many logged requests have this method and a path matching ``pattern``."""
        regex = re.compile(pattern)
        return sum(1 for r in self.requests if r.method == method and regex.search(r.path))

    def count_edits(self, message_id: str) -> int:
        """How many PATCHes the bot sent to one message, through any route."""
        return self.count("PATCH", rf"/messages/{message_id}$")

    def count_status(self, status: int) -> int:
        """How many logged responses had this status."""
        return sum(1 for r in self.requests if r.status == status)

    def violation(self, text: str) -> None:
        """Record a broken Discord rule; the test fails at teardown unless it allows violations."""
        self.violations.append(text)

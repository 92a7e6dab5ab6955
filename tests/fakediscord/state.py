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
EPHEMERAL = 1 << 6
LOADING = 1 << 7
MANAGE_GUILD = 1 << 5
BASIC_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)  # view, send, embed, attach, history
ALL_PERMISSIONS = str((1 << 52) - 1)
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
        self.extra_guilds: dict[str, dict[str, Any]] = {}  # more servers the bot is in (scale, shards)
        self._guild_ms = int(time.time() * 1000) - 10_000_000  # their ids: one creation millisecond each
        self.roles[self.guild_id] = self.role_payload(self.guild_id, "@everyone", BASIC_PERMISSIONS)
        self.members[self.app_id] = self.member_payload(self.bot_user, [])

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
            "icon": None, "preferred_locale": "en-US", "premium_tier": 0, "afk_timeout": 300,
        }  # fmt: skip

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
        """@everyone's permissions plus the member's roles'."""
        value = int(self.roles[self.guild_id]["permissions"])
        for role_id in self.members[user_id]["roles"]:
            value |= int(self.roles[role_id]["permissions"])
        return value

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

"""Guild administration in the fake: creating channels, categories and roles, permission overwrites.

``channel_permissions`` is Discord's permission computation (base from @everyone and roles, Administrator
and the owner hold everything, then the @everyone, role and member overwrites of the channel, in that
order). The endpoints enforce what Discord enforces for a bot: Manage Channels to create a channel,
Manage Roles to create a role or write an overwrite, and no allowing or denying (nor granting a role) a
permission the bot does not hold itself in the server (or the parent category), unless a channel overwrite
gives it Manage Roles there; a refusal is 403 with code 50013. Every change dispatches the
gateway event Discord sends, so discord.py's cache (and the bot's own ``permissions_for``) follows.
The test helpers (``grant_bot``, ``set_role_permissions``, ``set_overwrite``) change the world as a server
admin would in the Discord client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakediscord.gateway import Gateway
    from tests.fakediscord.rest import Call
    from tests.fakediscord.state import State

ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_ROLES = 1 << 28
ALL = (1 << 52) - 1
TEXT, CATEGORY = 0, 4
ROLE_OVERWRITE, MEMBER_OVERWRITE = 0, 1


def client_quirks(path: str, body: Any) -> Any:
    """Normalise what discord.py 2.7.1 sends differently from the OpenAPI spec on these routes.

    It sends a new channel's ``parent_id`` (and overwrite ids) as integers where the spec says snowflake
    strings, and permission bit fields (``permissions``, ``allow``, ``deny``) as decimal strings where the
    spec says integers. Discord accepts both forms, so these are normalised before the contract check.
    """
    if not isinstance(body, dict) or not path.startswith(("/guilds/", "/channels/")):
        return body
    fixed = dict(body)
    if path.startswith("/guilds/") and path.endswith("/channels"):
        if isinstance(fixed.get("parent_id"), int):
            fixed["parent_id"] = str(fixed["parent_id"])
        if isinstance(fixed.get("permission_overwrites"), list):
            fixed["permission_overwrites"] = [
                {**o, "id": str(o.get("id")), "allow": int(o.get("allow") or 0), "deny": int(o.get("deny") or 0)}
                for o in fixed["permission_overwrites"]
            ]
    if path.endswith("/roles") or "/permissions/" in path:
        for key in ("permissions", "allow", "deny"):
            if isinstance(fixed.get(key), str) and fixed[key].isdigit():
                fixed[key] = int(fixed[key])
    return fixed


def guild_permissions(state: State, user_id: str) -> int:
    """A member's server-wide permissions: @everyone, their roles; the owner and Administrator hold all."""
    if user_id == state.owner_id:
        return ALL
    bits = state.permissions_of(user_id)
    return ALL if bits & ADMINISTRATOR else bits


def channel_permissions(state: State, user_id: str, channel_id: str) -> int:
    """A member's permissions in a channel, computed the way Discord does."""
    bits = guild_permissions(state, user_id)
    if bits == ALL:
        return ALL
    overwrites = {o["id"]: o for o in state.channels[channel_id].get("permission_overwrites") or []}
    everyone = overwrites.get(state.guild_id)
    if everyone is not None:
        bits = (bits & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role_id in state.members[user_id]["roles"]:
        found = overwrites.get(role_id)
        if found is not None and found.get("type", ROLE_OVERWRITE) == ROLE_OVERWRITE:
            allow |= int(found["allow"])
            deny |= int(found["deny"])
    bits = (bits & ~deny) | allow
    member = overwrites.get(user_id)
    if member is not None and member.get("type") == MEMBER_OVERWRITE:
        bits = (bits & ~int(member["deny"])) | int(member["allow"])
    return bits


def _refused(message: str = "Missing Permissions") -> web.Response:
    from tests.fakediscord.rest import error_response

    return error_response(403, 50013, message)


def _invalid(message: str) -> web.Response:
    from tests.fakediscord.rest import error_response

    return error_response(400, 50035, f"Invalid Form Body: {message}")


def _json(data: Any, status: int = 200) -> web.Response:
    from tests.fakediscord.rest import json_response

    return json_response(data, status)


class GuildAdmin:
    """The endpoints and the test helpers.

    ``RestApi`` routes ``/guilds/{g}/channels``, ``/guilds/{g}/roles`` and ``/channels/{c}/permissions/{o}`` here.
    """

    def __init__(self, state: State, gateway: Gateway) -> None:
        self.state = state
        self.gateway = gateway

    # ------------------------------------------------------------------ endpoints

    def create_channel(self, call: Call) -> web.Response:
        """POST /guilds/{g}/channels: a text channel or a category; needs Manage Channels."""
        state, body = self.state, call.payload
        if call.params.get("guild_id") != state.guild_id:
            return _json({"code": 10004, "message": "Unknown Guild"}, 404)
        bot = guild_permissions(state, state.app_id)
        if not bot & MANAGE_CHANNELS:
            return _refused()
        kind = int(body.get("type") or TEXT)
        name = str(body.get("name") or "")
        if kind not in (TEXT, CATEGORY) or not 1 <= len(name) <= 100:
            return _invalid("name must be 1-100 characters and type a text channel or a category")
        parent = body.get("parent_id")
        if parent is not None and (state.channels.get(str(parent)) or {}).get("type") != CATEGORY:
            return _invalid("parent_id is not a category")
        overwrites = [self._overwrite(o) for o in body.get("permission_overwrites") or []]
        if overwrites and not self._may_write(bot, overwrites):
            return _refused()
        channel_id = state.new_channel(name.lower().replace(" ", "-") if kind == TEXT else name, kind)
        channel = state.channels[channel_id]
        channel.update({"parent_id": str(parent) if parent is not None else None, "permission_overwrites": overwrites})
        if body.get("topic"):
            channel["topic"] = str(body["topic"])
        self.gateway.dispatch("CHANNEL_CREATE", channel)
        return _json(channel, 201)

    def create_role(self, call: Call) -> web.Response:
        """POST /guilds/{g}/roles: needs Manage Roles, and only permissions the bot holds."""
        state, body = self.state, call.payload
        if call.params.get("guild_id") != state.guild_id:
            return _json({"code": 10004, "message": "Unknown Guild"}, 404)
        bot = guild_permissions(state, state.app_id)
        wanted = int(body.get("permissions") or 0)
        if not bot & MANAGE_ROLES or wanted & ~bot:
            return _refused()
        role_id = state.new_role(str(body.get("name") or "new role")[:100], wanted)
        role = state.roles[role_id]
        role.update({"position": 1, "mentionable": bool(body.get("mentionable")), "hoist": bool(body.get("hoist")),
                     "color": int(body.get("color") or 0)})  # fmt: skip
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": state.guild_id, "role": role})
        return _json(role)

    def put_overwrite(self, call: Call) -> web.Response:
        """PUT /channels/{c}/permissions/{o}: needs Manage Roles there; only bits the bot holds there."""
        state, body = self.state, call.payload
        channel = state.channels[call.params["channel_id"]]
        target = call.params["overwrite_id"]
        kind = int(body.get("type", ROLE_OVERWRITE))
        if (kind == ROLE_OVERWRITE and target not in state.roles) or (
            kind == MEMBER_OVERWRITE and target not in state.members
        ):
            return _json({"code": 10009, "message": "Unknown Overwrite"}, 404)
        overwrite = self._overwrite({"id": target, "type": kind, "allow": body.get("allow"), "deny": body.get("deny")})
        if not channel_permissions(state, state.app_id, channel["id"]) & MANAGE_ROLES:
            return _refused()
        if not self._explicit_manage_roles(channel) and not self._may_write(self._grantable(channel), [overwrite]):
            return _refused()
        others = [o for o in channel.get("permission_overwrites") or [] if o["id"] != target]
        channel["permission_overwrites"] = [*others, overwrite]
        self.gateway.dispatch("CHANNEL_UPDATE", channel)
        return web.Response(status=204)

    def _grantable(self, channel: dict[str, Any]) -> int:
        """What the bot may allow or deny in a channel's overwrites (per Discord's docs).

        Its permissions in the server, or in the parent category when the channel has one; the channel's
        own overwrites do not count.
        """
        parent = channel.get("parent_id")
        if parent and parent in self.state.channels:
            return channel_permissions(self.state, self.state.app_id, parent)
        return guild_permissions(self.state, self.state.app_id)

    def _explicit_manage_roles(self, channel: dict[str, Any]) -> bool:
        """A Manage Roles allow in the channel's overwrites for the bot or one of its roles lifts that limit."""
        mine = {self.state.app_id, *self.state.members[self.state.app_id]["roles"]}
        return any(
            o["id"] in mine and int(o["allow"]) & MANAGE_ROLES for o in channel.get("permission_overwrites") or []
        )

    @staticmethod
    def _overwrite(raw: dict[str, Any]) -> dict[str, Any]:
        return {"id": str(raw.get("id")), "type": int(raw.get("type") or 0), "allow": str(int(raw.get("allow") or 0)),
                "deny": str(int(raw.get("deny") or 0))}  # fmt: skip

    @staticmethod
    def _may_write(bot_bits: int, overwrites: list[dict[str, Any]]) -> bool:
        if bot_bits == ALL or bot_bits & ADMINISTRATOR:
            return True
        if not bot_bits & MANAGE_ROLES:
            return False
        return all(not ((int(o["allow"]) | int(o["deny"])) & ~bot_bits) for o in overwrites)

    # ------------------------------------------------------------------ what a server admin does in the client

    def grant_bot(self, permissions: int, name: str = "QueueBot") -> str:
        """Give the bot its managed role with ``permissions`` (as the invite does); returns the role id."""
        state = self.state
        role_id = state.new_role(name, permissions)
        state.roles[role_id].update({"managed": True, "tags": {"bot_id": state.app_id}})
        # The invite gives the bot exactly one managed role: this one replaces the fake's default one.
        member = state.members[state.app_id]
        member["roles"] = [r for r in member["roles"] if not state.roles.get(r, {}).get("managed")] + [role_id]
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": state.guild_id, "role": state.roles[role_id]})
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", {**state.members[state.app_id], "guild_id": state.guild_id})
        return role_id

    def set_role_permissions(self, role_id: str, permissions: int) -> None:
        """Change a role's permissions (GUILD_ROLE_UPDATE)."""
        role = self.state.roles[role_id]
        role["permissions"] = str(permissions)
        self.gateway.dispatch("GUILD_ROLE_UPDATE", {"guild_id": self.state.guild_id, "role": role})

    def set_overwrite(self, channel_id: str, target: str, *, allow: int = 0, deny: int = 0) -> None:
        """Set a channel overwrite for a role or member (CHANNEL_UPDATE)."""
        state = self.state
        kind = MEMBER_OVERWRITE if target in state.members else ROLE_OVERWRITE
        channel = state.channels[channel_id]
        others = [o for o in channel.get("permission_overwrites") or [] if o["id"] != target]
        channel["permission_overwrites"] = [*others, self._overwrite({"id": target, "type": kind, "allow": allow,
                                                                      "deny": deny})]  # fmt: skip
        self.gateway.dispatch("CHANNEL_UPDATE", channel)

    def delete_channel(self, channel_id: str) -> None:
        """A person deletes a channel (CHANNEL_DELETE)."""
        channel = self.state.channels.pop(channel_id)
        self.state.channel_order.pop(channel_id, None)
        self.gateway.dispatch("CHANNEL_DELETE", channel)

    def bot_permissions_in(self, channel_id: str) -> int:
        """The bot's effective permissions in a channel."""
        return channel_permissions(self.state, self.state.app_id, channel_id)

"""A loopback fake Discord: REST under ``/api/v10`` and the gateway websocket at ``/`` on one 127.0.0.1 port.

The real, unmodified discord.py client logs into it. It enforces what Discord enforces and records violations
instead of passing silently: the 3 second acknowledgement window, one initial response per interaction,
request bodies valid against Discord's OpenAPI spec, and message size limits. Wire facts (exact content types,
READY fields, 429 headers) follow ``shared/research/discord-testing.md``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakediscord.actors import Actor, CommandHidden, InteractionRecord
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.openapi import ContractChecker
from tests.fakediscord.rest import RestApi, json_response
from tests.fakediscord.state import (
    ACK_WINDOW,
    BASIC_PERMISSIONS,
    DEFAULT_CHANNELS,
    MANAGE_GUILD,
    TOKEN_LIFETIME,
    UPLOAD_LIMITS,
    Fault,
    GuildInfo,
    State,
)

__all__ = ["ACK_WINDOW", "Actor", "CommandHidden", "FakeDiscord", "InteractionRecord"]


class FakeDiscord(State):
    """The fake Discord: its state (inherited), the REST API, the gateway, and helpers for tests.

    The default guild has an @everyone role, an ``admin`` member with Manage Server, and the text channels
    ``general``, ``queue``, ``reviewers`` and ``debug``.
    """

    def __init__(self, *, contract: ContractChecker | None = None) -> None:
        super().__init__()
        self.contract = contract or ContractChecker()
        self.gateway = Gateway(self, lambda: self.gateway_url)
        self.rest = RestApi(self, self.gateway, self.contract)
        self._runner: web.AppRunner | None = None
        self._deadlines: set[asyncio.TimerHandle] = set()
        for name in DEFAULT_CHANNELS:
            self.new_channel(name)
        self.admin = self.add_member("admin", admin=True)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeDiscord:
        """Listen on 127.0.0.1 and an ephemeral port."""
        app = web.Application(client_max_size=110 * 1024 * 1024)  # above the 100 MiB of boost level 3
        app.router.add_get("/", self.gateway.handle)
        app.router.add_get("/attachments/{id}/{name}", self.rest.attachment)
        app.router.add_get("/api/v10/gateway/bot", self._gateway_bot)  # before the REST catch-all
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest.handle)
        app.router.add_route("*", "/{tail:.*}", self._stray)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close sockets and the server."""
        for handle in self._deadlines:
            handle.cancel()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        """``GET /gateway/bot``: the gateway URL and the recommended shard count (``gateway.shard_count``)."""
        return json_response(self.gateway.bot_gateway())

    async def _stray(self, request: web.Request) -> web.Response:
        self.unknown_routes.append(f"{request.method} {request.path}")
        return web.Response(status=404, body=b'{"code": 0, "message": "404: Not Found"}',
                            content_type="application/json")  # fmt: skip

    @property
    def api_base_url(self) -> str:
        """What ``discord.http.Route.BASE`` (``DISCORD_API_BASE_URL``) should be."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` (``DISCORD_GATEWAY_URL``) should be."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def contract_checks_enabled(self) -> bool:
        """False when the OpenAPI spec was not found (the contract test then skips, saying so)."""
        return self.contract.enabled

    def assert_clean(self) -> None:
        """Fail when the bot broke a Discord rule or hit a route the fake does not know."""
        problems = self.violations + [f"unknown route {r}" for r in self.unknown_routes]
        if problems:
            raise AssertionError("fake Discord recorded problems:\n" + "\n".join(problems))

    # ------------------------------------------------------------------ world building

    @property
    def guild(self) -> GuildInfo:
        """The test guild: id, name, and channel and role ids by name."""
        channels = {c["name"]: c["id"] for c in self.channels.values() if c.get("guild_id") == self.guild_id}
        roles = {r["name"]: r["id"] for r in self.roles.values()}
        return GuildInfo(self.guild_id, self.guild_name, self.guild_id, self.admin.user_id, channels, roles)

    def add_channel(self, name: str) -> str:
        """Create a text channel (CHANNEL_CREATE if the bot is connected); returns its id."""
        channel_id = self.new_channel(name)
        self.dispatch_if_connected("CHANNEL_CREATE", self.channels[channel_id])
        return channel_id

    def ensure_channel(self, name: str) -> str:
        """The id of the channel called ``name``, created if missing."""
        try:
            return self.channel_id(name)
        except KeyError:
            return self.add_channel(name)

    def add_role(self, name: str, permissions: int = 0) -> str:
        """Create a role (GUILD_ROLE_CREATE if the bot is connected); returns its id."""
        role_id = self.new_role(name, permissions)
        self.dispatch_if_connected("GUILD_ROLE_CREATE", {"guild_id": self.guild_id, "role": self.roles[role_id]})
        return role_id

    def add_member(self, name: str, *, roles: list[str] | None = None, permissions: int = 0,
                   admin: bool = False) -> Actor:  # fmt: skip
        """Create a member; ``permissions`` get a role of their own, ``admin`` adds Manage Server."""
        role_ids = list(roles or [])
        if admin:
            permissions |= MANAGE_GUILD | BASIC_PERMISSIONS
        if permissions:
            role_ids.append(self.add_role(f"{name}-perms", permissions))
        user_id = self.new_member(name, role_ids)
        self.dispatch_if_connected("GUILD_MEMBER_ADD", {**self.members[user_id], "guild_id": self.guild_id})
        return Actor(self, user_id)

    def member(self, name: str, *, roles: list[str] | None = None, admin: bool = False, permissions: int = 0
               ) -> Actor:  # fmt: skip
        """The member called ``name`` as an :class:`Actor` (created on first use)."""
        for user_id, member in self.members.items():
            if member["user"]["username"] == name and user_id != self.app_id:
                return Actor(self, user_id)
        return self.add_member(name, roles=roles, permissions=permissions, admin=admin)

    # ------------------------------------------------------------------ Discord's rules a test can change

    def set_boost_tier(self, level: int) -> None:
        """The server's boost level (0-3): raises the upload limit (GUILD_UPDATE tells a connected bot)."""
        if level not in UPLOAD_LIMITS:
            raise ValueError(f"boost level {level} does not exist")
        self.premium_tier = level
        left_out = ("members", "channels", "threads", "voice_states", "presences", "member_count")
        guild = {k: v for k, v in self.guild_payload().items() if k not in left_out}
        self.dispatch_if_connected("GUILD_UPDATE", guild)

    def allow_command(self, name: str, target: Actor | str | None = None, *, allowed: bool = True) -> None:
        """An admin's override in Server Settings → Integrations → the bot → ``/name``.

        ``target`` is a role id, a member (or user id) or a channel id; None means @everyone. The override
        decides visibility instead of the command's ``default_member_permissions``.
        """
        target_id = target.user_id if isinstance(target, Actor) else (target or self.guild_id)
        self.command_overrides.setdefault(name, {})[target_id] = allowed
        command = self.commands.get(name)
        if command is not None:
            entries = [{"id": i, "type": 2 if i in self.members else 3 if i in self.channels else 1, "permission": v}
                       for i, v in self.command_overrides[name].items()]  # fmt: skip
            self.dispatch_if_connected("APPLICATION_COMMAND_PERMISSIONS_UPDATE", {
                "id": command["id"], "application_id": self.app_id, "guild_id": self.guild_id,
                "permissions": entries})  # fmt: skip

    def synced_visibility(self) -> dict[str, tuple[str | None, list[int] | None]]:
        """Every registered command: name → (default_member_permissions, contexts), as Discord stored them."""
        return {name: (c.get("default_member_permissions"), c.get("contexts")) for name, c in self.commands.items()}

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward (interaction tokens age; nothing sleeps)."""
        self.clock_offset += seconds

    def expire_token(self, record: InteractionRecord) -> None:
        """Make one interaction's token older than Discord's 15 minutes."""
        record.created -= TOKEN_LIFETIME + 1

    def set_bot_permissions(self, permissions: int) -> None:
        """Replace the permissions of the bot's managed role (GUILD_ROLE_UPDATE tells the bot)."""
        role = self.roles[self.bot_role_id]
        role["permissions"] = str(permissions)
        self.dispatch_if_connected("GUILD_ROLE_UPDATE", {"guild_id": self.guild_id, "role": role})

    def set_overwrite(self, channel_id: str, target: Actor | str, *, allow: int = 0, deny: int = 0) -> None:
        """A channel permission overwrite for a role or a member (CHANNEL_UPDATE tells the bot)."""
        target_id = target.user_id if isinstance(target, Actor) else target
        kind = 1 if target_id in self.members else 0
        channel = self.channels[channel_id]
        others = [o for o in channel["permission_overwrites"] if o["id"] != target_id]
        channel["permission_overwrites"] = [*others, {"id": target_id, "type": kind, "allow": str(allow),
                                                      "deny": str(deny)}]  # fmt: skip
        self.dispatch_if_connected("CHANNEL_UPDATE", channel)

    def enable_privileged_intents(self, intents: int) -> None:
        """Switch privileged intents on in the developer portal (they are off for a new application)."""
        self.portal_intents |= intents

    # ------------------------------------------------------------------ gateway

    def dispatch(self, event: str, data: Any) -> None:
        """Send a gateway event (kept for RESUME if the bot is disconnected)."""
        self.gateway.dispatch(event, data)

    def dispatch_if_connected(self, event: str, data: Any) -> None:
        """Dispatch only to a live session; before login the event is part of GUILD_CREATE anyway."""
        if self.gateway.has_session:
            self.gateway.dispatch(event, data)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the socket as Discord does before the client RESUMEs."""
        await self.gateway.drop(code)

    def invalidate_session(self) -> None:
        """Send INVALID_SESSION (op 9, d=false): the client must IDENTIFY again."""
        self.gateway.invalidate_session()

    @property
    def identifies(self) -> int:
        """How many IDENTIFYs the fake answered."""
        return self.gateway.identifies

    @property
    def resumes(self) -> int:
        """How many RESUMEs the fake accepted."""
        return self.gateway.resumes

    def record_created(self, record: InteractionRecord) -> None:
        """Start the 3 s clock of an injected interaction (called by actors)."""

        def expire() -> None:
            # A fired clock lets go of its record: kept, every interaction of a long run stayed in memory.
            self._deadlines.discard(handle)
            if record.response_type is None:
                self.violation(f"interaction {record.id} ({record.label}) not acknowledged within 3 s")

        handle = asyncio.get_running_loop().call_later(ACK_WINDOW, expire)
        self._deadlines.add(handle)

    # ------------------------------------------------------------------ faults

    def fail_next(self, method: str, path_regex: str, status: int = 429, retry_after: float = 0.2,
                  global_: bool = False, code: int | None = None, times: int = 1,
                  headers: bool = True) -> Fault:  # fmt: skip
        """Answer the next ``times`` matching requests with an error instead of serving them.

        429s carry ``Via``, ``Retry-After`` and ``X-RateLimit-*`` (``headers=False`` leaves them out, which
        discord.py treats as a Cloudflare ban). Other statuses default to Discord's usual code (403 → 50013,
        404 → 10008).
        """
        fault = Fault(method.upper(), re.compile(path_regex), status, code, retry_after, global_, times, headers)
        self.faults.append(fault)
        return fault

    def fail_server_error(self, method: str, path_regex: str, status: int = 500, times: int = 1) -> Fault:
        """5xx for the next matching requests (discord.py retries 500/502/504 after 1, 3, 5… s)."""
        return self.fail_next(method, path_regex, status, code=0, times=times)

    def fail_forbidden(self, method: str, path_regex: str, times: int = 1) -> Fault:
        """403 Missing Permissions (50013) for the next matching requests."""
        return self.fail_next(method, path_regex, 403, code=50013, times=times)

    def fail_unknown_message(self, method: str, path_regex: str, times: int = 1) -> Fault:
        """404 Unknown Message (10008) for the next matching requests."""
        return self.fail_next(method, path_regex, 404, code=10008, times=times)

    def fail_edit_cap(self, path_regex: str, retry_after: float = 3600.0, times: int = 1) -> Fault:
        """The hidden cap on edits to old messages: a 429 with body code 30046 and a long ``retry_after``."""
        return self.fail_next("PATCH", path_regex, 429, retry_after=retry_after, code=30046, times=times)

    def revoke_channel_permission(self, channel_id: str) -> None:
        """Every bot request to this channel now fails with 403 50013."""
        self.forbidden_channels.add(channel_id)

    def restore_channel_permission(self, channel_id: str) -> None:
        """Undo :meth:`revoke_channel_permission`."""
        self.forbidden_channels.discard(channel_id)

    def close_dms(self, user: Actor | str) -> None:
        """The member does not accept DMs: messages to their DM channel fail with 403 50007."""
        self.closed_dms.add(user.user_id if isinstance(user, Actor) else user)

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """A person deletes a message (MESSAGE_DELETE is dispatched)."""
        message = self.messages.get(message_id)
        if message is not None:
            self.delete_stored(message)
            self.dispatch("MESSAGE_DELETE", {"id": message_id, "channel_id": channel_id, "guild_id": self.guild_id})

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
        """Poll until ``predicate()`` is truthy, instead of sleeping a guessed time."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.01)

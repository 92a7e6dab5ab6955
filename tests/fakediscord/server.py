"""A loopback fake Discord: REST under ``/api/v10`` and the gateway websocket at ``/`` on one port.

The real, unmodified discord.py client logs into it. It enforces what Discord enforces and records
violations instead of passing silently: the 3 second acknowledgement window, one initial response per
interaction, request bodies valid against Discord's OpenAPI spec, and message size limits. Wire facts
(exact content types, READY fields, 429 headers) follow ``shared/research/discord-testing.md``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakediscord.openapi import ContractChecker

ALL_PERMISSIONS = str((1 << 52) - 1)
MANAGE_GUILD = 1 << 5
BASIC_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)  # view, send, embed, attach, history
ACK_WINDOW = 3.0
EPHEMERAL = 64


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py compares the content type with == "application/json": no charset suffix allowed.
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json",
                        headers=headers)  # fmt: skip


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)


@dataclass
class Fault:
    """A scripted failure for matching requests."""

    method: str
    pattern: re.Pattern[str]
    status: int
    code: int = 0
    retry_after: float = 0.1
    global_: bool = False
    times: int = 1


@dataclass
class InteractionRecord:
    """One interaction the test injected, and everything the bot answered to it."""

    id: str
    token: str
    kind: int
    user_id: str
    created: float
    fake: FakeDiscord
    channel_id: str = ""
    message_id: str | None = None
    response_type: int | None = None
    response: dict[str, Any] | None = None
    original_id: str | None = None
    followups: list[str] = field(default_factory=list)
    acked_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def acked(self, timeout: float = 5.0) -> InteractionRecord:
        """Wait for the initial response."""
        await asyncio.wait_for(self.acked_event.wait(), timeout)
        return self

    @property
    def ephemeral(self) -> bool:
        """Whether the answer is visible to the clicker only."""
        data = self.response or {}
        return bool((data.get("flags") or 0) & EPHEMERAL)

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9)."""
        return self.response if self.response_type == 9 else None

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete answers (callback type 8)."""
        return (self.response or {}).get("choices", []) if self.response_type == 8 else []

    def messages(self) -> list[dict[str, Any]]:
        """What the user sees from this interaction: the original message and followups, as they are now."""
        ids = ([self.original_id] if self.original_id else []) + self.followups
        return [self.fake.messages[i] for i in ids if i in self.fake.messages]

    def text(self) -> str:
        """All visible text (content, embed titles, descriptions, fields) of the answer, for assertions."""
        parts = []
        for message in self.messages():
            parts.append(message.get("content") or "")
            for embed in message.get("embeds") or []:
                parts += [embed.get("title") or "", embed.get("description") or ""]
                for f in embed.get("fields") or []:
                    parts += [f.get("name", ""), f.get("value", "")]
                parts.append((embed.get("footer") or {}).get("text", ""))
        return "\n".join(p for p in parts if p)

    async def wait_text(self, needle: str, timeout: float = 5.0) -> str:
        """Wait until ``needle`` appears in the answer; returns the whole text."""
        await self.fake.wait_for(lambda: needle in self.text(), timeout, f"{needle!r} in the answer")
        return self.text()


def _known_client_quirks(path: str, body: Any, files: list[tuple[str, bytes]]) -> Any:
    """Normalise the two integer fields discord.py sends where the spec says snowflake strings.

    Discord accepts both; everything else is validated exactly as sent.
    """
    if not isinstance(body, dict):
        return body
    if files and isinstance(body.get("attachments"), list):
        # New uploads are numbered with integer indices that point at files[n].
        body = {**body, "attachments": [{**a, "id": str(a.get("id"))} for a in body["attachments"]]}
    if path == "/users/@me/channels" and isinstance(body.get("recipient_id"), int):
        body = {**body, "recipient_id": str(body["recipient_id"])}
    return body


class FakeDiscord:
    """State, REST routes and the gateway of the fake."""

    def __init__(self, *, contract: ContractChecker | None = None) -> None:
        self._ids = itertools.count(int(time.time() * 1000) << 22)
        self.contract = contract or ContractChecker()
        self.app_id = self.snowflake()
        self.bot_user = {"id": self.app_id, "username": "QueueBot", "discriminator": "0", "global_name": None,
                         "avatar": None, "bot": True}  # fmt: skip
        self.guild_id = self.snowflake()
        self.roles: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.channel_order: dict[str, list[str]] = {}
        self.attachments: dict[str, bytes] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.requests: list[tuple[float, str, str, Any, int]] = []
        self.violations: list[str] = []
        self.unknown_routes: list[str] = []
        self.faults: list[Fault] = []
        self.forbidden_channels: set[str] = set()
        self.closed_dms: set[str] = set()
        # Optional Discord-like bucket on channel message writes: (requests, per seconds); None = off.
        self.channel_bucket: tuple[int, float] | None = None
        self._bucket_hits: dict[str, list[float]] = {}
        self.dm_channels: dict[str, str] = {}
        self.identifies = 0
        self.resumes = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._session_id = "session-1"
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.roles[self.guild_id] = self._role(self.guild_id, "@everyone", BASIC_PERMISSIONS)
        self.me = self._member(self.bot_user, [])
        self.members[self.app_id] = self.me

    # ------------------------------------------------------------------ world building

    def snowflake(self) -> str:
        """A fresh id."""
        return str(next(self._ids))

    def _role(self, role_id: str, name: str, permissions: int) -> dict[str, Any]:
        return {"id": role_id, "name": name, "permissions": str(permissions), "position": len(self.roles),
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}  # fmt: skip

    def _member(self, user: dict[str, Any], roles: list[str]) -> dict[str, Any]:
        return {"user": user, "roles": roles, "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False,
                "mute": False, "flags": 0, "nick": None}  # fmt: skip

    def add_role(self, name: str, permissions: int = 0) -> str:
        """Create a role; returns its id."""
        role_id = self.snowflake()
        self.roles[role_id] = self._role(role_id, name, permissions)
        if self._sockets:  # the bot is connected: tell it, as Discord does
            asyncio.get_running_loop().create_task(
                self.dispatch("GUILD_ROLE_CREATE", {"guild_id": self.guild_id, "role": self.roles[role_id]})
            )
        return role_id

    def add_channel(self, name: str) -> str:
        """Create a text channel; returns its id."""
        channel_id = self.snowflake()
        self.channels[channel_id] = {"id": channel_id, "type": 0, "name": name, "position": len(self.channels),
                                     "permission_overwrites": [], "guild_id": self.guild_id, "parent_id": None,
                                     "nsfw": False, "rate_limit_per_user": 0, "topic": None}  # fmt: skip
        self.channel_order[channel_id] = []
        return channel_id

    def member(self, name: str, *, roles: list[str] | None = None, admin: bool = False) -> Actor:
        """A member of the guild who can use the bot (``admin`` grants Manage Server)."""
        user_id = self.snowflake()
        user = {"id": user_id, "username": name, "discriminator": "0", "global_name": name.title(), "avatar": None}
        role_ids = list(roles or [])
        if admin:
            role_ids.append(self.add_role(f"{name}-admin", MANAGE_GUILD | BASIC_PERMISSIONS))
        self.members[user_id] = self._member(user, role_ids)
        return Actor(self, user_id)

    def permissions_of(self, user_id: str) -> int:
        """Everyone's permissions plus the member's roles'."""
        value = int(self.roles[self.guild_id]["permissions"])
        for role_id in self.members[user_id]["roles"]:
            value |= int(self.roles[role_id]["permissions"])
        return value

    def guild_payload(self) -> dict[str, Any]:
        """GUILD_CREATE data."""
        return {
            "id": self.guild_id, "name": "Test Server", "unavailable": False, "owner_id": self.snowflake(),
            "member_count": len(self.members), "members": list(self.members.values()),
            "channels": list(self.channels.values()), "roles": list(self.roles.values()), "features": [],
            "emojis": [], "stickers": [], "threads": [], "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [], "large": False,
            "icon": None, "preferred_locale": "en-US", "premium_tier": 0, "afk_timeout": 300,
        }  # fmt: skip

    # ------------------------------------------------------------------ server lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 and an ephemeral port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/attachments/{id}/{name}", self._attachment)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close sockets and the server."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        """What ``DISCORD_API_BASE_URL`` should be."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``DISCORD_GATEWAY_URL`` should be."""
        return f"ws://127.0.0.1:{self.port}/"

    def assert_clean(self) -> None:
        """Fail when the bot broke a rule or hit a route the fake does not know."""
        problems = self.violations + [f"unknown route {r}" for r in self.unknown_routes]
        assert not problems, "\n".join(problems)

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op = payload.get("op")
                if op == 1:
                    await ws.send_json({"op": 11})
                elif op == 2:
                    self.identifies += 1
                    await self._send(ws, "READY", {
                        "v": 10, "user": self.bot_user, "guilds": [{"id": self.guild_id, "unavailable": True}],
                        "session_id": self._session_id, "resume_gateway_url": self.gateway_url,
                        "application": {"id": self.app_id, "flags": 0},
                    })  # fmt: skip
                    await self._send(ws, "GUILD_CREATE", self.guild_payload())
                elif op == 6:
                    self.resumes += 1
                    await self._send(ws, "RESUMED", {})
                elif op == 8:
                    await self._send(ws, "GUILD_MEMBERS_CHUNK", {"guild_id": self.guild_id, "members":
                                     list(self.members.values()), "chunk_index": 0, "chunk_count": 1})  # fmt: skip
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: Any) -> None:
        self._seq += 1
        await ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a gateway event to every connected client."""
        for ws in list(self._sockets):
            if not ws.closed:
                await self._send(ws, event, data)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the socket as Discord does before asking for a RESUME."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    # ------------------------------------------------------------------ REST

    def fail_next(self, method: str, pattern: str, status: int = 429, *, code: int = 0, retry_after: float = 0.1,
                  global_: bool = False, times: int = 1) -> None:  # fmt: skip
        """Script failures for the next matching requests."""
        self.faults.append(Fault(method, re.compile(pattern), status, code, retry_after, global_, times))

    def _fault_for(self, method: str, path: str) -> web.Response | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.pattern.search(path):
                fault.times -= 1
                if fault.status == 429:
                    body = {"message": "You are being rate limited.", "retry_after": fault.retry_after,
                            "global": fault.global_}  # fmt: skip
                    if fault.code:
                        body["code"] = fault.code
                    headers = {"Via": "1.1 google", "Retry-After": str(max(1, int(fault.retry_after))),
                               "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset-After": str(fault.retry_after),
                               "X-RateLimit-Bucket": "fakebucket",
                               "X-RateLimit-Scope": "global" if fault.global_ else "user"}  # fmt: skip
                    if fault.global_:
                        headers["X-RateLimit-Global"] = "true"
                    return _json(body, 429, headers)
                return _error(fault.status, fault.code, "scripted failure")
        return None

    def _bucket(self, method: str, path: str) -> web.Response | None:
        if self.channel_bucket is None or method not in {"POST", "PATCH"} or not path.startswith("/channels/"):
            return None
        limit, per = self.channel_bucket
        key = f"{method} {path.split('/')[2]}"
        now = time.monotonic()
        hits = [t for t in self._bucket_hits.get(key, []) if now - t < per]
        if len(hits) >= limit:
            retry = per - (now - hits[0])
            return _json({"message": "You are being rate limited.", "retry_after": retry, "global": False}, 429,
                         {"Via": "1.1 google", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(retry),
                          "X-RateLimit-Scope": "user"})  # fmt: skip
        hits.append(now)
        self._bucket_hits[key] = hits
        return None

    def count_status(self, status: int) -> int:
        """How many recorded responses had this status."""
        return sum(1 for *_, s in self.requests if s == status)

    async def _body(self, request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[tuple[str, bytes]] = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files.append((part.filename or "file", await part.read()))  # type: ignore[union-attr]
            return payload, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        body, files = await self._body(request)
        fault = self._fault_for(method, path) or self._bucket(method, path)
        if fault is not None:
            self.requests.append((time.monotonic(), method, path, body, fault.status))
            return fault
        for problem in self.contract.check(method, path, _known_client_quirks(path, body, files)):
            self.violations.append(f"contract: {problem}")
        response = await self._route(method, path, body, files, request)
        self.requests.append((time.monotonic(), method, path, body, response.status))
        return response

    async def _route(
        self, method: str, path: str, body: Any, files: list[tuple[str, bytes]], request: web.Request
    ) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        if path == "/users/@me" and method == "GET":
            return _json(self.bot_user)
        if path == "/oauth2/applications/@me":
            return _json({"id": self.app_id, "name": "QueueBot", "icon": None, "description": "",
                          "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                          "owner": {**self.bot_user, "id": self.snowflake()}, "flags": 0})  # fmt: skip
        if parts[0] == "applications" and parts[-1] == "commands" and method in {"PUT", "GET"}:
            if method == "PUT":
                self.commands = {c["name"]: {**c, "id": self.snowflake(), "application_id": self.app_id,
                                             "version": self.snowflake()} for c in body}  # fmt: skip
            return _json(list(self.commands.values()))
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], parts[2], body, files)
        if parts[0] == "webhooks":
            return self._webhook(method, parts, body, files)
        if parts[0] == "channels":
            return self._channel(method, parts, body, files, request)
        if parts[0] == "users" and len(parts) == 3 and parts[2] == "channels" and method == "POST":
            return self._dm_channel(body)
        if parts[0] == "users" and method == "GET" and len(parts) == 2 and parts[1] in self.members:
            return _json(self.members[parts[1]]["user"])
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members" and parts[3] in self.members:
            return _json(self.members[parts[3]])
        self.unknown_routes.append(f"{method} {path}")
        return _error(404, 0, "unknown route in fake Discord")

    # ------------------------------------------------------------------ messages

    def _limits(self, payload: dict[str, Any]) -> list[str]:
        problems = []
        if len(payload.get("content") or "") > 2000:
            problems.append("content over 2000")
        embeds = payload.get("embeds") or []
        if len(embeds) > 10:
            problems.append("more than 10 embeds")
        for embed in embeds:
            fields = embed.get("fields") or []
            total = len(embed.get("title") or "") + len(embed.get("description") or "")
            total += len((embed.get("footer") or {}).get("text") or "")
            if len(embed.get("title") or "") > 256 or len(embed.get("description") or "") > 4096:
                problems.append("embed title/description over limit")
            if len(fields) > 25:
                problems.append("more than 25 fields")
            for f in fields:
                total += len(f.get("name", "")) + len(f.get("value", ""))
                if len(f.get("name", "")) > 256 or len(f.get("value", "")) > 1024 or not f.get("value"):
                    problems.append("field name/value over limit or empty")
            if total > 6000:
                problems.append(f"embed total {total} over 6000")
        for row in payload.get("components") or []:
            items = row.get("components") or []
            if len(items) > 5:
                problems.append("more than 5 components in a row")
            for item in items:
                if len(item.get("custom_id") or "") > 100 or len(item.get("label") or "") > 80:
                    problems.append("custom_id or label over limit")
                if len(item.get("options") or []) > 25:
                    problems.append("more than 25 select options")
        if len(payload.get("components") or []) > 5:
            problems.append("more than 5 component rows")
        return problems

    def _store_files(self, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        stored = []
        for name, data in files:
            att_id = self.snowflake()
            self.attachments[att_id] = data
            url = f"http://127.0.0.1:{self.port}/attachments/{att_id}/file"
            stored.append({"id": att_id, "filename": name, "size": len(data), "url": url, "proxy_url": url,
                           "content_type": "application/octet-stream"})  # fmt: skip
        return stored

    def _new_message(self, channel_id: str, payload: dict[str, Any], files: list[tuple[str, bytes]],
                     author: dict[str, Any] | None = None, flags: int = 0) -> dict[str, Any]:  # fmt: skip
        message_id = self.snowflake()
        message = {
            "id": message_id, "channel_id": channel_id, "guild_id": self.guild_id, "type": 0,
            "author": author or self.bot_user, "content": payload.get("content") or "",
            "embeds": payload.get("embeds") or [], "components": payload.get("components") or [],
            "attachments": self._store_files(files), "flags": flags | (payload.get("flags") or 0),
            "pinned": False, "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": None,
            "mentions": [], "mention_roles": [], "mention_everyone": False, "tts": False,
            "allowed_mentions": payload.get("allowed_mentions"),
        }  # fmt: skip
        self.messages[message_id] = message
        self.channel_order.setdefault(channel_id, []).append(message_id)
        return message

    def _edit(self, message: dict[str, Any], payload: dict[str, Any], files: list[tuple[str, bytes]]) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in payload and payload[key] is not None:
                message[key] = payload[key]
        if "allowed_mentions" in payload:
            message["allowed_mentions"] = payload["allowed_mentions"]
        if "attachments" in payload:
            keep = {str(a.get("id")) for a in payload["attachments"] or []}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
        message["attachments"] += self._store_files(files)
        message["edited_timestamp"] = "2026-01-01T00:00:01+00:00"

    def _public(self, message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if k != "allowed_mentions"}

    def _channel(self, method: str, parts: list[str], body: Any, files: list[tuple[str, bytes]],
                 request: web.Request) -> web.Response:  # fmt: skip
        channel_id = parts[1]
        if channel_id not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        if channel_id in self.forbidden_channels:
            return _error(403, 50013, "Missing Permissions")
        if len(parts) == 2 and method == "GET":
            return _json(self.channels[channel_id])
        if len(parts) == 3 and parts[2] == "typing":
            return web.Response(status=204)
        if len(parts) >= 4 and parts[2] == "messages" and parts[3] == "pins":
            return self._pins(method, channel_id, parts[4] if len(parts) > 4 else None)
        if len(parts) == 3 and parts[2] == "messages":
            if method == "POST":
                problems = self._limits(body or {})
                if problems:
                    self.violations += [f"limits: {p}" for p in problems]
                    return _error(400, 50035, "Invalid Form Body")
                message = self._new_message(channel_id, body or {}, files)
                asyncio.get_running_loop().create_task(self.dispatch("MESSAGE_CREATE", self._public(message)))
                return _json(self._public(message))
            limit = int(request.query.get("limit", 50))
            ids = list(reversed(self.channel_order.get(channel_id, [])))[:limit]
            return _json([self._public(self.messages[i]) for i in ids])
        if len(parts) == 4 and parts[2] == "messages":
            message = self.messages.get(parts[3])
            if message is None or message["channel_id"] != channel_id:
                return _error(404, 10008, "Unknown Message")
            if method == "GET":
                return _json(self._public(message))
            if method == "DELETE":
                self._delete(message)
                return web.Response(status=204)
            if method == "PATCH":
                problems = self._limits(body or {})
                if problems:
                    self.violations += [f"limits: {p}" for p in problems]
                    return _error(400, 50035, "Invalid Form Body")
                self._edit(message, body or {}, files)
                return _json(self._public(message))
        self.unknown_routes.append(f"{method} /{'/'.join(parts)}")
        return _error(404, 0, "unknown route in fake Discord")

    def _delete(self, message: dict[str, Any]) -> None:
        self.messages.pop(message["id"], None)
        order = self.channel_order.get(message["channel_id"], [])
        if message["id"] in order:
            order.remove(message["id"])

    def _pins(self, method: str, channel_id: str, message_id: str | None) -> web.Response:
        if method == "GET":
            pinned = [self.messages[i] for i in self.channel_order.get(channel_id, []) if self.messages[i]["pinned"]]
            items = [{"pinned_at": "2026-01-01T00:00:00+00:00", "message": self._public(m)} for m in pinned]
            return _json({"items": items, "has_more": False})
        message = self.messages.get(message_id or "")
        if message is None:
            return _error(404, 10008, "Unknown Message")
        if method == "PUT":
            if len(self.pins(channel_id)) >= 50:
                return _error(400, 30003, "Maximum number of pins reached (50)")
            message["pinned"] = True
        else:
            message["pinned"] = False
        return web.Response(status=204)

    def dm_channel_of(self, user_id: str) -> str:
        """The DM channel id of a member (created on first use)."""
        if user_id not in self.dm_channels:
            channel_id = self.dm_channels[user_id] = self.snowflake()
            self.channels[channel_id] = {"id": channel_id, "type": 1, "recipients": [self.members[user_id]["user"]]}
            self.channel_order[channel_id] = []
        return self.dm_channels[user_id]

    def _dm_channel(self, body: Any) -> web.Response:
        recipient = str((body or {}).get("recipient_id"))
        channel_id = self.dm_channel_of(recipient)
        if recipient in self.closed_dms:
            self.forbidden_channels.add(channel_id)  # the member does not accept DMs: sending fails with 403
        return _json(self.channels[channel_id])

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(request.match_info["id"])
        if data is None:
            return _error(404, 0, "no such attachment")
        return web.Response(body=data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ interactions

    def _callback(self, interaction_id: str, token: str, body: Any, files: list[tuple[str, bytes]]) -> web.Response:
        record = self.interactions.get(interaction_id)
        if record is None or record.token != token:
            return _error(404, 10062, "Unknown interaction")
        if record.response_type is not None:
            self.violations.append(f"interaction {interaction_id} acknowledged twice")
            return _error(400, 40060, "Interaction has already been acknowledged.")
        late = time.monotonic() - record.created
        if late > ACK_WINDOW:
            self.violations.append(f"interaction {interaction_id} acknowledged after {late:.2f} s")
            return _error(404, 10062, "Unknown interaction")
        kind = body["type"]
        data = body.get("data") or {}
        record.response_type = kind
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):
            problems = self._limits(data)
            if problems:
                self.violations += [f"limits: {p}" for p in problems]
            flags = (data.get("flags") or 0) | (128 if kind == 5 else 0)
            message = self._new_message(record.channel_id, data, files, flags=flags)
            record.original_id = message["id"]
            record.response = message
            resource["message"] = self._public(message)
        elif kind == 7:
            message = self.messages.get(record.message_id or "")
            if message is not None:
                self._edit(message, data, files)
                record.original_id = message["id"]
                record.response = message
                resource["message"] = self._public(message)
        elif kind == 6:
            record.original_id = record.message_id
        else:
            record.response = data
        record.acked_event.set()
        return _json({"interaction": {"id": interaction_id, "type": record.kind}, "resource": resource})

    def _webhook(self, method: str, parts: list[str], body: Any, files: list[tuple[str, bytes]]) -> web.Response:
        token = parts[2]
        record = next((r for r in self.interactions.values() if r.token == token), None)
        if record is None:
            return _error(404, 10015, "Unknown Webhook")
        payload = body or {}
        if len(parts) == 3 and method == "POST":
            problems = self._limits(payload)
            if problems:
                self.violations += [f"limits: {p}" for p in problems]
                return _error(400, 50035, "Invalid Form Body")
            original = self.messages.get(record.original_id or "")
            if record.response_type == 5 and original is not None and original["flags"] & 128:
                original["flags"] &= ~128
                self._edit(original, payload, files)
                return _json(self._public(original))
            message = self._new_message(record.channel_id, payload, files)
            record.followups.append(message["id"])
            return _json(self._public(message))
        target = record.original_id if parts[4] == "@original" else parts[4]
        message = self.messages.get(target or "")
        if message is None:
            return _error(404, 10008, "Unknown Message")
        if method == "GET":
            return _json(self._public(message))
        if method == "DELETE":
            self._delete(message)
            return web.Response(status=204)
        if message["flags"] & 128:
            message["flags"] &= ~128
        self._edit(message, payload, files)
        return _json(self._public(message))

    # ------------------------------------------------------------------ test helpers

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Visible (non-ephemeral) messages of a channel, oldest first, as they are now."""
        return [self.messages[i] for i in self.channel_order.get(channel_id, [])
                if not self.messages[i]["flags"] & EPHEMERAL]  # fmt: skip

    def pins(self, channel_id: str) -> list[dict[str, Any]]:
        """Pinned messages of a channel."""
        return [m for m in self.channel_messages(channel_id) if m["pinned"]]

    def count(self, method: str, pattern: str) -> int:
        """How many recorded requests match."""
        regex = re.compile(pattern)
        return sum(1 for _, m, p, _, _ in self.requests if m == method and regex.search(p))

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """Someone deletes a message."""
        message = self.messages.get(message_id)
        if message is not None:
            self._delete(message)
            await self.dispatch("MESSAGE_DELETE", {"id": message_id, "channel_id": channel_id,
                                                   "guild_id": self.guild_id})  # fmt: skip

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Poll until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


@dataclass
class Actor:
    """A member who uses the bot the way people do."""

    fake: FakeDiscord
    user_id: str

    @property
    def id(self) -> int:
        """The member's id as the bot sees it."""
        return int(self.user_id)

    def _envelope(self, kind: int, channel_id: str, data: dict[str, Any], message: dict[str, Any] | None = None
                  ) -> tuple[dict[str, Any], InteractionRecord]:  # fmt: skip
        fake = self.fake
        interaction_id = fake.snowflake()
        token = f"tok-{interaction_id}"
        member = {k: v for k, v in fake.members[self.user_id].items()}
        member["permissions"] = str(fake.permissions_of(self.user_id))
        channel = fake.channels[channel_id]
        payload = {
            "id": interaction_id, "application_id": fake.app_id, "type": kind, "token": token, "version": 1,
            "guild_id": fake.guild_id, "channel_id": channel_id, "channel": channel,
            "guild": {"id": fake.guild_id, "locale": "en-US", "features": []}, "member": member,
            "app_permissions": ALL_PERMISSIONS, "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": fake.guild_id}, "context": 0,
            "attachment_size_limit": 26_214_400, "data": data,
        }  # fmt: skip
        if message is not None:
            payload["message"] = fake._public(message)
        record = InteractionRecord(
            interaction_id, token, kind, self.user_id, time.monotonic(), fake, channel_id,
            message["id"] if message else None,
        )  # fmt: skip
        fake.interactions[interaction_id] = record
        return payload, record

    def _options(
        self, name: str, options: dict[str, Any], resolved: dict[str, Any], sub: str | None = None
    ) -> dict[str, Any]:
        command = self.fake.commands.get(name)
        if command is None:
            raise AssertionError(f"/{name} is not registered (registered: {sorted(self.fake.commands)})")
        specs = command.get("options") or []
        if sub is not None:
            specs = next(o for o in specs if o["name"] == sub).get("options") or []
        spec = {o["name"]: o for o in specs}
        out = []
        for key, value in options.items():
            if key not in spec:
                raise AssertionError(f"/{name} has no option {key!r}")
            kind = spec[key]["type"]
            if kind == 7:  # channel
                resolved.setdefault("channels", {})[value] = {
                    **self.fake.channels[value],
                    "permissions": ALL_PERMISSIONS,
                }
            elif kind in (6, 9):  # user / mentionable
                member = self.fake.members[value]
                resolved.setdefault("users", {})[value] = member["user"]
                resolved.setdefault("members", {})[value] = {k: v for k, v in member.items() if k != "user"} | {
                    "permissions": str(self.fake.permissions_of(value))
                }
            elif kind == 8:  # role
                resolved.setdefault("roles", {})[value] = self.fake.roles[value]
            out.append({"name": key, "type": kind, "value": value})
        if sub is not None:
            out = [{"name": sub, "type": 1, "options": out}]
        return {"id": command["id"], "name": name, "type": 1, "guild_id": self.fake.guild_id, "options": out}

    async def _inject(self, payload: dict[str, Any]) -> None:
        await self.fake.dispatch("INTERACTION_CREATE", payload)

    async def slash(self, channel_id: str, name: str, **options: Any) -> InteractionRecord:
        """Run a slash command; waits for the acknowledgement."""
        resolved: dict[str, Any] = {}
        data = self._options(name, options, resolved)
        if resolved:
            data["resolved"] = resolved
        payload, record = self._envelope(2, channel_id, data)
        await self._inject(payload)
        return await record.acked()

    async def slash_sub(self, channel_id: str, name: str, sub: str, **options: Any) -> InteractionRecord:
        """Run a subcommand of a command group (``/tiktok connect``)."""
        resolved: dict[str, Any] = {}
        data = self._options(name, options, resolved, sub)
        if resolved:
            data["resolved"] = resolved
        payload, record = self._envelope(2, channel_id, data)
        await self._inject(payload)
        return await record.acked()

    async def upload(self, channel_id: str, name: str, file: tuple[str, bytes], **options: Any) -> InteractionRecord:
        """Run a slash command with an attachment option named ``file``."""
        filename, data = file
        att_id = self.fake.snowflake()
        self.fake.attachments[att_id] = data
        url = f"http://127.0.0.1:{self.fake.port}/attachments/{att_id}/file"
        resolved: dict[str, Any] = {"attachments": {att_id: {"id": att_id, "filename": filename, "size": len(data),
                                    "url": url, "proxy_url": url, "content_type": "audio/mpeg"}}}  # fmt: skip
        data_payload = self._options(name, {**options}, resolved)
        data_payload["options"].append({"name": "file", "type": 11, "value": att_id})
        data_payload["resolved"] = resolved
        payload, record = self._envelope(2, channel_id, data_payload)
        await self._inject(payload)
        return await record.acked()

    async def autocomplete(self, channel_id: str, name: str, focused: str, typed: str) -> InteractionRecord:
        """Type into an autocompleted option."""
        data = self._options(name, {focused: typed}, {})
        data["options"][0]["focused"] = True
        payload, record = self._envelope(4, channel_id, data)
        await self._inject(payload)
        return await record.acked()

    async def click(self, message: dict[str, Any], custom_id: str, values: list[str] | None = None
                    ) -> InteractionRecord:  # fmt: skip
        """Press a button (or choose ``values`` in a select) on a message."""
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 3 if values is not None else 2}
        if values is not None:
            data["values"] = values
        payload, record = self._envelope(3, message["channel_id"], data, message)
        await self._inject(payload)
        return await record.acked()

    async def submit_modal(self, opened: InteractionRecord, values: dict[str, str]) -> InteractionRecord:
        """Fill in and submit the modal the bot opened."""
        modal = opened.modal
        assert modal is not None, "the bot did not open a modal"
        rows = []
        for component in modal["components"]:
            inner = component.get("components") or [component.get("component")]
            for item in inner:
                if item and item.get("type") == 4:
                    rows.append({"type": 1, "components": [{"type": 4, "custom_id": item["custom_id"],
                                                             "value": values.get(item["custom_id"], "")}]})  # fmt: skip
        data = {"custom_id": modal["custom_id"], "components": rows}
        payload, record = self._envelope(5, opened.channel_id, data)
        await self._inject(payload)
        return await record.acked()

    async def send(self, channel_id: str, content: str) -> dict[str, Any]:
        """Type a message in a channel."""
        member = self.fake.members[self.user_id]
        message = self.fake._new_message(channel_id, {"content": content}, [], author=member["user"])
        await self.fake.dispatch("MESSAGE_CREATE", {**self.fake._public(message), "member":
                                 {k: v for k, v in member.items() if k != "user"}})  # fmt: skip
        return message

    def find_custom_id(self, message: dict[str, Any], label: str) -> str:
        """The custom id of the component whose label (or placeholder) contains ``label``."""
        for row in message.get("components") or []:
            for item in row.get("components") or []:
                if label in (item.get("label") or "") or label in (item.get("placeholder") or ""):
                    return item["custom_id"]
        raise AssertionError(f"no component labelled {label!r}")

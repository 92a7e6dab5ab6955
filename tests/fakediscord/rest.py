"""REST endpoints under ``/api/v10``: login, commands, interaction callbacks, webhooks, messages, pins, DMs.

Each request passes, in order: scripted faults, the optional channel bucket, the OpenAPI contract check, then
its route. Every mutation also dispatches the gateway event Discord would send (never for ephemeral messages).
Responses use the exact ``Content-Type: application/json`` discord.py compares against.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakediscord import limits
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.guildadmin import GuildAdmin
from tests.fakediscord.guildadmin import client_quirks as guild_admin_quirks
from tests.fakediscord.openapi import ContractChecker
from tests.fakediscord.state import (
    ACK_WINDOW,
    ATTACH_FILES,
    EPHEMERAL,
    LOADING,
    MANAGE_MESSAGES,
    MAX_PINS,
    PIN_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    TIMESTAMP,
    TOKEN_LIFETIME,
    VIEW_CHANNEL,
    Fault,
    Message,
    RequestLog,
    State,
)

if TYPE_CHECKING:
    from tests.fakediscord.actors import InteractionRecord

DEFAULT_CODES = {403: 50013, 404: 10008}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response; discord.py compares the content type with ``==``, so no charset suffix."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json",
                        headers=headers)  # fmt: skip


def error_response(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> web.Response:
    """Discord's error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def no_content() -> web.Response:
    """204, as Discord answers deletes, pins and typing."""
    return web.Response(status=204)


def known_client_quirks(path: str, body: Any) -> Any:
    """Normalise the integer snowflakes discord.py 2.7.1 sends where the spec says snowflake *strings*.

    Discord accepts both, so these are spec-vs-client mismatches rather than bot bugs; everything else is
    validated exactly as sent. ``attachments[].id`` is an int index for new uploads and an int id for kept
    attachments (``Attachment.to_dict``); ``recipient_id`` is an int in ``HTTPClient.start_private_message``.
    """
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("attachments"), list):
        body = {**body, "attachments": [{**a, "id": str(a.get("id"))} for a in body["attachments"]]}
    if path == "/users/@me/channels" and isinstance(body.get("recipient_id"), int):
        body = {**body, "recipient_id": str(body["recipient_id"])}
    return guild_admin_quirks(path, body)


@dataclass
class Call:
    """One parsed request: the route's path parameters, JSON body (or ``payload_json``) and uploaded files."""

    method: str
    path: str
    params: dict[str, str]
    body: Any
    files: list[dict[str, Any]] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    upload_bytes: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        """The body as a dict (empty when absent)."""
        return self.body if isinstance(self.body, dict) else {}


Handler = Callable[[Call], Awaitable[web.Response] | web.Response]


class RestApi:
    """Routes REST calls to handlers that read and change :class:`State`."""

    def __init__(self, state: State, gateway: Gateway, contract: ContractChecker) -> None:
        self.state = state
        self.gateway = gateway
        self.contract = contract
        self._bucket_hits: dict[str, list[float]] = {}
        self.guild_admin = GuildAdmin(state, gateway)
        snowflake, msg = r"(?P<{}>[^/]+)", r"/messages/(?P<message_id>[^/]+)"
        c = "/channels/" + snowflake.format("channel_id")
        hook = "/webhooks/(?P<app_id>[^/]+)/(?P<token>[^/]+)"
        # Literal segments come before parameters (``/messages/pins`` before ``/messages/{id}``).
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", lambda _: json_response(self.state.bot_user)),
            ("GET", "/oauth2/applications/@me", self._application),
            ("POST", "/users/@me/channels", self._open_dm),
            ("GET", "/users/(?P<user_id>[^/]+)", self._user),
            ("GET|PUT", "/applications/(?P<app_id>[^/]+)(?:/guilds/(?P<guild_id>[^/]+))?/commands", self._commands),
            ("POST", "/interactions/(?P<interaction_id>[^/]+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", hook, self._followup),
            ("GET|PATCH|DELETE", hook + msg, self._webhook_message),
            ("GET", c, self._channel_info),
            ("POST", c + "/typing", lambda _: no_content()),
            ("GET", c + "/messages/pins", self._list_pins),
            ("PUT|DELETE", c + "/messages/pins/(?P<message_id>[^/]+)", self._pin),
            ("GET|POST", c + "/messages", self._channel_messages),
            ("GET|PATCH|DELETE", c + msg, self._message),
            ("GET", "/guilds/(?P<guild_id>[^/]+)/members/(?P<user_id>[^/]+)", self._member),
            ("POST", "/guilds/(?P<guild_id>[^/]+)/channels", self.guild_admin.create_channel),
            ("POST", "/guilds/(?P<guild_id>[^/]+)/roles", self.guild_admin.create_role),
            ("PUT", c + "/permissions/(?P<overwrite_id>[^/]+)", self.guild_admin.put_overwrite),
        ]
        self._routes = [(re.compile(f"^(?:{m})$"), re.compile(f"^{p}$"), h) for m, p, h in table]

    # ------------------------------------------------------------------ plumbing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for everything under ``/api/v10``."""
        path = "/" + request.match_info["tail"]
        call = Call(request.method, path, {}, None, query=dict(request.query))
        try:
            call.body, parts = await self._read_body(request)
        except ValueError as exc:
            return self._log(call, error_response(400, 50109, f"The request body contains invalid JSON: {exc}"))
        call.upload_bytes = sum(len(data) for _, _, data, _ in parts)
        refused = self._fault(call) or self._bucket(call) or self._upload_limit(call) or self._contract(call)
        if refused is not None:
            return self._log(call, refused)
        declared = {str(a.get("id")): a for a in call.payload.get("attachments") or []}
        call.files = [self.state.store_attachment((declared.get(str(i)) or {}).get("filename") or name, data, kind)
                      for i, name, data, kind in sorted(parts)]  # fmt: skip
        return self._log(call, await self._route(call))

    def _log(self, call: Call, response: web.Response) -> web.Response:
        self.state.requests.append(RequestLog(time.monotonic(), call.method, call.path, call.body, response.status))
        return response

    async def _read_body(self, request: web.Request) -> tuple[Any, list[tuple[int, str, bytes, str | None]]]:
        if not request.content_type.startswith("multipart/"):
            raw = await request.read()
            return (json.loads(raw) if raw else None), []
        payload: Any = None
        parts: list[tuple[int, str, bytes, str | None]] = []
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                payload = json.loads(await part.text())  # type: ignore[union-attr]
            else:
                index = int(m.group(1)) if (m := re.search(r"\[(\d+)\]", part.name or "")) else len(parts)
                data = await part.read()  # type: ignore[union-attr]
                parts.append((index, part.filename or "file", bytes(data), part.headers.get("Content-Type")))
        return payload, parts

    def _upload_limit(self, call: Call) -> web.Response | None:
        """413 / 40005 when the files of one request exceed the limit where they are going."""
        if not call.upload_bytes:
            return None
        channel_id = ""
        if m := re.match(r"^/channels/([^/]+)", call.path):
            channel_id = m.group(1)
        elif m := re.match(r"^/(?:interactions|webhooks)/([^/]+)/([^/]+)", call.path):
            record = next((r for r in self.state.interactions.values() if r.token == m.group(2)), None)
            channel_id = record.channel_id if record else ""
        limit = self.state.upload_limit_for(channel_id)
        if call.upload_bytes <= limit:
            return None
        return error_response(413, 40005, "Request entity too large")

    async def _route(self, call: Call) -> web.Response:
        for methods, pattern, handler in self._routes:
            match = pattern.match(call.path)
            if match and methods.match(call.method):
                call.params = {k: v for k, v in match.groupdict().items() if v is not None}
                if "channel_id" in call.params and not call.path.startswith("/webhooks"):
                    refused = self._channel_access(call)
                    if refused is not None:
                        return refused
                result = handler(call)
                return result if isinstance(result, web.Response) else await result
        self.state.unknown_routes.append(f"{call.method} {call.path}")
        return error_response(404, 0, "404: Not Found (route unknown to the fake Discord)")

    def _fault(self, call: Call) -> web.Response | None:
        for fault in self.state.faults:
            if fault.times > 0 and fault.method == call.method and fault.pattern.search(call.path):
                fault.times -= 1
                return self._fault_response(fault)
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        if fault.status != 429:
            code = fault.code if fault.code is not None else DEFAULT_CODES.get(fault.status, 0)
            return error_response(fault.status, code, "scripted failure")
        body: dict[str, Any] = {"message": "You are being rate limited.", "retry_after": fault.retry_after,
                                "global": fault.global_}  # fmt: skip
        if fault.code is not None:
            body["code"] = fault.code
        headers: dict[str, str] = {}
        if fault.headers:  # without Via, discord.py takes the 429 for a Cloudflare ban and does not retry
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(fault.retry_after))),
                       "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset-After": str(fault.retry_after), "X-RateLimit-Bucket": "fakebucket",
                       "X-RateLimit-Scope": "global" if fault.global_ else "user"}  # fmt: skip
            if fault.global_:
                headers["X-RateLimit-Global"] = "true"
        return json_response(body, 429, headers)

    def _bucket(self, call: Call) -> web.Response | None:
        if self.state.channel_bucket is None or call.method not in {"POST", "PATCH"}:
            return None
        if not call.path.startswith("/channels/"):
            return None
        limit, per = self.state.channel_bucket
        key = f"{call.method} {call.path.split('/')[2]}"
        now = time.monotonic()
        hits = [t for t in self._bucket_hits.get(key, []) if now - t < per]
        if len(hits) >= limit:
            retry = per - (now - hits[0])
            return json_response({"message": "You are being rate limited.", "retry_after": retry, "global": False},
                                 429, {"Via": "1.1 google", "X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset-After": str(retry), "X-RateLimit-Scope": "user"})  # fmt: skip
        self._bucket_hits[key] = [*hits, now]
        return None

    def _contract(self, call: Call) -> web.Response | None:
        problems = self.contract.check(call.method, call.path, known_client_quirks(call.path, call.body))
        if not problems:
            return None
        for problem in problems:
            self.state.violation(f"contract: {problem}")
        return error_response(400, 50035, "Invalid Form Body", {"_errors": [{"code": "CONTRACT", "message": p}
                                                                             for p in problems]})  # fmt: skip

    def _limits(self, problems: list[limits.Problem]) -> web.Response | None:
        if not problems:
            return None
        for line in limits.describe(problems):
            self.state.violation(f"limits: {line}")
        return error_response(400, 50035, "Invalid Form Body", limits.form_errors(problems))

    def _channel_access(self, call: Call) -> web.Response | None:
        channel = self.state.channels.get(call.params["channel_id"])
        if channel is None:
            return error_response(404, 10003, "Unknown Channel")
        if channel["id"] in self.state.forbidden_channels:
            return error_response(403, 50013, "Missing Permissions")
        if channel.get("type") != 1:
            have = self.state.channel_permissions(self.state.app_id, channel["id"])
            needed = self._needed_permissions(call)
            if have & needed != needed:
                return error_response(403, 50013, "Missing Permissions")
        recipients = channel.get("recipients") or [{}]
        if call.method == "POST" and recipients[0].get("id") in self.state.closed_dms:
            return error_response(403, 50007, "Cannot send messages to this user")
        return None

    def _needed_permissions(self, call: Call) -> int:
        """What the bot must hold in a guild channel for this request (the subset of Discord's rules the bot meets)."""
        path, method = call.path, call.method
        needed = VIEW_CHANNEL
        if "/messages/pins" in path:
            # Since 12 January 2026 pinning needs Pin Messages; Manage Messages alone no longer does it.
            return needed | READ_MESSAGE_HISTORY | (PIN_MESSAGES if method in ("PUT", "DELETE") else 0)
        if re.search(r"/messages$", path):
            if method == "GET":
                return needed | READ_MESSAGE_HISTORY
            return needed | SEND_MESSAGES | (ATTACH_FILES if call.upload_bytes else 0)
        if method == "DELETE" and "message_id" in call.params:
            message = self.state.messages.get(call.params["message_id"]) or {}
            if (message.get("author") or {}).get("id") not in (None, self.state.app_id):
                return needed | MANAGE_MESSAGES  # deleting someone else's message
        if method == "GET" and "message_id" in call.params:
            return needed | READ_MESSAGE_HISTORY
        return needed

    def _emit(self, event: str, message: Message) -> None:
        if message["flags"] & EPHEMERAL:
            return
        data = self.state.public(message)
        author_id = message["author"]["id"]
        if "guild_id" in message and author_id in self.state.members:
            data["member"] = self.state.member_without_user(author_id)
        self.gateway.dispatch(event, data)

    def _emit_delete(self, message: Message) -> None:
        if not message["flags"] & EPHEMERAL:
            data = {"id": message["id"], "channel_id": message["channel_id"]}
            if "guild_id" in message:
                data["guild_id"] = message["guild_id"]
            self.gateway.dispatch("MESSAGE_DELETE", data)

    # ------------------------------------------------------------------ login, users, commands

    def _application(self, _: Call) -> web.Response:
        state = self.state
        owner = state.user_payload(state.owner_id, "owner")
        return json_response({"id": state.app_id, "name": "QueueBot", "icon": None, "description": "",
                              "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                              "owner": owner, "flags": 0, "team": None})  # fmt: skip

    def _user(self, call: Call) -> web.Response:
        member = self.state.members.get(call.params["user_id"])
        return json_response(member["user"]) if member else error_response(404, 10013, "Unknown User")

    def _member(self, call: Call) -> web.Response:
        member = self.state.members.get(call.params["user_id"])
        return json_response(member) if member else error_response(404, 10007, "Unknown Member")

    def _commands(self, call: Call) -> web.Response:
        state = self.state
        guild_id = call.params.get("guild_id")
        store = state.guild_commands.setdefault(guild_id, {}) if guild_id else state.global_commands
        if call.method == "PUT":
            old = dict(store)
            store.clear()
            for command in call.body or []:
                previous = old.get(command["name"]) or {}
                stored = {**command, "id": previous.get("id") or state.snowflake(), "application_id": state.app_id,
                          "version": state.snowflake(), "type": command.get("type", 1)}  # fmt: skip
                # Discord stores and returns the permission bit set as a string (null: everyone may see it).
                required = command.get("default_member_permissions")
                stored["default_member_permissions"] = None if required is None else str(required)
                stored["contexts"] = command.get("contexts")
                if guild_id:
                    stored["guild_id"] = guild_id
                store[command["name"]] = stored
        return json_response(list(store.values()))

    def _open_dm(self, call: Call) -> web.Response:
        recipient = str(call.payload.get("recipient_id"))
        if recipient not in self.state.members:
            return error_response(400, 50033, "Invalid Recipients")
        channel = self.state.channels[self.state.dm_channel_of(recipient)]
        return json_response({**channel, "flags": 0})

    # ------------------------------------------------------------------ channels, messages, pins

    def _channel_info(self, call: Call) -> web.Response:
        return json_response(self.state.channels[call.params["channel_id"]])

    def _channel_messages(self, call: Call) -> web.Response:
        channel_id = call.params["channel_id"]
        if call.method == "GET":
            q = call.query
            found = self.state.history(channel_id, int(q.get("limit", 50)), q.get("before"), q.get("after"),
                                       q.get("around"))  # fmt: skip
            return json_response([self.state.public(m) for m in found])
        refused = self._limits(limits.message_problems(call.payload))
        if refused is not None:
            return refused
        message = self.state.new_message(channel_id, call.payload, call.files)
        self._emit("MESSAGE_CREATE", message)
        return json_response(self.state.public(message))

    def _message(self, call: Call) -> web.Response:
        message = self.state.messages.get(call.params["message_id"])
        if message is None or message["channel_id"] != call.params["channel_id"]:
            return error_response(404, 10008, "Unknown Message")
        if call.method == "GET":
            return json_response(self.state.public(message))
        if call.method == "DELETE":
            self.state.delete_stored(message)
            self._emit_delete(message)
            return no_content()
        if message["author"]["id"] != self.state.app_id and set(call.payload) - {"flags"}:
            return error_response(403, 50005, "Cannot edit a message authored by another user")
        refused = self._limits(limits.message_problems(call.payload))
        if refused is not None:
            return refused
        self.state.edit_message(message, call.payload, call.files)
        self._emit("MESSAGE_UPDATE", message)
        return json_response(self.state.public(message))

    def _list_pins(self, call: Call) -> web.Response:
        pinned = reversed(self.state.pins(call.params["channel_id"]))
        items = [{"pinned_at": TIMESTAMP, "message": self.state.public(m)} for m in pinned]
        return json_response({"items": items, "has_more": False})

    def _pin(self, call: Call) -> web.Response:
        channel_id = call.params["channel_id"]
        message = self.state.messages.get(call.params["message_id"])
        if message is None or message["channel_id"] != channel_id:
            return error_response(404, 10008, "Unknown Message")
        if call.method == "PUT" and not message["pinned"] and len(self.state.pins(channel_id)) >= MAX_PINS:
            return error_response(400, 30003, "Maximum number of pins reached (50)")
        newly_pinned = call.method == "PUT" and not message["pinned"]
        message["pinned"] = call.method == "PUT"
        self._emit("MESSAGE_UPDATE", message)
        if newly_pinned:
            # Like Discord: a pin leaves a "pinned a message" system notice (type 6) by whoever pinned.
            notice = self.state.new_message(channel_id, {"content": ""})
            notice["type"] = 6
            notice["message_reference"] = {"type": 0, "message_id": message["id"], "channel_id": channel_id,
                                           "guild_id": self.state.guild_id}  # fmt: skip
            self._emit("MESSAGE_CREATE", notice)
        self.gateway.dispatch("CHANNEL_PINS_UPDATE", {"guild_id": self.state.guild_id, "channel_id": channel_id,
                                                      "last_pin_timestamp": TIMESTAMP})  # fmt: skip
        return no_content()

    # ------------------------------------------------------------------ interactions and webhooks

    def _callback(self, call: Call) -> web.Response:
        state = self.state
        record = state.interactions.get(call.params["interaction_id"])
        if record is None or record.token != call.params["token"]:
            return error_response(404, 10062, "Unknown interaction")
        if record.response_type is not None:
            state.violation(f"interaction {record.id} ({record.label}) acknowledged twice")
            return error_response(400, 40060, "Interaction has already been acknowledged.")
        late = state.now() - record.created
        if late > ACK_WINDOW:
            state.violation(f"interaction {record.id} ({record.label}) acknowledged after {late:.2f} s (limit 3 s)")
            return error_response(404, 10062, "Unknown interaction")
        kind, data = call.payload.get("type"), call.payload.get("data") or {}
        if kind in (4, 7):
            refused = self._limits(limits.message_problems(data))
        elif kind == 9:
            refused = self._limits(limits.modal_problems(data))
        elif kind not in (5, 6, 8):
            refused = error_response(400, 50035, f"Unsupported interaction callback type {kind}")
        else:
            refused = None
        if refused is not None:
            return refused
        message: Message | None = None
        if kind in (4, 5):
            flags = (data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            message = state.new_message(record.channel_id, data, call.files, flags=flags)
            record.original_id = message["id"]
            self._emit("MESSAGE_CREATE", message)
        elif kind in (6, 7):
            record.original_id = record.message_id
            message = state.messages.get(record.message_id or "")
            if kind == 7 and message is not None:
                state.edit_message(message, data, call.files)
                self._emit("MESSAGE_UPDATE", message)
        record.answer(kind, message if kind in (4, 5, 7) else data)
        if call.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        interaction: dict[str, Any] = {"id": record.id, "type": record.kind}
        resource: dict[str, Any] = {"type": kind}
        if message is not None and kind != 6:
            interaction |= {"response_message_id": message["id"], "response_message_loading": kind == 5,
                            "response_message_ephemeral": bool(message["flags"] & EPHEMERAL)}  # fmt: skip
            resource["message"] = state.public(message)
        return json_response({"interaction": interaction, "resource": resource})

    def _record_for(self, call: Call) -> InteractionRecord | None:
        token = call.params["token"]
        if call.params["app_id"] != self.state.app_id:
            return None
        return next((r for r in self.state.interactions.values() if r.token == token), None)

    def _expired(self, record: InteractionRecord) -> web.Response | None:
        """401 / 50027 once the interaction's token is older than 15 minutes (followups and @original alike)."""
        if self.state.now() - record.created <= TOKEN_LIFETIME:
            return None
        return error_response(401, 50027, "Invalid Webhook Token")

    def _followup(self, call: Call) -> web.Response:
        record = self._record_for(call)
        if record is None:
            return error_response(404, 10015, "Unknown Webhook")
        if (expired := self._expired(record)) is not None:
            return expired
        if record.response_type is None:
            self.state.violation(f"followup before the initial response to {record.id} ({record.label})")
            return error_response(404, 10015, "Unknown Webhook")
        refused = self._limits(limits.message_problems(call.payload))
        if refused is not None:
            return refused
        original = self.state.messages.get(record.original_id or "")
        if record.response_type == 5 and original is not None and original["flags"] & LOADING:
            original["flags"] &= ~LOADING
            self.state.edit_message(original, {**call.payload, "flags": None}, call.files)
            self._emit("MESSAGE_UPDATE", original)
            message = original
        else:
            message = self.state.new_message(record.channel_id, call.payload, call.files)
            record.followup_ids.append(message["id"])
            self._emit("MESSAGE_CREATE", message)
        record.changed()
        if call.query.get("wait") not in ("1", "true", "True"):
            return no_content()
        return json_response(self.state.public(message))

    def _webhook_message(self, call: Call) -> web.Response:
        record = self._record_for(call)
        if record is None:
            return error_response(404, 10015, "Unknown Webhook")
        if (expired := self._expired(record)) is not None:
            return expired
        wanted = call.params["message_id"]
        target = record.original_id if wanted == "@original" else wanted
        message = self.state.messages.get(target or "")
        known = target == record.original_id or target in record.followup_ids
        if message is None or not known:
            return error_response(404, 10008, "Unknown Message")
        if call.method == "GET":
            return json_response(self.state.public(message))
        if call.method == "DELETE":
            self.state.delete_stored(message)
            self._emit_delete(message)
            record.changed()
            return no_content()
        refused = self._limits(limits.message_problems(call.payload))
        if refused is not None:
            return refused
        message["flags"] &= ~LOADING
        self.state.edit_message(message, {**call.payload, "flags": None}, call.files)
        self._emit("MESSAGE_UPDATE", message)
        record.changed()
        return json_response(self.state.public(message))

    # ------------------------------------------------------------------ CDN

    async def attachment(self, request: web.Request) -> web.Response:
        """Serve stored attachment bytes, so ``Attachment.read()`` works."""
        att_id = request.match_info["id"]
        data = self.state.attachments.get(att_id)
        if data is None:
            return error_response(404, 0, "no such attachment")
        kind = self.state.attachment_types.get(att_id, "application/octet-stream")
        return web.Response(body=data, content_type=kind.split(";")[0])

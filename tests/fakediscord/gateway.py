"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME with replay, member chunks.

Frames are text JSON, never compressed: discord.py only inflates binary frames, so it reads these as they are,
whatever ``compress=`` its URL asks for. Every dispatch gets the next sequence number and is kept in a replay
buffer, so a client that RESUMEs after a drop receives what it missed, as Discord does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakediscord.state import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    State,
)

HEARTBEAT_INTERVAL = 41250
REPLAY_LIMIT = 1000
DISALLOWED_INTENTS = 4014
# Which intent an event needs (events not listed, like READY and INTERACTION_CREATE, always arrive).
GUILD_EVENTS = {"GUILD_CREATE", "GUILD_UPDATE", "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE", "GUILD_ROLE_DELETE",
                "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE"}  # fmt: skip
MEMBER_EVENTS = {"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"}
MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK", "CHANNEL_PINS_UPDATE"}
CONTENT_FIELDS = ("content", "embeds", "attachments", "components")


def needed_intent(event: str, data: Any) -> int:
    """The intent without which Discord does not send ``event`` (0: always sent)."""
    if event in GUILD_EVENTS:
        return INTENT_GUILDS
    if event in MEMBER_EVENTS:
        # Discord sends GUILD_MEMBER_UPDATE for the bot's own member whatever the intents (its roles change).
        if event == "GUILD_MEMBER_UPDATE" and isinstance(data, dict) and (data.get("user") or {}).get("bot"):
            return 0
        return INTENT_GUILD_MEMBERS
    if event in MESSAGE_EVENTS:
        in_guild = isinstance(data, dict) and data.get("guild_id")
        if event == "CHANNEL_PINS_UPDATE":
            return INTENT_GUILDS if in_guild else INTENT_DIRECT_MESSAGES
        return INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES
    return 0


def without_content(event: str, data: Any, state: State) -> Any:
    """A message as a bot without the Message Content intent receives it.

    Other people's guild messages arrive with empty content, embeds, attachments and components; the bot's own
    messages, DMs and messages that mention the bot keep them.
    """
    if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or not isinstance(data, dict) or not data.get("guild_id"):
        return data
    if (data.get("author") or {}).get("id") == state.app_id:
        return data
    if any(m.get("id") == state.app_id for m in data.get("mentions") or []):
        return data
    return {**data, "content": "", "embeds": [], "attachments": [], "components": []}


class _Connection:
    """One client socket with an ordered send queue, so concurrent dispatches keep their sequence order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.live = False  # only identified or resumed sockets receive dispatches
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    def send(self, payload: dict[str, Any]) -> None:
        self.queue.put_nowait(json.dumps(payload))

    async def writer(self) -> None:
        while (text := await self.queue.get()) is not None:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_str(text)


class Gateway:
    """The gateway side of the fake; counts IDENTIFYs and RESUMEs for reconnect tests."""

    def __init__(self, state: State, url: Callable[[], str]) -> None:
        self.state = state
        self._url = url
        self.identifies = 0
        self.resumes = 0
        self.session_id = ""
        self.seq = 0
        self._sessions = 0
        self.refused_intents = 0  # the privileged intents of the last IDENTIFY closed with 4014
        self._buffer: deque[dict[str, Any]] = deque(maxlen=REPLAY_LIMIT)
        self._connections: list[_Connection] = []

    @property
    def connected(self) -> bool:
        """Whether a client is identified or resumed right now."""
        return any(c.live and not c.ws.closed for c in self._connections)

    def dispatch(self, event: str, data: Any) -> None:
        """Send an event to the connected client, or keep it for a RESUME if none is connected.

        Events whose intent the client did not request are not sent at all, and without Message Content the
        content of other people's messages arrives empty, as Discord does.
        """
        intents = self.state.intents
        needed = needed_intent(event, data)
        if needed and not intents & needed:
            return
        if not intents & INTENT_MESSAGE_CONTENT:
            data = without_content(event, data, self.state)
        self.seq += 1
        payload = {"op": 0, "t": event, "s": self.seq, "d": data}
        self._buffer.append(payload)
        for connection in self._connections:
            if connection.live:
                connection.send(payload)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one websocket connection."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = _Connection(ws)
        self._connections.append(connection)
        writer = asyncio.create_task(connection.writer())
        connection.send({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL}})
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_payload(connection, json.loads(msg.data))
        finally:
            connection.live = False
            connection.queue.put_nowait(None)
            self._connections.remove(connection)
            await writer
        return ws

    def _on_payload(self, connection: _Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            connection.send({"op": 11})
        elif op == 2:
            self._identify(connection, data or {})
        elif op == 6:
            self._resume(connection, data or {})
        elif op == 8:
            self._chunk(data or {})

    def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        intents = int(data.get("intents") or 0)
        refused = intents & PRIVILEGED_INTENTS & ~self.state.portal_intents
        if refused:
            # A privileged intent not switched on in the developer portal: discord.py raises
            # PrivilegedIntentsRequired and does not reconnect.
            self.refused_intents = refused
            asyncio.get_running_loop().create_task(connection.ws.close(code=DISALLOWED_INTENTS))
            return
        self.state.intents = intents
        self.identifies += 1
        self._sessions += 1
        self.session_id = f"session-{self._sessions}"
        self.seq = 0
        self._buffer.clear()
        connection.live = True
        state = self.state
        self.dispatch("READY", {
            "v": 10, "user": state.bot_user, "guilds": [{"id": state.guild_id, "unavailable": True}],
            "session_id": self.session_id, "resume_gateway_url": self._url(), "private_channels": [],
            "relationships": [], "application": {"id": state.app_id, "flags": 0},
        })  # fmt: skip
        guild = state.guild_payload()
        if not intents & INTENT_GUILD_MEMBERS:  # without the members intent only the bot itself is listed
            guild["members"] = [state.members[state.app_id]]
        self.dispatch("GUILD_CREATE", guild)

    def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("session_id") != self.session_id:
            connection.send({"op": 9, "d": False})
            return
        self.resumes += 1
        since = data.get("seq") or 0
        for payload in self._buffer:
            if payload["s"] > since:
                connection.send(payload)
        connection.live = True
        self.seq += 1
        connection.send({"op": 0, "t": "RESUMED", "s": self.seq, "d": {}})

    def _chunk(self, data: dict[str, Any]) -> None:
        members = list(self.state.members.values())
        if data.get("user_ids"):
            wanted = {str(u) for u in data["user_ids"]}
            members = [m for m in members if m["user"]["id"] in wanted]
        elif data.get("query"):
            members = [m for m in members if m["user"]["username"].startswith(data["query"])]
        if data.get("limit"):
            members = members[: data["limit"]]
        chunk = {"guild_id": self.state.guild_id, "members": members, "chunk_index": 0, "chunk_count": 1}
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]  # discord.py matches chunks to its request by nonce
        self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def drop(self, code: int = 4000) -> None:
        """Close every socket with ``code``; the session stays resumable, as after a network blip."""
        for connection in list(self._connections):
            connection.live = False
            await connection.ws.close(code=code)

    def invalidate_session(self) -> None:
        """Send op 9 ``d=false``: the client must IDENTIFY again with a new session."""
        self.session_id = ""
        for connection in list(self._connections):
            connection.live = False
            connection.send({"op": 9, "d": False})

    async def close(self) -> None:
        """Close all sockets (server shutdown)."""
        await self.drop(1001)

"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME with replay, member chunks, shards.

Frames are text JSON, never compressed: discord.py only inflates binary frames, so it reads these as they are,
whatever ``compress=`` its URL asks for. Every dispatch gets the next sequence number of its session and is
kept in that session's replay buffer, so a client that RESUMEs after a drop receives what it missed, as
Discord does.

Sharding as Discord does it: IDENTIFY carries ``shard: [shard_id, shard_count]`` (absent: ``[0, 1]``), each
shard has a session of its own, and a guild's events (READY's guild list, GUILD_CREATE, everything with its
``guild_id`` or in one of its channels) go only to the shard ``(guild_id >> 22) % shard_count``; events of no
guild (DMs) go to shard 0. ``GET /gateway/bot`` recommends ``shard_count`` shards.
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


INVALID_SHARD = 4010


def shard_of(guild_id: int | str, shard_count: int) -> int:
    """Discord's rule: which shard receives a guild's events."""
    return (int(guild_id) >> 22) % shard_count


class _Session:
    """One shard's gateway session: its id, sequence and replay buffer."""

    def __init__(self, session_id: str, shard_id: int, shard_count: int) -> None:
        self.session_id = session_id
        self.shard_id = shard_id
        self.shard_count = shard_count
        self.seq = 0
        self.buffer: deque[dict[str, Any]] = deque(maxlen=REPLAY_LIMIT)

    def owns(self, guild_id: str | None) -> bool:
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id


class _Connection:
    """One client socket with an ordered send queue, so concurrent dispatches keep their sequence order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.live = False  # only identified or resumed sockets receive dispatches
        self.session: _Session | None = None
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
        self.shard_count = 1
        """What ``GET /gateway/bot`` recommends."""
        self.identified: list[tuple[int, int]] = []
        """``(shard_id, shard_count)`` of every IDENTIFY, in order."""
        self.sessions: dict[int, _Session] = {}
        self._sessions = 0
        self.refused_intents = 0  # the privileged intents of the last IDENTIFY closed with 4014
        self._connections: list[_Connection] = []

    @property
    def session_id(self) -> str:
        """The session of shard 0 ("" when none): the only one of an unsharded client."""
        session = self.sessions.get(0)
        return session.session_id if session is not None else ""

    @property
    def seq(self) -> int:
        """The last sequence number of shard 0's session."""
        session = self.sessions.get(0)
        return session.seq if session is not None else 0

    @property
    def has_session(self) -> bool:
        """Whether any shard has a session (events are then delivered or kept for its RESUME)."""
        return any(s.session_id for s in self.sessions.values())

    @property
    def connected(self) -> bool:
        """Whether a client is identified or resumed right now."""
        return any(c.live and not c.ws.closed for c in self._connections)

    def bot_gateway(self) -> dict[str, Any]:
        """The body of ``GET /gateway/bot``."""
        return {"url": self._url(), "shards": self.shard_count,
                "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0,
                                        "max_concurrency": 1}}  # fmt: skip

    def _guild_of(self, event: str, data: Any) -> str | None:
        if not isinstance(data, dict):
            return None
        channel = self.state.channels.get(str(data.get("channel_id") or ""))
        if channel is not None:
            return channel.get("guild_id")
        if data.get("guild_id"):
            return str(data["guild_id"])
        if event.startswith("GUILD_") and data.get("id"):
            return str(data["id"])
        return None

    def dispatch(self, event: str, data: Any) -> None:
        """Send an event to the session of its guild's shard (kept for a RESUME if nobody is connected).

        Events whose intent the client did not request are not sent at all, and without Message Content the
        content of other people's messages arrives empty, as Discord does.
        """
        intents = self.state.intents
        needed = needed_intent(event, data)
        if needed and not intents & needed:
            return
        if not intents & INTENT_MESSAGE_CONTENT:
            data = without_content(event, data, self.state)
        guild_id = self._guild_of(event, data)
        for session in self.sessions.values():
            if session.session_id and session.owns(guild_id):
                self._send(session, event, data)

    def _send(self, session: _Session, event: str, data: Any) -> None:
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.buffer.append(payload)
        for connection in self._connections:
            if connection.live and connection.session is session:
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
                    await self._on_payload(connection, json.loads(msg.data))
        finally:
            connection.live = False
            connection.queue.put_nowait(None)
            self._connections.remove(connection)
            await writer
        return ws

    async def _on_payload(self, connection: _Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            connection.send({"op": 11})
        elif op == 2:
            await self._identify(connection, data or {})
        elif op == 6:
            self._resume(connection, data or {})
        elif op == 8:
            self._chunk(data or {})

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        intents = int(data.get("intents") or 0)
        refused = intents & PRIVILEGED_INTENTS & ~self.state.portal_intents
        if refused:
            # A privileged intent not switched on in the developer portal: discord.py raises
            # PrivilegedIntentsRequired and does not reconnect.
            self.refused_intents = refused
            asyncio.get_running_loop().create_task(connection.ws.close(code=DISALLOWED_INTENTS))
            return
        shard = data.get("shard") or [0, 1]
        try:
            shard_id, shard_count = int(shard[0]), int(shard[1])
        except (TypeError, ValueError, IndexError):
            shard_id, shard_count = -1, 0
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            await connection.ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        self.state.intents = intents
        self.identifies += 1
        self.identified.append((shard_id, shard_count))
        self._sessions += 1
        session = self.sessions[shard_id] = _Session(f"session-{self._sessions}", shard_id, shard_count)
        connection.session = session
        connection.live = True
        state = self.state
        guilds = [g for g in state.guild_ids() if session.owns(g)]
        self._send(session, "READY", {
            "v": 10, "user": state.bot_user, "guilds": [{"id": g, "unavailable": True} for g in guilds],
            "session_id": session.session_id, "resume_gateway_url": self._url(), "private_channels": [],
            "relationships": [], "application": {"id": state.app_id, "flags": 0}, "shard": [shard_id, shard_count],
        })  # fmt: skip
        for guild_id in guilds:
            guild = state.guild_create_payload(guild_id)
            if not intents & INTENT_GUILD_MEMBERS:  # without the members intent only the bot itself is listed
                guild["members"] = [state.members[state.app_id]]
            self._send(session, "GUILD_CREATE", guild)

    def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = next((s for s in self.sessions.values() if s.session_id and s.session_id == data.get("session_id")),
                       None)  # fmt: skip
        if session is None:
            connection.send({"op": 9, "d": False})
            return
        self.resumes += 1
        since = data.get("seq") or 0
        for payload in session.buffer:
            if payload["s"] > since:
                connection.send(payload)
        connection.session = session
        connection.live = True
        session.seq += 1
        connection.send({"op": 0, "t": "RESUMED", "s": session.seq, "d": {}})

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

    async def drop(self, code: int = 4000, *, shard_id: int | None = None) -> None:
        """Close every socket (or one shard's) with ``code``; sessions stay resumable, as after a blip."""
        for connection in list(self._connections):
            if shard_id is None or (connection.session is not None and connection.session.shard_id == shard_id):
                connection.live = False
                await connection.ws.close(code=code)

    def invalidate_session(self) -> None:
        """Send op 9 ``d=false``: the client must IDENTIFY again with a new session."""
        for session in self.sessions.values():
            session.session_id = ""
        for connection in list(self._connections):
            connection.live = False
            connection.send({"op": 9, "d": False})

    async def close(self) -> None:
        """Close all sockets (server shutdown)."""
        await self.drop(1001)

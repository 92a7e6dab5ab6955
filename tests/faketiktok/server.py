"""A loopback fake TikTok the real TikTokLive 7.0.1 client connects to.

It serves the sign server (``/webcast/fetch``), the liveness route (``/api-live/user/room/``), the live
HTML, ``check_alive``, and the webcast websocket that pushes gzip-compressed ``WebcastPushFrame``s. Tests
script it: hosts live, offline or unknown; sign 429s with or without rate-limit headers; a blocked
handshake; events to push; clean or abnormal closes. Wire contract: ``shared/research/tiktoklive.md``.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from TikTokLive.proto import (
    CommonMessageData,
    Gift,
    ProtoMessageFetchResult,
    ProtoMessageFetchResultBaseProtoMessage,
    PushHeader,
    User,
    WebcastChatMessage,
    WebcastControlMessage,
    WebcastGiftMessage,
    WebcastLikeMessage,
    WebcastMemberMessage,
    WebcastPushFrame,
    WebcastRoomUserSeqMessage,
    WebcastSocialMessage,
    WebcastSubNotifyMessage,
)
from TikTokLiveProto.v3.webcast.model.message.common import Text

ROOM_BASE = 7_000_000_000_000_000_000


@dataclass
class Host:
    """A TikTok account as the fake knows it."""

    handle: str
    live: bool = False
    room_id: int = 0


@dataclass
class FakeTikTok:
    """State and routes of the fake; ``push`` sends messages to every connected client."""

    hosts: dict[str, Host] = field(default_factory=dict)
    sign_requests: list[float] = field(default_factory=list)
    liveness_requests: list[tuple[float, str]] = field(default_factory=list)
    ws_connections: int = 0
    client_frames: list[str] = field(default_factory=list)
    sign_429: list[dict[str, str] | None] = field(default_factory=list)
    block_handshakes: int = 0
    backlog: list[ProtoMessageFetchResultBaseProtoMessage] = field(default_factory=list)
    port: int = 0
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _entered: asyncio.Event = field(default_factory=asyncio.Event)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 and an ephemeral port."""
        app = web.Application()
        app.router.add_get("/webcast/fetch", self._sign)
        app.router.add_get("/webcast/fetch/", self._sign)
        app.router.add_get("/api-live/user/room/", self._user_room)
        app.router.add_get("/api-live/user/room", self._user_room)
        app.router.add_get("/webcast/room/check_alive/", self._check_alive)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/{handle}/live", self._live_html)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close every socket and the server."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """Root URL (sign server and tiktok.com stand-in)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ scripting

    def host(self, handle: str, *, live: bool) -> Host:
        """Create or update an account."""
        host = self.hosts.get(handle) or Host(handle, room_id=ROOM_BASE + len(self.hosts) + 1)
        host.live = live
        self.hosts[handle] = host
        return host

    async def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` websocket sessions entered a room."""
        deadline = time.monotonic() + timeout
        while sum(1 for f in self.client_frames if f == "im_enter_room") < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no client entered a room ({self.client_frames})")
            await asyncio.sleep(0.02)

    async def push(self, *messages: ProtoMessageFetchResultBaseProtoMessage, compress: bool = True) -> None:
        """Send messages in one gzip push frame to every connected client."""
        result = ProtoMessageFetchResult(messages=list(messages), cursor=str(time.time_ns()), internal_ext="ext")
        payload = bytes(result)
        headers = [PushHeader(key="compress_type", value="gzip")] if compress else []
        frame = WebcastPushFrame(payload_type="msg", log_id=next(self._ids), headers=headers,
                                 payload=gzip.compress(payload) if compress else payload)  # fmt: skip
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_bytes(bytes(frame))

    async def close_sockets(self, code: int = 1000) -> None:
        """Close every client socket (1000: clean end; 1011: abnormal)."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    # ------------------------------------------------------------------ routes

    async def _sign(self, request: web.Request) -> web.Response:
        self.sign_requests.append(time.monotonic())
        if self.sign_429:
            headers = self.sign_429.pop(0)
            return web.Response(status=429, body=json.dumps({"message": "rate limited", "limit_label": "x"}),
                                content_type="application/json", headers=headers or {})  # fmt: skip
        result = ProtoMessageFetchResult(
            messages=list(self.backlog), cursor="cursor-1", push_server=f"ws://127.0.0.1:{self.port}/ws",
            route_params={"wrss": "fake"}, is_first=True, internal_ext="ext",
        )  # fmt: skip
        return web.Response(body=bytes(result), headers={"X-Set-TT-Cookie": "ttwid=fake; tt-target-idc=useast1a"})

    async def _user_room(self, request: web.Request) -> web.Response:
        handle = request.query.get("uniqueId", "").lstrip("@").lower()
        self.liveness_requests.append((time.monotonic(), handle))
        host = self.hosts.get(handle)
        if host is None:
            return web.json_response({"message": "user_not_found", "data": {}})
        return web.json_response({"message": "", "data": {"user": {"roomId": str(host.room_id), "uniqueId": handle},
                                                         "liveRoom": {"status": 2 if host.live else 4}}})  # fmt: skip

    async def _live_html(self, request: web.Request) -> web.Response:
        handle = request.match_info["handle"].lstrip("@").lower()
        host = self.hosts.get(handle)
        state = {"LiveRoom": {"liveRoomUserInfo": {"user": {"roomId": str(host.room_id) if host else "",
                 "uniqueId": handle, "status": 2 if host and host.live else 4}}}}  # fmt: skip
        html = f'<script id="SIGI_STATE" type="application/json">{json.dumps(state)}</script>'
        return web.Response(text=html, content_type="text/html")

    async def _check_alive(self, request: web.Request) -> web.Response:
        room = request.query.get("room_ids", "")
        alive = any(str(h.room_id) == room and h.live for h in self.hosts.values())
        return web.json_response({"data": [{"alive": alive, "room_id": room}]})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.block_handshakes > 0:
            self.block_handshakes -= 1
            return web.Response(status=400, headers={"Handshake-Msg": "DEVICE_BLOCKED"})
        ws = web.WebSocketResponse(protocols=("echo-protocol",))
        await ws.prepare(request)
        self.ws_connections += 1
        self._sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    self.client_frames.append(WebcastPushFrame().parse(msg.data).payload_type or "")
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws


# ---------------------------------------------------------------------- message builders


def _common(msg_id: int | None, method: str, key: str = "") -> CommonMessageData:
    return CommonMessageData(method=method, msg_id=msg_id or 0, create_time=int(time.time() * 1000),
                             display_text=Text(key=key) if key else None)  # fmt: skip


def _wrap(method: str, message: Any) -> ProtoMessageFetchResultBaseProtoMessage:
    return ProtoMessageFetchResultBaseProtoMessage(method=method, payload=bytes(message))


def user(handle: str, uid: int = 0, nickname: str | None = None) -> User:
    """A viewer; ``display_id`` is the @handle as TikTok sends it (any case)."""
    return User(id=uid or abs(hash(handle)) % 10**12, display_id=handle, nickname=nickname or handle.title())


def chat(who: User, text: str, msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """A comment."""
    return _wrap("WebcastChatMessage", WebcastChatMessage(common=_common(msg_id, "WebcastChatMessage"), user=who,
                                                           content=text))  # fmt: skip


def like(who: User, count: int, total: int, msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """A batch of likes."""
    return _wrap("WebcastLikeMessage", WebcastLikeMessage(common=_common(msg_id, "WebcastLikeMessage"), user=who,
                                                           count=count, total=total))  # fmt: skip


def gift(who: User, *, diamonds: int, repeat: int, end: bool, streakable: bool, msg_id: int, gift_id: int = 5655,
         group: int = 1) -> ProtoMessageFetchResultBaseProtoMessage:  # fmt: skip
    """One gift step (a streak sends one per step; the last has ``end``)."""
    g = Gift(id=gift_id, name="Rose", type=1 if streakable else 2, diamond_count=diamonds)
    message = WebcastGiftMessage(common=_common(msg_id, "WebcastGiftMessage"), user=who, gift=g, gift_id=gift_id,
                                 repeat_count=repeat, repeat_end=1 if end else 0, group_id=group)  # fmt: skip
    return _wrap("WebcastGiftMessage", message)


def social(who: User, kind: str, msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """A follow or a share (the library emits both a Follow/Share event and a SocialEvent for it)."""
    key = "pm_main_follow_message_viewer_2" if kind == "follow" else "pm_mt_guidance_share"
    message = WebcastSocialMessage(common=_common(msg_id, "WebcastSocialMessage", key), user=who)
    return _wrap("WebcastSocialMessage", message)


def join(who: User, msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """A viewer joins."""
    return _wrap("WebcastMemberMessage", WebcastMemberMessage(common=_common(msg_id, "WebcastMemberMessage"),
                                                               user=who, action=1))  # fmt: skip


def subscribe(who: User, msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """A subscription."""
    return _wrap("WebcastSubNotifyMessage", WebcastSubNotifyMessage(common=_common(msg_id, "WebcastSubNotifyMessage"),
                                                                     user=who))  # fmt: skip


def viewers(total: int, msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """The viewer count."""
    return _wrap("WebcastRoomUserSeqMessage", WebcastRoomUserSeqMessage(
        common=_common(msg_id, "WebcastRoomUserSeqMessage"), total=total))  # fmt: skip


def live_end(msg_id: int) -> ProtoMessageFetchResultBaseProtoMessage:
    """The host ends the live (the library then disconnects by itself)."""
    return _wrap("WebcastControlMessage", WebcastControlMessage(common=_common(msg_id, "WebcastControlMessage"),
                                                                 action=3))  # fmt: skip

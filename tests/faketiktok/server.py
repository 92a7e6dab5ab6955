"""A loopback fake TikTok the real TikTokLive 7.0.1 client connects to (127.0.0.1, ephemeral port).

It serves, on one aiohttp server:

* the sign server ``GET /webcast/fetch``: a raw ``ProtoMessageFetchResult`` (cursor, ``push_server`` pointing
  back here, non-empty ``route_params``, ``is_first=True``, optional backlog) and the mandatory
  ``X-Set-TT-Cookie`` header; or a scripted 429 (with or without ``RateLimit-*`` headers) or other error;
* tiktok.com: ``/api-live/user/room/`` (live 2 / offline 4 / ``user_not_found``), ``/@{handle}/live`` (HTML
  with SIGI_STATE) and the webcast ``/webcast/room/check_alive/``;
* the webcast websocket ``/ws``: binary ``WebcastPushFrame``s (payload_type ``msg``, gzip-compressed
  ``ProtoMessageFetchResult``); it records the client's ``im_enter_room`` / ``hb`` / ``ack`` frames, can
  refuse the handshake (400 or 200 -> ``WebcastBlockedError``), close with any code (1000 clean, 1011
  abnormal) and drop the connection without any close frame (``drop_sockets``: a network cut, 1006).

Point the client at it with ``SIGN_API_URL=fake.base_url``, ``WebDefaults.tiktok_app_url = fake.base_url``
and ``WebDefaults.tiktok_webcast_url = fake.webcast_url`` (the ``fake_tiktok`` fixture does all three).
Wire contract: ``shared/research/tiktoklive.md`` section 3.3. Run ``warm_event_classes()`` before building
messages (importing ``tests.faketiktok`` does it).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import time
import zlib
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

Message = ProtoMessageFetchResultBaseProtoMessage


@dataclass
class Host:
    """A TikTok account as the fake knows it (unknown handles answer ``user_not_found``)."""

    handle: str
    live: bool = False
    room_id: int = 0


@dataclass(frozen=True)
class SignRequest:
    """One request the sign server received."""

    at: float
    room_id: str | None
    api_key: str | None
    query: dict[str, str]


@dataclass
class FakeTikTok:
    """State, scripting and routes of the fake. Times recorded are ``time.monotonic()``."""

    hosts: dict[str, Host] = field(default_factory=dict)
    sign_requests: list[float] = field(default_factory=list)
    sign_log: list[SignRequest] = field(default_factory=list)
    liveness_requests: list[tuple[float, str]] = field(default_factory=list)
    ws_connections: int = 0
    ws_requests: list[dict[str, str]] = field(default_factory=list)
    client_frames: list[str] = field(default_factory=list)
    sign_429: list[dict[str, str] | None] = field(default_factory=list)
    sign_errors: list[int] = field(default_factory=list)
    block_handshakes: int = 0
    block_status: int = 400
    handshake_delay: float = 0.0
    backlog: list[Message] = field(default_factory=list)
    port: int = 0
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _transports: dict[int, asyncio.BaseTransport] = field(default_factory=dict)
    _rooms: dict[int, str] = field(default_factory=dict)  # id(socket) -> the room_id it asked for
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

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
            self._runner = None

    @property
    def base_url(self) -> str:
        """Root URL: the sign server and the tiktok.com stand-in."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def webcast_url(self) -> str:
        """The ``WebDefaults.tiktok_webcast_url`` stand-in."""
        return f"{self.base_url}/webcast"

    # ------------------------------------------------------------------ scripting

    def host(self, handle: str, *, live: bool) -> Host:
        """Create or update an account (``handle`` as stored: no "@", lower case)."""
        host = self.hosts.get(handle) or Host(handle, room_id=ROOM_BASE + len(self.hosts) + 1)
        host.live = live
        self.hosts[handle] = host
        return host

    def set_live(self, handle: str, live: bool) -> None:
        """Switch an existing account live or offline."""
        self.hosts[handle].live = live

    def forget(self, handle: str) -> None:
        """Make an account unknown again (``user_not_found``)."""
        self.hosts.pop(handle, None)

    def rate_limit_next(self, *, reset_at: float | None = None, remaining: int = 0) -> None:
        """Answer the next sign request with 429; without ``reset_at`` no RateLimit headers are sent."""
        if reset_at is None:
            self.sign_429.append(None)
        else:
            self.sign_429.append({"RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(int(reset_at))})

    def entered(self) -> int:
        """How many websocket sessions have entered a room (sent ``im_enter_room``)."""
        return sum(1 for f in self.client_frames if f == "im_enter_room")

    @property
    def open_sockets(self) -> int:
        """Websockets currently open."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` websocket sessions in total have entered a room."""
        deadline = time.monotonic() + timeout
        while self.entered() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no client entered a room ({self.client_frames})")
            await asyncio.sleep(0.01)

    async def push(self, *messages: Message, compress: bool = True, need_ack: bool = False) -> None:
        """Send messages in one push frame to every connected client (gzip unless ``compress=False``)."""
        data = self._frame(messages, compress, need_ack)
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_bytes(data)

    async def push_to(self, handle: str, *messages: Message, compress: bool = True) -> None:
        """Send messages in one push frame only to the clients in ``handle``'s room (several lives at once)."""
        data = self._frame(messages, compress, False)
        room = str(self.hosts[handle].room_id)
        for ws in list(self._sockets):
            if not ws.closed and self._rooms.get(id(ws)) == room:
                await ws.send_bytes(data)

    def _frame(self, messages: tuple[Message, ...], compress: bool, need_ack: bool) -> bytes:
        result = ProtoMessageFetchResult(messages=list(messages), cursor=str(time.time_ns()), internal_ext="ext",
                                         need_ack=need_ack)  # fmt: skip
        payload = bytes(result)
        headers = [PushHeader(key="compress_type", value="gzip")] if compress else []
        frame = WebcastPushFrame(payload_type="msg", log_id=next(self._ids), headers=headers,
                                 payload=gzip.compress(payload) if compress else payload)  # fmt: skip
        return bytes(frame)

    async def close_sockets(self, code: int = 1000) -> None:
        """Close every client socket (1000: clean end, the task returns; 1011: abnormal, the task raises)."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    async def drop_sockets(self) -> int:
        """Cut every client connection at the TCP level, with no close frame and no live-end message.

        What a network drop looks like to the client while the host is still live: the socket task raises
        ``ConnectionClosedError`` (code 1006) and no ``DisconnectEvent`` is emitted. Returns how many were cut.
        """
        cut = 0
        for ws in list(self._sockets):
            transport = self._transports.get(id(ws))
            if transport is not None and not ws.closed and not transport.is_closing():
                transport.abort()
                cut += 1
        return cut

    # ------------------------------------------------------------------ routes

    async def _sign(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.sign_requests.append(now)
        self.sign_log.append(SignRequest(now, request.query.get("room_id"), request.headers.get("X-Api-Key"),
                                         dict(request.query)))  # fmt: skip
        if self.sign_429:
            headers = self.sign_429.pop(0)
            return web.Response(status=429, body=json.dumps({"message": "rate limited", "limit_label": "fake"}),
                                content_type="application/json", headers=headers or {})  # fmt: skip
        if self.sign_errors:
            return web.Response(status=self.sign_errors.pop(0), text="sign server error")
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
        self.ws_requests.append(dict(request.query))
        if self.handshake_delay:
            await asyncio.sleep(self.handshake_delay)  # a slow upgrade: lets tests act mid-handshake
        if self.block_handshakes > 0:
            self.block_handshakes -= 1
            return web.Response(status=self.block_status, headers={"Handshake-Msg": "DEVICE_BLOCKED"})
        ws = web.WebSocketResponse(protocols=("echo-protocol",))
        await ws.prepare(request)
        self.ws_connections += 1
        self._sockets.append(ws)
        if request.transport is not None:
            self._transports[id(ws)] = request.transport
        self._rooms[id(ws)] = request.query.get("room_id", "")
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    self.client_frames.append(WebcastPushFrame().parse(msg.data).payload_type or "")
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
            self._transports.pop(id(ws), None)
            self._rooms.pop(id(ws), None)
        return ws


# ---------------------------------------------------------------------- message builders


def _common(msg_id: int | None, method: str, key: str = "", created: float | None = None) -> CommonMessageData:
    created_ms = int((time.time() if created is None else created) * 1000)
    return CommonMessageData(method=method, msg_id=msg_id or 0, create_time=created_ms,
                             display_text=Text(key=key) if key else None)  # fmt: skip


def _wrap(method: str, message: Any) -> Message:
    return ProtoMessageFetchResultBaseProtoMessage(method=method, payload=bytes(message))


def user(handle: str, uid: int = 0, nickname: str | None = None) -> User:
    """A viewer (a plain ``User``); ``display_id`` is the @handle as TikTok sends it (any case)."""
    return User(id=uid or zlib.crc32(handle.encode()) + 1, display_id=handle, nickname=nickname or handle.title())


def chat(who: User, text: str, msg_id: int, *, created: float | None = None) -> Message:
    """A comment (``created``: epoch seconds of ``common.create_time``, default now)."""
    message = WebcastChatMessage(common=_common(msg_id, "WebcastChatMessage", created=created), user=who, content=text)
    return _wrap("WebcastChatMessage", message)


def like(who: User, count: int, total: int, msg_id: int) -> Message:
    """A batch of ``count`` likes; ``total`` is the room's running total."""
    return _wrap("WebcastLikeMessage", WebcastLikeMessage(common=_common(msg_id, "WebcastLikeMessage"), user=who,
                                                           count=count, total=total))  # fmt: skip


def gift(who: User, *, diamonds: int, repeat: int, end: bool, streakable: bool, msg_id: int, gift_id: int = 5655,
         group: int = 1) -> Message:  # fmt: skip
    """One gift message: a streak sends one per step (``repeat`` 1, 2, ...), the last with ``end``."""
    g = Gift(id=gift_id, name="Rose", type=1 if streakable else 2, diamond_count=diamonds)
    message = WebcastGiftMessage(common=_common(msg_id, "WebcastGiftMessage"), user=who, gift=g, gift_id=gift_id,
                                 repeat_count=repeat, repeat_end=1 if end else 0, group_id=group)  # fmt: skip
    return _wrap("WebcastGiftMessage", message)


def streak(
    who: User, *, diamonds: int, steps: int, first_msg_id: int, end: bool = True, group: int = 1
) -> list[Message]:
    """A whole gift streak: ``steps`` messages with repeat 1..steps, the last one ending it when ``end``."""
    return [
        gift(who, diamonds=diamonds, repeat=i, end=end and i == steps, streakable=True, msg_id=first_msg_id + i - 1,
             group=group)
        for i in range(1, steps + 1)
    ]  # fmt: skip


def social(who: User, kind: str, msg_id: int) -> Message:
    """A follow or a share (the library emits both a Follow/Share event and a SocialEvent for it)."""
    key = "pm_main_follow_message_viewer_2" if kind == "follow" else "pm_mt_guidance_share"
    message = WebcastSocialMessage(common=_common(msg_id, "WebcastSocialMessage", key), user=who)
    return _wrap("WebcastSocialMessage", message)


def follow(who: User, msg_id: int) -> Message:
    """A follow."""
    return social(who, "follow", msg_id)


def share(who: User, msg_id: int) -> Message:
    """A share."""
    return social(who, "share", msg_id)


def join(who: User, msg_id: int) -> Message:
    """A viewer joins."""
    return _wrap("WebcastMemberMessage", WebcastMemberMessage(common=_common(msg_id, "WebcastMemberMessage"),
                                                               user=who, action=1))  # fmt: skip


def subscribe(who: User, msg_id: int) -> Message:
    """A subscription."""
    return _wrap("WebcastSubNotifyMessage", WebcastSubNotifyMessage(common=_common(msg_id, "WebcastSubNotifyMessage"),
                                                                     user=who))  # fmt: skip


def viewers(total: int, msg_id: int) -> Message:
    """The viewer count (``RoomUserSeqEvent.total``)."""
    return _wrap("WebcastRoomUserSeqMessage", WebcastRoomUserSeqMessage(
        common=_common(msg_id, "WebcastRoomUserSeqMessage"), total=total))  # fmt: skip


def live_end(msg_id: int) -> Message:
    """The host ends the live (STREAM_ENDED: the library emits LiveEndEvent and disconnects by itself)."""
    return _wrap("WebcastControlMessage", WebcastControlMessage(common=_common(msg_id, "WebcastControlMessage"),
                                                                 action=3))  # fmt: skip


def unknown() -> Message:
    """A message whose method the library does not map (it becomes an ``UnknownEvent``)."""
    return ProtoMessageFetchResultBaseProtoMessage(method="WebcastNoSuchMessage", payload=b"")

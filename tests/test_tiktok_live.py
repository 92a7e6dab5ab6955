"""The live connection manager with the real TikTokLive client against the loopback fake TikTok."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from errors import NotConnectedError, NotFoundError
from models import EngagementEvent, EventKind
from services.tiktok.adapter import warm_event_classes
from services.tiktok.live import ConnectionState, LiveConnectionManager, LiveInfo, StatusSnapshot
from tests.faketiktok.server import FakeTikTok, chat, gift, join, like, live_end, social, subscribe, user, viewers

warm_event_classes()


@dataclass
class Recorder:
    """A listener that remembers everything."""

    events: list[EngagementEvent] = field(default_factory=list)
    states: list[ConnectionState] = field(default_factory=list)
    connected: list[LiveInfo] = field(default_factory=list)
    disconnected: list[tuple[bool, float]] = field(default_factory=list)
    ended: int = 0

    def on_events(self, events: list[EngagementEvent]) -> None:
        self.events.extend(events)

    def on_state(self, snapshot: StatusSnapshot) -> None:
        self.states.append(snapshot.state)

    async def on_connected(self, info: LiveInfo) -> None:
        self.connected.append(info)

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        self.disconnected.append((unexpected, duration))

    async def on_session_end(self, info: LiveInfo) -> None:
        self.ended += 1

    def coins(self, handle: str) -> int:
        return sum(e.coins for e in self.events if e.kind is EventKind.GIFT and e.handle == handle)

    def count(self, kind: EventKind, handle: str | None = None) -> int:
        return sum(e.count for e in self.events if e.kind is kind and (handle is None or e.handle == handle))


@pytest.fixture
async def fake_tiktok(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTikTok]:
    from TikTokLive.client.web.web_settings import WebDefaults

    fake = FakeTikTok()
    await fake.start()
    monkeypatch.setenv("SIGN_API_URL", fake.base_url)
    monkeypatch.setattr(WebDefaults, "tiktok_app_url", fake.base_url)
    monkeypatch.setattr(WebDefaults, "tiktok_webcast_url", fake.base_url + "/webcast")
    yield fake
    await fake.stop()


def manager(recorder: Recorder, **kw) -> LiveConnectionManager:
    return LiveConnectionManager(1, recorder, short_delay=kw.pop("short", 0.05), long_delay=kw.pop("long", 0.15), **kw)


async def until(predicate, timeout: float = 8.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_not_found_is_a_clear_error_and_leaves_nothing_running(fake_tiktok: FakeTikTok) -> None:
    rec = Recorder()
    live = manager(rec)
    with pytest.raises(NotFoundError, match="@ghost was not found"):
        await live.connect("@Ghost")
    assert live.state is ConnectionState.IDLE and live._task is None
    assert fake_tiktok.sign_requests == []


async def test_offline_without_persistence_is_refused(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("sleepy", live=False)
    live = manager(Recorder())
    with pytest.raises(NotConnectedError, match="not live right now"):
        await live.connect("sleepy", persistent=False)
    assert fake_tiktok.sign_requests == []


async def test_offline_then_live_retries_with_the_cadence(fake_tiktok: FakeTikTok) -> None:
    host = fake_tiktok.host("host", live=False)
    rec = Recorder()
    live = manager(rec, short=0.1, long=0.3)
    await live.connect("host")
    await until(lambda: len(fake_tiktok.liveness_requests) >= 6, what="six liveness checks")
    host.live = True
    await fake_tiktok.wait_connected()
    await until(lambda: live.state is ConnectionState.CONNECTED, what="connected")
    times = [t for t, _ in fake_tiktok.liveness_requests]
    gaps = [b - a for a, b in itertools.pairwise(times)][:5]
    # First three waits use the short delay, then the long one (ratio, not absolute time).
    short = sum(gaps[:3]) / 3
    assert all(g < 0.2 for g in gaps[:3]) and all(g > 2 * short for g in gaps[3:5]), gaps
    assert len(fake_tiktok.sign_requests) == 1  # liveness checks cost no sign request
    assert ConnectionState.WAITING_TO_RETRY in rec.states
    await live.disconnect()
    assert rec.disconnected == [(False, rec.disconnected[0][1])] and rec.ended == 1


async def test_full_session_counts_every_event_exactly(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    bob, ann = user("Bob.Beats", 11), user("ann", 12)
    fake_tiktok.backlog = [chat(bob, "old comment", 1)]
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await fake_tiktok.push(
        chat(bob, "hello", 2), like(bob, 7, 7, 3), like(ann, 3, 10, 4),
        gift(bob, diamonds=1, repeat=1, end=False, streakable=True, msg_id=5),
        gift(bob, diamonds=1, repeat=2, end=False, streakable=True, msg_id=6),
        gift(bob, diamonds=1, repeat=5, end=True, streakable=True, msg_id=7),
        gift(ann, diamonds=99, repeat=1, end=True, streakable=False, msg_id=8),
        social(bob, "follow", 9), social(ann, "share", 10), join(ann, 11), subscribe(ann, 12), viewers(321, 13),
    )  # fmt: skip
    await fake_tiktok.push(chat(bob, "hello", 2))  # a replayed message: ignored by id
    await until(lambda: any(e.kind is EventKind.VIEWERS for e in rec.events), what="all events")
    await asyncio.sleep(0.1)
    assert rec.count(EventKind.COMMENT, "bob.beats") == 2  # backlog comment + live comment, replay dropped
    assert rec.count(EventKind.LIKE, "bob.beats") == 7 and rec.count(EventKind.LIKE, "ann") == 3
    assert rec.coins("bob.beats") == 5 and rec.coins("ann") == 99  # streak once at its end
    assert rec.count(EventKind.FOLLOW) == 1 and rec.count(EventKind.SHARE) == 1  # not doubled by SocialEvent
    assert rec.count(EventKind.JOIN) == 1 and rec.count(EventKind.SUBSCRIBE) == 1
    assert [e.viewers for e in rec.events if e.kind is EventKind.VIEWERS] == [321]
    await live.disconnect()


async def test_abnormal_close_is_an_unexpected_drop_and_reconnects(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    bob = user("bob", 1)
    await fake_tiktok.push(gift(bob, diamonds=10, repeat=3, end=False, streakable=True, msg_id=100))
    await asyncio.sleep(0.2)
    await fake_tiktok.close_sockets(code=1011)  # mid-streak abnormal close
    await until(lambda: rec.disconnected, what="the drop")
    assert rec.disconnected[0][0] is True and rec.ended == 1
    assert rec.coins("bob") == 30  # the open streak is committed once when the connection ends
    await fake_tiktok.wait_connected(2)
    await until(lambda: len(rec.connected) == 2, what="reconnected")
    # The replayed streak end after the reconnect adds nothing (already committed in full).
    await fake_tiktok.push(gift(bob, diamonds=10, repeat=3, end=True, streakable=True, msg_id=101))
    await asyncio.sleep(0.2)
    assert rec.coins("bob") == 30
    await live.disconnect()
    assert rec.disconnected[-1][0] is False


async def test_live_end_closes_the_session(fake_tiktok: FakeTikTok) -> None:
    host = fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec, short=5.0)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    host.live = False
    await fake_tiktok.push(live_end(1))
    await until(lambda: rec.ended == 1, what="session end")
    assert rec.disconnected == [(False, rec.disconnected[0][1])]
    await until(lambda: live.state is ConnectionState.WAITING_TO_RETRY, what="waiting for the next live")
    await live.disconnect()
    assert live.state is ConnectionState.IDLE


async def test_sign_429_waits_for_its_reset_and_without_headers_falls_back(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    reset = int(time.time()) + 1
    fake_tiktok.sign_429 = [{"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}, None]
    rec = Recorder()
    live = manager(rec, long=0.2)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    requests = fake_tiktok.sign_requests
    assert len(requests) == 3
    assert requests[1] - requests[0] >= 0.5  # waited for the reset time, not the short delay
    assert requests[2] - requests[1] >= 0.15  # no headers: the long delay
    await live.disconnect()


async def test_blocked_handshake_is_retried(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    fake_tiktok.block_handshakes = 1
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await until(lambda: len(rec.connected) == 2 or fake_tiktok.ws_connections >= 1, what="a connection")
    await fake_tiktok.wait_connected()
    assert rec.disconnected and rec.disconnected[0][0] is True  # the blocked attempt counted as a drop
    await live.disconnect()


async def test_user_disconnect_sends_no_unexpected_alert(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await until(lambda: live.state is ConnectionState.CONNECTED, what="connected")
    await live.disconnect()
    assert rec.disconnected == [(False, rec.disconnected[0][1])] and live.state is ConnectionState.IDLE
    snapshot = live.status()
    assert snapshot.username == "host" and snapshot.connected_since is None

"""The live connection manager with the REAL TikTokLive client against the loopback fake TikTok.

Delays are scaled down (short 0.05 s, long 0.15 s). Timing is only asserted as ratios of measured gaps
(liveness requests, sign requests) and through the delays the manager asked its injected ``sleep`` for.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from config import Config
from errors import NotConnectedError, NotFoundError, ValidationError
from models import EngagementEvent, EventKind
from services.tiktok.live import ConnectionState, EndReason, LiveConnectionManager, LiveInfo, StatusSnapshot
from tests.faketiktok.server import (
    FakeTikTok,
    chat,
    follow,
    gift,
    join,
    like,
    live_end,
    share,
    streak,
    subscribe,
    unknown,
    user,
    viewers,
)

# Works with or without ``-p tests.faketiktok.pytest_plugin`` on the command line.
pytest_plugins = ["tests.faketiktok.pytest_plugin"]

SHORT, LONG = 0.05, 0.15


@dataclass
class Recorder:
    """A listener that remembers everything (and can be told to fail)."""

    events: list[EngagementEvent] = field(default_factory=list)
    snapshots: list[StatusSnapshot] = field(default_factory=list)
    connected: list[LiveInfo] = field(default_factory=list)
    disconnected: list[tuple[LiveInfo, bool, float]] = field(default_factory=list)
    ended: list[LiveInfo] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    session_ids: Any = None
    explode: bool = False

    def on_events(self, events: list[EngagementEvent]) -> None:
        self.calls.append("events")
        self.events.extend(events)
        if self.explode:
            raise RuntimeError("listener bug")

    def on_state(self, snapshot: StatusSnapshot) -> None:
        self.snapshots.append(snapshot)
        if self.explode:
            raise RuntimeError("listener bug")

    async def on_connected(self, info: LiveInfo) -> Any:
        self.calls.append("connected")
        await asyncio.sleep(0.02)  # like a database write: events arriving meanwhile must wait for the session
        self.connected.append(info)
        if self.explode:
            raise RuntimeError("listener bug")
        return next(self.session_ids) if self.session_ids is not None else None

    async def on_disconnected(self, info: LiveInfo, unexpected: bool, duration: float) -> None:
        self.calls.append("disconnected")
        self.disconnected.append((info, unexpected, duration))

    async def on_session_end(self, info: LiveInfo) -> None:
        self.calls.append("session_end")
        self.ended.append(info)

    @property
    def states(self) -> list[ConnectionState]:
        """The distinct successive states reported."""
        return [s for s, _ in itertools.groupby(snap.state for snap in self.snapshots)]

    def unexpected(self) -> list[bool]:
        return [u for _, u, _ in self.disconnected]

    def shape(self) -> list[tuple[Any, ...]]:
        """The events without their receive time: what the tests compare exactly."""
        return [(e.kind, e.handle, e.count, e.coins, e.text, e.viewers) for e in self.events]


class SleepLog:
    """The manager's injected sleep: really sleeps, and remembers what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(seconds)


def manager(recorder: Recorder, **kw: Any) -> LiveConnectionManager:
    return LiveConnectionManager(1, recorder, short_delay=kw.pop("short", SHORT), long_delay=kw.pop("long", LONG), **kw)


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def settle(seconds: float = 0.1) -> None:
    """Give the client time to decode and dispatch what the fake pushed."""
    await asyncio.sleep(seconds)


# ---------------------------------------------------------------------- refusing early


async def test_unknown_user_is_a_clear_error_and_leaves_nothing_running(fake_tiktok: FakeTikTok) -> None:
    rec = Recorder()
    live = manager(rec)
    with pytest.raises(NotFoundError, match="TikTok user @ghost was not found"):
        await live.connect("@@Ghost")
    assert live.state is ConnectionState.IDLE and not live.running and live._client is None
    assert fake_tiktok.sign_requests == [] and len(fake_tiktok.liveness_requests) == 1
    await asyncio.sleep(3 * SHORT)
    assert len(fake_tiktok.liveness_requests) == 1  # no retry loop behind our back
    with pytest.raises(ValidationError):
        await live.connect("@@")


async def test_offline_host_without_persistence_is_refused(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("sleepy", live=False)
    live = manager(Recorder())
    with pytest.raises(NotConnectedError, match="@sleepy is not live right now"):
        await live.connect("Sleepy", persistent=False)
    assert fake_tiktok.sign_requests == [] and live.state is ConnectionState.IDLE and not live.running


async def test_failed_first_attempt_without_persistence_is_refused_with_the_reason(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    fake_tiktok.sign_errors = [500]
    live = manager(Recorder())
    with pytest.raises(NotConnectedError, match="SignAPIError"):
        await live.connect("host", persistent=False)
    assert live.state is ConnectionState.IDLE and not live.running and len(fake_tiktok.sign_requests) == 1


# ---------------------------------------------------------------------- waiting for the live


async def test_offline_then_live_retries_with_the_cadence_and_reports_every_state(fake_tiktok: FakeTikTok) -> None:
    host = fake_tiktok.host("host", live=False)
    rec, sleeps = Recorder(), SleepLog()
    live = manager(rec, sleep=sleeps)
    first = await live.connect("@Host")
    assert first.state is ConnectionState.CONNECTING and first.persistent and first.username == "host"
    await until(lambda: len(fake_tiktok.liveness_requests) >= 6, what="six liveness checks")
    host.live = True
    await fake_tiktok.wait_connected()
    await until(lambda: live.state is ConnectionState.CONNECTED, what="connected")
    # The delays asked for: three short ones, then long ones.
    assert sleeps.asked[:5] == [SHORT, SHORT, SHORT, LONG, LONG]
    # The gaps measured at the fake follow the same cadence (ratio, generous tolerance).
    times = [t for t, _ in fake_tiktok.liveness_requests]
    gaps = [b - a for a, b in itertools.pairwise(times)][:5]
    short_gap = sum(gaps[:3]) / 3
    assert min(gaps[3:5]) > 1.8 * short_gap, gaps
    assert len(fake_tiktok.sign_requests) == 1  # waiting costs no sign-server request
    assert fake_tiktok.sign_log[0].room_id == str(host.room_id)
    waiting = [s for s in rec.snapshots if s.state is ConnectionState.WAITING_TO_RETRY]
    assert [s.attempts for s in waiting][:4] == [1, 2, 3, 4] and all(s.next_attempt_at for s in waiting)
    snap = live.status()
    assert snap.active and snap.room_id == host.room_id and snap.session_id and snap.connected_since
    assert snap.elapsed(time.time()) >= snap.uptime(time.time()) >= 0
    await live.disconnect()
    assert rec.states == [ConnectionState.CONNECTING, ConnectionState.WAITING_TO_RETRY, ConnectionState.CONNECTING,
                          ConnectionState.CONNECTED, ConnectionState.DISCONNECTING, ConnectionState.IDLE]  # fmt: skip
    assert rec.unexpected() == [False] and len(rec.ended) == 1 and rec.ended[0].end_reason is EndReason.USER
    assert live.status().state is ConnectionState.IDLE and live.status().session_id is None


async def test_disconnect_while_waiting_cancels_the_attempts(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=False)
    rec = Recorder()
    live = manager(rec, short=30.0)
    await live.connect("host")
    await until(lambda: live.state is ConnectionState.WAITING_TO_RETRY, what="waiting")
    await asyncio.wait_for(live.disconnect(), 2)  # does not sit out the 30 s
    assert live.state is ConnectionState.IDLE and not live.running
    assert rec.connected == [] and rec.disconnected == [] and rec.ended == []  # no session, no alert
    assert fake_tiktok.sign_requests == []


async def test_disconnect_during_the_handshake_leaves_nothing_open(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    fake_tiktok.handshake_delay = 0.3
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await until(lambda: fake_tiktok.ws_requests, what="the websocket upgrade request")
    assert live.state is ConnectionState.CONNECTING
    await asyncio.wait_for(live.disconnect(), 2)
    assert live.state is ConnectionState.IDLE and not live.running and live._lib_task is None
    assert rec.connected == [] and rec.ended == []
    await asyncio.sleep(0.4)  # past the fake's delay: the cancelled client never enters the room
    assert fake_tiktok.entered() == 0 and fake_tiktok.open_sockets == 0


# ---------------------------------------------------------------------- sign server and handshake failures


async def test_sign_429_waits_for_its_reset_and_without_headers_falls_back_to_the_long_delay(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.host("host", live=True)
    reset_at = int(time.time()) + 100
    fake_tiktok.rate_limit_next(reset_at=reset_at)
    fake_tiktok.rate_limit_next()  # no RateLimit headers: 7.0.1 raises a TypeError for it
    # The manager's clock stands 0.4 s before the reset, so the reset is 0.4 s away however long the
    # handshake took on a busy machine (a clock that ran on made this depend on the machine's speed).
    rec, sleeps = Recorder(), SleepLog()
    live = manager(rec, sleep=sleeps, clock=lambda: reset_at - 0.4)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    assert len(fake_tiktok.sign_requests) == 3
    assert sleeps.asked[0] == pytest.approx(0.4, abs=0.1)  # until the reset, not the short delay
    assert sleeps.asked[1] == LONG
    gaps = [b - a for a, b in itertools.pairwise(fake_tiktok.sign_requests)]
    assert gaps[0] > 0.9 * sleeps.asked[0] and gaps[1] > 0.9 * LONG
    await until(lambda: rec.connected, what="the session")
    assert rec.disconnected == []  # failed attempts are not sessions
    await live.disconnect()


async def test_garbage_reset_time_falls_back_to_the_long_delay(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    fake_tiktok.sign_429.append({"RateLimit-Remaining": "0", "RateLimit-Reset": "soon"})
    rec, sleeps = Recorder(), SleepLog()
    live = manager(rec, sleep=sleeps)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    assert sleeps.asked[0] == LONG
    await live.disconnect()


@pytest.mark.parametrize("status", [400, 200])
async def test_blocked_handshake_is_retried_without_a_session(fake_tiktok: FakeTikTok, status: int) -> None:
    fake_tiktok.host("host", live=True)
    fake_tiktok.block_handshakes, fake_tiktok.block_status = 2, status
    rec, sleeps = Recorder(), SleepLog()
    live = manager(rec, sleep=sleeps)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await until(lambda: rec.connected, what="the session")
    assert len(fake_tiktok.ws_requests) == 3 and len(fake_tiktok.sign_requests) == 3
    assert sleeps.asked == [SHORT, SHORT]
    assert rec.disconnected == [] and len(rec.connected) == 1  # the blocked attempts were not sessions
    assert "WebcastBlocked" in (rec.connected[0].last_error or "")
    await live.disconnect()


# ---------------------------------------------------------------------- a whole live


async def test_full_session_produces_exactly_the_expected_events_and_survives_a_reconnect(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.host("host", live=True)
    bob, ann = user("Bob.Beats", 11, "Bob"), user("@Ann", 12)
    fake_tiktok.backlog = [chat(bob, "old comment", 1)]  # sent again on every (re)connect
    rec = Recorder(session_ids=iter(["S1", "S2"]))
    live = manager(rec)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await until(lambda: live.state is ConnectionState.CONNECTED and live.session_id == "S1", what="session S1")
    await fake_tiktok.push(
        chat(bob, "hello", 2), like(bob, 7, 7, 3), like(ann, 3, 10, 4),
        *streak(bob, diamonds=2, steps=3, first_msg_id=5),
        gift(ann, diamonds=99, repeat=1, end=False, streakable=False, msg_id=8),
        follow(bob, 9), share(ann, 10), join(ann, 11), subscribe(ann, 12), viewers(321, 13), unknown(),
    )  # fmt: skip
    await fake_tiktok.push(chat(bob, "hello", 2))  # the same message again: dropped by id
    await until(lambda: any(e.kind is EventKind.VIEWERS for e in rec.events), what="every event")
    await settle()
    expected = [
        (EventKind.COMMENT, "bob.beats", 1, 0, "old comment", None),
        (EventKind.COMMENT, "bob.beats", 1, 0, "hello", None),
        (EventKind.LIKE, "bob.beats", 7, 0, None, None),
        (EventKind.LIKE, "ann", 3, 0, None, None),
        (EventKind.GIFT, "bob.beats", 1, 6, None, None),  # the streak, once: 3 x 2 diamonds
        (EventKind.GIFT, "ann", 1, 99, None, None),
        (EventKind.FOLLOW, "bob.beats", 1, 0, None, None),  # not doubled by the SocialEvent
        (EventKind.SHARE, "ann", 1, 0, None, None),
        (EventKind.JOIN, "ann", 1, 0, None, None),
        (EventKind.SUBSCRIBE, "ann", 1, 0, None, None),
        (EventKind.VIEWERS, None, 1, 0, None, 321),
    ]
    assert rec.shape() == expected
    assert (rec.events[0].tiktok_user_id, rec.events[0].nickname, rec.events[0].msg_id) == (11, "Bob", 1)
    # The backlog arrived while on_connected was running: it was handed over after it, inside the session.
    assert rec.calls[:2] == ["connected", "events"]
    # A drop and a reconnect: the backlog comes again and is not counted twice.
    await fake_tiktok.close_sockets(code=1011)
    await fake_tiktok.wait_connected(2)
    await until(lambda: live.session_id == "S2", what="the second session")
    await fake_tiktok.push(chat(bob, "hello", 2), chat(ann, "back again", 14))
    await until(lambda: len(rec.events) > len(expected), what="the new comment")
    await settle()
    assert rec.shape() == [*expected, (EventKind.COMMENT, "ann", 1, 0, "back again", None)]
    await live.disconnect()
    assert [i.session_id for i in rec.ended] == ["S1", "S2"]


async def test_abnormal_close_is_an_unexpected_drop_then_it_reconnects(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    bob = user("bob", 1)
    await fake_tiktok.push(gift(bob, diamonds=10, repeat=3, end=False, streakable=True, msg_id=100))
    await settle()
    await fake_tiktok.close_sockets(code=1011)  # mid-streak, abnormal: the socket task raises
    await until(lambda: rec.disconnected, what="the drop")
    info, unexpected, duration = rec.disconnected[0]
    assert unexpected is True and info.end_reason is EndReason.DROPPED and duration > 0
    assert "ConnectionClosed" in (info.last_error or "")
    assert [e.coins for e in rec.events] == [30]  # the open streak is committed once, inside the session
    assert rec.calls[-3:] == ["events", "disconnected", "session_end"]
    await fake_tiktok.wait_connected(2)
    await until(lambda: len(rec.connected) == 2, what="reconnected")
    # The streak's end arriving after the reconnect adds nothing: it was committed in full.
    await fake_tiktok.push(gift(bob, diamonds=10, repeat=3, end=True, streakable=True, msg_id=101))
    await settle()
    assert [e.coins for e in rec.events] == [30]
    await live.disconnect()
    assert rec.unexpected() == [True, False] and len(rec.ended) == 2


async def test_live_end_ends_the_session_and_waits_for_the_next_live(fake_tiktok: FakeTikTok) -> None:
    host = fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec, short=0.1)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await until(lambda: rec.connected, what="the session")
    host.live = False
    await fake_tiktok.push(live_end(1))
    await until(lambda: rec.ended, what="session end")
    assert rec.unexpected() == [False] and rec.ended[0].end_reason is EndReason.LIVE_END
    await until(lambda: len(fake_tiktok.liveness_requests) >= 3, what="checks for the next live")
    assert live.state in (ConnectionState.WAITING_TO_RETRY, ConnectionState.CONNECTING)
    host.live = True
    await fake_tiktok.wait_connected(2)
    await until(lambda: len(rec.connected) == 2, what="the next live")
    await live.disconnect()
    assert live.state is ConnectionState.IDLE and len(rec.ended) == 2


async def test_clean_close_without_persistence_ends_everything(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec)
    snap = await live.connect("host", persistent=False)
    assert snap.state is ConnectionState.CONNECTED and rec.connected  # not persistent: waits for the session
    await fake_tiktok.close_sockets(code=1000)
    await until(lambda: live.state is ConnectionState.IDLE, what="idle")
    assert rec.unexpected() == [False] and rec.ended[0].end_reason is EndReason.CLOSED and not live.running
    assert len(fake_tiktok.sign_requests) == 1


async def test_user_disconnect_sends_no_unexpected_alert(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec)
    await live.connect("host")
    await until(lambda: live.state is ConnectionState.CONNECTED and rec.connected, what="connected")
    await live.disconnect()
    assert rec.unexpected() == [False] and rec.ended[0].end_reason is EndReason.USER
    assert live.state is ConnectionState.IDLE and fake_tiktok.open_sockets == 0 and live._client is None
    snapshot = live.status()
    assert snapshot.username == "host" and snapshot.connected_since is None
    await live.disconnect()  # idempotent


async def test_unfinished_streak_is_committed_by_the_periodic_flush(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder()
    live = manager(rec, streak_timeout=0.2, flush_interval=0.05)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await fake_tiktok.push(*streak(user("bob", 1), diamonds=5, steps=4, first_msg_id=1, end=False))
    await until(lambda: rec.events, what="the stale streak")
    assert [(e.kind, e.coins) for e in rec.events] == [(EventKind.GIFT, 20)]
    await live.disconnect()
    assert [e.coins for e in rec.events] == [20]  # flush_all at the end adds nothing


async def test_listener_failures_never_kill_the_connection(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("host", live=True)
    rec = Recorder(explode=True)
    live = manager(rec)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    await until(lambda: rec.connected, what="the session")
    await fake_tiktok.push(chat(user("bob", 1), "one", 1))
    await fake_tiktok.push(chat(user("bob", 1), "two", 2))
    await until(lambda: len(rec.events) == 2, what="both comments despite the failing listener")
    assert live.state is ConnectionState.CONNECTED and fake_tiktok.open_sockets == 1
    await live.disconnect()
    assert live.state is ConnectionState.IDLE


async def test_config_overrides_reach_the_client(fake_tiktok: FakeTikTok, monkeypatch: pytest.MonkeyPatch) -> None:
    from TikTokLive.client.web.web_settings import WebDefaults

    # Everything points elsewhere; only the project's config leads to the fake.
    monkeypatch.setenv("SIGN_API_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(WebDefaults, "tiktok_app_url", "http://127.0.0.1:9")
    monkeypatch.setattr(WebDefaults, "tiktok_webcast_url", "http://127.0.0.1:9/webcast")
    config = Config(token="t", sign_api_key="fake-key-123", sign_api_url=fake_tiktok.base_url,
                    tiktok_web_url=fake_tiktok.base_url, tiktok_webcast_url=fake_tiktok.webcast_url)  # fmt: skip
    fake_tiktok.host("host", live=True)
    live = manager(Recorder(), config=config)
    await live.connect("host")
    await fake_tiktok.wait_connected()
    assert WebDefaults.tiktok_app_url == fake_tiktok.base_url
    assert WebDefaults.tiktok_webcast_url == fake_tiktok.webcast_url
    assert [r.api_key for r in fake_tiktok.sign_log] == ["fake-key-123"]
    await live.disconnect()


async def test_reconnecting_to_another_host_ends_the_first_session(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.host("one", live=True)
    fake_tiktok.host("two", live=True)
    rec = Recorder()
    live = manager(rec)
    await live.connect("one")
    await until(lambda: rec.connected, what="the first session")
    await live.connect("two")
    await until(lambda: len(rec.connected) == 2, what="the second session")
    assert [i.username for i in rec.connected] == ["one", "two"] and rec.unexpected() == [False]
    assert fake_tiktok.open_sockets == 1
    await live.disconnect()

"""TikTok connections in child processes (``LiveWorker``, ``LiveWorkerPool``), TikTokLive in them, the fake TikTok.

``LiveWorker`` has a child of its own; ``LiveWorkerPool`` hosts many lives per child.

What must hold across the process boundary is what the manager promises in one process: the same
snapshots, events only inside a session and in order, the same errors, the child's log in the bot's log;
plus what a second process adds: a crash ends the session as a drop and a persistent connection comes back,
the child dies with the bot, never sees the Discord token, and refuses frames that name foreign classes.
And what the pool adds: lives that share a child stay apart, a new live goes to the least-loaded child,
and a crash of one child ends only that child's lives.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import pickle
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from errors import NotConnectedError, NotFoundError
from models import EngagementEvent, EventKind
from services.tiktok.live import ConnectionState
from services.tiktok.worker import EVENT_BATCH_ROWS, NICENESS, Channel, LiveWorker, LiveWorkerPool
from tests.faketiktok.server import FakeTikTok, chat, like, user
from tests.test_tiktok_live import LONG, SHORT, Recorder

pytest_plugins = ["tests.faketiktok.pytest_plugin"]

ROOT = Path(__file__).resolve().parents[1]


async def until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Wait for ``predicate`` to become true (the child runs on its own clock)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def worker(fake_tiktok: FakeTikTok) -> AsyncIterator[tuple[LiveWorker, Recorder, FakeTikTok]]:
    """A worker whose child reaches the fake through the bot's settings (not through this process's env)."""
    url = fake_tiktok.base_url
    config = SimpleNamespace(sign_api_url=url, sign_api_key=None, tiktok_web_url=url,
                             tiktok_webcast_url=fake_tiktok.webcast_url)  # fmt: skip
    recorder = Recorder()
    live = LiveWorker(7, recorder, config=config, restart_delay=0.05,
                      manager_options={"short_delay": SHORT, "long_delay": LONG})  # fmt: skip
    yield live, recorder, fake_tiktok
    await live.close()


async def test_a_live_through_the_worker_behaves_like_the_manager(worker) -> None:
    live, recorder, fake = worker
    fake.host("streamer", live=True)
    await live.connect("@Streamer")
    await until(lambda: live.status().state is ConnectionState.CONNECTED, "the connected state")
    assert live.running and live.pid is not None
    fan = user("Fan.One", 5)
    await fake.push(chat(fan, "hello", 1), like(fan, 3, 3, 2))
    await until(lambda: len(recorder.events) == 2, "both events")
    assert [e.kind for e in recorder.events] == [EventKind.COMMENT, EventKind.LIKE]
    assert recorder.events[0].handle == "fan.one" and recorder.events[1].count == 3
    assert recorder.calls[0] == "connected" and recorder.connected[0].username == "streamer"
    await live.disconnect()
    assert live.status().state is ConnectionState.IDLE and not live.running
    assert recorder.calls[-2:] == ["disconnected", "session_end"] and recorder.unexpected() == [False]
    states = recorder.states
    order = [ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.DISCONNECTING, ConnectionState.IDLE]
    assert states[states.index(ConnectionState.CONNECTING) :] == order
    pid = live.pid
    assert pid is not None  # the child stays for the next connect
    await live.close()
    assert live.pid is None and not alive(pid)


async def test_errors_cross_the_boundary_with_their_type_and_message(worker) -> None:
    live, _recorder, fake = worker
    with pytest.raises(NotFoundError, match=r"nobody\.here"):
        await live.connect("nobody.here")
    fake.host("sleepy", live=False)
    with pytest.raises(NotConnectedError, match="not live"):
        await live.connect("sleepy", persistent=False)
    assert live.status().state is ConnectionState.IDLE


async def test_the_childs_log_reaches_the_bots_log(worker, caplog: pytest.LogCaptureFixture) -> None:
    live, recorder, fake = worker
    fake.host("streamer", live=True)
    fake.rate_limit_next()  # the first signed attempt fails and the manager, in the child, logs a warning
    caplog.set_level(logging.INFO)
    await live.connect("streamer", persistent=True)
    await until(lambda: recorder.connected, "the retry to connect")
    assert any(r.name == "services.tiktok.worker" and "started" in r.getMessage() for r in caplog.records)
    warnings = [r for r in caplog.records if r.name == "services.tiktok.live" and r.levelno == logging.WARNING]
    assert any("attempt to @streamer failed" in r.getMessage() for r in warnings)


async def test_a_crashed_child_ends_the_session_as_a_drop_and_a_persistent_live_comes_back(worker) -> None:
    live, recorder, fake = worker
    fake.host("streamer", live=True)
    await live.connect("streamer", persistent=True)
    await until(lambda: recorder.connected, "the session to open")
    first = live.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await until(lambda: recorder.ended, "the session to end")
    assert recorder.unexpected() == [True]
    assert "process stopped" in (recorder.disconnected[0][0].last_error or "")
    await until(lambda: len(recorder.connected) == 2, "the restarted connection", timeout=20)
    assert live.pid not in (None, first)
    await live.disconnect()
    assert recorder.unexpected() == [True, False] and len(recorder.ended) == 2


async def test_the_child_exits_with_the_bot_and_closes_the_live(worker) -> None:
    live, _recorder, fake = worker
    fake.host("streamer", live=True)
    await live.connect("streamer")
    await until(lambda: fake.open_sockets == 1, "the webcast socket")
    pid = live.pid
    assert pid is not None
    channel = live.own._channel
    assert channel is not None
    live.own._closing = True  # as if the bot were gone: only the pipe closes, nobody asks for a disconnect
    channel.close()
    await until(lambda: not alive(pid), "the child to exit")
    await until(lambda: fake.open_sockets == 0, "the webcast socket to close")


async def test_the_child_runs_without_the_token_and_below_the_bots_priority(worker, monkeypatch) -> None:
    live, _recorder, fake = worker
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    fake.host("streamer", live=True)
    await live.connect("streamer")
    assert live.pid is not None
    environment = Path(f"/proc/{live.pid}/environ").read_bytes()  # noqa: ASYNC240 - procfs, never blocks
    assert b"secret-token-value" not in environment and b"DISCORD_TOKEN" not in environment
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, live.pid) == min(19, own + NICENESS)


async def test_a_frame_naming_a_foreign_class_is_refused() -> None:
    reader = asyncio.StreamReader()
    data = pickle.dumps(("events", [io.StringIO("x")]))
    reader.feed_data(len(data).to_bytes(4, "big") + data)
    reader.feed_eof()
    channel = Channel(reader, None)  # type: ignore[arg-type]
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        await channel.receive()
    oversized = asyncio.StreamReader()
    oversized.feed_data((2**31).to_bytes(4, "big"))
    with pytest.raises(pickle.UnpicklingError, match="frame of"):
        await Channel(oversized, None).receive()  # type: ignore[arg-type]


async def test_a_batch_frame_goes_once_it_holds_enough_events_without_waiting_for_its_age() -> None:
    """Lives that push at the same moment must not make one frame of many hundreds (one step of the bot's loop)."""
    written: list[bytes] = []
    writer = SimpleNamespace(is_closing=lambda: False, write=written.append, close=lambda: None)
    channel = Channel(asyncio.StreamReader(), writer)  # type: ignore[arg-type]
    for guild in range(3 * EVENT_BATCH_ROWS // 10):
        channel.send_events(guild, [EngagementEvent(EventKind.LIKE, f"fan{n}", 1000.0) for n in range(10)])
    assert len(written) == 3  # at once, not after EVENT_BATCH_SECONDS
    frames = [pickle.loads(data[4:]) for data in written]
    assert [sum(len(rows) for _, rows in frame[1]) for frame in frames] == [EVENT_BATCH_ROWS] * 3
    channel.send_events(0, [EngagementEvent(EventKind.LIKE, "late", 1001.0)])
    assert len(written) == 3  # a small batch still waits for its age
    channel.close()  # and goes on close, after the others
    assert [rows[0][1] for _, rows in pickle.loads(written[3][4:])[1]] == ["late"]


# ---------------------------------------------------------------------------------------------- the pool


def _config(fake: FakeTikTok) -> SimpleNamespace:
    url = fake.base_url
    return SimpleNamespace(sign_api_url=url, sign_api_key=None, tiktok_web_url=url, tiktok_webcast_url=fake.webcast_url)


@pytest.fixture
async def pool_of(fake_tiktok: FakeTikTok) -> AsyncIterator[Callable[[int], LiveWorkerPool]]:
    """Build pools of a given size on the fake; every pool is closed after the test."""
    pools: list[LiveWorkerPool] = []

    def build(size: int) -> LiveWorkerPool:
        pool = LiveWorkerPool(_config(fake_tiktok), size=size, restart_delay=0.05,
                              manager_options={"short_delay": SHORT, "long_delay": LONG})  # fmt: skip
        pools.append(pool)
        return pool

    yield build
    for pool in pools:
        await pool.close()


async def _connect_all(pool: LiveWorkerPool, fake: FakeTikTok, guilds: list[int]) -> dict[int, Recorder]:
    recorders = {}
    for guild in guilds:
        fake.host(f"host{guild}", live=True)
        recorders[guild] = Recorder()
        await pool.connection(guild, recorders[guild]).connect(f"host{guild}")
    for guild in guilds:
        live = pool.connection(guild, recorders[guild])
        await until(lambda live=live: live.status().state is ConnectionState.CONNECTED, f"guild {guild} connected")
    return recorders


async def test_two_guilds_in_one_process_get_their_own_events(pool_of, fake_tiktok: FakeTikTok) -> None:
    pool = pool_of(1)
    recorders = await _connect_all(pool, fake_tiktok, [1, 2])
    one, two = pool.connection(1, recorders[1]), pool.connection(2, recorders[2])
    assert one.pid is not None and one.pid == two.pid and pool.loads() == [(one.pid, 2)]
    fan = user("Fan.One", 5)
    await fake_tiktok.push_to("host1", chat(fan, "for one", 1))
    await fake_tiktok.push_to("host2", like(fan, 7, 7, 1), chat(fan, "for two", 2))
    await until(lambda: len(recorders[1].events) == 1 and len(recorders[2].events) == 2, "each guild's events")
    assert [e.text for e in recorders[1].events] == ["for one"]
    assert [(e.kind, e.count) for e in recorders[2].events] == [(EventKind.LIKE, 7), (EventKind.COMMENT, 1)]
    assert recorders[1].connected[0].guild_id == 1 and recorders[2].connected[0].username == "host2"
    await one.disconnect()  # the other live goes on in the same process
    assert recorders[1].calls[-2:] == ["disconnected", "session_end"] and not recorders[2].disconnected
    await fake_tiktok.push_to("host2", chat(fan, "still here", 3))
    await until(lambda: len(recorders[2].events) == 3, "the other guild's next event")
    assert len(recorders[1].events) == 1 and two.status().state is ConnectionState.CONNECTED
    assert pool.loads() == [(two.pid, 1)]


async def test_a_new_live_goes_to_the_least_loaded_process(pool_of, fake_tiktok: FakeTikTok) -> None:
    pool = pool_of(2)
    recorders = await _connect_all(pool, fake_tiktok, [1, 2, 3])
    pid = {guild: pool.connection(guild, recorders[guild]).pid for guild in (1, 2, 3)}
    assert pid[1] != pid[2] and pid[3] == pid[1]  # one each, then the tie goes to the first running child
    assert sorted(load for _, load in pool.loads()) == [1, 2]
    await pool.connection(1, recorders[1]).disconnect()
    await pool.connection(3, recorders[3]).disconnect()
    await _connect_all(pool, fake_tiktok, [4])
    assert pool.connection(4, Recorder()).pid == pid[1]  # the now empty child, not the one with a live


async def test_killing_one_process_ends_only_its_lives_as_drops_and_they_reconnect(
    pool_of, fake_tiktok: FakeTikTok
) -> None:
    pool = pool_of(2)
    guilds = [1, 2, 3, 4]
    recorders = await _connect_all(pool, fake_tiktok, guilds)
    lives = {guild: pool.connection(guild, recorders[guild]) for guild in guilds}
    victim = lives[1].pid
    assert victim is not None
    hit = [g for g in guilds if lives[g].pid == victim]
    spared = [g for g in guilds if g not in hit]
    assert len(hit) == 2 and len(spared) == 2
    os.kill(victim, signal.SIGKILL)
    await until(lambda: all(recorders[g].ended for g in hit), "the sessions on the dead process to end")
    for guild in hit:
        assert recorders[guild].unexpected() == [True]
        assert "process stopped" in (recorders[guild].disconnected[0][0].last_error or "")
    await until(lambda: all(len(recorders[g].connected) == 2 for g in hit), "the lives to come back", timeout=30)
    for guild in spared:
        assert recorders[guild].disconnected == [] and len(recorders[guild].connected) == 1
        assert lives[guild].status().state is ConnectionState.CONNECTED
    assert all(lives[g].pid not in (None, victim) for g in hit)
    fan = user("Fan", 9)
    for guild in guilds:
        await fake_tiktok.push_to(f"host{guild}", chat(fan, f"to {guild}", 100 + guild))
    await until(lambda: all(recorders[g].events for g in guilds), "every live to receive again")
    assert all([e.text for e in recorders[g].events] == [f"to {g}"] for g in guilds)


async def test_pool_children_run_without_the_token_and_below_the_bots_priority(
    pool_of, fake_tiktok: FakeTikTok, monkeypatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    pool = pool_of(2)
    await _connect_all(pool, fake_tiktok, [1, 2])
    own = os.getpriority(os.PRIO_PROCESS, 0)
    pids = [pid for pid, _ in pool.loads()]
    assert len(pids) == 2 and None not in pids
    for pid in pids:
        assert pid is not None
        environment = Path(f"/proc/{pid}/environ").read_bytes()  # noqa: ASYNC240 - procfs, never blocks
        assert b"secret-token-value" not in environment and b"DISCORD_TOKEN" not in environment
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, own + NICENESS)


_PARENT = """
import asyncio, sys, types
from services.tiktok.worker import LiveWorkerPool

class Quiet:
    def on_events(self, events): pass
    def on_state(self, snapshot): pass
    async def on_connected(self, info): pass
    async def on_disconnected(self, info, unexpected, duration): pass
    async def on_session_end(self, info): pass

async def main():
    url, webcast = sys.argv[1], sys.argv[2]
    config = types.SimpleNamespace(sign_api_url=url, tiktok_web_url=url, tiktok_webcast_url=webcast)
    pool = LiveWorkerPool(config, size=2)
    for guild in (1, 2, 3):
        await pool.connection(guild, Quiet()).connect(f"host{guild}")
    print(" ".join(str(pid) for pid, _ in pool.loads()), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_pool_children_exit_with_the_bot_and_close_their_lives(fake_tiktok: FakeTikTok) -> None:
    for guild in (1, 2, 3):
        fake_tiktok.host(f"host{guild}", live=True)
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PARENT, fake_tiktok.base_url, fake_tiktok.webcast_url,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert parent.stdout is not None
    pids = [int(pid) for pid in (await asyncio.wait_for(parent.stdout.readline(), 60)).split()]
    assert len(pids) == 2
    await until(lambda: fake_tiktok.open_sockets == 3, "three webcast sockets", timeout=30)
    parent.kill()  # the bot dies without closing anything: only its pipes close
    await parent.wait()
    await until(lambda: not any(alive(pid) for pid in pids), "the children to exit")
    await until(lambda: fake_tiktok.open_sockets == 0, "the webcast sockets to close")

"""The TikTok connection in its own process: ``LiveWorker``, a real child, TikTokLive in it, the fake TikTok.

What must hold across the process boundary is what the manager promises in one process: the same
snapshots, events only inside a session and in order, the same errors, the child's log in the bot's log;
plus what a second process adds: a crash ends the session as a drop and a persistent connection comes back,
the child dies with the bot, never sees the Discord token, and refuses frames that name foreign classes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import pickle
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from errors import NotConnectedError, NotFoundError
from models import EventKind
from services.tiktok.live import ConnectionState
from services.tiktok.worker import NICENESS, Channel, LiveWorker
from tests.faketiktok.server import FakeTikTok, chat, like, user
from tests.test_tiktok_live import LONG, SHORT, Recorder

pytest_plugins = ["tests.faketiktok.pytest_plugin"]


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
    assert live._channel is not None
    live._closing = True  # as if the bot were gone: only the pipe closes, nobody asks for a disconnect
    live._channel.close()
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

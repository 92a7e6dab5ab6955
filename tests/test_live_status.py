"""The TikTok status message during a drop (issue 12 point 1): reconnecting to the same live, then back.

The board's own renderer and feed handling with duck-typed connections, sessions (which say until when a
dropped live's session waits, see tests/test_live_sessions.py) and notifier; the end to
end run on the fake TikTok is ``tests/e2e/test_live_reconnect.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord

from models import LiveSession
from services.feed import ChangeFeed, LiveConnected, LiveDropped, LiveEnded, LiveStatusChanged
from services.tiktok.live import StatusSnapshot
from ui.live_status import LiveStatusBoard

GUILD = 1000
NOW = 1_800_000_000.0


@dataclass
class World:
    """The connection's state, the open session and the edits of the status message."""

    state: str = "connected"
    session: LiveSession | None = None
    until: float | None = None  # the session service's answer: until when a dropped live's session waits
    edits: list[discord.Embed] = field(default_factory=list)

    # connections
    def get(self, guild_id: int) -> World:
        return self

    def status(self) -> StatusSnapshot:
        return StatusSnapshot(self.state, "streamer", 77, NOW - 60, 2, True, NOW - 120, None)  # type: ignore[arg-type]  # a str state, as after the worker

    # sessions
    def current(self, guild_id: int) -> LiveSession | None:
        return self.session

    def reconnect_until(self, guild_id: int) -> float | None:
        return self.until

    # notifier
    async def post(self, channel_id: int, **kwargs: Any) -> Any:
        return SimpleNamespace(id=5, channel=SimpleNamespace(id=channel_id))

    async def edit(self, channel_id: int, message_id: int, *, embed: discord.Embed, what: str) -> bool:
        self.edits.append(embed)
        return True


def board_of(world: World, feed: ChangeFeed) -> LiveStatusBoard:
    board = LiveStatusBoard(world, world, world, feed)  # type: ignore[arg-type]  # duck-typed
    board.start()
    return board


async def test_a_drop_says_reconnecting_to_the_same_live_until_it_is_back() -> None:
    feed = ChangeFeed()
    world = World(session=LiveSession(id=7, guild_id=GUILD, host="streamer", room_id=77, started_at=NOW - 120))
    board = board_of(world, feed)
    assert await board.post(GUILD, 42)
    assert board.embed(GUILD).title == "🟢 Active: @streamer"

    # The drop: the alert is published while the session is held, the connection waits to retry.
    world.state, world.until = "waiting_to_retry", NOW + 300
    feed.publish(LiveDropped(GUILD, "streamer", 60.0, 7, None, 300))
    await board._edits.flush()
    shown = world.edits[-1]
    assert shown.title == "🟠 Reconnecting to the same live: @streamer"
    assert "waiting for the host" not in (shown.title or "")
    assert f"<t:{int(NOW + 300)}:T>" in (shown.description or "") and "one session with one recap" in (
        shown.description or ""
    )
    assert shown.footer.text == "Room 77 · Session 7"
    world.state = "connecting"  # the next attempt: still the same live
    assert (board.embed(GUILD).title or "").startswith("🟠 Reconnecting to the same live")

    # Back: the connected text again.
    world.state, world.until = "connected", None
    feed.publish(LiveConnected(GUILD, "streamer", 77, 7, resumed=True))
    await board._edits.flush()
    assert world.edits[-1].title == "🟢 Active: @streamer"
    world.state = "waiting_to_retry"  # a later wait with no drop announced is a wait for a new live
    assert board.embed(GUILD).title == "🔵 In progress: waiting for the host to go live"
    await board.close()


async def test_a_drop_that_never_comes_back_waits_for_a_new_live_again() -> None:
    feed = ChangeFeed()
    world = World(session=LiveSession(id=7, guild_id=GUILD, host="streamer", room_id=77, started_at=NOW - 120))
    board = board_of(world, feed)
    world.state, world.until = "waiting_to_retry", NOW + 20
    feed.publish(LiveDropped(GUILD, "streamer", 60.0, 7, None, 20))
    assert (board.embed(GUILD).title or "").startswith("🟠 Reconnecting")
    # The grace window ran out: the session ended, the connection keeps waiting for the host's next live.
    world.session, world.until = None, None
    feed.publish(LiveEnded(GUILD, 7, reason="expired"))
    feed.publish(LiveStatusChanged(GUILD))
    assert board.embed(GUILD).title == "🔵 In progress: waiting for the host to go live"
    # A drop with no grace window (it ended with the drop) is not announced as a reconnect either.
    world.session = LiveSession(id=8, guild_id=GUILD, host="streamer", room_id=77, started_at=NOW)
    feed.publish(LiveDropped(GUILD, "streamer", 60.0, 8, None, 0))
    assert board.embed(GUILD).title == "🔵 In progress: waiting for the host to go live"
    await board.close()

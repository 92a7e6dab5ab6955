"""The display manager's logic against a tiny fake messageable: coalescing, hash skip, self-healing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from database import Database
from models import DisplayKind
from services.feed import ChangeFeed
from ui.displays import DisplayManager, DisplayPermissionError
from ui.notifier import Notifier

GUILD = 7
CHANNEL = 100
DEBUG = 200
KIND = DisplayKind.LIVE_QUEUE
_ids = itertools.count(1000)


def http_error(cls: type[discord.HTTPException], status: int, code: int) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="scripted")
    return cls(response, {"code": code, "message": "scripted"})  # type: ignore[arg-type]


class FakeMessage:
    """A message the bot posted; records what happened to it."""

    def __init__(self, channel: FakeChannel, payload: dict[str, Any]) -> None:
        self.id = next(_ids)
        self.channel = channel
        self.payload = payload
        self.pinned = False
        self.deleted = False

    async def edit(self, **payload: Any) -> FakeMessage:
        self.channel.world.calls.append(("edit", self.id))
        fault = self.channel.world.take_fault("edit")
        if fault is not None:
            raise fault
        if self.deleted:
            raise http_error(discord.NotFound, 404, 10008)
        self.payload = payload
        return self

    async def fetch(self) -> FakeMessage:
        self.channel.world.calls.append(("fetch", self.id))
        if self.deleted:
            raise http_error(discord.NotFound, 404, 10008)
        return self

    async def pin(self, *, reason: str | None = None) -> None:
        self.channel.world.calls.append(("pin", self.id))
        self.pinned = True

    async def unpin(self, *, reason: str | None = None) -> None:
        self.pinned = False

    async def delete(self) -> None:
        self.channel.world.calls.append(("delete", self.id))
        if self.deleted:
            raise http_error(discord.NotFound, 404, 10008)
        self.deleted = True
        self.pinned = False


class FakeChannel:
    """A partial messageable: send, get_partial_message, fetch_message."""

    def __init__(self, world: World, channel_id: int) -> None:
        self.world = world
        self.id = channel_id
        self.messages: dict[int, FakeMessage] = {}

    async def send(self, content: str | None = None, **payload: Any) -> FakeMessage:
        self.world.calls.append(("send", self.id))
        fault = self.world.take_fault("send")
        if fault is not None:
            raise fault
        message = FakeMessage(self, {"content": content, **payload})
        self.messages[message.id] = message
        return message

    def get_partial_message(self, message_id: int) -> FakeMessage:
        message = self.messages.get(message_id)
        if message is None:  # unknown to this fake: behaves like a deleted one
            message = FakeMessage(self, {})
            message.id = message_id
            message.deleted = True
        return message

    async def fetch_message(self, message_id: int) -> FakeMessage:
        return await self.get_partial_message(message_id).fetch()

    def live(self) -> list[FakeMessage]:
        return [m for m in self.messages.values() if not m.deleted]


class World:
    """The fake bot: real database, fake channels, scripted faults, a render counter."""

    def __init__(self, db: Database, window: float) -> None:
        self.db = db
        self.config = SimpleNamespace(display_refresh_seconds=window)
        self.feed = ChangeFeed()
        self.notifier = Notifier(self, db, self.feed, None)  # type: ignore[arg-type]  # duck-typed client, no queue
        self.channels: dict[int, FakeChannel] = {}
        self.calls: list[tuple[str, int]] = []
        self.faults: list[tuple[str, discord.HTTPException | discord.RateLimited]] = []
        self.version = 0
        self.ready = asyncio.Event()
        self.ready.set()

    def get_partial_messageable(self, channel_id: int) -> FakeChannel:
        return self.channels.setdefault(channel_id, FakeChannel(self, channel_id))

    async def wait_until_ready(self) -> None:
        await self.ready.wait()

    def take_fault(self, op: str) -> Exception | None:
        for index, (kind, error) in enumerate(self.faults):
            if kind == op:
                del self.faults[index]
                return error
        return None

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)

    async def render(self, guild_id: int, kind: DisplayKind) -> tuple[discord.Embed, discord.ui.View]:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Next", custom_id="mq:lq:next"))
        return discord.Embed(title="queue", description=f"version {self.version}"), view


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(tmp_path / "displays.db")
    await db.connect()
    yield db
    await db.close()


@pytest.fixture
async def world(database: Database) -> World:
    return World(database, window=0.05)


@pytest.fixture
async def manager(world: World) -> AsyncIterator[DisplayManager]:
    built = DisplayManager(world, render=world.render)  # type: ignore[arg-type]  # duck-typed bot
    yield built
    await built.close()


async def shown(world: World, manager: DisplayManager) -> FakeMessage:
    display = await world.db.get_display(GUILD, KIND)
    assert display is not None and display.message_id is not None
    return world.get_partial_messageable(display.channel_id).messages[display.message_id]


async def test_a_burst_becomes_one_trailing_edit_and_unchanged_content_is_not_sent(
    world: World, manager: DisplayManager
) -> None:
    await manager.ensure(GUILD, KIND, CHANNEL)
    for n in range(50):
        world.version = n + 1
        manager.request(GUILD)
    await manager.flush()
    message = await shown(world, manager)
    # The first request runs at once (version 1 is already rendered), the other 49 collapse into one more.
    assert world.count("edit") <= 2 and message.payload["embed"].description == "version 50"
    edits = world.count("edit")
    for _ in range(5):
        manager.request(GUILD)
        await manager.flush()
    assert world.count("edit") == edits and manager.stats.skipped >= 5


async def test_ensure_is_idempotent_across_restarts_and_repins(world: World, manager: DisplayManager) -> None:
    first = await manager.ensure(GUILD, KIND, CHANNEL)
    assert await manager.ensure(GUILD, KIND, CHANNEL) == first
    message = await shown(world, manager)
    message.pinned = False  # someone unpinned it
    restarted = DisplayManager(world, render=world.render)  # type: ignore[arg-type]
    try:
        assert await restarted.ensure(GUILD, KIND, CHANNEL) == first
    finally:
        await restarted.close()
    assert world.count("send") == 1 and message.pinned
    assert len(world.channels[CHANNEL].live()) == 1


async def test_moving_to_another_channel_posts_first_then_retires_the_old(
    world: World, manager: DisplayManager
) -> None:
    old = await manager.ensure(GUILD, KIND, CHANNEL)
    new = await manager.ensure(GUILD, KIND, CHANNEL + 1)
    assert new != old and world.channels[CHANNEL].messages[old].deleted
    assert world.calls.index(("send", CHANNEL + 1)) < world.calls.index(("delete", old))


async def test_a_deleted_message_is_recreated_and_repinned(world: World, manager: DisplayManager) -> None:
    old = await manager.ensure(GUILD, KIND, CHANNEL)
    await world.channels[CHANNEL].messages[old].delete()
    world.version = 2
    manager.request(GUILD)
    await manager.flush()
    message = await shown(world, manager)
    assert message.id != old and message.pinned and message.payload["embed"].description == "version 2"
    assert manager.stats.recreated == 1


async def test_edit_cap_replaces_the_message_old_one_retired(world: World, manager: DisplayManager) -> None:
    old = await manager.ensure(GUILD, KIND, CHANNEL)
    world.faults.append(("edit", http_error(discord.HTTPException, 429, 30046)))
    world.version = 2
    manager.request(GUILD)
    await manager.flush()
    message = await shown(world, manager)
    assert message.id != old and message.pinned and world.channels[CHANNEL].messages[old].deleted
    assert [m.id for m in world.channels[CHANNEL].live()] == [message.id]


async def test_a_long_rate_limit_replaces_once_then_waits(world: World, manager: DisplayManager) -> None:
    old = await manager.ensure(GUILD, KIND, CHANNEL)
    world.faults.append(("edit", discord.RateLimited(3600)))
    world.version = 2
    manager.request(GUILD)
    await manager.flush()
    replacement = await shown(world, manager)
    assert replacement.id != old and manager.stats.replaced == 1
    # The fresh message is limited too: the limit is the channel's, so no second replacement.
    world.faults.append(("edit", discord.RateLimited(3600)))
    world.version = 3
    manager.request(GUILD)
    await manager.flush()
    assert (await shown(world, manager)).id == replacement.id
    assert manager.stats.replaced == 1 and manager.stats.backoffs == 1
    assert world.count("send") == 2


async def test_missing_permissions_are_reported_once_and_not_retried(world: World, manager: DisplayManager) -> None:
    await world.db.update_settings(GUILD, debug_channel_id=DEBUG)
    await manager.ensure(GUILD, KIND, CHANNEL)
    world.faults.append(("edit", http_error(discord.Forbidden, 403, 50013)))
    world.version = 2
    manager.request(GUILD)
    await manager.flush()
    for n in range(3, 6):
        world.version = n
        manager.request(GUILD)
        await manager.flush()
    assert world.count("edit") == 1 and manager.is_blocked(GUILD, KIND)
    notes = [m.payload["content"] for m in world.channels[DEBUG].live()]
    assert len(notes) == 1 and "permissions" in notes[0]
    # Setting it up again lifts the block.
    await manager.ensure(GUILD, KIND, CHANNEL)
    assert not manager.is_blocked(GUILD, KIND)
    assert (await shown(world, manager)).payload["embed"].description == "version 5"


async def test_setup_in_a_forbidden_channel_says_what_is_missing(world: World, manager: DisplayManager) -> None:
    world.faults.append(("send", http_error(discord.Forbidden, 403, 50013)))
    with pytest.raises(DisplayPermissionError, match="Send Messages"):
        await manager.ensure(GUILD, KIND, CHANNEL)
    assert await world.db.get_display(GUILD, KIND) is None


async def test_startup_verifies_every_stored_display_once(world: World, manager: DisplayManager) -> None:
    old = await manager.ensure(GUILD, KIND, CHANNEL)
    await manager.close()
    await world.channels[CHANNEL].messages[old].delete()  # deleted while the bot was down
    restarted = DisplayManager(world, render=world.render)  # type: ignore[arg-type]
    try:
        restarted.start()
        restarted.start()  # idempotent
        await asyncio.sleep(0)
        assert restarted._startup is not None
        await restarted._startup
        await restarted.refresh_all()  # bot.py calls it as well: nothing more happens
        await restarted.flush()
        message = await shown(world, restarted)
        assert message.id != old and message.pinned and world.count("send") == 2
        assert world.count("edit") == 0  # unchanged content: verified with a fetch, never edited
    finally:
        await restarted.close()


async def test_startup_verification_is_spread_over_time_and_skips_guilds_served_elsewhere(world: World) -> None:
    first = DisplayManager(world, render=world.render)  # type: ignore[arg-type]
    guilds = [GUILD + n for n in range(6)]
    for n, guild in enumerate(guilds):
        await first.ensure(guild, KIND, CHANNEL + n)
    await first.close()
    world.calls.clear()
    served = set(guilds[:4])
    world.owns_guild = lambda guild_id: guild_id in served  # type: ignore[attr-defined]  # another process's shards
    restarted = DisplayManager(world, window=0.01, render=world.render, verify_rate=20)  # type: ignore[arg-type]
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        restarted.start()
        await asyncio.sleep(0.08)
        early = world.count("fetch")
        assert restarted._startup is not None
        await restarted._startup
        await restarted.flush()
        elapsed = loop.time() - started
        assert early <= 2  # not all at once: one verification every 1/20 s
        assert world.count("fetch") == 4 and elapsed >= 4 / 20  # only the served guilds, one each
    finally:
        await restarted.close()

"""Shared fixtures: a real SQLite database in a temp folder, and the services built on it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from database import Database, NewSubmission
from models import Line
from services.points import PointsService
from services.queue import QueueService

pytest_plugins = ["tests.fakediscord.pytest_plugin"]

GUILD = 1000


class FakeClock:
    """A controllable clock: every call advances a millisecond so entry times are distinct."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._tick = itertools.count()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_submission(guild: int, user: int, title: str, line: Line = Line.FREE) -> NewSubmission:
    """A link submission whose song and link keys follow from ``title`` (distinct titles never collide)."""
    return NewSubmission(
        guild_id=guild, user_id=user, user_name="u", artist="A", title=title, line=line,
        song_key=f"a\x1f{title}", link=f"https://x.test/{title}", link_key=f"x.test/{title}",
    )  # fmt: skip


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call that goes to aiosqlite's thread from now on (one entry per trip, either connection)."""
    trips: list[str] = []
    real = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return trips


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "test.db")
    await database.connect()
    # Tests exercise queue rules, not spam control; the spam tests switch these back on.
    await database.update_settings(GUILD, submit_cooldown_seconds=0, max_pending_per_user=0)
    yield database
    await database.close()


@pytest.fixture
def queue(db: Database, clock: FakeClock) -> QueueService:
    return QueueService(db, clock=clock)


@pytest.fixture
def points(db: Database, queue: QueueService, clock: FakeClock) -> PointsService:
    return PointsService(db, queue, clock=clock)


# ---------------------------------------------------------------------- the real bot against the fake Discord

import discord  # noqa: E402

from tests.fakediscord.harness import BotEnv, close_env, create_env  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_violations: the test provokes rule violations on purpose")


@pytest.fixture
async def bot_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    # Record the originals so the class attributes the bot changes are restored after the test.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)
    env = await create_env(tmp_path / "data")
    try:
        yield env
    finally:
        await close_env(env)
    if request.node.get_closest_marker("allow_violations") is None:
        env.fake.assert_clean()


__all__ = ["GUILD", "BotEnv", "FakeClock"]

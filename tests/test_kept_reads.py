"""The reads ``Database`` keeps in memory (a member's waiting songs, the latest play, the pace of plays).

They are answered from memory until a transaction writes the guild's submissions. These tests hold them
to what the file says: a second read makes no trip to the database thread, every write path drops them
(checked statement by statement in ``database.py``), a read that a write overtook is never kept, an
interrupted COMMIT keeps nothing until a later commit, and random queue histories on the real services
never show a kept read that differs from the file.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

import database as database_module
from database import Database
from models import Line, Submission
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock, count_trips, new_submission
from tests.queue_machine import USERS, QueueDriver

OTHER = GUILD + 1


async def test_queue_reads_are_answered_from_memory_until_a_write_of_the_guild(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under a live's load every trip to the database thread waits for the GIL and the loop: /queue's two
    # reads were most of its tail (issue 15).
    clock = FakeClock()
    queue = QueueService(db, clock=clock)
    await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    await db.insert_submission(new_submission(OTHER, 1, "theirs"), 1.0)
    trips = count_trips(monkeypatch)

    async def reads() -> tuple[list[str], Submission | None, list[float]]:
        active = [s.title for s in await db.user_active(GUILD, 1)]
        return active, await db.latest_played(GUILD), await db.recent_play_times(GUILD)

    assert await reads() == (["one"], None, [])
    assert len(trips) == 3
    assert await reads() == (["one"], None, [])
    assert len(trips) == 3, "the second /queue went to the database again"

    # A write of another guild leaves this guild's reads where they are.
    await db.insert_submission(new_submission(OTHER, 2, "more"), 2.0)
    before = len(trips)
    await reads()
    assert len(trips) == before

    # Every write path of this guild's submissions is seen at once.
    second = await db.insert_submission(new_submission(GUILD, 1, "two", Line.SKIP), 2.0)
    assert (await reads())[0] == ["two", "one"]
    played = await queue.next(GUILD)
    assert played is not None and played.submission.id == second.id
    active, latest, plays = await reads()
    assert active == ["one"] and latest is not None and latest.id == second.id and plays == [latest.played_at]
    await queue.rate(GUILD, second.public_id, 7)
    assert (await db.latest_played(GUILD)).rating == 7  # type: ignore[union-attr]
    await queue.clear_free(GUILD)
    assert await db.user_active(GUILD, 1) == []
    await db.import_submissions([(_new_played(second, public_id="IMP01", played_at=clock() + 60), "k", None)])
    assert (await db.latest_played(GUILD)).public_id == "IMP01"  # type: ignore[union-attr]

    # A rating is scoped by guild: another guild's id never changes this guild's row.
    await db.set_rating(OTHER, second.id, 2)
    assert (await db.get_submission(GUILD, second.public_id)).rating == 7  # type: ignore[union-attr]


def _new_played(base: Submission, *, public_id: str, played_at: float) -> Submission:
    from dataclasses import replace

    return replace(base, id=0, public_id=public_id, title="imported", line=Line.PLAYED, played_at=played_at,
                   played_from=Line.SKIP, rating=None)  # fmt: skip


async def test_a_read_that_a_write_overtook_is_used_once_and_not_kept(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    fetched, release = asyncio.Event(), asyncio.Event()
    fetchall = db._fetchall

    async def slow(sql: str, params: Any = ()) -> Any:
        rows = await fetchall(sql, params)  # read before the write below commits
        fetched.set()
        await release.wait()
        return rows

    monkeypatch.setattr(db, "_fetchall", slow)
    read = asyncio.ensure_future(db.user_active(GUILD, 1))
    await fetched.wait()
    await db.insert_submission(new_submission(GUILD, 1, "two", Line.SKIP), 2.0)  # commits while the read is out
    release.set()
    assert [s.title for s in await read] == ["one"]  # its caller asked before the write: fine for it
    monkeypatch.setattr(db, "_fetchall", fetchall)
    assert [s.title for s in await db.user_active(GUILD, 1)] == ["two", "one"]  # but it was not kept


async def test_an_interrupted_commit_keeps_nothing_until_a_later_commit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A COMMIT whose caller is cancelled may still land in the database thread: a read meanwhile could
    # see the file before it, and must not be kept as the truth.
    await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    conn = db.conn
    execute = conn.execute

    def cancelled_commit(sql: str, *args: Any) -> Any:
        if sql != "COMMIT":
            return execute(sql, *args)

        async def run() -> Any:
            await execute(sql, *args)
            raise asyncio.CancelledError

        return run()

    monkeypatch.setattr(conn, "execute", cancelled_commit)
    with pytest.raises(asyncio.CancelledError):
        await db.insert_submission(new_submission(GUILD, 1, "two", Line.SKIP), 2.0)
    monkeypatch.setattr(conn, "execute", execute)
    trips = count_trips(monkeypatch)
    assert [s.title for s in await db.user_active(GUILD, 1)] == ["two", "one"]
    await db.user_active(GUILD, 1)
    assert len(trips) == 2, "a read was kept while a commit's fate was unknown"
    await db.insert_submission(new_submission(GUILD, 2, "three"), 3.0)  # a commit that is seen to succeed
    await db.user_active(GUILD, 1)
    before = len(trips)
    await db.user_active(GUILD, 1)
    assert len(trips) == before  # kept again


async def test_kept_reads_of_a_guild_are_bounded(db: Database) -> None:
    for user in range(database_module.KEPT_READS_PER_GUILD * 2):
        await db.user_active(GUILD, user)
    assert len(db._kept[GUILD]) <= database_module.KEPT_READS_PER_GUILD


_WRITES_SUBMISSIONS = re.compile(r"\b(INSERT(\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+submissions\b")


def _names_its_guilds(function: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    for node in ast.walk(function):
        is_transaction = isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "transaction"
        if is_transaction and any(keyword.arg == "submissions_of" for keyword in node.keywords):  # type: ignore[attr-defined]
            return True
    return False


def test_every_statement_that_writes_submissions_names_its_guilds() -> None:
    # A write path that forgot ``submissions_of`` would leave /queue showing a song that is gone.
    tree = ast.parse(inspect.getsource(database_module))
    writers: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        text = " ".join(
            part.value for part in ast.walk(node) if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
        if _WRITES_SUBMISSIONS.search(text) and node.name != "migrate":
            writers.append(node.name)
            assert _names_its_guilds(node), f"Database.{node.name} writes submissions without submissions_of"
    assert {"insert_submission", "change_line", "clear_line", "set_rating", "import_submissions"} <= set(writers)


# ---------------------------------------------------------------------- random histories


def _from_the_file(machine: QueueDriver, sql: str, params: tuple[Any, ...]) -> list[Any]:
    async def fetch() -> list[Any]:
        async with machine.db.conn.execute(sql, params) as cur:
            return [tuple(row) for row in await cur.fetchall()]

    return machine.run(fetch())


class KeptReadsMachine(QueueDriver):
    """Random queue histories (and ratings, gift promotions); after every step the kept reads equal the file."""

    @rule(index=st.integers(0, 60), rating=st.integers(1, 10))
    def rate(self, index: int, rating: int) -> None:
        ids = self.public_ids()
        if ids:
            self.attempt(self.queue.rate(GUILD, ids[index % len(ids)], rating))

    @rule(user=USERS, line=st.sampled_from([Line.SKIP, Line.DOUBLE_SKIP, Line.BACK_TO_BACK]))
    def promote(self, user: int, line: Line) -> None:
        self.attempt(self.queue.promote_newest(GUILD, user, line))

    @invariant()
    def kept_reads_equal_the_file(self) -> None:
        if not hasattr(self, "db"):
            return
        for user in range(1, 7):
            kept = [s.id for s in self.run(self.db.user_active(GUILD, user))]
            stored = _from_the_file(
                self,
                (
                    "SELECT id FROM submissions WHERE guild_id = ? AND user_id = ? AND line IN "
                    "('BackToBack', 'DoubleSkip', 'Skip', 'Free', 'Pending Skips') ORDER BY submitted_at DESC"
                ),
                (GUILD, user),
            )
            assert kept == [row[0] for row in stored]
        latest = self.run(self.db.latest_played(GUILD))
        stored = _from_the_file(
            self,
            (
                "SELECT id, rating FROM submissions WHERE guild_id = ? AND line = 'Played' "
                "ORDER BY played_at DESC, id DESC LIMIT 1"
            ),
            (GUILD,),
        )
        assert ([(latest.id, latest.rating)] if latest else []) == stored
        plays = _from_the_file(
            self,
            (
                "SELECT played_at FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL "
                "ORDER BY played_at DESC LIMIT 11"
            ),
            (GUILD,),
        )
        assert self.run(self.db.recent_play_times(GUILD)) == [row[0] for row in plays]


KeptReadsMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestKeptReads = KeptReadsMachine.TestCase

"""The data layer on a real SQLite file: migrations, pragmas, index use, guild scoping."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from pathlib import Path

import pytest

from database import (
    FREE_COUNTS_SQL,
    ConstraintError,
    Database,
    DatabaseError,
    load_migrations,
    split_statements,
)
from models import PLAYABLE_LINES, Display, DisplayKind, Line
from tests.conftest import GUILD, count_trips, new_submission


async def test_migrates_an_empty_file_and_rerunning_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    db = Database(path)
    await db.connect()
    latest = load_migrations()[-1][0]
    assert await db.schema_version() == latest
    assert await db.migrate() == latest  # second run applies nothing
    await db.close()
    db2 = Database(path)
    await db2.connect()  # reopening migrates again: still the same version, nothing duplicated
    assert await db2.schema_version() == latest
    await db2.close()


async def test_wal_and_foreign_keys_are_on(db: Database) -> None:
    async with db.conn.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"
    async with db.conn.execute("PRAGMA foreign_keys") as cur:
        assert (await cur.fetchone())[0] == 1


async def test_a_failing_migration_rolls_back_and_keeps_the_version(tmp_path: Path, monkeypatch) -> None:
    mig_dir = tmp_path / "migs"
    mig_dir.mkdir()
    (mig_dir / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (mig_dir / "0002_b.sql").write_text("CREATE TABLE b (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n")
    import database as database_module

    monkeypatch.setattr(database_module, "MIGRATIONS_DIR", mig_dir)
    monkeypatch.setattr(database_module, "load_migrations", lambda: load_migrations(mig_dir))
    db = Database(tmp_path / "m.db")
    with pytest.raises(sqlite3.OperationalError):
        await db.connect()
    assert await db.schema_version() == 1
    async with db.conn.execute("SELECT name FROM sqlite_master WHERE name = 'b'") as cur:
        assert await cur.fetchone() is None  # the half-applied migration left nothing behind
    await db.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 999")
    con.close()
    db = Database(path)
    with pytest.raises(DatabaseError, match="newer than this code"):
        await db.connect()
    await db.close()


def test_statement_splitter_keeps_statements_whole() -> None:
    script = "-- comment\nCREATE TABLE t (x TEXT DEFAULT ';');\nCREATE INDEX i ON t (x);\n"
    assert split_statements(script) == ["CREATE TABLE t (x TEXT DEFAULT ';');", "CREATE INDEX i ON t (x);"]
    with pytest.raises(DatabaseError):
        split_statements("CREATE TABLE t (x")


HOT_QUERIES = {
    "next submission / a line in play order": (
        "SELECT * FROM submissions WHERE guild_id = ? AND line = ? ORDER BY entered_line_at, id",
        (GUILD, "Free"),
        "ix_submissions_line",
    ),
    "a user's history": (
        "SELECT * FROM submissions WHERE guild_id = ? AND user_id = ? ORDER BY submitted_at DESC LIMIT ? OFFSET ?",
        (GUILD, 1, 10, 0),
        "ix_submissions_user",
    ),
    "handle prefix search": (
        "SELECT handle FROM handles WHERE guild_id = ? AND handle >= ? AND handle < ? ORDER BY handle LIMIT ?",
        (GUILD, "ab", "ab\U0010ffff", 25),
        "PRIMARY KEY",
    ),
    "a user's handles": (
        "SELECT * FROM handles WHERE guild_id = ? AND user_id = ? ORDER BY verified DESC, handle",
        (GUILD, 1),
        "ix_handles_user",
    ),
    "per-session stats": (
        "SELECT * FROM session_stats WHERE session_id = ?",
        (1,),
        "PRIMARY KEY",
    ),
    "recent pace of /next": (
        "SELECT played_at FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL "
        "ORDER BY played_at DESC LIMIT ?",
        (GUILD, 11),
        "ix_submissions_played",
    ),
}


@pytest.mark.parametrize("name", list(HOT_QUERIES))
async def test_hot_queries_use_an_index(db: Database, name: str) -> None:
    sql, params, index = HOT_QUERIES[name]
    plan = " | ".join(await db.explain(sql, params))
    assert "USING" in plan and index in plan, plan
    assert "SCAN submissions" not in plan and "SCAN handles" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # ordered by the index itself, no sort step


async def test_free_scores_query_uses_indexes(db: Database) -> None:
    joined = " | ".join(await db.explain(FREE_COUNTS_SQL, (GUILD, 0, GUILD, 0)))
    assert "ix_submissions_line" in joined and "ix_handles_user" in joined, joined
    assert "PRIMARY KEY (guild_id=? AND handle=?)" in joined, joined
    assert "PRIMARY KEY (guild_id=?)" not in joined.replace("AND handle=?)", ""), joined  # no per-row scan


async def test_a_lines_head_and_length_read_the_index_not_the_line(db: Database) -> None:
    """The pending display reads its 25 oldest skips and the count, however many wait."""
    from database import LINE_COUNT_SQL, LINE_HEAD_SQL

    for sql, params in ((LINE_COUNT_SQL, (GUILD, "Pending Skips")), (LINE_HEAD_SQL, (GUILD, "Pending Skips", 25))):
        plan = " | ".join(await db.explain(sql, params))
        assert "ix_submissions_line" in plan and "TEMP B-TREE" not in plan, plan
    waiting = [
        await db.insert_submission(new_submission(GUILD, n, f"p{n}", Line.PENDING), float(n)) for n in range(1, 31)
    ]
    await db.insert_submission(new_submission(GUILD, 99, "free"), 0.5)
    await db.insert_submission(new_submission(GUILD + 1, 1, "elsewhere", Line.PENDING), 0.5)  # another guild's
    oldest, total = await db.line_head(GUILD, Line.PENDING, 5)
    assert [s.id for s in oldest] == [s.id for s in waiting[:5]] and total == 30
    assert await db.line_head(GUILD, Line.PENDING, 0) == ([], 30)
    assert await db.line_head(GUILD + 2, Line.PENDING, 5) == ([], 0)


async def test_the_snapshot_a_rebuild_reads_holds_nothing_per_song_for_the_garbage_collector(db: Database) -> None:
    """10,000 songs as Submissions and counters were 40,000 tracked objects held through a whole rebuild."""
    from bench.queue_scale import fill

    await db.update_settings(GUILD, verified_handles_only=False)  # every kind of contribution row
    await fill(db, 0, active=2_000, guild=GUILD)
    gc.collect()
    before = len(gc.get_objects())
    snapshot = await db.queue_snapshot(GUILD, PLAYABLE_LINES)
    gc.collect()
    assert (len(gc.get_objects()) - before) / len(snapshot.submissions) <= 0.1
    # Read a slice at a time, it is what the line and contribution queries give.
    assert snapshot.submissions[:] == await db.line_submissions(GUILD, PLAYABLE_LINES)
    assert snapshot.submissions[3] == snapshot.submissions[:5][3]
    free = [s.id for s in snapshot.submissions[:] if s.line is Line.FREE]
    assert sorted(snapshot.contributions[:]) == sorted(await db.free_contributions(GUILD, free))
    assert len(snapshot.contributions) > 1_000 and not snapshot.proven_only


async def test_rows_are_scoped_by_guild(db: Database) -> None:
    first = await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    await db.insert_submission(new_submission(GUILD + 1, 1, "one"), 1.0)  # same song, other guild: allowed
    assert await db.get_submission(GUILD + 2, first.public_id) is None
    assert len(await db.line_submissions(GUILD, [Line.FREE])) == 1
    assert len(await db.user_history(GUILD + 1, 1)) == 1


async def test_database_enforces_one_active_free_and_no_active_duplicate(db: Database) -> None:
    await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    with pytest.raises(ConstraintError) as one_free:
        await db.insert_submission(new_submission(GUILD, 1, "two"), 2.0)
    # SQLite names the columns; the data layer names the rule (the index that enforces it).
    assert one_free.value.name == "one_free" and one_free.value.columns == ("guild_id", "user_id")
    with pytest.raises(ConstraintError) as same_song:
        await db.insert_submission(new_submission(GUILD, 2, "one", Line.SKIP), 2.0)
    assert same_song.value.name in {"active_link", "active_song"}
    # nothing half-written after the refused inserts
    assert await db.count_user_history(GUILD, 1) == 1
    assert await db.count_user_history(GUILD, 2) == 0


async def test_backup_and_integrity(db: Database, tmp_path: Path) -> None:
    await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    target = tmp_path / "backup.db"
    await db.backup_to(target)
    assert await db.integrity_check() == "ok"
    copy = Database(target)
    await copy.connect()
    assert await copy.count_user_history(GUILD, 1) == 1
    await copy.close()


async def test_active_duplicate_lookup_uses_the_partial_unique_indexes(db: Database) -> None:
    """A submit's duplicate check must not scan the active queue (it cost 12 ms at 10,000 active)."""
    from database import ACTIVE_DUPLICATE_SQL

    plan = " | ".join(await db.explain(ACTIVE_DUPLICATE_SQL, (GUILD, "a\x1ft", GUILD, "x.test/1")))
    assert "ux_submissions_active_song" in plan and "ux_submissions_active_link" in plan, plan
    assert "SCAN submissions" not in plan and "ix_submissions_line" not in plan, plan
    first = await db.insert_submission(new_submission(GUILD, 1, "t"), 1.0)
    assert (await db.find_active_duplicate(GUILD, None, "a\x1ft")).id == first.id
    assert (await db.find_active_duplicate(GUILD, None, "a\x1fother")) is None
    assert (await db.find_active_duplicate(GUILD, f"x.test/{first.title}", "zz")).id == first.id


async def test_queue_order_reads_use_indexes(db: Database) -> None:
    contributions = db._CONTRIBUTIONS_SQL.format(filter="AND s.id IN (?)")
    plan = " | ".join(await db.explain(contributions, (GUILD, 0, 1, GUILD, 0, 1)))
    assert "SCAN" not in plan, plan
    plan = " | ".join(await db.explain("SELECT handle FROM handles WHERE guild_id = ? AND handle IN (?, ?)",
                                       (GUILD, "a", "b")))  # fmt: skip
    assert "PRIMARY KEY" in plan and "SCAN" not in plan, plan


async def test_a_read_does_not_wait_behind_an_open_write_and_sees_the_last_commit(db: Database) -> None:
    # A live's engagement flush holds the write transaction for milliseconds; a member's /queue reads
    # (their songs, the latest played) must be answered meanwhile, from the last commit.
    await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
    async with db.transaction(submissions_of=(GUILD,)) as conn:
        await conn.execute("UPDATE submissions SET title = 'changed' WHERE guild_id = ?", (GUILD,))
        read = asyncio.ensure_future(db.user_active(GUILD, 1))
        # Not a speed limit: with one shared connection the read can never finish here (deadlock).
        await asyncio.wait({read}, timeout=10)
        assert read.done(), "the read waited for the write transaction to end"
        assert [s.title for s in read.result()] == ["one"]  # nothing uncommitted leaks into a read
    assert [s.title for s in await db.user_active(GUILD, 1)] == ["changed"]  # and the commit is seen at once


async def test_the_reading_connection_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await db._fetchall("DELETE FROM submissions")


async def test_an_in_memory_database_reads_through_its_one_connection() -> None:
    # A second connection to ":memory:" would be a second, empty database.
    db = Database(":memory:")
    await db.connect()
    try:
        await db.insert_submission(new_submission(GUILD, 1, "one"), 1.0)
        assert [s.title for s in await db.user_active(GUILD, 1)] == ["one"]
        assert len(await db.line_submissions(GUILD, [Line.FREE])) == 1  # a read transaction too
    finally:
        await db.close()


async def test_a_settings_read_that_saw_the_row_before_an_update_does_not_cache_over_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads no longer wait for writes: this read sees the row from before update_settings commits,
    # and returns only after the update has cached its new row.
    other = GUILD + 7
    fetched, updated = asyncio.Event(), asyncio.Event()
    real_fetchone = db._fetchone

    async def slow_fetchone(sql: str, params: tuple[object, ...] = ()) -> sqlite3.Row | None:
        row = await real_fetchone(sql, params)
        fetched.set()
        await updated.wait()
        return row

    monkeypatch.setattr(db, "_fetchone", slow_fetchone)
    read = asyncio.ensure_future(db.get_settings(other))
    await fetched.wait()
    monkeypatch.setattr(db, "_fetchone", real_fetchone)
    await db.update_settings(other, submit_cooldown_seconds=42)
    updated.set()
    await read
    assert (await db.get_settings(other)).submit_cooldown_seconds == 42


async def test_a_read_of_many_rows_is_one_trip_to_the_database_thread(db: Database, monkeypatch) -> None:
    """Each aiosqlite call is a trip to its thread and back to the loop.

    Execute, fetchall and close on a cursor are three; a live's flush makes reads like this one for every
    guild each second.
    """
    await db.set_link_code(GUILD, "fan", 7, "ABC123", 1000.0)
    trips = count_trips(monkeypatch)
    assert await db.pending_link_codes(GUILD) == {"fan": [(7, "ABC123")]}
    assert len(trips) == 1


async def test_a_read_of_one_row_is_one_trip_to_the_database_thread(db: Database, monkeypatch) -> None:
    """``/queue`` reads the song playing now this way: execute, fetchone and close were three trips."""
    await db.set_meta("greeting", "hello")
    trips = count_trips(monkeypatch)
    assert await db.get_meta("greeting") == "hello"
    assert await db.get_meta("nothing here") is None
    assert len(trips) == 2


async def test_a_guilds_displays_are_read_once_and_kept_in_step_by_their_saves(db: Database, monkeypatch) -> None:
    """Each live's guild asks for its three displays every refresh window, and most guilds have none."""
    queue = Display(GUILD, DisplayKind.LIVE_QUEUE, 10, 100, "a")
    await db.save_display(queue)
    trips = count_trips(monkeypatch)
    assert await db.get_display(GUILD, DisplayKind.LIVE_QUEUE) == queue
    assert await db.get_display(GUILD, DisplayKind.REVIEWER_MAIN) is None
    assert await db.get_display(GUILD + 1, DisplayKind.LIVE_QUEUE) is None
    for _ in range(10):
        assert await db.get_display(GUILD, DisplayKind.LIVE_QUEUE) == queue
        assert await db.get_display(GUILD + 1, DisplayKind.REVIEWER_MAIN) is None
    assert len(trips) == 2  # one read per guild, then memory
    moved = Display(GUILD, DisplayKind.LIVE_QUEUE, 10, 101, "b")
    await db.save_display(moved)
    main = Display(GUILD + 1, DisplayKind.REVIEWER_MAIN, 11, 200)
    await db.save_display(main)
    assert await db.get_display(GUILD, DisplayKind.LIVE_QUEUE) == moved
    assert await db.get_display(GUILD + 1, DisplayKind.REVIEWER_MAIN) == main
    assert sorted(d.message_id for d in await db.all_displays()) == [101, 200]


async def test_a_display_read_that_a_save_overtook_is_not_kept(db: Database, monkeypatch) -> None:
    old = Display(GUILD, DisplayKind.LIVE_QUEUE, 10, 100, "a")
    new = Display(GUILD, DisplayKind.LIVE_QUEUE, 10, 101, "b")
    await db.save_display(old)
    real = db._fetchall

    async def read_then_saved(sql: str, params=()):
        rows = await real(sql, params)  # the rows before the save...
        await db.save_display(new)  # ...which commits before this read is done
        return rows

    monkeypatch.setattr(db, "_fetchall", read_then_saved)
    assert await db.get_display(GUILD, DisplayKind.LIVE_QUEUE) == old  # what this read saw
    monkeypatch.setattr(db, "_fetchall", real)
    assert await db.get_display(GUILD, DisplayKind.LIVE_QUEUE) == new  # not the overtaken rows

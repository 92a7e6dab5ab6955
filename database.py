"""The one data layer: an aiosqlite connection owner with versioned migrations.

Every public method is one unit of work: a read, or one transaction for a state change. SQL lives only
here and is always parameterised; rows leave this module as ``models.py`` objects. Writes run on one
connection, so an ``asyncio.Lock`` keeps a transaction from interleaving with another coroutine's
statements (aiosqlite would otherwise run them inside the open transaction). Plain reads run on a second,
query-only connection with a lock of its own: WAL lets them read the last commit while a write is under
way, so a member's ``/queue`` never waits behind a live's engagement flush.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast, overload

import aiosqlite

from models import (
    ACTIVE_LINES,
    SUBMISSION_FIELDS,
    BlockEntry,
    BlockKind,
    Display,
    DisplayKind,
    EngagementCounts,
    GiftTiers,
    GuildSettings,
    Handle,
    LeaderboardRow,
    Line,
    LiveSession,
    PointsWeights,
    SessionStats,
    Submission,
    Supporter,
    WebSettings,
    counter_values,
)
from services.feed import ChangeFeed, SettingsChanged

log = logging.getLogger(__name__)
M = TypeVar("M")
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PUBLIC_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: people type these ids
PUBLIC_ID_LENGTH = 5
_ACTIVE_SQL = ", ".join(f"'{line.value}'" for line in ACTIVE_LINES)
_COUNT_COLUMNS = ("likes", "comments", "shares", "follows", "subscribes", "coins")

SqlValue = int | float | str | bytes | None
"""What a statement parameter may be (SQLite's storage classes)."""
IN_CHUNK = 400
"""Values per ``IN (?, …)`` list (a query that repeats its list twice still binds under 1,000 parameters)."""
ROWS_PER_SLICE = 50
"""Rows fetched, or turned into models, between two yields to the event loop when a read returns thousands."""
KEPT_READS_PER_GUILD = 256
"""Reads of one guild kept in memory at most between two writes of its submissions (then they start over)."""
SettingValue = int | float | bool | None
"""What a plain ``guild_settings`` column takes through ``update_settings`` (ids, counts, flags; None clears)."""

# Columns of guild_settings that update_settings may write, with the model field they come from.
_SETTINGS_COLUMNS = {
    "free_open",
    "reviewer_role_id",
    "admin_role_id",
    *GuildSettings.CHANNEL_KEYS,
    "like_cap_per_minute",
    "submit_cooldown_seconds",
    "max_pending_per_user",
    "max_track_seconds",
    *GuildSettings.TUNABLE_KEYS,
    "avg_review_seconds",
}
_WEIGHT_COLUMNS = {name: f"w_{name}" for name in PointsWeights.names()}
_TIER_COLUMNS = {"skip": "tier_skip", "double_skip": "tier_double_skip", "back_to_back": "tier_back_to_back"}


_H_COLUMNS = ", ".join(f"h.{c}" for c in _COUNT_COLUMNS)
_SUBMISSION_COLUMNS = ", ".join(SUBMISSION_FIELDS)  # in the order ``Submission.from_values`` reads
# INDEXED BY pins the plan: without statistics SQLite may pick the primary key (guild_id) and scan every
# handle of the guild for each Free submission, which is quadratic.
FREE_COUNTS_SQL = f"""
    SELECT s.id AS sid, {_H_COLUMNS} FROM submissions s
    JOIN handles h INDEXED BY ix_handles_user ON h.guild_id = s.guild_id AND h.user_id = s.user_id
    WHERE s.guild_id = ? AND s.line = 'Free' AND (h.verified = 1 OR ? = 0)
    UNION ALL
    SELECT s.id AS sid, {_H_COLUMNS} FROM submissions s
    JOIN handles h ON h.guild_id = s.guild_id AND h.handle = s.tiktok_handle AND h.user_id IS NULL
    WHERE s.guild_id = ? AND s.line = 'Free' AND ? = 0
"""


# Two lookups through the partial unique indexes of migration 0001 (one OR would scan every active row).
# The line condition repeats the indexes' WHERE word for word: SQLite uses a partial index only then.
_INDEXED_ACTIVE = "line IN ('BackToBack', 'DoubleSkip', 'Skip', 'Free', 'Pending Skips')"
ACTIVE_DUPLICATE_SQL = f"""
    SELECT * FROM submissions WHERE guild_id = ? AND song_key = ? AND {_INDEXED_ACTIVE}
    UNION ALL
    SELECT * FROM submissions WHERE guild_id = ? AND link_key = ? AND link_key IS NOT NULL AND {_INDEXED_ACTIVE}
    LIMIT 1
"""

# One line's length and its oldest rows (the pending display and its counts): both read the line's index.
LINE_COUNT_SQL = "SELECT COUNT(*) FROM submissions WHERE guild_id = ? AND line = ?"
LINE_HEAD_SQL = "SELECT * FROM submissions WHERE guild_id = ? AND line = ? ORDER BY entered_line_at, id LIMIT ?"


class DatabaseError(Exception):
    """The database could not be opened or migrated."""


class ConstraintError(Exception):
    """A write broke a uniqueness rule of the schema; ``name`` says which one.

    SQLite reports the columns (``UNIQUE constraint failed: submissions.guild_id, submissions.user_id``),
    not the index, so the data layer maps the column list back to the index that enforces it, and services
    branch on that name instead of parsing SQLite's message. Names are the index names without their
    ``ux_<table>_`` prefix: ``one_free`` (one active Free or Pending submission per member),
    ``active_link`` and ``active_song`` (the same song active once per guild), ``public_id``.
    """

    def __init__(self, name: str, table: str, columns: tuple[str, ...]) -> None:
        super().__init__(f"{table}: constraint {name} ({', '.join(columns)}) violated")
        self.name = name
        self.table = table
        self.columns = columns


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """The validated data of a submission about to be inserted."""

    guild_id: int
    user_id: int
    user_name: str
    artist: str
    title: str
    line: Line
    song_key: str
    link: str | None = None
    link_key: str | None = None
    platform: str | None = None
    file_path: str | None = None
    file_name: str | None = None
    duration: float | None = None
    note: str | None = None
    tiktok_handle: str | None = None


@dataclass(frozen=True, slots=True)
class MinuteDelta:
    """Engagement of one minute (``minute`` = epoch seconds // 60) to add to a session's buckets."""

    minute: int
    likes: int = 0
    comments: int = 0
    coins: int = 0


@dataclass(frozen=True, slots=True)
class EngagementDelta:
    """Counter increments for one handle in one flush, plus what the session records need."""

    handle: str
    counts: EngagementCounts
    gifts: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    joined_at: float | None = None
    nickname: str | None = None
    tiktok_user_id: int | None = None


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """Everything the play order of a guild is computed from, read at one instant.

    ``contributions`` lists ``(submission row id, handle, counters)`` for every handle whose points make
    up a Free submission's score (SPEC 2): the submitter's linked handles, and the submission's own
    handle when it is linked to nobody.
    """

    submissions: Sequence[Submission]
    contributions: Sequence[tuple[int, str, EngagementCounts]]
    weights: PointsWeights
    proven_only: bool


def _submission(row: sqlite3.Row) -> Submission:
    return Submission(
        id=row["id"],
        guild_id=row["guild_id"],
        public_id=row["public_id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        artist=row["artist"],
        title=row["title"],
        line=Line(row["line"]),
        submitted_at=row["submitted_at"],
        entered_line_at=row["entered_line_at"],
        link=row["link"],
        platform=row["platform"],
        file_path=row["file_path"],
        file_name=row["file_name"],
        duration=row["duration"],
        note=row["note"],
        tiktok_handle=row["tiktok_handle"],
        played_at=row["played_at"],
        played_from=Line(row["played_from"]) if row["played_from"] else None,
        removed_at=row["removed_at"],
        rating=row["rating"],
        line_entered_at=row["line_entered_at"],
    )


class _Converted(Sequence[M]):
    """Rows kept as plain tuples and made into models only as they are read, a slice at a time.

    The play order's rebuild reads every active song. As Submissions and counters all at once, 10,000 rows
    were 40,000 objects tracked by the garbage collector for the whole build, enough to set off a full
    collection in the middle of it (20-29 ms); tuples of numbers and strings are not tracked, and the
    models made from one slice are gone before the next. Converting in the reader's slices also keeps
    10,000 conversions (~0.15 s of Python) off the event loop in one go.
    """

    def __init__(self, rows: list[tuple[Any, ...]], convert: Callable[[tuple[Any, ...]], M]) -> None:
        self._rows = rows
        self._convert = convert

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> M: ...

    @overload
    def __getitem__(self, index: slice) -> list[M]: ...

    def __getitem__(self, index: int | slice) -> M | list[M]:
        if isinstance(index, slice):
            return [self._convert(row) for row in self._rows[index]]
        return self._convert(self._rows[index])


async def _fetch_in_slices(cursor: aiosqlite.Cursor) -> list[sqlite3.Row]:
    """Every row of a cursor, ``ROWS_PER_SLICE`` per call into the database thread.

    One ``fetchall`` of ten thousand rows keeps the GIL in that thread for the whole fetch, and the event
    loop waits for it; short calls hand it back between them.
    """
    rows: list[sqlite3.Row] = []
    while batch := await cursor.fetchmany(ROWS_PER_SLICE):
        rows.extend(batch)
    return rows


def _counts(row: sqlite3.Row) -> EngagementCounts:
    return EngagementCounts(*(row[c] or 0 for c in _COUNT_COLUMNS))


def _contribution(row: Sequence[Any]) -> tuple[int, str, EngagementCounts]:
    """``(submission id, handle, counters)`` of a ``_CONTRIBUTIONS_SQL`` row (a Row or a plain tuple)."""
    return row[0], row[1], EngagementCounts(*(value or 0 for value in row[2:]))


async def _plain_rows(cursor: aiosqlite.Cursor) -> list[tuple[Any, ...]]:
    """Every row of a cursor as a plain tuple (see ``_Converted``), ``ROWS_PER_SLICE`` per call."""
    cursor.row_factory = None
    return cast(list[tuple[Any, ...]], await _fetch_in_slices(cursor))


def _handle(row: sqlite3.Row) -> Handle:
    return Handle(
        guild_id=row["guild_id"],
        handle=row["handle"],
        counts=_counts(row),
        user_id=row["user_id"],
        verified=bool(row["verified"]),
        nickname=row["nickname"],
        tiktok_user_id=row["tiktok_user_id"],
        last_seen=row["last_seen"],
    )


def _display(row: sqlite3.Row) -> Display:
    return Display(row["guild_id"], DisplayKind(row["kind"]), row["channel_id"], row["message_id"], row["content_hash"])


def _settings(row: sqlite3.Row | None, guild_id: int) -> GuildSettings:
    if row is None:
        return GuildSettings(guild_id=guild_id)
    return GuildSettings(
        guild_id=guild_id,
        free_open=bool(row["free_open"]),
        reviewer_role_id=row["reviewer_role_id"],
        admin_role_id=row["admin_role_id"],
        **{key: row[key] for key in GuildSettings.CHANNEL_KEYS},
        weights=PointsWeights(**{name: row[col] for name, col in _WEIGHT_COLUMNS.items()}),
        gift_tiers=GiftTiers(**{name: row[col] for name, col in _TIER_COLUMNS.items()}),
        like_cap_per_minute=row["like_cap_per_minute"],
        submit_cooldown_seconds=row["submit_cooldown_seconds"],
        max_pending_per_user=row["max_pending_per_user"],
        max_track_seconds=row["max_track_seconds"],
        **{k: (bool(row[k]) if k in GuildSettings.BOOL_KEYS else row[k]) for k in GuildSettings.TUNABLE_KEYS},
        avg_review_seconds=row["avg_review_seconds"],
    )


def _session(row: sqlite3.Row) -> LiveSession:
    return LiveSession(
        id=row["id"],
        guild_id=row["guild_id"],
        host=row["host"],
        room_id=row["room_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        peak_viewers=row["peak_viewers"],
        simulated=bool(row["simulated"]),
    )


def split_statements(script: str) -> list[str]:
    """Split a migration script into complete statements (``executescript`` would commit on its own)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise DatabaseError(f"incomplete SQL statement in migration: {buffer.strip()[:80]!r}")
    return statements


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) for every ``NNNN_name.sql`` file, in version order."""
    found = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        found.append((int(path.name[:4]), path.name, split_statements(path.read_text(encoding="utf-8"))))
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise DatabaseError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


class Database:
    """Owns the SQLite connection; open it with ``await db.connect()`` and close it with ``await db.close()``."""

    def __init__(self, path: str | Path, *, feed: ChangeFeed | None = None) -> None:
        self.path = Path(path)
        self.feed = feed
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # The reading connection (None for an in-memory database, whose second connection would be a
        # second, empty database: its reads share the writer and its lock).
        self._reader: aiosqlite.Connection | None = None
        self._read_lock = asyncio.Lock()
        # Settings are read on every chat message and every click; they change only through
        # update_settings, which drops the guild's entry in the same call that writes it.
        self._settings: dict[int, GuildSettings] = {}
        # Each guild's displays, by kind, once read: every refresh of every live's guild asks for them (three
        # kinds a window; most guilds have none). save_display is their only write path; a read that a save
        # overtook keeps its rows out of the cache (the generation moved on).
        self._displays: dict[int, dict[DisplayKind, Display]] = {}
        self._displays_generation = 0
        # The reads behind every /queue, position answer and display render (a member's waiting songs, what
        # played last, the pace of plays), kept per guild until a transaction writes that guild's
        # submissions (``transaction(submissions_of=...)`` drops them once it has committed). Under a live's
        # load each trip to the database thread waits for the GIL and the loop, so these were most of
        # /queue's tail. Sound because this process is the file's only writer (docs/scaling.md).
        self._kept: dict[int, dict[tuple[object, ...], object]] = {}
        # Per guild, bumped by every such commit: a read that one overtook is used once, never kept.
        self._written: dict[int, int] = {}
        # Guilds whose last COMMIT was interrupted (cancelled or failed): it may still land, so nothing of
        # theirs is kept until a later commit of theirs (on the same connection, so after it) succeeds.
        self._unsettled: set[int] = set()
        # (table, columns) of every unique index -> its short name, read from the schema after migrating.
        self._unique: dict[tuple[str, tuple[str, ...]], str] = {}

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Open the file (creating its folder), switch on WAL and foreign keys, and migrate."""
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await self._open(
            "journal_mode = WAL",
            "foreign_keys = ON",
            "synchronous = NORMAL",  # WAL + NORMAL survives crashes
        )
        await self.migrate()
        await self._load_unique_indexes()
        if str(self.path) != ":memory:":
            # Opened after migrating, so it never sees a schema half way.
            self._reader = await self._open("query_only = ON")

    async def _open(self, *pragmas: str) -> aiosqlite.Connection:
        """A connection to the file with rows as ``sqlite3.Row``, a 5 s busy timeout and ``pragmas``."""
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open database {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        for pragma in (*pragmas, "busy_timeout = 5000"):
            await conn.execute(f"PRAGMA {pragma}")  # fixed strings of this module, never user input
        return conn

    async def close(self) -> None:
        """Close both connections (idempotent)."""
        if self._reader is not None:
            async with self._read_lock:
                await self._reader.close()
                self._reader = None
        if self._conn is not None:
            async with self._lock:
                # Refresh planner statistics where SQLite thinks they are stale (cheap, per its docs).
                await self._conn.execute("PRAGMA optimize")
                await self._conn.close()
                self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        """The open connection; raises if ``connect`` was not called."""
        if self._conn is None:
            raise DatabaseError("database is not connected")
        return self._conn

    async def migrate(self) -> int:
        """Apply every pending migration, each in its own transaction; return the schema version."""
        migrations = load_migrations()
        async with self._lock:
            current = await self._user_version()
            latest = migrations[-1][0] if migrations else 0
            if current > latest:
                raise DatabaseError(
                    f"database schema version {current} is newer than this code ({latest}); update the bot"
                )
            for version, name, statements in migrations:
                if version <= current:
                    continue
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements:
                        await self.conn.execute(statement)
                    # user_version is transactional in SQLite, so a failed migration leaves it untouched.
                    await self.conn.execute(f"PRAGMA user_version = {int(version)}")
                    await self.conn.execute("COMMIT")
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
                log.info("applied migration %s", name)
            return await self._user_version()

    async def _user_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def schema_version(self) -> int:
        """The ``PRAGMA user_version`` of the open database."""
        async with self._lock:
            return await self._user_version()

    @asynccontextmanager
    async def transaction(self, *, submissions_of: Iterable[int] = ()) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; commits on success and rolls back on any error.

        ``submissions_of``: the guilds whose submissions it writes; their reads kept in memory are dropped
        when it has committed (every statement that writes ``submissions`` must name its guilds here).
        A broken uniqueness rule leaves as ``ConstraintError`` naming the index (see there).
        """
        guilds = tuple(submissions_of)
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except sqlite3.IntegrityError as exc:
                await self.conn.execute("ROLLBACK")
                raise self._constraint_error(exc) from exc
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            try:
                await self.conn.execute("COMMIT")
            except BaseException:
                self._unsettled.update(guilds)
                raise
            finally:
                self._submissions_written(guilds)
            self._unsettled.difference_update(guilds)

    def _submissions_written(self, guilds: Iterable[int]) -> None:
        """A write of these guilds' submissions committed: forget their kept reads; reads under way stay unkept."""
        for guild_id in guilds:
            self._written[guild_id] = self._written.get(guild_id, 0) + 1
            self._kept.pop(guild_id, None)

    async def _kept_read(self, guild_id: int, key: tuple[object, ...], read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, answered from memory from the second time until the guild's submissions are written."""
        kept = self._kept.get(guild_id)
        if kept is not None and key in kept:
            return cast(T, kept[key])
        generation = self._written.get(guild_id, 0)
        value = await read()
        # A commit that landed while this read ran may be missing from it: such a read serves its caller only.
        if self._written.get(guild_id, 0) == generation and guild_id not in self._unsettled:
            kept = self._kept.setdefault(guild_id, {})
            if len(kept) >= KEPT_READS_PER_GUILD:
                kept.clear()  # many members looked since the last write: start over rather than grow
            kept[key] = value
        return value

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        """The reading connection under its lock (the writer under the write lock for an in-memory database)."""
        if self._reader is None:
            async with self._lock:
                yield self.conn
            return
        async with self._read_lock:
            yield self._reader

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """One read transaction: no write of any process lands between its reads (WAL gives it one snapshot)."""
        async with self._read() as conn:
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await conn.execute("COMMIT")

    async def _load_unique_indexes(self) -> None:
        async with self._lock:
            tables = [
                r[0]
                for r in await (
                    await self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                ).fetchall()
            ]
            for table in tables:
                # Table and index names come from the schema itself, never from user input.
                indexes = await (await self.conn.execute(f"PRAGMA index_list('{table}')")).fetchall()
                for index in indexes:
                    if not index["unique"]:
                        continue
                    info = await (await self.conn.execute(f"PRAGMA index_info('{index['name']}')")).fetchall()
                    columns = tuple(str(c["name"]) for c in sorted(info, key=lambda c: c["seqno"]))
                    name = str(index["name"]).removeprefix(f"ux_{table}_")
                    if name.startswith("sqlite_autoindex_"):
                        name = "_".join(c for c in columns if c != "guild_id") or "_".join(columns)
                    self._unique[(table, columns)] = name

    def _constraint_error(self, exc: sqlite3.IntegrityError) -> Exception:
        """``UNIQUE constraint failed: t.a, t.b`` -> ``ConstraintError`` with the index's name."""
        text = str(exc)
        prefix = "UNIQUE constraint failed: "
        if not text.startswith(prefix):
            return exc  # not a uniqueness rule (foreign key, NOT NULL, CHECK): a bug, keep SQLite's error
        qualified = [part.strip() for part in text.removeprefix(prefix).split(",")]
        table = qualified[0].split(".", 1)[0]
        columns = tuple(part.split(".", 1)[-1] for part in qualified)
        name = self._unique.get((table, columns), "_".join(columns))
        return ConstraintError(name, table, columns)

    async def _fetchall(self, sql: str, params: Sequence[SqlValue] = ()) -> list[sqlite3.Row]:
        # One trip to the database thread, where execute + fetchall + close on a cursor are three.
        async with self._read() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def _fetch_in(
        self, values: Sequence[SqlValue], query: Callable[[str, list[SqlValue]], tuple[str, Sequence[SqlValue]]]
    ) -> list[sqlite3.Row]:
        """The rows of a query with an ``IN (?, …)`` list over ``values``, one statement per ``IN_CHUNK`` values.

        ``query(marks, chunk)`` returns the statement for one chunk (``marks`` is its ``?, ?, …``) and its
        parameters. Chunks keep every statement far below SQLite's limit on bound parameters.
        """
        rows: list[sqlite3.Row] = []
        for start in range(0, len(values), IN_CHUNK):
            chunk = list(values[start : start + IN_CHUNK])
            sql, params = query(", ".join("?" for _ in chunk), chunk)
            rows.extend(await self._fetchall(sql, params))
        return rows

    async def _fetchone(self, sql: str, params: Sequence[SqlValue] = ()) -> sqlite3.Row | None:
        """The first row, in one trip to the database thread (execute + fetchone + close were three).

        Every caller asks for one row by construction (a key, ``LIMIT 1`` or an aggregate), so fetching
        them all fetches that one. Each trip waits for the GIL and then for the event loop: while a live's
        flush keeps the loop busy, an interaction's every trip adds to its answer time.
        """
        async with self._read() as conn:
            rows = await conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def explain(self, sql: str, params: Sequence[SqlValue] = ()) -> list[str]:
        """``EXPLAIN QUERY PLAN`` details of a statement (used by tests to prove index use)."""
        rows = await self._fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        return [row["detail"] for row in rows]

    async def checkpoint(self) -> None:
        """Fold the WAL back into the database file (after bulk writes; keeps later reads fast)."""
        async with self._lock:
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def integrity_check(self) -> str:
        """SQLite's own integrity check: ``"ok"`` when the file is sound."""
        row = await self._fetchone("PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"

    async def backup_to(self, target: Path) -> None:
        """Copy the live database into ``target`` with SQLite's online backup API."""
        target.parent.mkdir(parents=True, exist_ok=True)
        async with self._lock:
            dest = await aiosqlite.connect(target)
            try:
                await self.conn.backup(dest)
            finally:
                await dest.close()

    # ------------------------------------------------------------------ settings

    async def get_settings(self, guild_id: int) -> GuildSettings:
        """A guild's settings, defaults when it never changed any (cached; ``update_settings`` refreshes it)."""
        cached = self._settings.get(guild_id)
        if cached is not None:
            return cached
        row = await self._fetchone("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        # setdefault: reads do not wait for writes, so an update_settings may have committed (and cached
        # its row) while this read still saw the row before it; the newer entry stays.
        return self._settings.setdefault(guild_id, _settings(row, guild_id))  # frozen: callers cannot change it

    async def update_settings(
        self,
        guild_id: int,
        *,
        weights: PointsWeights | None = None,
        gift_tiers: GiftTiers | None = None,
        **values: SettingValue,
    ) -> GuildSettings:
        """Change some settings of a guild (columns are checked against a fixed list) and return them all.

        The only write path of ``guild_settings``: it refreshes the settings cache and publishes
        ``SettingsChanged`` on the feed, so no reader can keep an old value.
        """
        unknown = set(values) - _SETTINGS_COLUMNS
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        columns: dict[str, SqlValue] = {k: (int(v) if isinstance(v, bool) else v) for k, v in values.items()}
        if weights is not None:
            columns.update({col: getattr(weights, name) for name, col in _WEIGHT_COLUMNS.items()})
        if gift_tiers is not None:
            columns.update({col: getattr(gift_tiers, name) for name, col in _TIER_COLUMNS.items()})
        async with self.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,))
            if columns:
                # Column names come from the fixed lists above, never from user input.
                assignments = ", ".join(f"{col} = ?" for col in columns)
                await conn.execute(
                    f"UPDATE guild_settings SET {assignments} WHERE guild_id = ?",
                    (*columns.values(), guild_id),
                )
            async with conn.execute("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)) as cur:
                row = await cur.fetchone()
        settings = _settings(row, guild_id)
        self._settings[guild_id] = settings
        if self.feed is not None:
            self.feed.publish(SettingsChanged(guild_id))
        return settings

    # ------------------------------------------------------------------ submissions

    async def insert_submission(self, new: NewSubmission, now: float) -> Submission:
        """Insert a submission (and the row of its named handle) with a fresh public id, in one transaction.

        A broken uniqueness rule raises ``ConstraintError`` naming the rule.
        """
        for _attempt in range(10):
            public_id = "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
            try:
                async with self.transaction(submissions_of=(new.guild_id,)) as conn:
                    if new.tiktok_handle:
                        # The named handle exists from now on (it earns before it is seen live), in the same
                        # transaction as the row: never a submission without its handle or the reverse.
                        await conn.execute(
                            "INSERT OR IGNORE INTO handles (guild_id, handle) VALUES (?, ?)",
                            (new.guild_id, new.tiktok_handle),
                        )
                    cur = await conn.execute(
                        """
                        INSERT INTO submissions (guild_id, public_id, user_id, user_name, artist, title, link,
                            platform, file_path, file_name, duration, note, tiktok_handle, line, submitted_at,
                            entered_line_at, link_key, song_key)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                        (
                            new.guild_id,
                            public_id,
                            new.user_id,
                            new.user_name,
                            new.artist,
                            new.title,
                            new.link,
                            new.platform,
                            new.file_path,
                            new.file_name,
                            new.duration,
                            new.note,
                            new.tiktok_handle,
                            new.line.value,
                            now,
                            now,
                            new.link_key,
                            new.song_key,
                        ),
                    )
                    row_id = cur.lastrowid
            except ConstraintError as exc:
                if exc.name == "public_id":
                    continue  # a rare collision of random ids: draw again
                raise
            submission = await self.get_submission_by_row_id(int(row_id or 0))
            assert submission is not None  # just inserted under our own lock
            return submission
        raise DatabaseError("could not allocate a unique public id")

    async def get_submission_by_row_id(self, row_id: int) -> Submission | None:
        """A submission by its internal row id."""
        row = await self._fetchone("SELECT * FROM submissions WHERE id = ?", (row_id,))
        return _submission(row) if row else None

    async def get_submission(self, guild_id: int, public_id: str) -> Submission | None:
        """A submission by the public id people see (without ``#``, any case)."""
        row = await self._fetchone(
            "SELECT * FROM submissions WHERE guild_id = ? AND public_id = ?", (guild_id, public_id.upper())
        )
        return _submission(row) if row else None

    async def line_submissions(self, guild_id: int, lines: Iterable[Line]) -> list[Submission]:
        """Every submission in the given lines, by entry time (one index range per line)."""
        result: list[Submission] = []
        for line in lines:
            rows = await self._fetchall(
                "SELECT * FROM submissions WHERE guild_id = ? AND line = ? ORDER BY entered_line_at, id",
                (guild_id, line.value),
            )
            result.extend(_submission(r) for r in rows)
        return result

    async def line_head(self, guild_id: int, line: Line, limit: int) -> tuple[list[Submission], int]:
        """The first ``limit`` submissions of one line by entry time, and how many the line holds.

        Both come from the line's index in one read transaction, so the count matches the rows; the cost
        is the rows asked for, not the length of the line.
        """
        async with self._reading() as conn:
            async with conn.execute(LINE_COUNT_SQL, (guild_id, line.value)) as cur:
                total = await cur.fetchone()
            rows: Iterable[sqlite3.Row] = ()
            if limit > 0:  # a count alone (the reviewer panel, the public page) reads no row
                async with conn.execute(LINE_HEAD_SQL, (guild_id, line.value, limit)) as cur:
                    rows = await cur.fetchall()
        return [_submission(row) for row in rows], total[0] if total else 0

    async def free_line_counts(self, guild_id: int, *, verified_only: bool = True) -> dict[int, EngagementCounts]:
        """Ledger counters behind each Free submission's score, keyed by submission row id.

        A Free score sums every handle linked to the submitter plus the submission's own handle when no one
        owns it. With ``verified_only`` (the guild setting, on by default) only handles the submitter proved
        count, so nobody rides the points of a handle they merely named or linked first. Two indexed joins,
        summed here, so the score is always read fresh from the ledger.
        """
        flag = int(verified_only)
        rows = await self._fetchall(FREE_COUNTS_SQL, (guild_id, flag, guild_id, flag))
        totals: dict[int, EngagementCounts] = {}
        for row in rows:
            counts = _counts(row)
            previous = totals.get(row["sid"])
            totals[row["sid"]] = counts if previous is None else previous + counts
        return totals

    async def change_line(
        self,
        guild_id: int,
        submission_id: int,
        *,
        expected: Line,
        target: Line,
        now: float,
        reset_handles: Sequence[str] = (),
    ) -> Submission | None:
        """Move a submission from ``expected`` to ``target`` in one transaction.

        Returns ``None`` when the row was no longer in ``expected`` (a concurrent change won). Playing
        stamps ``played_at``/``played_from``; removing stamps ``removed_at``; ``reset_handles`` zeroes those
        handles' counters in the same transaction (a Free song played resets its points).
        """
        async with self.transaction(submissions_of=(guild_id,)) as conn:
            cur = await conn.execute(
                """
                UPDATE submissions SET line = ?, entered_line_at = ?,
                    line_entered_at = CASE WHEN ? = 'Played' THEN entered_line_at ELSE line_entered_at END,
                    played_at = CASE WHEN ? = 'Played' THEN ? ELSE played_at END,
                    played_from = CASE WHEN ? = 'Played' THEN line ELSE played_from END,
                    removed_at = CASE WHEN ? = 'Removed' THEN ? ELSE removed_at END
                WHERE guild_id = ? AND id = ? AND line = ?
                """,
                (
                    target.value,
                    now,
                    target.value,
                    target.value,
                    now,
                    target.value,
                    target.value,
                    now,
                    guild_id,
                    submission_id,
                    expected.value,
                ),
            )
            if cur.rowcount == 0:
                return None
            if reset_handles:
                await self._reset_handles(conn, guild_id, reset_handles)
            async with conn.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)) as c2:
                row = await c2.fetchone()
        return _submission(row) if row else None

    async def clear_line(self, guild_id: int, line: Line, now: float) -> int:
        """Soft-remove every submission of a line; returns how many moved to Removed."""
        async with self.transaction(submissions_of=(guild_id,)) as conn:
            cur = await conn.execute(
                "UPDATE submissions SET line = 'Removed', removed_at = ?, entered_line_at = ? "
                "WHERE guild_id = ? AND line = ?",
                (now, now, guild_id, line.value),
            )
            return cur.rowcount

    async def set_rating(self, guild_id: int, submission_id: int, rating: int) -> None:
        """Store a reviewer's 1-10 rating on a played submission."""
        async with self.transaction(submissions_of=(guild_id,)) as conn:
            await conn.execute(
                "UPDATE submissions SET rating = ? WHERE guild_id = ? AND id = ?", (rating, guild_id, submission_id)
            )

    async def user_history(self, guild_id: int, user_id: int, *, limit: int = 10, offset: int = 0) -> list[Submission]:
        """A user's submissions, newest first."""
        rows = await self._fetchall(
            "SELECT * FROM submissions WHERE guild_id = ? AND user_id = ? ORDER BY submitted_at DESC LIMIT ? OFFSET ?",
            (guild_id, user_id, limit, offset),
        )
        return [_submission(r) for r in rows]

    async def count_user_history(self, guild_id: int, user_id: int) -> int:
        """How many submissions a user ever made in a guild."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM submissions WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return int(row[0]) if row else 0

    async def user_active(self, guild_id: int, user_id: int) -> list[Submission]:
        """A user's submissions that still wait (any playable line or Pending), newest first (kept, see ``_kept``)."""

        async def read() -> tuple[Submission, ...]:
            rows = await self._fetchall(
                f"SELECT * FROM submissions WHERE guild_id = ? AND user_id = ? AND line IN ({_ACTIVE_SQL}) "
                "ORDER BY submitted_at DESC",
                (guild_id, user_id),
            )
            return tuple(map(_submission, rows))

        return list(await self._kept_read(guild_id, ("active", user_id), read))

    async def last_submission_time(self, guild_id: int, user_id: int) -> float | None:
        """When the user last submitted, for the cooldown."""
        row = await self._fetchone(
            "SELECT submitted_at FROM submissions WHERE guild_id = ? AND user_id = ? "
            "ORDER BY submitted_at DESC LIMIT 1",
            (guild_id, user_id),
        )
        return float(row[0]) if row else None

    async def find_active_duplicate(self, guild_id: int, link_key: str | None, song_key: str) -> Submission | None:
        """An active submission with the same link or the same artist and title, if any."""
        row = await self._fetchone(ACTIVE_DUPLICATE_SQL, (guild_id, song_key, guild_id, link_key))
        return _submission(row) if row else None

    async def recent_play_times(self, guild_id: int, limit: int = 11) -> list[float]:
        """``played_at`` of the latest plays, newest first (the pace behind estimated times; kept)."""

        async def read() -> tuple[float, ...]:
            rows = await self._fetchall(
                "SELECT played_at FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL "
                "ORDER BY played_at DESC LIMIT ?",
                (guild_id, limit),
            )
            return tuple(float(r[0]) for r in rows)

        return list(await self._kept_read(guild_id, ("plays", limit), read))

    async def import_submissions(self, rows: Sequence[tuple[Submission, str, str | None]]) -> None:
        """Insert fully specified submissions (ids, lines, timestamps) in one transaction.

        For importing history from another bot or seeding a benchmark: ``(submission, song_key, link_key)``.
        """
        async with self.transaction(submissions_of={s.guild_id for s, _song, _link in rows}) as conn:
            await conn.executemany(
                """
                INSERT INTO submissions (guild_id, public_id, user_id, user_name, artist, title, link, platform,
                    note, tiktok_handle, line, submitted_at, entered_line_at, played_at, played_from, removed_at,
                    link_key, song_key)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    (
                        s.guild_id, s.public_id, s.user_id, s.user_name, s.artist, s.title, s.link, s.platform,
                        s.note, s.tiktok_handle, s.line.value, s.submitted_at, s.entered_line_at, s.played_at,
                        s.played_from.value if s.played_from else None, s.removed_at,
                        link_key, song_key,
                    )
                    for s, song_key, link_key in rows
                ],
            )  # fmt: skip

    async def import_handles(self, handles: Sequence[Handle]) -> None:
        """Insert handles with their counters and links in one transaction (import, benchmarks)."""
        async with self.transaction() as conn:
            await conn.executemany(
                "INSERT OR REPLACE INTO handles (guild_id, handle, user_id, verified, nickname, last_seen, likes, "
                "comments, shares, follows, subscribes, coins) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (h.guild_id, h.handle, h.user_id, int(h.verified), h.nickname, h.last_seen,
                     *counter_values(h.counts))
                    for h in handles
                ],
            )  # fmt: skip

    async def referenced_files(self) -> set[str]:
        """Every stored audio path a submission refers to (to prune orphaned uploads)."""
        rows = await self._fetchall("SELECT file_path FROM submissions WHERE file_path IS NOT NULL")
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ handles and points

    async def get_handle(self, guild_id: int, handle: str) -> Handle | None:
        """One handle with its counters and link."""
        row = await self._fetchone("SELECT * FROM handles WHERE guild_id = ? AND handle = ?", (guild_id, handle))
        return _handle(row) if row else None

    async def handle_owners(self, guild_id: int, handles: Sequence[str]) -> dict[str, int]:
        """Linked owners of some handles (unlinked handles are left out)."""

        def query(marks: str, chunk: list[SqlValue]) -> tuple[str, list[SqlValue]]:
            where = f"guild_id = ? AND handle IN ({marks}) AND user_id IS NOT NULL"
            return f"SELECT handle, user_id FROM handles WHERE {where}", [guild_id, *chunk]

        return {r["handle"]: r["user_id"] for r in await self._fetch_in(handles, query)}

    async def user_handles(self, guild_id: int, user_id: int) -> list[Handle]:
        """Handles linked to a Discord user, verified first."""
        rows = await self._fetchall(
            "SELECT * FROM handles WHERE guild_id = ? AND user_id = ? ORDER BY verified DESC, handle",
            (guild_id, user_id),
        )
        return [_handle(r) for r in rows]

    async def search_handles(self, guild_id: int, prefix: str, limit: int = 25) -> list[str]:
        """Known handles starting with ``prefix`` (a primary-key range scan, not LIKE)."""
        rows = await self._fetchall(
            "SELECT handle FROM handles WHERE guild_id = ? AND handle >= ? AND handle < ? ORDER BY handle LIMIT ?",
            (guild_id, prefix, prefix + "\U0010ffff", limit),
        )
        return [r[0] for r in rows]

    async def link_handle(
        self, guild_id: int, handle: str, user_id: int, *, verified: bool, force: bool
    ) -> tuple[Handle, int | None]:
        """Link a handle to a user; returns (handle, previous owner). Without ``force`` a foreign owner wins.

        The check and the write are one transaction so two users racing for a handle cannot both get it.
        """
        async with self.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO handles (guild_id, handle) VALUES (?, ?)", (guild_id, handle))
            async with conn.execute(
                "SELECT user_id, verified FROM handles WHERE guild_id = ? AND handle = ?", (guild_id, handle)
            ) as cur:
                row = await cur.fetchone()
            assert row is not None  # inserted just above, in this transaction
            previous = row["user_id"]
            if previous is not None and previous != user_id and not force:
                owner_row = await (
                    await conn.execute("SELECT * FROM handles WHERE guild_id = ? AND handle = ?", (guild_id, handle))
                ).fetchone()
                assert owner_row is not None  # the same row as just above, in this transaction
                return _handle(owner_row), previous
            keep_verified = bool(row["verified"]) and previous == user_id
            await conn.execute(
                "UPDATE handles SET user_id = ?, verified = ? WHERE guild_id = ? AND handle = ?",
                (user_id, int(verified or keep_verified), guild_id, handle),
            )
            if verified:
                # An admin's link is a proof: every open claim on the handle is void.
                await conn.execute("DELETE FROM link_codes WHERE guild_id = ? AND handle = ?", (guild_id, handle))
            async with conn.execute("SELECT * FROM handles WHERE guild_id = ? AND handle = ?", (guild_id, handle)) as c:
                updated = await c.fetchone()
        assert updated is not None  # the row exists: inserted or updated above, in this transaction
        return _handle(updated), previous

    async def unlink_handle(self, guild_id: int, handle: str, user_id: int | None) -> bool:
        """Remove a link (only the owner's, unless ``user_id`` is None for an admin); True when one was removed."""
        async with self.transaction() as conn:
            if user_id is None:
                cur = await conn.execute(
                    "UPDATE handles SET user_id = NULL, verified = 0 WHERE guild_id = ? AND handle = ? "
                    "AND user_id IS NOT NULL",
                    (guild_id, handle),
                )
            else:
                cur = await conn.execute(
                    "UPDATE handles SET user_id = NULL, verified = 0 WHERE guild_id = ? AND handle = ? AND user_id = ?",
                    (guild_id, handle, user_id),
                )
            return cur.rowcount > 0

    async def ensure_handle(self, guild_id: int, handle: str) -> None:
        """Make sure a handle row exists (a handle named on a submission earns points before it is seen)."""
        async with self.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO handles (guild_id, handle) VALUES (?, ?)", (guild_id, handle))

    async def set_link_code(self, guild_id: int, handle: str, user_id: int, code: str, now: float) -> None:
        """Remember the code a user must type in the live chat to prove a handle is theirs."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO link_codes (guild_id, handle, user_id, code, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (guild_id, handle, user_id, code, now),
            )

    async def pending_link_codes(self, guild_id: int) -> dict[str, list[tuple[int, str]]]:
        """Open verification codes by handle: ``{handle: [(user_id, code), ...]}``."""
        rows = await self._fetchall("SELECT handle, user_id, code FROM link_codes WHERE guild_id = ?", (guild_id,))
        codes: dict[str, list[tuple[int, str]]] = {}
        for row in rows:
            codes.setdefault(row["handle"], []).append((row["user_id"], row["code"]))
        return codes

    async def verify_link(self, guild_id: int, handle: str, user_id: int) -> tuple[Handle, int | None]:
        """Mark a handle verified for ``user_id`` and return it with its previous owner.

        A proof always wins over an unproven link: a member who typed their code in the live chat from the
        account takes the handle over from whoever linked it first.
        """
        async with self.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO handles (guild_id, handle) VALUES (?, ?)", (guild_id, handle))
            async with conn.execute(
                "SELECT user_id FROM handles WHERE guild_id = ? AND handle = ?", (guild_id, handle)
            ) as cur:
                before = await cur.fetchone()
            await conn.execute(
                "UPDATE handles SET user_id = ?, verified = 1 WHERE guild_id = ? AND handle = ?",
                (user_id, guild_id, handle),
            )
            await conn.execute("DELETE FROM link_codes WHERE guild_id = ? AND handle = ?", (guild_id, handle))
            async with conn.execute("SELECT * FROM handles WHERE guild_id = ? AND handle = ?", (guild_id, handle)) as c:
                row = await c.fetchone()
        assert row is not None  # inserted just above, in this transaction
        return _handle(row), (before["user_id"] if before else None)

    async def _reset_handles(self, conn: aiosqlite.Connection, guild_id: int, handles: Sequence[str]) -> int:
        zero = ", ".join(f"{c} = 0" for c in _COUNT_COLUMNS)
        total = 0
        for handle in handles:
            cur = await conn.execute(
                f"UPDATE handles SET {zero} WHERE guild_id = ? AND handle = ?",
                (guild_id, handle),
            )
            total += cur.rowcount
        return total

    async def reset_handles(self, guild_id: int, handles: Sequence[str]) -> int:
        """Zero the counters of some handles; returns how many existed."""
        async with self.transaction() as conn:
            return await self._reset_handles(conn, guild_id, handles)

    async def reset_all_points(self, guild_id: int) -> int:
        """Zero every handle's counters in a guild."""
        zero = ", ".join(f"{c} = 0" for c in _COUNT_COLUMNS)
        async with self.transaction() as conn:
            cur = await conn.execute(f"UPDATE handles SET {zero} WHERE guild_id = ?", (guild_id,))
            return cur.rowcount

    async def apply_engagement(
        self,
        guild_id: int,
        session_id: int | None,
        deltas: Sequence[EngagementDelta],
        viewers: int | None = None,
        minutes: Sequence[MinuteDelta] = (),
    ) -> None:
        """Add a flush window of engagement to the ledger and the session records in ONE transaction.

        ``minutes`` adds to the session's per-minute buckets (the recap's chart) in the same transaction.
        """
        if not deltas and viewers is None and not minutes:
            return
        ledger = [
            (
                guild_id,
                d.handle,
                d.nickname,
                d.tiktok_user_id,
                d.last_seen,
                *counter_values(d.counts),
            )
            for d in deltas
        ]
        async with self.transaction() as conn:
            await conn.executemany(
                """
                INSERT INTO handles (guild_id, handle, nickname, tiktok_user_id, last_seen,
                    likes, comments, shares, follows, subscribes, coins)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (guild_id, handle) DO UPDATE SET
                    nickname = COALESCE(excluded.nickname, nickname),
                    tiktok_user_id = COALESCE(excluded.tiktok_user_id, tiktok_user_id),
                    last_seen = MAX(COALESCE(last_seen, 0), COALESCE(excluded.last_seen, 0)),
                    likes = likes + excluded.likes, comments = comments + excluded.comments,
                    shares = shares + excluded.shares, follows = follows + excluded.follows,
                    subscribes = subscribes + excluded.subscribes, coins = coins + excluded.coins
                """,
                ledger,
            )
            if session_id is not None:
                await conn.executemany(
                    """
                    INSERT INTO session_stats (session_id, guild_id, handle, nickname, likes, comments, shares,
                        follows, subscribes, gifts, coins, joined_at, first_seen, last_seen)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (session_id, handle) DO UPDATE SET
                        nickname = COALESCE(excluded.nickname, nickname),
                        likes = likes + excluded.likes, comments = comments + excluded.comments,
                        shares = shares + excluded.shares, follows = follows + excluded.follows,
                        subscribes = subscribes + excluded.subscribes, gifts = gifts + excluded.gifts,
                        coins = coins + excluded.coins,
                        joined_at = COALESCE(joined_at, excluded.joined_at),
                        first_seen = MIN(COALESCE(first_seen, excluded.first_seen),
                                         COALESCE(excluded.first_seen, first_seen)),
                        last_seen = MAX(COALESCE(last_seen, 0), COALESCE(excluded.last_seen, 0))
                    """,
                    [
                        (
                            session_id,
                            guild_id,
                            d.handle,
                            d.nickname,
                            *counter_values(d.counts)[:5],
                            d.gifts,
                            d.counts.coins,
                            d.joined_at,
                            d.first_seen,
                            d.last_seen,
                        )
                        for d in deltas
                    ],
                )
                if viewers is not None:
                    await conn.execute(
                        "UPDATE live_sessions SET peak_viewers = MAX(peak_viewers, ?) WHERE id = ?",
                        (viewers, session_id),
                    )
                if minutes:
                    await self._add_minutes(conn, guild_id, session_id, minutes)

    async def session_coins_by_owner(
        self, guild_id: int, session_id: int, user_ids: Sequence[int], *, proven_only: bool
    ) -> dict[int, int]:
        """Coins gifted in one session through each user's linked handles (gift reward thresholds).

        ``proven_only``: only proven handles count (someone else's gifts never promote your song). One
        indexed query for a flush's gifters, however many; users whose handles gave nothing are left out.
        """

        def query(marks: str, chunk: list[SqlValue]) -> tuple[str, list[SqlValue]]:
            sql = (
                "SELECT h.user_id, SUM(s.coins) FROM handles AS h JOIN session_stats AS s"
                " ON s.session_id = ? AND s.guild_id = h.guild_id AND s.handle = h.handle"
                f" WHERE h.guild_id = ? AND h.user_id IN ({marks}) AND (h.verified = 1 OR ? = 0)"
                " GROUP BY h.user_id"
            )
            return sql, [session_id, guild_id, *chunk, int(proven_only)]

        return {int(r[0]): int(r[1]) for r in await self._fetch_in(user_ids, query)}

    async def granted_gift_rewards(self, session_id: int, user_ids: Sequence[int]) -> set[tuple[int, Line]]:
        """(user, paid line) pairs already granted as gift rewards in one session, for some users."""

        def query(marks: str, chunk: list[SqlValue]) -> tuple[str, list[SqlValue]]:
            sql = f"SELECT user_id, line FROM gift_rewards WHERE session_id = ? AND user_id IN ({marks})"
            return sql, [session_id, *chunk]

        return {(int(r[0]), Line(r[1])) for r in await self._fetch_in(user_ids, query)}

    async def record_gift_reward(
        self, session_id: int, guild_id: int, user_id: int, line: Line, submission_id: int | None, now: float
    ) -> bool:
        """Remember that a threshold was granted; False when it already was this session."""
        async with self.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO gift_rewards (session_id, guild_id, user_id, line, submission_id, granted_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, guild_id, user_id, line.value, submission_id, now),
            )
            return cur.rowcount > 0

    # ------------------------------------------------------------------ live sessions

    async def start_session(
        self, guild_id: int, host: str, room_id: int | None, now: float, *, simulated: bool = False
    ) -> LiveSession:
        """Open a live session record."""
        async with self.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO live_sessions (guild_id, host, room_id, started_at, simulated) VALUES (?, ?, ?, ?, ?)",
                (guild_id, host, room_id, now, int(simulated)),
            )
            session_id = cur.lastrowid
            async with conn.execute("SELECT * FROM live_sessions WHERE id = ?", (session_id,)) as c:
                row = await c.fetchone()
        assert row is not None  # inserted just above, in this transaction
        return _session(row)

    async def end_session(self, session_id: int, now: float) -> LiveSession | None:
        """Close a session (idempotent: the first end time stays)."""
        async with self.transaction() as conn:
            await conn.execute(
                "UPDATE live_sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?", (now, session_id)
            )
            async with conn.execute("SELECT * FROM live_sessions WHERE id = ?", (session_id,)) as c:
                row = await c.fetchone()
        return _session(row) if row else None

    async def get_session(self, session_id: int) -> LiveSession | None:
        """One session by id."""
        row = await self._fetchone("SELECT * FROM live_sessions WHERE id = ?", (session_id,))
        return _session(row) if row else None

    async def session_stats(self, session_id: int) -> list[SessionStats]:
        """Every handle's stats of a session with the linked Discord user, most points-worthy first."""
        rows = await self._fetchall(
            """
            SELECT st.*, h.user_id AS linked_user FROM session_stats st
            LEFT JOIN handles h ON h.guild_id = st.guild_id AND h.handle = st.handle
            WHERE st.session_id = ?
            ORDER BY st.coins DESC, st.likes + st.comments * 2 + st.shares * 5 DESC, st.handle
            """,
            (session_id,),
        )
        return [
            SessionStats(
                session_id=session_id,
                handle=r["handle"],
                counts=_counts(r),
                gifts=r["gifts"],
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
                joined_at=r["joined_at"],
                nickname=r["nickname"],
                user_id=r["linked_user"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ displays, blocklist, prefs, meta

    async def get_display(self, guild_id: int, kind: DisplayKind) -> Display | None:
        """Where a display message lives (the guild's displays are read once, then kept in step by ``save_display``)."""
        known = self._displays.get(guild_id)
        if known is None:
            generation = self._displays_generation
            rows = await self._fetchall("SELECT * FROM displays WHERE guild_id = ?", (guild_id,))
            known = {display.kind: display for display in map(_display, rows)}
            if generation == self._displays_generation:
                self._displays[guild_id] = known
        return known.get(kind)

    async def all_displays(self) -> list[Display]:
        """Every display of every guild (restored at start)."""
        rows = await self._fetchall("SELECT * FROM displays ORDER BY guild_id, kind")
        return [_display(row) for row in rows]

    async def save_display(self, display: Display) -> None:
        """Insert or replace a display record."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO displays (guild_id, kind, channel_id, message_id, content_hash) "
                "VALUES (?, ?, ?, ?, ?)",
                (display.guild_id, display.kind.value, display.channel_id, display.message_id, display.content_hash),
            )
        self._displays_generation += 1
        known = self._displays.get(display.guild_id)
        if known is not None:
            known[display.kind] = display

    async def blocklist(self, guild_id: int) -> list[BlockEntry]:
        """A guild's blocklist rules."""
        rows = await self._fetchall("SELECT * FROM blocklist WHERE guild_id = ? ORDER BY kind, value", (guild_id,))
        return [BlockEntry(guild_id, BlockKind(r["kind"]), r["value"]) for r in rows]

    async def add_block(self, entry: BlockEntry) -> bool:
        """Add a rule; False when it already existed."""
        async with self.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO blocklist (guild_id, kind, value) VALUES (?, ?, ?)",
                (entry.guild_id, entry.kind.value, entry.value),
            )
            return cur.rowcount > 0

    async def remove_block(self, entry: BlockEntry) -> bool:
        """Remove a rule; False when there was none."""
        async with self.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM blocklist WHERE guild_id = ? AND kind = ? AND value = ?",
                (entry.guild_id, entry.kind.value, entry.value),
            )
            return cur.rowcount > 0

    async def get_dm_notify(self, guild_id: int, user_id: int) -> bool:
        """Whether a user opted in to DMs about their songs."""
        row = await self._fetchone(
            "SELECT dm_notify FROM user_prefs WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return bool(row[0]) if row else False

    async def set_dm_notify(self, guild_id: int, user_id: int, enabled: bool) -> None:
        """Opt a user in or out of DMs."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO user_prefs (guild_id, user_id, dm_notify) VALUES (?, ?, ?) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET dm_notify = excluded.dm_notify",
                (guild_id, user_id, int(enabled)),
            )

    async def get_meta(self, key: str) -> str | None:
        """A bot-wide value."""
        row = await self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Store a bot-wide value."""
        async with self.transaction() as conn:
            await conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ debug channels per guild

    async def debug_channel_map(self) -> dict[int, int]:
        """Guild id → its debug channel id, for every guild that set one (each guild's warnings go to its own)."""
        rows = await self._fetchall(
            "SELECT guild_id, debug_channel_id FROM guild_settings WHERE debug_channel_id IS NOT NULL"
        )
        return {int(r[0]): int(r[1]) for r in rows}

    # ------------------------------------------------------------------ leaderboard

    async def latest_session(self, guild_id: int) -> LiveSession | None:
        """The open real live of a guild, else its most recent real one (simulations never count)."""
        row = await self._fetchone(
            """
            SELECT * FROM live_sessions WHERE guild_id = ? AND simulated = 0
            ORDER BY ended_at IS NULL DESC, started_at DESC, id DESC LIMIT 1
            """,
            (guild_id,),
        )
        return _session(row) if row else None

    @staticmethod
    def _ranked(guild_id: int, weights: PointsWeights, session_id: int | None) -> tuple[str, list[SqlValue]]:
        """A ``WITH ranked AS (...)`` prefix: points per handle of one live, or of every real live added up.

        Points come from the per-live counters times the guild's weights, not from the handles ledger:
        the ledger resets when a Free song plays, and a leaderboard is about what people gave.
        """
        if session_id is not None:
            scope, scope_params = "st.session_id = ?", [session_id]
        else:
            scope = (
                "st.guild_id = ? AND st.session_id IN "
                "(SELECT id FROM live_sessions WHERE guild_id = ? AND simulated = 0)"
            )
            scope_params = [guild_id, guild_id]
        sql = f"""
            WITH totals AS (
                SELECT st.handle AS handle, MAX(st.nickname) AS nickname,
                       SUM(st.likes) * ? + SUM(st.comments) * ? + SUM(st.shares) * ? + SUM(st.follows) * ?
                       + SUM(st.subscribes) * ? + SUM(st.coins) * ? AS points
                FROM session_stats st WHERE {scope} GROUP BY st.handle
            ), ranked AS (
                SELECT t.handle, t.nickname, t.points, h.user_id, RANK() OVER (ORDER BY t.points DESC) AS rank
                FROM totals t LEFT JOIN handles h ON h.guild_id = ? AND h.handle = t.handle
                WHERE t.points > 0
            )
        """
        w = [weights.like, weights.comment, weights.share, weights.follow, weights.subscribe, weights.gift_coin]
        return sql, [*w, *scope_params, guild_id]

    async def leaderboard(
        self, guild_id: int, weights: PointsWeights, *, session_id: int | None, limit: int, offset: int
    ) -> tuple[list[LeaderboardRow], int]:
        """One page of the ranked handles, and how many handles have points at all."""
        sql, params = self._ranked(guild_id, weights, session_id)
        rows = await self._fetchall(
            sql + "SELECT * FROM ranked ORDER BY rank, handle LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        count = await self._fetchone(sql + "SELECT COUNT(*) FROM ranked", params)
        return [self._leaderboard_row(row) for row in rows], int(count[0]) if count else 0

    async def leaderboard_ranks(
        self, guild_id: int, weights: PointsWeights, handles: Sequence[str], *, session_id: int | None
    ) -> list[LeaderboardRow]:
        """The rows of the given handles (those with points), best first."""
        if not handles:
            return []
        sql, params = self._ranked(guild_id, weights, session_id)
        marks = ", ".join("?" for _ in handles)
        rows = await self._fetchall(
            sql + f"SELECT * FROM ranked WHERE handle IN ({marks}) ORDER BY rank, handle", [*params, *handles]
        )
        return [self._leaderboard_row(row) for row in rows]

    @staticmethod
    def _leaderboard_row(row: sqlite3.Row) -> LeaderboardRow:
        return LeaderboardRow(
            rank=int(row["rank"]),
            handle=row["handle"],
            points=int(row["points"]),
            nickname=row["nickname"],
            user_id=row["user_id"],
        )

    # ------------------------------------------------------------------ live sessions left open

    async def open_sessions(self) -> list[LiveSession]:
        """Every session without an end, across guilds (after a crash; at most one per guild in practice)."""
        rows = await self._fetchall("SELECT * FROM live_sessions WHERE ended_at IS NULL ORDER BY id")
        return [_session(row) for row in rows]

    async def session_last_activity(self, session_id: int) -> float:
        """When a session last saw anything: its last viewer event, else its start."""
        row = await self._fetchone(
            """
            SELECT MAX(COALESCE((SELECT MAX(last_seen) FROM session_stats WHERE session_id = s.id), 0), s.started_at)
            FROM live_sessions s WHERE s.id = ?
            """,
            (session_id,),
        )
        return float(row[0]) if row and row[0] is not None else 0.0

    # ------------------------------------------------------------------ queue order (issue 11, 15.1)

    _CONTRIBUTIONS_SQL = f"""
        SELECT s.id AS sid, h.handle AS handle, {_H_COLUMNS} FROM submissions s
        JOIN handles h INDEXED BY ix_handles_user ON h.guild_id = s.guild_id AND h.user_id = s.user_id
        WHERE s.guild_id = ? AND s.line = 'Free' AND (h.verified = 1 OR ? = 0) {{filter}}
        UNION ALL
        SELECT s.id AS sid, h.handle AS handle, {_H_COLUMNS} FROM submissions s
        JOIN handles h ON h.guild_id = s.guild_id AND h.handle = s.tiktok_handle AND h.user_id IS NULL
        WHERE s.guild_id = ? AND s.line = 'Free' AND ? = 0 {{filter}}
    """

    async def queue_snapshot(self, guild_id: int, lines: Sequence[Line]) -> QueueSnapshot:
        """The submissions of ``lines``, the handles behind each Free score and the weights, in one snapshot.

        All reads run inside one read transaction while holding the connection lock, so no write of this
        process or another can land between them: the order built from it is never torn.
        """
        sql = self._CONTRIBUTIONS_SQL.format(filter="")
        async with self._reading() as conn:
            submission_rows: list[tuple[Any, ...]] = []
            for line in lines:
                async with conn.execute(
                    f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE guild_id = ? AND line = ? "
                    "ORDER BY entered_line_at, id",
                    (guild_id, line.value),
                ) as cur:
                    submission_rows.extend(await _plain_rows(cur))
            async with conn.execute("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)) as cur:
                settings = _settings(await cur.fetchone(), guild_id)
            # With proven handles only (the default), unproven links and named handles add nothing.
            proven = int(settings.verified_handles_only)
            async with conn.execute(sql, (guild_id, proven, guild_id, proven)) as cur:
                contribution_rows = await _plain_rows(cur)

        submissions = _Converted(submission_rows, Submission.from_values)
        contributions = _Converted(contribution_rows, _contribution)
        return QueueSnapshot(submissions, contributions, settings.weights, settings.verified_handles_only)

    async def free_contributions(
        self, guild_id: int, submission_ids: Sequence[int]
    ) -> list[tuple[int, str, EngagementCounts]]:
        """``(submission id, handle, counters)`` behind the scores of some Free submissions (indexed lookups)."""
        proven = int((await self.get_settings(guild_id)).verified_handles_only)

        def query(marks: str, chunk: list[SqlValue]) -> tuple[str, list[SqlValue]]:
            sql = self._CONTRIBUTIONS_SQL.format(filter=f"AND s.id IN ({marks})")
            return sql, [guild_id, proven, *chunk, guild_id, proven, *chunk]

        return [_contribution(r) for r in await self._fetch_in(submission_ids, query)]

    async def handle_counts(self, guild_id: int, handles: Sequence[str]) -> dict[str, EngagementCounts]:
        """The ledger counters of some handles (handles never seen are left out)."""

        def query(marks: str, chunk: list[SqlValue]) -> tuple[str, list[SqlValue]]:
            columns = ", ".join(_COUNT_COLUMNS)
            sql = f"SELECT handle, {columns} FROM handles WHERE guild_id = ? AND handle IN ({marks})"
            return sql, [guild_id, *chunk]

        return {r["handle"]: _counts(r) for r in await self._fetch_in(handles, query)}

    # ------------------------------------------------------------------ setup and permission doctor (issue 14)

    async def doctor_fingerprint(self, guild_id: int) -> str | None:
        """What the permission doctor last posted for a guild (a hash of its problems), if anything."""
        row = await self._fetchone("SELECT doctor_fingerprint FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return row[0] if row else None

    async def set_doctor_fingerprint(self, guild_id: int, fingerprint: str | None) -> None:
        """Remember what the doctor posted, so a restart with the same problems posts nothing new."""
        async with self.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,))
            await conn.execute(
                "UPDATE guild_settings SET doctor_fingerprint = ? WHERE guild_id = ?", (fingerprint, guild_id)
            )

    async def claim_owner_notice(self, guild_id: int, now: float) -> bool:
        """Record the owner's one DM; True only the first time (atomic, so two checks record it once)."""
        async with self.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,))
            cur = await conn.execute(
                "UPDATE guild_settings SET doctor_owner_notified_at = ? "
                "WHERE guild_id = ? AND doctor_owner_notified_at IS NULL",
                (now, guild_id),
            )
            return cur.rowcount > 0

    async def owner_notified(self, guild_id: int) -> bool:
        """Whether the owner already had the doctor's one DM."""
        row = await self._fetchone(
            "SELECT doctor_owner_notified_at FROM guild_settings WHERE guild_id = ?", (guild_id,)
        )
        return bool(row and row[0] is not None)

    async def display_windows(self) -> dict[int, float]:
        """Every guild's own display refresh window (guilds on the default are left out)."""
        rows = await self._fetchall(
            "SELECT guild_id, display_refresh_seconds FROM guild_settings WHERE display_refresh_seconds IS NOT NULL"
        )
        return {int(r[0]): float(r[1]) for r in rows}

    # ------------------------------------------------------------------ web server (overlay, public page)

    async def set_web_token(self, guild_id: int, kind: str, token_hash: str, now: float) -> None:
        """Store the hash of a guild's new ``kind`` token; the previous one stops matching in the same write."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO web_tokens (guild_id, kind, token_hash, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, kind) DO UPDATE SET token_hash = excluded.token_hash, "
                "created_at = excluded.created_at",
                (guild_id, kind, token_hash, now),
            )

    async def web_token_guild(self, kind: str, token_hash: str) -> int | None:
        """The guild whose ``kind`` token has this hash, or None (the hash is looked up, then compared)."""
        row = await self._fetchone(
            "SELECT guild_id, token_hash FROM web_tokens WHERE token_hash = ? AND kind = ?", (token_hash, kind)
        )
        if row is None or not hmac.compare_digest(str(row["token_hash"]), token_hash):
            return None
        return int(row["guild_id"])

    async def web_token_created(self, guild_id: int, kind: str) -> float | None:
        """When a guild's current ``kind`` token was made (None when it has none)."""
        row = await self._fetchone(
            "SELECT created_at FROM web_tokens WHERE guild_id = ? AND kind = ?", (guild_id, kind)
        )
        return float(row[0]) if row else None

    async def get_web_settings(self, guild_id: int) -> WebSettings:
        """A guild's public page options (default: no links; on/off is the ``public_queue_enabled`` setting)."""
        row = await self._fetchone("SELECT public_links FROM web_settings WHERE guild_id = ?", (guild_id,))
        if row is None:
            return WebSettings(guild_id)
        return WebSettings(guild_id, bool(row["public_links"]))

    async def update_web_settings(self, guild_id: int, *, public_links: bool) -> WebSettings:
        """Change whether a guild's public page shows submitted links, and return its options."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO web_settings (guild_id, public_links) VALUES (?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET public_links = excluded.public_links",
                (guild_id, int(public_links)),
            )
        return WebSettings(guild_id, public_links)

    async def session_supporters(self, session_id: int, weights: PointsWeights, limit: int) -> list[Supporter]:
        """The ``limit`` handles with the most points in one live session (the guild's weights), best first."""
        points = " + ".join(f"st.{c} * ?" for c in _COUNT_COLUMNS)
        factors = [getattr(weights, name) for name in ("like", "comment", "share", "follow", "subscribe", "gift_coin")]
        rows = await self._fetchall(
            f"SELECT st.handle, st.nickname, st.coins, ({points}) AS points FROM session_stats st "
            "WHERE st.session_id = ? ORDER BY points DESC, st.coins DESC, st.handle LIMIT ?",
            (*factors, session_id, limit),
        )
        return [Supporter(r["handle"], r["nickname"], int(r["points"]), int(r["coins"])) for r in rows]

    # ------------------------------------------------------------------ live analytics

    async def session_followers(self, session_id: int, handles: Sequence[str]) -> set[str]:
        """Handles among ``handles`` whose follow already earned in this session (once per live, SPEC 6)."""

        def query(marks: str, chunk: list[SqlValue]) -> tuple[str, list[SqlValue]]:
            sql = f"SELECT handle FROM session_stats WHERE session_id = ? AND handle IN ({marks}) AND follows > 0"
            return sql, [session_id, *chunk]

        return {r[0] for r in await self._fetch_in(handles, query)}

    async def _add_minutes(
        self, conn: aiosqlite.Connection, guild_id: int, session_id: int, minutes: Sequence[MinuteDelta]
    ) -> None:
        await conn.executemany(
            """
            INSERT INTO session_minutes (session_id, guild_id, minute, likes, comments, coins)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (session_id, minute) DO UPDATE SET
                likes = likes + excluded.likes, comments = comments + excluded.comments,
                coins = coins + excluded.coins
            """,
            [(session_id, guild_id, m.minute, m.likes, m.comments, m.coins) for m in minutes],
        )

    async def session_minutes(self, session_id: int) -> list[MinuteDelta]:
        """A session's engagement per minute, in time order (minutes without any are absent)."""
        rows = await self._fetchall(
            "SELECT minute, likes, comments, coins FROM session_minutes WHERE session_id = ? ORDER BY minute",
            (session_id,),
        )
        return [MinuteDelta(r["minute"], r["likes"], r["comments"], r["coins"]) for r in rows]

    async def played_between(self, guild_id: int, start: float, end: float) -> list[Submission]:
        """Submissions of a guild played in ``[start, end]``, in play order (a live's songs)."""
        rows = await self._fetchall(
            "SELECT * FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL "
            "AND played_at >= ? AND played_at <= ? ORDER BY played_at, id",
            (guild_id, start, end),
        )
        return [_submission(r) for r in rows]

    async def first_submitters_between(self, guild_id: int, start: float, end: float) -> int:
        """Members whose first submission ever in the guild was made in ``[start, end]`` (new this live)."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM (SELECT user_id FROM submissions WHERE guild_id = ? GROUP BY user_id "
            "HAVING MIN(submitted_at) >= ? AND MIN(submitted_at) <= ?)",
            (guild_id, start, end),
        )
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ ui (now playing, live status)

    async def latest_played(self, guild_id: int) -> Submission | None:
        """The guild's most recently played submission: "Now playing" on the displays, /queue and the overlay (kept)."""

        async def read() -> Submission | None:
            row = await self._fetchone(
                "SELECT * FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL AND line = 'Played' "
                "ORDER BY played_at DESC, id DESC LIMIT 1",
                (guild_id,),
            )
            return _submission(row) if row else None

        return await self._kept_read(guild_id, ("played",), read)

    async def count_played_since(self, guild_id: int, since: float) -> int:
        """How many songs played in a guild since ``since`` (songs played during a live)."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL AND played_at >= ?",
            (guild_id, since),
        )
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ handle standing

    async def link_code_of(self, guild_id: int, handle: str, user_id: int) -> str | None:
        """The open chat code ``user_id`` was given to prove ``handle``, if any (a primary-key lookup)."""
        row = await self._fetchone(
            "SELECT code FROM link_codes WHERE guild_id = ? AND handle = ? AND user_id = ?", (guild_id, handle, user_id)
        )
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ every Nth from Free

    async def plays_since_free(self, guild_id: int, limit: int) -> tuple[int, int | None]:
        """Paid plays since the guild's latest Free play (at most ``limit``) and the latest play's row id.

        The row id is None before the first play. The state behind "every Nth song comes from Free", read
        from the archive so it survives a restart.
        Plays are ordered by ``played_at``, then id; one indexed read of at most ``limit`` rows.
        """
        rows = await self._fetchall(
            "SELECT id, played_from FROM submissions WHERE guild_id = ? AND played_at IS NOT NULL "
            "AND line = 'Played' ORDER BY played_at DESC, id DESC LIMIT ?",
            (guild_id, limit),
        )
        streak = 0
        for row in rows:
            if row["played_from"] == Line.FREE.value:
                break
            streak += 1
        return streak, (int(rows[0]["id"]) if rows else None)

"""Migration 0007: the two public-page switches become one (``guild_settings.public_queue_enabled``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import database as database_module
from database import MIGRATIONS_DIR, Database, load_migrations

GUILDS = {
    # guild: (web_settings.public_enabled, guild_settings.public_queue_enabled, public_links); None = no row
    1: (1, 0, 1),  # switched on with /overlay public only
    2: (0, 1, 0),  # switched on in /settings only
    3: (1, 1, 0),  # both
    4: (0, 0, 1),  # neither (but links allowed)
    5: (1, None, 0),  # /overlay public on, the guild never changed a setting (no guild_settings row)
    6: (None, 1, None),  # /settings on, never used /overlay public (no web_settings row)
}


async def test_0007_keeps_a_page_on_that_either_switch_had_on_and_drops_the_old_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "migrations-0006"
    old.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("000[1-6]_*.sql")):
        shutil.copy(path, old / path.name)
    with monkeypatch.context() as patch:
        patch.setattr(database_module, "load_migrations", lambda: load_migrations(old))
        db = Database(tmp_path / "bot.db")
        await db.connect()
        assert await db.schema_version() == 6
        for guild, (web, setting, links) in GUILDS.items():
            if setting is not None:
                await db.conn.execute(
                    "INSERT INTO guild_settings (guild_id, public_queue_enabled) VALUES (?, ?)", (guild, setting)
                )
            if web is not None:
                await db.conn.execute(
                    "INSERT INTO web_settings (guild_id, public_enabled, public_links) VALUES (?, ?, ?)",
                    (guild, web, links),
                )
        await db.close()
    db = Database(tmp_path / "bot.db")
    await db.connect()  # the real migrations: 0007 runs
    try:
        assert await db.schema_version() == load_migrations()[-1][0] >= 7
        columns = {row[1] for row in await db.conn.execute_fetchall("PRAGMA table_info(web_settings)")}
        assert columns == {"guild_id", "public_links"}
        for guild, (web, setting, links) in GUILDS.items():
            assert (await db.get_settings(guild)).public_queue_enabled == bool(web or setting), guild
            assert (await db.get_web_settings(guild)).public_links == bool(links), guild
        assert await db.integrity_check() == "ok"
    finally:
        await db.close()

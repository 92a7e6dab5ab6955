"""Online database backups (SQLite's backup API) with rotation, and the documented restore.

Restore, with the bot stopped: ``python -m services.backup restore data/backups/<file>.db``. It checks the
backup's integrity, keeps the current database beside it as ``*.before-restore``, then copies the backup
into place.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from database import Database
from services.periodic import Periodic

log = logging.getLogger(__name__)
PREFIX = "music_queue-"


class BackupService:
    """Takes backups into ``DATA_DIR/backups`` and keeps the newest ``keep``."""

    def __init__(self, db: Database, data_dir: Path, keep: int = 7) -> None:
        self.db = db
        self.folder = data_dir / "backups"
        self.keep = keep
        self._loop: Periodic | None = None

    async def backup_now(self) -> Path:
        """One consistent copy of the live database, then rotation."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        counter = 0
        # A zero-padded counter keeps names sorting in time order even within one second.
        while (target := self.folder / f"{PREFIX}{stamp}-{counter:02d}.db").exists():
            counter += 1
        await self.db.backup_to(target)
        self.rotate()
        log.info("database backed up to %s", target)
        return target

    def backups(self) -> list[Path]:
        """Existing backups, oldest first."""
        return sorted(self.folder.glob(f"{PREFIX}*.db"))

    def rotate(self) -> list[Path]:
        """Delete all but the newest ``keep`` backups; returns what was deleted."""
        old = self.backups()[: -self.keep] if self.keep > 0 else []
        for path in old:
            path.unlink(missing_ok=True)
        return old

    def start(self, interval_hours: float) -> None:
        """Back up every ``interval_hours`` (0 switches the schedule off)."""
        if interval_hours > 0:
            if self._loop is None:
                self._loop = Periodic(self.backup_now, interval_hours * 3600, name="backups",
                                      failure="scheduled backup failed; trying again next time")  # fmt: skip
            self._loop.start()

    async def stop(self) -> None:
        """Stop the schedule."""
        if self._loop is not None:
            await self._loop.stop()


def restore(backup: Path, database_path: Path) -> Path:
    """Put a backup in place of the database (bot stopped). Returns where the old database was kept."""
    check = sqlite3.connect(backup)
    try:
        result = check.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        check.close()
    if result != "ok":
        raise ValueError(f"{backup} failed the integrity check: {result}")
    kept = database_path.with_name(database_path.name + ".before-restore")
    if database_path.exists():
        shutil.copy2(database_path, kept)
    for suffix in ("-wal", "-shm"):
        database_path.with_name(database_path.name + suffix).unlink(missing_ok=True)
    shutil.copy2(backup, database_path)
    return kept


if __name__ == "__main__":
    from config import ConfigError, load_config

    if len(sys.argv) != 3 or sys.argv[1] != "restore":
        sys.stderr.write("usage: python -m services.backup restore <backup file>\n")
        sys.exit(2)
    try:
        cfg = load_config()
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    previous = restore(Path(sys.argv[2]), cfg.database_path)
    sys.stderr.write(f"restored {sys.argv[2]} to {cfg.database_path} (previous copy: {previous})\n")

"""Online backups with rotation, and a restore that brings the data back."""

from __future__ import annotations

from pathlib import Path

import pytest

from database import Database
from services.backup import BackupService, restore
from services.queue import QueueService
from tests.conftest import GUILD


async def test_backup_rotation_and_restore(tmp_path: Path, db: Database, queue: QueueService) -> None:
    draft = queue.draft(artist="Keep", title="Me", note=None, link="https://x.test/keep")
    kept = (await queue.submit(GUILD, 1, "u", draft, skip=False)).submission
    service = BackupService(db, tmp_path, keep=2)
    paths = [await service.backup_now() for _ in range(3)]
    assert service.backups() == paths[1:]  # the oldest was rotated away
    # Lose the data, then restore the newest backup over a copy of the database file.
    await queue.clear_free(GUILD)
    target = tmp_path / "restored.db"
    await db.backup_to(target)
    previous = restore(paths[-1], target)
    assert previous.exists()
    restored = Database(target)
    await restored.connect()
    assert (await restored.get_submission(GUILD, kept.public_id)).line.value == "Free"
    assert await restored.integrity_check() == "ok"
    await restored.close()


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    damaged = tmp_path / "bad.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    with pytest.raises(Exception, match=r"integrity|not a database|malformed"):
        restore(damaged, tmp_path / "db.db")

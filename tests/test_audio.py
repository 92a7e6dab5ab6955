"""Upload checks with mutagen (extension AND content) and the durable store."""

from __future__ import annotations

from pathlib import Path

import pytest

from errors import ValidationError
from services.audio import MAX_BYTES, AudioStore, inspect_audio
from tests.audio_samples import flac_bytes, mp3_bytes, wav_bytes


@pytest.mark.parametrize(
    ("name", "data", "seconds"),
    [("song.wav", wav_bytes(1.5), 1.5), ("SONG.MP3", mp3_bytes(100), 2.6), ("a.flac", flac_bytes(2.0), 2.0)],
)
def test_valid_audio_is_accepted_with_its_duration(name: str, data: bytes, seconds: float) -> None:
    info = inspect_audio(name, data)
    assert info.duration == pytest.approx(seconds, abs=0.1)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("song.ogg", wav_bytes(), "Only MP3, WAV, M4A, FLAC"),
        ("song", wav_bytes(), "Only MP3"),
        ("song.mp3", b"", "empty"),
        ("song.mp3", wav_bytes(), "not a valid MP3"),
        ("song.wav", mp3_bytes(), "not a valid WAV"),
        ("song.flac", b"fLaC" + b"\x00" * 10, "not a valid FLAC"),
        ("song.m4a", b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 100, "not a valid M4A"),
        ("song.wav", wav_bytes()[:30], "not a valid WAV"),
        ("song.mp3", b"<html>hello</html>" * 50, "not a valid MP3"),
        ("song.wav", b"RIFF" + b"\xff" * 40, "WAV"),
    ],
)
def test_bad_files_are_refused(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        inspect_audio(name, data)


def test_size_limit_is_25_mb() -> None:
    with pytest.raises(ValidationError, match="limit is 25 MB"):
        inspect_audio("big.mp3", b"\x00" * (MAX_BYTES + 1))


async def test_store_is_durable_and_refuses_traversal(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    relative = await store.save(42, "mp3", b"abc")
    assert relative.startswith("42/") and relative.endswith(".mp3")
    assert await store.read(relative) == b"abc"
    assert not list((tmp_path / "audio" / "42").glob("*.part"))
    with pytest.raises(ValidationError):
        await store.read("../../etc/passwd")
    await store.delete(relative)
    assert not (tmp_path / "audio" / relative).exists()


def test_hostile_upload_names_only_pick_the_extension() -> None:
    assert inspect_audio("../../evil/..\\song.wav", wav_bytes()).extension == "wav"


async def test_orphaned_uploads_are_pruned_after_the_grace_period(tmp_path: Path) -> None:
    """Issue 11 B13: a file saved just before a crash (no submission row) is removed at start-up."""
    import os
    import time

    store = AudioStore(tmp_path)
    kept = await store.save(1, "mp3", b"kept")
    orphan = await store.save(1, "mp3", b"orphan")
    fresh = await store.save(2, "wav", b"being submitted right now")
    partial = store.root / "2" / "x.mp3.part"
    partial.write_bytes(b"interrupted write")
    old = time.time() - 7200
    for relative in (kept, orphan):
        os.utime(store.root / relative, (old, old))
    os.utime(partial, (old, old))
    removed = await store.prune_orphans({kept}, older_than=3600)
    assert sorted(removed) == sorted([orphan, "2/x.mp3.part"])
    assert (store.root / kept).exists() and (store.root / fresh).exists()
    assert not (store.root / orphan).exists() and not partial.exists()
    assert await store.prune_orphans({kept}, older_than=3600) == []


class _StopHere(Exception):
    pass


async def test_start_up_prunes_orphans_and_keeps_referenced_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bot.py's setup_hook prunes right after opening the database (stopped there: no Discord needed)."""
    import os
    import time

    import bot as bot_module
    from config import load_config
    from database import Database, NewSubmission
    from models import Line

    config = load_config({"DISCORD_TOKEN": "x", "DATA_DIR": str(tmp_path)})
    instance = bot_module.MusicQueueBot(config)
    kept = await instance.audio.save(1, "mp3", b"kept")
    orphan = await instance.audio.save(1, "mp3", b"orphan")
    old = time.time() - 7200
    for relative in (kept, orphan):
        os.utime(instance.audio.root / relative, (old, old))
    db = Database(instance.db.path)
    await db.connect()
    new = NewSubmission(1, 5, "u", "a", "t", Line.FREE, "a\x1ft", file_path=kept, file_name="k.mp3")
    await db.insert_submission(new, time.time())
    await db.close()

    def stop(*_args: object, **_kwargs: object) -> None:
        raise _StopHere

    monkeypatch.setattr(bot_module, "QueueService", stop)
    await instance._async_setup_hook()  # what login() does before setup_hook (the sharded client's event queue)
    try:
        with pytest.raises(_StopHere):
            await instance.setup_hook()
    finally:
        await instance.close()
    assert (instance.audio.root / kept).exists()
    assert not (instance.audio.root / orphan).exists()

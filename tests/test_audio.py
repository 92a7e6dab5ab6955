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

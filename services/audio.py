"""Durable storage of uploaded audio (SPEC 3): checked with mutagen, kept under ``DATA_DIR/audio``.

Discord attachment URLs expire, so every accepted upload is copied here and the submission stores the
relative path. Stored names are generated, never taken from the upload, so a hostile file name cannot
escape the folder.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path, PurePath

from mutagen import FileType, MutagenError
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.wave import WAVE

from errors import ValidationError

log = logging.getLogger(__name__)

MAX_BYTES = 25 * 1024 * 1024
# Extension -> the mutagen class that must parse the content for the upload to be accepted.
# Typed here because mutagen (py.typed) leaves its constructors unannotated: each takes a file object.
_KINDS: dict[str, Callable[[io.BytesIO], FileType]] = {"mp3": MP3, "wav": WAVE, "m4a": MP4, "flac": FLAC}
ALLOWED_EXTENSIONS = tuple(_KINDS)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the file turned out to be."""

    extension: str
    duration: float | None
    title: str | None
    artist: str | None


def _extension(file_name: str) -> str:
    name = PurePath(file_name.replace("\\", "/")).name
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _tag(audio: object, *keys: str) -> str | None:
    tags = getattr(audio, "tags", None)
    if not tags:
        return None
    for key in keys:
        try:
            value = tags.get(key)
        except (KeyError, ValueError, TypeError):
            continue
        if value:
            text = value[0] if isinstance(value, list) else getattr(value, "text", [value])[0]
            return str(text)[:100] or None
    return None


def inspect_audio(file_name: str, data: bytes) -> AudioInfo:
    """Check the size, the extension and that the content parses as audio of that kind."""
    extension = _extension(file_name)
    if extension not in _KINDS:
        raise ValidationError(f"Only {', '.join(e.upper() for e in ALLOWED_EXTENSIONS)} files are accepted.")
    if not data:
        raise ValidationError("That file is empty.")
    if len(data) > MAX_BYTES:
        raise ValidationError(f"That file is {len(data) / 1048576:.1f} MB; the limit is 25 MB.")
    try:
        audio = _KINDS[extension](io.BytesIO(data))
    except (MutagenError, ValueError, EOFError, IndexError, OverflowError, ZeroDivisionError):
        raise ValidationError(f"That file is not a valid {extension.upper()} audio file.") from None
    length = getattr(audio.info, "length", None)
    if not length or length <= 0:
        raise ValidationError(f"That {extension.upper()} file has no playable audio.")
    return AudioInfo(
        extension=extension,
        duration=float(length),
        title=_tag(audio, "TIT2", "\xa9nam", "title", "TITLE"),
        artist=_tag(audio, "TPE1", "\xa9ART", "artist", "ARTIST"),
    )


class AudioStore:
    """Files under ``root`` by guild; writes are atomic (temp file, then rename)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "audio").resolve()

    async def save(self, guild_id: int, extension: str, data: bytes) -> str:
        """Store bytes durably; returns the path relative to the store."""
        relative = f"{guild_id}/{int(time.time())}-{secrets.token_hex(8)}.{extension}"
        await asyncio.to_thread(self._write, self.root / relative, data)
        return relative

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def resolve(self, relative: str) -> Path:
        """The absolute path of a stored file, refusing anything outside the store."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValidationError("That file reference is not valid.")
        return path

    async def read(self, relative: str) -> bytes:
        """The stored bytes (for the reviewer when the song plays)."""
        return await asyncio.to_thread(self.resolve(relative).read_bytes)

    async def prune_orphans(self, referenced: Collection[str], older_than: float = 3600.0) -> list[str]:
        """Delete stored files no submission refers to, once older than ``older_than`` seconds.

        A crash between saving an upload and inserting its submission leaves a file nobody refers to; so
        does an interrupted write (``.part``). The grace period spares an upload whose submission is being
        written right now. Call at start-up with ``Database.referenced_files()``; returns what was removed.
        """
        return await asyncio.to_thread(self._prune, frozenset(referenced), time.time() - older_than)

    def _prune(self, referenced: frozenset[str], cutoff: float) -> list[str]:
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        for path in sorted(self.root.glob("*/*")):
            relative = path.relative_to(self.root).as_posix()
            if not path.is_file() or relative in referenced:
                continue
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # removed meanwhile: nothing left to prune
            removed.append(relative)
        if removed:
            log.info("pruned %d orphaned upload(s) from %s", len(removed), self.root)
        return removed

    async def delete(self, relative: str) -> None:
        """Remove a stored file if present."""
        await asyncio.to_thread(self.resolve(relative).unlink, True)

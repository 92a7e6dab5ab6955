"""Signed, expiring download links for uploaded audio (HMAC-SHA256 with a secret kept in ``DATA_DIR``).

A link names a submission by its row id and an expiry time, and carries
``HMAC(secret, "file:<guild>:<row id>:<expiry>")``: changing any part, or presenting it after the expiry,
is refused. The secret is 32 random bytes written once, readable by the bot's user only (0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_FILE = "web_secret"
SECRET_BYTES = 32


class LinkError(Exception):
    """A file link that is malformed, tampered with, or expired (the message says which, for the page)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a well-formed link names (the signature is checked once the guild is known)."""

    row_id: int
    expires: int
    signature: str


def load_secret(data_dir: Path) -> bytes:
    """The signing secret, created with mode 0600 on first start."""
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) < SECRET_BYTES:
            raise RuntimeError(f"{path} is damaged (too short); delete it to make a new one") from None
        return secret
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
        handle.flush()
        os.fsync(handle.fileno())
    log.info("created the file link secret in %s", path)
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FileLinks:
    """Makes and checks the signed part of ``/f/<link>`` URLs."""

    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.clock = clock

    def _signature(self, guild_id: int, row_id: int, expires: int) -> str:
        message = f"file:{guild_id}:{row_id}:{expires}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def make(self, guild_id: int, row_id: int, *, lifetime_seconds: float) -> str:
        """The link part for a submission's file, valid for ``lifetime_seconds`` from now.

        The lifetime is the guild's File-link expiry setting at signing time; it is signed into the link, so
        changing the setting later neither shortens nor extends links already given.
        """
        expires = int(self.clock() + lifetime_seconds)
        return f"{row_id}.{expires}.{self._signature(guild_id, row_id, expires)}"

    @staticmethod
    def parse(link: str) -> LinkTarget:
        """Split a link; LinkError when it is not of the form ``<row>.<expiry>.<signature>``."""
        parts = link.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[0]) > 18:
            raise LinkError("This link is not valid.")
        if len(parts[1]) > 12 or len(parts[2]) != 43:
            raise LinkError("This link is not valid.")
        return LinkTarget(int(parts[0]), int(parts[1]), parts[2])

    def check(self, target: LinkTarget, guild_id: int) -> None:
        """Raise LinkError unless the signature matches the submission's guild and the link has not expired."""
        expected = self._signature(guild_id, target.row_id, target.expires)
        if not hmac.compare_digest(expected, target.signature):
            raise LinkError("This link is not valid.")
        if target.expires < self.clock():
            raise LinkError("This link has expired. Ask for the song again to get a fresh one.", expired=True)

"""Input rules shared by every way in (modals, slash options, buttons): text, links and TikTok handles."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from errors import ValidationError

ARTIST_MAX = 100
TITLE_MAX = 100
LINK_MAX = 500
NOTE_MAX = 200

_HANDLE_RE = re.compile(r"^[a-z0-9_.]{2,24}$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
# Zero-width and bidi control characters make text look empty or reorder it; they never belong in a title.
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}

# Host suffix -> platform name shown to reviewers.
PLATFORMS: tuple[tuple[str, str], ...] = (
    ("youtube.com", "YouTube"),
    ("youtu.be", "YouTube"),
    ("music.youtube.com", "YouTube Music"),
    ("spotify.com", "Spotify"),
    ("spotify.link", "Spotify"),
    ("soundcloud.com", "SoundCloud"),
    ("on.soundcloud.com", "SoundCloud"),
    ("music.apple.com", "Apple Music"),
    ("deezer.com", "Deezer"),
    ("deezer.page.link", "Deezer"),
    ("tidal.com", "Tidal"),
    ("bandcamp.com", "Bandcamp"),
    ("audiomack.com", "Audiomack"),
    ("tiktok.com", "TikTok"),
    ("drive.google.com", "Google Drive"),
    ("dropbox.com", "Dropbox"),
    ("onedrive.live.com", "OneDrive"),
    ("1drv.ms", "OneDrive"),
    ("icloud.com", "iCloud Drive"),
    ("mega.nz", "MEGA"),
    ("box.com", "Box"),
    ("wetransfer.com", "WeTransfer"),
)


def clean_text(value: str | None, *, field: str, maximum: int, required: bool) -> str | None:
    """Strip control and invisible characters and whitespace; enforce presence and length."""
    kept = []
    for ch in unicodedata.normalize("NFC", value or ""):
        if ch.isspace():
            kept.append(" ")
        elif ch not in _INVISIBLE and unicodedata.category(ch) not in {"Cc", "Cf"}:
            kept.append(ch)
    text = re.sub(r" +", " ", "".join(kept)).strip()
    if not text:
        if required:
            raise ValidationError(f"{field} can't be empty.")
        return None
    if len(text) > maximum:
        raise ValidationError(f"{field} is too long ({len(text)} characters; the limit is {maximum}).")
    return text


@dataclass(frozen=True, slots=True)
class ValidLink:
    """An accepted link: the URL as given, the platform, and a key that spots the same song twice."""

    url: str
    platform: str
    key: str


def validate_link(value: str | None) -> ValidLink:
    """Accept only absolute http(s) URLs with a real host and no credentials."""
    text = (value or "").strip()
    if not text:
        raise ValidationError("The link can't be empty.")
    if len(text) > LINK_MAX:
        raise ValidationError(f"The link is too long ({len(text)} characters; the limit is {LINK_MAX}).")
    if any(ch.isspace() for ch in text) or any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text):
        raise ValidationError("The link must be a single web address with no spaces.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValidationError("That link is not a valid web address.") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValidationError("The link must start with http:// or https://.")
    if parts.username or parts.password:
        raise ValidationError("Links with a user name or password in them are not accepted.")
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        ascii_host = host.encode("idna").decode("ascii") if host else ""
    except UnicodeError:
        raise ValidationError("That link's web address is not valid.") from None
    if not _HOST_RE.match(ascii_host) or port == 0:
        raise ValidationError("That link has no valid web address (for example https://youtu.be/...).")
    return ValidLink(url=text, platform=platform_of(ascii_host), key=link_key(ascii_host, parts.path, parts.query))


def platform_of(host: str) -> str:
    """The music platform or cloud drive a host belongs to, else ``"Link"``."""
    host = host.lower()
    best = ""
    name = "Link"
    for suffix, platform in PLATFORMS:
        if (host == suffix or host.endswith("." + suffix)) and len(suffix) > len(best):
            best, name = suffix, platform
    return name


def link_key(host: str, path: str, query: str) -> str:
    """A normal form of a link so the same song is recognised however it was pasted."""
    host = host.lower()
    for prefix in ("www.", "m.", "mobile."):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    path = path.rstrip("/") or "/"
    if host == "youtu.be":
        return f"youtube.com/watch?v={path.lstrip('/')}"
    if host in {"youtube.com", "music.youtube.com"} and path == "/watch":
        video = parse_qs(query).get("v", [""])[0]
        return f"youtube.com/watch?v={video}"
    return f"{host}{path}"


def song_key(artist: str, title: str) -> str:
    """Artist and title folded for comparison (case, accents' forms and spacing ignored)."""

    def fold(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

    return f"{fold(artist)}\x1f{fold(title)}"


def normalize_handle(value: str | None) -> str:
    """A TikTok handle as stored: leading ``@`` removed, lower-cased, TikTok's character rules checked."""
    text = (value or "").strip().lstrip("@").strip().lower()
    if not text:
        raise ValidationError("Give a TikTok handle, like @yourname.")
    if not _HANDLE_RE.match(text):
        raise ValidationError(
            "That is not a valid TikTok handle: use 2 to 24 letters, digits, `_` or `.` (for example @your.name)."
        )
    return text


def parse_public_id(value: str) -> str:
    """A submission id as typed (``#AB12C`` or ``ab12c``) in stored form."""
    text = value.strip().lstrip("#").strip().upper()
    if not text or len(text) > 12 or not text.isalnum() or not text.isascii():
        raise ValidationError("That is not a submission id (ids look like #AB12C).")
    return text

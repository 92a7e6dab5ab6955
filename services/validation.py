"""Input rules shared by every way in (modals, slash options, buttons): text, links and TikTok handles."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from errors import ValidationError
from models import BlockKind

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
    """An accepted link: the URL as given, the platform, its normal host, and a key that spots the same song.

    ``host`` is the host in normal form (``normalize_host``): what the blocklist matches domains against.
    """

    url: str
    platform: str
    key: str
    host: str = ""


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
    try:
        ascii_host = _ascii_host(parts.hostname or "")
    except UnicodeError:
        raise ValidationError("That link's web address is not valid.") from None
    if not _HOST_RE.match(ascii_host) or port == 0:
        raise ValidationError("That link has no valid web address (for example https://youtu.be/...).")
    host = normalize_host(ascii_host)
    return ValidLink(
        url=text, platform=platform_of(ascii_host), key=link_key(ascii_host, parts.path, parts.query), host=host
    )


def platform_of(host: str) -> str:
    """The music platform or cloud drive a host belongs to, else ``"Link"``."""
    host = host.lower()
    best = ""
    name = "Link"
    for suffix, platform in PLATFORMS:
        if (host == suffix or host.endswith("." + suffix)) and len(suffix) > len(best):
            best, name = suffix, platform
    return name


# ---------------------------------------------------------------------- hosts and link keys
#
# One normal form serves both the duplicate guard (link keys) and the blocklist (domains), so what one
# recognises as "the same site" the other does too.

# Prefixes that name the same site for another device; they never distinguish content.
_HOST_PREFIXES = ("www.", "m.", "mobile.")
# Other names of one site, mapped to its main domain (short-link and embed domains).
HOST_ALIASES: dict[str, str] = {
    "youtu.be": "youtube.com",
    "youtube-nocookie.com": "youtube.com",
    "spotify.link": "spotify.com",
    "spoti.fi": "spotify.com",
    "deezer.page.link": "deezer.com",
    "dzr.page.link": "deezer.com",
    "1drv.ms": "onedrive.live.com",
    "dropboxusercontent.com": "dropbox.com",
    "db.tt": "dropbox.com",
}
# Query parameters that only say where a click came from; they never identify a song.
_TRACKING_PARAMS = {
    "si", "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "igsh", "feature", "ref", "ref_src",
    "ref_url", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "pp", "context", "nd", "share_app_id", "_r", "_t",
}  # fmt: skip


def _ascii_host(host: str) -> str:
    """Lower case, no trailing dot, IDN labels in punycode (``bücher.de`` -> ``xn--bcher-kva.de``)."""
    host = host.strip().lower().rstrip(".")
    return host.encode("idna").decode("ascii") if host else ""


def _strip_device(host: str) -> str:
    while True:
        prefix = next((p for p in _HOST_PREFIXES if host.startswith(p) and host.count(".") > 1), None)
        if prefix is None:
            return host
        host = host[len(prefix) :]


def normalize_host(host: str) -> str:
    """A host in the one normal form: ASCII (punycode), lower case, without www./m./mobile., aliases resolved.

    ``music.youtube.com`` stays itself (a subdomain is matched by a rule on its parent, see ``domain_matches``).
    Raises ``UnicodeError`` for a host the ``idna`` codec refuses.
    """
    host = _strip_device(_ascii_host(host))
    for alias, main in HOST_ALIASES.items():
        if host == alias or host.endswith("." + alias):
            return main
    return host


def domain_matches(host: str, domain: str) -> bool:
    """Whether a link's host falls under a blocked domain: the domain itself, its subdomains and aliases."""
    try:
        host, domain = normalize_host(host), normalize_host(domain)
    except UnicodeError:
        return False
    return bool(host and domain) and (host == domain or host.endswith("." + domain))


def normalize_block_domain(value: str) -> str:
    """A blocklist domain as stored: what an admin pasted (a bare domain or a URL) in normal host form.

    Aliases are kept as typed (``youtu.be`` stays ``youtu.be`` so /blocklist remove finds it); they are
    resolved when matching.
    """
    text = value.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = re.split(r"[/?#]", text, maxsplit=1)[0].rsplit("@", 1)[-1]
    text = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    try:
        host = _ascii_host(text)
    except UnicodeError:
        raise ValidationError("Give a domain like example.com.") from None
    host = _strip_device(host)
    if "." not in host or not _HOST_RE.match(host):
        raise ValidationError("Give a domain like example.com.")
    return host


def normalize_block(kind: BlockKind, value: str) -> str:
    """A blocklist value in the form it is stored and matched in (users by id, words folded, domains normal)."""
    text = value.strip()
    if kind is BlockKind.USER:
        digits = text.strip("<@!>")
        if not digits.isdigit():
            raise ValidationError("A user is given by their id or mention.")
        return digits
    if kind is BlockKind.DOMAIN:
        return normalize_block_domain(text)
    if len(text) > 100:
        raise ValidationError("Blocked words can be at most 100 characters.")
    return text.casefold()


def _params(query: str) -> dict[str, str]:
    """First value of each query parameter, names lower-cased."""
    found: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=False):
        found.setdefault(name.lower(), value)
    return found


def _with(base: str, params: dict[str, str], keep: Sequence[str]) -> str:
    kept = [(name, params[name]) for name in keep if params.get(name)]
    return base + ("?" + urlencode(kept) if kept else "")


_YOUTUBE_ID_PATHS = re.compile(r"^/(?:shorts|embed|live|v|e)/([^/]+)")
_SPOTIFY_PATH = re.compile(r"^(?:/intl-[a-z-]+)?(/(?:track|album|playlist|artist|episode|show)/[A-Za-z0-9]+)")
_APPLE_PATH = re.compile(r"^(?:/[a-z]{2})?/(album|song|playlist|artist|music-video)/(?:[^/]+/)?([^/]+)$")
_DEEZER_PATH = re.compile(r"^(?:/[a-z]{2}(?:-[a-z]{2})?)?/(track|album|playlist|artist|episode)/(\d+)")
_TIDAL_PATH = re.compile(r"^(?:/browse)?/(track|album|playlist|video|artist)/([^/]+)")
_TIKTOK_VIDEO = re.compile(r"^/@[^/]+/(video|photo)/(\d+)")
_DRIVE_FILE = re.compile(r"^/(?:a/[^/]+/)?(?:file|drive/folders|folders)/(?:d/)?([^/]+)")


def link_key(host: str, path: str, query: str) -> str:
    """A normal form of a link so the same song is recognised however it was pasted.

    Per platform it keeps what identifies the content (a YouTube video or playlist, an Apple Music track
    within an album, a Drive file id...) and drops tracking parameters, share suffixes, country prefixes
    and device hosts; any other site keeps its non-tracking parameters.
    """
    path = path.rstrip("/") or "/"
    params = _params(query)
    if _strip_device(_ascii_host(host)) == "youtu.be":
        video = path.strip("/").split("/", 1)[0]
        return f"youtube.com/watch?v={video}" if video else _youtube_key("youtube.com", path, params)
    host = normalize_host(host)
    if host in {"youtube.com", "music.youtube.com"}:
        return _youtube_key(host, path, params)
    if host.endswith("spotify.com"):
        match = _SPOTIFY_PATH.match(path)
        return f"spotify.com{match.group(1)}" if match else f"{host}{path}"
    if host == "music.apple.com":
        match = _APPLE_PATH.match(path)
        base = f"music.apple.com/{match.group(1)}/{match.group(2)}" if match else f"{host}{path}"
        return _with(base, params, ("i",))
    if host == "deezer.com":
        match = _DEEZER_PATH.match(path)
        return f"deezer.com/{match.group(1)}/{match.group(2)}" if match else f"{host}{path}"
    if host.endswith("tidal.com"):
        match = _TIDAL_PATH.match(path)
        return f"tidal.com/{match.group(1)}/{match.group(2)}" if match else f"{host}{path}"
    if host.endswith("tiktok.com"):
        match = _TIKTOK_VIDEO.match(path)
        return f"tiktok.com/{match.group(1)}/{match.group(2)}" if match else f"{host}{path}"
    if host in {"drive.google.com", "docs.google.com"}:
        match = _DRIVE_FILE.match(path)
        file_id = match.group(1) if match else params.get("id")
        return f"drive.google.com/file/d/{file_id}" if file_id else _with(f"{host}{path}", params, sorted(params))
    if host in {"soundcloud.com", "bandcamp.com", "audiomack.com", "dropbox.com"} or host.endswith(
        (".soundcloud.com", ".bandcamp.com")
    ):
        # The path names the track (or the shared file); the query is only share and tracking noise.
        return f"{host}{path}"
    if host == "onedrive.live.com":
        return _with(f"{host}{path}", params, ("resid", "id", "cid", "redeem"))
    kept = sorted(name for name in params if name not in _TRACKING_PARAMS and not name.startswith("utm_"))
    return _with(f"{host}{path}", params, kept)


def _youtube_key(host: str, path: str, params: dict[str, str]) -> str:
    match = _YOUTUBE_ID_PATHS.match(path)
    video = match.group(1) if match else params.get("v")
    if video:
        return f"youtube.com/watch?v={video}"
    if params.get("list"):
        # A playlist (or a watch page of one without a video): the list is what was shared.
        return f"youtube.com/playlist?list={params['list']}"
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

"""The aiohttp web server inside the bot process: overlay, public queue page and signed file links.

One more object of the composition root (``bot.py`` builds it in ``setup_hook``, starts it, closes it in
``close()``). It reads the services and subscribes to the change feed; no service ever calls it.

Routes (every other path, and every wrong token, gets the same 404):

* ``/o/<token>`` the overlay page, ``/o/<token>/events`` its Server-Sent Events stream;
* ``/q/<token>`` the public queue page (only while the guild's Public queue page setting is on);
* ``/f/<link>`` a player page for an uploaded file, ``/f/<link>/audio`` the file (Range and HEAD);
* ``/static/…`` the pages' CSS and JavaScript, ``/healthz`` a liveness probe.

Safety: templates autoescape, the JavaScript writes user text with ``textContent`` only, every response
carries a strict Content-Security-Policy (no inline script or style), ``nosniff`` and ``no-referrer``;
pages with a token are ``no-store``; only GET and HEAD; a per-address rate limit; tokens never reach logs.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from aiohttp import HttpVersion11, web

from config import Config
from database import Database
from errors import ValidationError
from models import LiveSession, Submission
from services.audio import AudioStore
from services.feed import ChangeFeed
from services.file_links import FileLinks, LinkError, load_secret
from services.queue import QueueService
from services.web_access import OVERLAY, PUBLIC, WebAccess, token_hash
from web.hub import EventHub
from web.snapshot import MAX_ENTRIES, Snapshots

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
WIDGETS = ("now", "next", "lines", "top", "goal", "gift")
LAYOUTS = ("portrait", "landscape")
DEFAULT_ACCENT = "ff2d55"
RETRY_MS = 1000
AUDIO_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".flac": "audio/flac"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
    "Cross-Origin-Resource-Policy": "same-origin",
}
NOT_FOUND_BODY = "404: Not Found"
# Anything that looks like a token or a file link in a path, for the log filter below.
_SECRET_PATH = re.compile(r"/(o|q|f)/[^/\s?\"']+")


class TokenRedactingFilter(logging.Filter):
    """Removes tokens and file links from log lines that mention a request path (aiohttp's loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the rendered message; keep the record."""
        message = record.getMessage()
        redacted = _SECRET_PATH.sub(lambda m: f"/{m.group(1)}/[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RateLimiter:
    """A token bucket per address: ``per_minute`` requests a minute, bursts up to the same number."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, address: str) -> bool:
        """Take one request from the address's bucket; False when it is empty."""
        now = self.clock()
        tokens, last = self._buckets.get(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if len(self._buckets) > 10_000:
            self._prune(now)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return False
        self._buckets[address] = (tokens - 1, now)
        return True

    def _prune(self, now: float) -> None:
        full = self.capacity / self.rate
        self._buckets = {a: (t, last) for a, (t, last) in self._buckets.items() if now - last < full}


class BadQuery(ValueError):
    """A query parameter with a value the page cannot use (answered with 400, the value not echoed)."""


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d{1,6}", raw):
        raise BadQuery(f"{name} must be a whole number")
    return min(max(int(raw), low), high)


def _float_param(query: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a number") from None
    if not math.isfinite(value):
        raise BadQuery(f"{name} must be a number")
    return round(min(max(value, low), high), 2)


def overlay_options(query: Mapping[str, str]) -> dict[str, object]:
    """Validated overlay parameters: layout, widgets, n (rows), scale (font) and accent (hex colour)."""
    layout = query.get("layout") or "portrait"
    if layout not in LAYOUTS:
        raise BadQuery("layout must be portrait or landscape")
    raw_widgets = query.get("widgets") or ",".join(WIDGETS)
    widgets = [w.strip() for w in raw_widgets.split(",") if w.strip()]
    if not widgets or any(w not in WIDGETS for w in widgets):
        raise BadQuery(f"widgets must be a comma-separated list of {', '.join(WIDGETS)}")
    accent = (query.get("accent") or DEFAULT_ACCENT).removeprefix("#")
    if not re.fullmatch(r"[0-9a-fA-F]{6}|[0-9a-fA-F]{3}", accent):
        raise BadQuery("accent must be a hex colour such as ff2d55")
    if len(accent) == 3:
        accent = "".join(c * 2 for c in accent)
    return {
        "layout": layout,
        "widgets": widgets,
        "n": _int_param(query, "n", 5, 1, MAX_ENTRIES),
        "scale": _float_param(query, "scale", 1.0, 0.5, 3.0),
        "accent": accent.lower(),
    }


def client_address(request: web.Request) -> str:
    """The address to rate-limit: the peer, or the client a reverse proxy on this machine forwarded."""
    remote = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return forwarded.split(",")[-1].strip()[:64] or remote
    return remote


def template_environment() -> jinja2.Environment:
    """The pages' templates: each extends ``base.html`` (the one ``<head>``) and autoescapes everything."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: user text is data
        undefined=jinja2.StrictUndefined,
    )


@dataclass(frozen=True, slots=True)
class FileLink:
    """A signed download link for one file and the hours it stays valid (for the reviewer's message)."""

    url: str
    hours: int


class WebServer:
    """Serves the pages; ``start()`` binds (when enabled), ``close()`` ends every stream and unbinds."""

    def __init__(
        self,
        config: Config,
        *,
        db: Database,
        queue: QueueService,
        feed: ChangeFeed,
        access: WebAccess,
        audio: AudioStore,
        current_session: Callable[[int], LiveSession | None],
    ) -> None:
        self.config = config
        self.db = db
        self.access = access
        self.audio = audio
        self.snapshots = Snapshots(db, queue, current_session)
        self.hub = EventHub(feed, self.snapshots.overlay, access.guild_for_hash, db)
        self.links: FileLinks | None = None
        self.limiter = RateLimiter(config.web_rate_per_minute)
        self.templates = template_environment()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._log_filter = TokenRedactingFilter()

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True while the server accepts connections."""
        return self._runner is not None

    @property
    def local_url(self) -> str:
        """The address on this machine (what OBS or LIVE Studio on the same PC uses)."""
        host = self.config.web_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port or self.config.web_port}"

    @property
    def base_url(self) -> str:
        """The address used in links: ``PUBLIC_BASE_URL`` when set, else the local one."""
        return self.config.public_base_url or self.local_url

    @property
    def links_available(self) -> bool:
        """Whether reviewers can be given download links (the server runs and has a public address)."""
        return self.running and self.links is not None and bool(self.config.public_base_url)

    async def file_link(self, sub: Submission) -> FileLink | None:
        """A signed player link for a submission's file, or None when links cannot leave this machine.

        It stays valid for the guild's File-link expiry setting (``/settings``), read when it is signed.
        """
        if not self.links_available or not sub.file_path or self.links is None:
            return None
        hours = (await self.db.get_settings(sub.guild_id)).file_link_expiry_hours
        signed = self.links.make(sub.guild_id, sub.id, lifetime_seconds=hours * 3600)
        return FileLink(f"{self.base_url}/f/{signed}", hours)

    def build_app(self) -> web.Application:
        """The aiohttp application with every route and the safety middleware."""
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.router.add_get("/healthz", self._health)
        app.router.add_get(r"/o/{token}", self._overlay)
        app.router.add_get(r"/o/{token}/events", self._overlay_events)
        app.router.add_get(r"/q/{token}", self._public)
        app.router.add_get(r"/f/{link}", self._player)
        app.router.add_get(r"/f/{link}/audio", self._audio)
        app.router.add_static("/static/", HERE / "static", follow_symlinks=False, append_version=False)
        app.on_response_prepare.append(self._headers)
        return app

    async def start(self) -> None:
        """Bind and serve (does nothing with ``WEB_ENABLED=false``); an unusable address aborts start-up."""
        if not self.config.web_enabled:
            log.info("web server disabled (WEB_ENABLED=false): no overlay, public page or file links")
            return
        self.links = FileLinks(load_secret(self.config.data_dir))
        for name in ("aiohttp.access", "aiohttp.server", "aiohttp.web"):
            logging.getLogger(name).addFilter(self._log_filter)
        self.hub.start()
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.web_host, self.config.web_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            await self.hub.close()
            raise RuntimeError(
                f"the web server cannot listen on {self.config.web_host}:{self.config.web_port} ({exc.strerror}); "
                "set WEB_PORT to a free port, or WEB_ENABLED=false"
            ) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("web server listening on %s (links use %s)", self.local_url, self.base_url)

    async def close(self) -> None:
        """End every open stream, then stop listening (idempotent)."""
        await self.hub.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for name in ("aiohttp.access", "aiohttp.server", "aiohttp.web"):
            logging.getLogger(name).removeFilter(self._log_filter)

    # ------------------------------------------------------------------ safety

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "405: Method Not Allowed", Allow="GET, HEAD")
        if not self.limiter.allow(client_address(request)):
            return _plain(429, "429: Too Many Requests", **{"Retry-After": "30"})
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return not_found()
        except web.HTTPMethodNotAllowed:
            return _plain(405, "405: Method Not Allowed", Allow="GET, HEAD")
        except BadQuery as exc:
            return _plain(400, f"400: {exc}")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _plain(exc.status, f"{exc.status}: {exc.reason}")
            raise

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/static/") and response.status == 200:
            response.headers["Cache-Control"] = "no-cache"  # revalidate: an updated bot never serves stale JS
        else:
            response.headers["Cache-Control"] = "no-store"

    async def _guild(self, request: web.Request, kind: str) -> tuple[int, str]:
        token = request.match_info.get("token", "")
        guild_id = await self.access.guild_for(kind, token)
        if guild_id is None:
            raise web.HTTPNotFound()
        return guild_id, token_hash(token)

    # ------------------------------------------------------------------ pages

    def _render(self, name: str, **context: object) -> web.Response:
        body = self.templates.get_template(name).render(**context)
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def _health(self, request: web.Request) -> web.Response:
        return _plain(200, "ok")

    async def _overlay(self, request: web.Request) -> web.Response:
        await self._guild(request, OVERLAY)
        options = overlay_options(request.query)
        return self._render("overlay.html", **options)

    async def _overlay_events(self, request: web.Request) -> web.StreamResponse:
        guild_id, hashed = await self._guild(request, OVERLAY)
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no"}
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers)
        response = web.StreamResponse(headers=headers)
        # The hub writes pushes straight to the connection (see web/hub.py), framed as chunks on HTTP/1.1;
        # an HTTP/1.0 client gets a plain body that ends when the connection closes.
        chunked = request.version >= HttpVersion11
        if chunked:
            response.enable_chunked_encoding()
        client = self.hub.join(guild_id, OVERLAY, hashed)  # from here on, pushes wait for the first snapshot
        try:
            await response.prepare(request)
            await response.write(f"retry: {RETRY_MS}\n\n".encode() + (await self.hub.snapshot(guild_id)).raw)
            client.attach(request.transport, chunked=chunked)
            await client.done.wait()  # ended by the hub: revoked, too slow, gone, or the bot stopping
        except (ConnectionResetError, ConnectionError):
            pass  # the page went away; it reconnects by itself if it still exists
        finally:
            self.hub.leave(client)
        return response

    async def _public(self, request: web.Request) -> web.Response:
        guild_id, _ = await self._guild(request, PUBLIC)
        # The one switch (/settings or /overlay public), read from the settings cache on every request: a
        # page switched off answers the next refresh with the same 404 as a wrong token.
        if not (await self.db.get_settings(guild_id)).public_queue_enabled:
            raise web.HTTPNotFound()
        page_number = _int_param(request.query, "page", 1, 1, 100_000)
        options = await self.access.page_options(guild_id)
        page = await self.snapshots.public_page(guild_id, page_number, links=options.public_links)
        return self._render("public.html", page=page)

    async def _file(self, request: web.Request) -> tuple[Submission, Path]:
        """The submission and stored file a link names; 403 for anything tampered, expired or outside the store."""
        if self.links is None:
            raise web.HTTPNotFound()
        try:
            target = self.links.parse(request.match_info.get("link", ""))
            sub = await self.db.get_submission_by_row_id(target.row_id)
            if sub is None or not sub.file_path:
                raise LinkError("This link is not valid.")
            self.links.check(target, sub.guild_id)
            path = self.audio.resolve(sub.file_path)
        except LinkError as exc:
            raise web.HTTPForbidden(reason="Expired" if exc.expired else "Forbidden", text=str(exc)) from None
        except ValidationError:  # the store refused a path outside its folder
            raise web.HTTPForbidden() from None
        if not path.is_file():
            raise web.HTTPNotFound()
        return sub, path

    async def _player(self, request: web.Request) -> web.Response:
        try:
            sub, path = await self._file(request)
        except web.HTTPForbidden as exc:
            return _plain(403, f"403: {exc.text}")
        return self._render(
            "player.html", sub=sub, link=request.match_info["link"], size_mb=f"{path.stat().st_size / 1048576:.1f}"
        )

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        try:
            sub, path = await self._file(request)
        except web.HTTPForbidden as exc:
            return _plain(403, f"403: {exc.text}")
        name = sub.file_name or f"{sub.public_id}{path.suffix}"
        disposition = "attachment" if request.query.get("download") == "1" else "inline"
        ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:100] or "audio"
        headers = {
            "Content-Type": AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
            "Content-Disposition": (
                f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"
            ),
        }
        return web.FileResponse(path, headers=headers)


def _plain(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8", headers=headers)


def not_found() -> web.Response:
    """The one 404: the same for an unknown path, a missing token and a wrong one."""
    return _plain(404, NOT_FOUND_BODY)

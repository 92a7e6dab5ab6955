"""Small pieces of the web server on their own: configuration, the rate limiter, overlay parameters, links."""

from __future__ import annotations

import asyncio

import pytest

from config import ConfigError, load_config
from services.file_links import FileLinks, LinkError
from web.server import BadQuery, RateLimiter, TokenRedactingFilter, overlay_options

BASE = {"DISCORD_TOKEN": "x" * 20}


def test_web_settings_default_on_loopback_and_validate() -> None:
    config = load_config(BASE)
    assert (config.web_enabled, config.web_host, config.web_port, config.public_base_url) == (
        True, "127.0.0.1", 8765, None
    )  # fmt: skip
    assert not hasattr(config, "file_link_hours")  # one knob: the per-server File-link expiry setting
    off = load_config(BASE | {"WEB_ENABLED": "false", "PUBLIC_BASE_URL": "https://q.example.com/"})
    assert not off.web_enabled and off.public_base_url == "https://q.example.com"
    for name, value in (("WEB_PORT", "99999"), ("WEB_PORT", "http"), ("WEB_ENABLED", "maybe"),
                        ("PUBLIC_BASE_URL", "ftp://x")):  # fmt: skip
        with pytest.raises(ConfigError, match=name):
            load_config(BASE | {name: value})


def test_rate_limiter_refills_per_address() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.allow("a") for _ in range(60)) and not limiter.allow("a")
    assert limiter.allow("b")
    now[0] += 1.0  # one request a second comes back
    assert limiter.allow("a") and not limiter.allow("a")


def test_overlay_options_clamp_or_refuse() -> None:
    assert overlay_options({}) == {"layout": "portrait", "widgets": ["now", "next", "lines", "top", "goal", "gift"],
                                   "n": 5, "scale": 1.0, "accent": "ff2d55"}  # fmt: skip
    assert overlay_options({"n": "0", "scale": "0.1"})["n"] == 1
    assert overlay_options({"n": "-4", "scale": "0.1"})["scale"] == 0.5
    for bad in ({"n": "1e3"}, {"scale": "inf"}, {"accent": "#12345g"}, {"widgets": "now,<b>"}, {"layout": "x"}):
        with pytest.raises(BadQuery):
            overlay_options(bad)


def test_file_link_signature_binds_guild_row_and_expiry() -> None:
    now = [1_000_000.0]
    links = FileLinks(b"k" * 32, clock=lambda: now[0])
    link = links.make(7, 42, lifetime_seconds=3600)
    target = links.parse(link)
    links.check(target, 7)
    with pytest.raises(LinkError):
        links.check(target, 8)
    with pytest.raises(LinkError):
        FileLinks(b"j" * 32).check(target, 7)
    now[0] += 3601
    with pytest.raises(LinkError) as expired:
        links.check(target, 7)
    assert expired.value.expired
    for bad in ("", "1.2", "a.b.c", "1.2." + "x" * 42, "../../etc/passwd"):
        with pytest.raises(LinkError):
            links.parse(bad)


def test_log_filter_redacts_tokens_in_paths() -> None:
    import logging

    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, 'GET "/o/%s/events" 200', ("s3cr3t",),
                               None)  # fmt: skip
    TokenRedactingFilter().filter(record)
    assert record.getMessage() == 'GET "/o/[redacted]/events" 200'


def test_every_page_extends_the_one_base_template_and_escapes_user_text() -> None:
    import re

    from models import Line, Submission
    from web.server import HERE, template_environment
    from web.snapshot import PublicPage

    xss = "<img src=x onerror=alert(1)>"
    pages = sorted(p.name for p in (HERE / "templates").glob("*.html") if p.name != "base.html")
    assert pages == ["overlay.html", "player.html", "public.html"]
    for name in pages:
        source = (HERE / "templates" / name).read_text(encoding="utf-8")
        assert source.startswith('{% extends "base.html" %}'), name
        assert not re.search(r"<head[ >]", source) and "<!doctype" not in source.lower(), name
        assert "<meta charset" not in source and "<title>" not in source, name
    env = template_environment()
    sub = Submission(1, 7, "ABC123", 5, xss, xss, xss, Line.FREE, 0.0, 0.0, file_name=xss)
    row = {"position": 1, "artist": xss, "title": "t", "by": xss, "badge": "🆓 Free", "cls": "free", "points": 3,
           "eta": "~4 min", "link": None}  # fmt: skip
    options = {"layout": "portrait", "widgets": ["now", "next"], "n": 5, "scale": 1.0, "accent": "ff2d55"}
    rendered = {
        "overlay.html": env.get_template("overlay.html").render(**options),
        "player.html": env.get_template("player.html").render(sub=sub, link="1.2.sig", size_mb="11.2"),
        "public.html": env.get_template("public.html").render(page=PublicPage([row], 1, 1, 1, 0, [])),
    }
    common = ('<meta charset="utf-8">', '<meta name="referrer" content="no-referrer">', "<!doctype html>")
    for name, html in rendered.items():
        assert html.count("<head>") == 1 and html.count("<body") == 1 and html.count("<title>") == 1, name
        assert all(html.count(tag) == 1 for tag in common), name
        assert xss not in html, name  # autoescaped, the base template's blocks included
    assert f"<title>{'&lt;img src=x onerror=alert(1)&gt;'} – " in rendered["player.html"]
    assert '<body class="player">' in rendered["player.html"]
    assert '<link rel="stylesheet" href="../static/overlay.css">' in rendered["overlay.html"]
    assert '<script src="../static/overlay.js" defer></script>' in rendered["overlay.html"]
    assert re.search(r'<body class="layout-portrait" data-state="connecting" data-n="5"', rendered["overlay.html"])
    assert '<meta http-equiv="refresh" content="30">' in rendered["public.html"]
    assert '<link rel="stylesheet" href="../static/public.css">' in rendered["public.html"]


class FakeTransport(asyncio.WriteTransport):
    """A connection that records what is written to it (and can pretend to be slow or gone)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data) if not isinstance(data, bytes) else data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


async def test_a_page_gets_what_waited_after_its_first_snapshot_then_each_frame_as_one_chunk() -> None:
    from web.hub import MAX_BUFFERED, REVOKED, Client, frame

    client = Client(1, "overlay", "h")
    early = frame("snapshot", {"total": 2})
    assert client.offer(early)  # the stream is not started yet: it waits
    transport = FakeTransport()
    client.attach(transport, chunked=True)
    assert transport.writes == [b"%x\r\n%b\r\n" % (len(early.raw), early.raw)]
    late = frame("gift", {"title": "x"})
    assert client.offer(late) and transport.writes[-1] == late.chunk
    transport.buffered = MAX_BUFFERED + 1  # the page stopped reading: dropped, it reconnects and resyncs
    assert not client.offer(late) and client.done.is_set() and len(transport.writes) == 2
    plain, gone = Client(1, "overlay", "h"), FakeTransport()
    plain.end(REVOKED)  # revoked before its first snapshot went out: told right after it
    plain.attach(gone, chunked=False)
    assert gone.writes == [REVOKED.raw] and plain.done.is_set()
    closed = Client(1, "overlay", "h")
    dead = FakeTransport()
    closed.attach(dead, chunked=True)
    dead.closing = True
    assert not closed.offer(late) and closed.done.is_set() and dead.writes == []


async def test_a_push_is_built_and_encoded_once_and_written_once_to_every_page() -> None:
    from services.feed import ChangeFeed, QueueChanged
    from web.hub import EventHub

    builds = []

    async def build(guild_id: int) -> dict[str, object]:
        builds.append(guild_id)
        return {"total": len(builds)}

    async def check(kind: str, hashed: str) -> int | None:
        return 1

    feed = ChangeFeed()
    hub = EventHub(feed, build, check, None, window=0.01)  # type: ignore[arg-type]  # no gift here: no database
    hub.start()
    try:
        pages = []
        for _ in range(200):
            client = hub.join(1, "overlay", "h")
            transport = FakeTransport()
            client.attach(transport, chunked=True)
            pages.append(transport)
        other = hub.join(2, "overlay", "h")
        elsewhere = FakeTransport()
        other.attach(elsewhere, chunked=True)
        feed.publish(QueueChanged(1))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if all(p.writes for p in pages):
                break
        first = pages[0].writes[0]
        assert b'"total":1' in first and builds == [1]  # one build for 200 pages
        assert all(len(p.writes) == 1 and p.writes[0] is first for p in pages)  # the same bytes object
        assert elsewhere.writes == []  # another guild's page sees nothing of it
        assert hub.pushes == 1
    finally:
        await hub.close()
    assert all(c.done.is_set() for cs in hub._clients.values() for c in cs)

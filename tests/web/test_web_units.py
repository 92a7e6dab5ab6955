"""Small pieces of the web server on their own: configuration, the rate limiter, overlay parameters, links."""

from __future__ import annotations

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
    assert config.file_link_hours == 24
    off = load_config(BASE | {"WEB_ENABLED": "false", "PUBLIC_BASE_URL": "https://q.example.com/"})
    assert not off.web_enabled and off.public_base_url == "https://q.example.com"
    for name, value in (("WEB_PORT", "99999"), ("WEB_PORT", "http"), ("WEB_ENABLED", "maybe"),
                        ("PUBLIC_BASE_URL", "ftp://x"), ("FILE_LINK_HOURS", "0")):  # fmt: skip
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
    links = FileLinks(b"k" * 32, lifetime_seconds=3600, clock=lambda: now[0])
    link = links.make(7, 42)
    target = links.parse(link)
    links.check(target, 7)
    with pytest.raises(LinkError):
        links.check(target, 8)
    with pytest.raises(LinkError):
        FileLinks(b"j" * 32, lifetime_seconds=3600).check(target, 7)
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

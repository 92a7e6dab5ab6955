"""The overlay and the public page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Every test runs the real bot on the fake Discord (and, for gifts, the real TikTokLive client on the fake
TikTok), opens the pages the way LIVE Studio or OBS would, and saves a screenshot in ``tests/artifacts/``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from models import Line
from tests.conftest import BotEnv
from tests.web.helpers import add, free_port, overlay_url, public_url
from ui import palette

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
XSS = "<img src=x onerror=alert(1)>"
PORTRAIT = {"width": 540, "height": 960}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium; skips (loudly) only where the system browser or Playwright is missing."""
    if not HAVE_CHROMIUM:
        pytest.skip(
            "BROWSER TESTS SKIPPED: /usr/bin/chromium is missing. Run scripts/setup.sh dev as root "
            "(it runs apt-get install -y chromium), or install Debian's chromium package."
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("BROWSER TESTS SKIPPED: playwright is not installed (scripts/setup.sh dev installs it)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_page(browser: Any, url: str, dialogs: list[str] | None = None, **viewport: int) -> Any:
    page = await browser.new_page(viewport=viewport or PORTRAIT)
    if dialogs is not None:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())))
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return page


async def wait_live(page: Any, timeout: float = 10.0) -> None:
    await page.wait_for_selector('body[data-state="live"]', timeout=timeout * 1000)


async def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), omit_background=True)
    return path


async def rows(page: Any) -> list[dict[str, str]]:
    return await page.eval_on_selector_all(
        "#w-next .row",
        """items => items.map(li => ({
            pos: li.querySelector('.pos').textContent, song: li.querySelector('.song-text').textContent,
            by: li.querySelector('.by').textContent, points: (li.querySelector('.points') || {}).textContent || ''
        }))""",
    )


async def test_overlay_shows_what_the_pinned_display_shows(bot_env: BotEnv, browser: Any) -> None:
    setup = await bot_env.admin.slash(
        bot_env.channels["general"], "setup-live-queue", channel=bot_env.channels["queue"]
    )
    await setup.wait_text("pinned")
    await add(bot_env, 1, 1, Line.BACK_TO_BACK, artist="Nova", title="Midnight Drive", name="Ada")
    await add(bot_env, 2, 2, Line.SKIP, artist="Kairo", title="Glass Hearts", name="Ben")
    await add(bot_env, 3, 3, artist="Lumen", title="Paper Planes", name="Cleo", handle="cleo.fan")
    await add(bot_env, 4, 4, artist="Orbit", title="Slow Tides", name="Dev", handle="dev.fan")
    await add(bot_env, 5, 5, artist="Vela", title="Northern Lights", name="Eve")
    await bot_env.bot.points.admin_link(bot_env.guild_id, 4, "dev.fan")  # proven: its points count for Dev
    simulated = await bot_env.admin.slash_sub(bot_env.channels["general"], "tiktok", "simulate", kind="like",
                                              handle="dev.fan", amount=12)  # fmt: skip
    await simulated.wait_text("Simulated")
    await bot_env.settle()
    await bot_env.bot.queue.next(bot_env.guild_id)  # something is playing: "now playing" has a song
    await add(bot_env, 6, 6, Line.DOUBLE_SKIP, artist="Sol", title="Golden Hour", name="Finn")
    await bot_env.settle()
    url = await overlay_url(bot_env)
    page = await open_page(browser, url + "?layout=portrait&n=8")
    await wait_live(page)
    pinned = bot_env.fake.pins(bot_env.channels["queue"])[0]
    description = bot_env.fake.messages[pinned["id"]]["embeds"][0]["description"]
    expected = []
    for line in description.splitlines():
        # The queue rows ("**3.** Artist – Title — Name · badge · 12 pts"); the "Now playing" block is above.
        match = re.match(r"\*\*(\d+)\.\*\* (.+?) — (.+?) · [^·]+?(?: · (\d+) pts)?$", line)
        if not match:
            continue
        expected.append({"pos": f"{match[1]}.", "song": match[2], "by": match[3],
                         "points": f"{match[4]} pts" if match[4] else ""})  # fmt: skip
    assert len(expected) == 5, description
    await page.wait_for_function("() => document.querySelectorAll('#w-next .row').length === 5")
    shown = await rows(page)
    assert shown == expected
    assert [r["song"] for r in shown][:3] == ["Sol – Golden Hour", "Kairo – Glass Hearts", "Orbit – Slow Tides"]
    assert await page.text_content("#w-now .song-text") == "Nova – Midnight Drive"
    assert await page.text_content("#w-now .badge") == palette.badge(Line.BACK_TO_BACK)
    counters = await page.eval_on_selector_all("#w-lines .count", "els => els.map(e => e.textContent)")
    assert counters == ["0", "1", "1", "3"]
    assert "Send 1000 coins to jump to Skip" in await page.text_content("#w-goal")
    # No live is connected, so the overlay shows the simulation's supporters (a streamer trying it out).
    assert "dev.fan" in await page.text_content("#w-top")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgba(0, 0, 0, 0)"  # transparent: the stream shows through
    await shot(page, "overlay-portrait")
    landscape = await open_page(browser, url + "?layout=landscape&accent=00c2ff&scale=1.2",
                                width=960, height=540)  # fmt: skip
    await wait_live(landscape)
    accent = await landscape.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--accent')")
    assert accent.strip() == "#00c2ff"
    await shot(landscape, "overlay-landscape")


async def test_after_next_the_page_changes_in_place_without_reload(bot_env: BotEnv, browser: Any) -> None:
    await add(bot_env, 1, 1, Line.SKIP, title="First up")
    await add(bot_env, 2, 2, title="Second")
    page = await open_page(browser, await overlay_url(bot_env) + "?widgets=now,next")
    await wait_live(page)
    await page.evaluate("window.__sameDocument = true")
    assert await page.locator("#w-now").is_hidden()
    record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await page.wait_for_function(
        "() => document.querySelector('#w-now .song-text').textContent === 'Artist 1 – First up'", timeout=10_000
    )  # a bound on waiting; how fast a change shows is measured in bench/overlay.py
    await page.wait_for_function("() => document.querySelectorAll('#w-next .row').length === 1", timeout=10_000)
    await record.wait_text("Now playing")
    assert await page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert await page.locator("#w-top").count() == 0  # only the widgets asked for
    await shot(page, "overlay-after-next")


async def test_a_gift_promotion_shows_the_notice_and_moves_the_song(bot_env: BotEnv, browser: Any) -> None:
    # The gift goes the whole way a live's gift goes: the session records it, the engagement writer credits the
    # linked member and promotes their song, and the feed tells the overlay (/tiktok simulate feeds the same
    # pipeline as the TikTok worker; the worker itself is covered by tests/e2e/test_tiktok_flow.py).
    env = bot_env
    await env.bot.points.admin_link(env.guild_id, env.member.id, "max.gifts")
    await add(env, 9, 1, title="Someone else")
    public_id = await add(env, env.member.id, 2, artist="Max", title="Gifted", name="Max")
    page = await open_page(browser, await overlay_url(env))
    await wait_live(page)
    assert (await rows(page))[1]["song"] == "Max – Gifted"
    await page.evaluate("window.__sameDocument = true")
    simulated = await env.admin.slash_sub(env.channels["general"], "tiktok", "simulate", kind="gift",
                                          handle="max.gifts", amount=1000, promote=True)  # fmt: skip
    # Bounds on waiting, not speed targets (the change-to-visible time is measured in bench/overlay.py).
    await page.wait_for_selector("#w-gift.show", timeout=10_000)
    await page.wait_for_function(
        "() => document.querySelector('#w-next .row .song-text').textContent === 'Max – Gifted'", timeout=10_000
    )
    await simulated.wait_text("Simulated")
    notice = await page.text_content("#w-gift")
    assert "Max – Gifted" in notice and "moved up to Skip" in notice
    assert (await rows(page))[0]["by"] == "Max"
    assert "max.gifts" in (await page.text_content("#w-top"))
    assert await page.evaluate("window.__sameDocument") is True
    await page.wait_for_timeout(900)  # the notice has slid in fully
    await shot(page, "overlay-gift")
    assert (await env.bot.queue.get(env.guild_id, public_id)).line is Line.SKIP


async def test_the_page_reconnects_by_itself_after_a_bot_restart(tmp_path: Path, monkeypatch: Any,
                                                                  browser: Any) -> None:  # fmt: skip
    import discord

    from tests.fakediscord.harness import close_env, create_env

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)
    env = await create_env(tmp_path / "data", WEB_PORT=str(free_port()))
    try:
        await add(env, 1, 1, title="Before")
        page = await open_page(browser, await overlay_url(env))
        await wait_live(page)
        await page.evaluate("window.__sameDocument = true")
        await env.stop()
        await page.wait_for_selector('body[data-state="reconnecting"]', timeout=5000)
        await env.start()
        await add(env, 2, 2, title="After the restart")
        await wait_live(page)
        await page.wait_for_function("() => document.querySelectorAll('#w-next .row').length === 2", timeout=5000)
        assert await page.evaluate("window.__sameDocument") is True
        await shot(page, "overlay-after-restart")
    finally:
        await close_env(env)


async def test_a_rotated_token_page_says_revoked(bot_env: BotEnv, browser: Any) -> None:
    page = await open_page(browser, await overlay_url(bot_env))
    await wait_live(page)
    rotated = await bot_env.admin.slash_sub(bot_env.channels["general"], "overlay", "rotate")
    await rotated.wait_text("/o/")
    await page.wait_for_selector("#revoked:not([hidden])", timeout=2000)
    assert "link was revoked" in await page.text_content("#revoked")
    assert await page.locator("#overlay").is_hidden()
    await shot(page, "overlay-revoked")


async def test_hostile_text_shows_literally_and_no_dialog_opens(bot_env: BotEnv, browser: Any) -> None:
    await add(bot_env, 1, 1, Line.SKIP, artist=XSS, title=XSS, name=XSS)
    await add(bot_env, 2, 2, artist="\"'><script>alert(2)</script>", title="</li><b>bold</b>", name="x")
    await bot_env.bot.queue.next(bot_env.guild_id)
    await add(bot_env, 3, 3, title=XSS, name="<svg onload=alert(3)>")
    dialogs: list[str] = []
    page = await open_page(browser, await overlay_url(bot_env), dialogs)
    await wait_live(page)
    await page.wait_for_function("() => document.querySelectorAll('#w-next .row').length === 2")
    assert await page.text_content("#w-now .song-text") == f"{XSS} – {XSS}"
    assert await page.text_content("#w-now .by") == f"sent by {XSS}"
    shown = await rows(page)
    assert shown[0]["song"] == "\"'><script>alert(2)</script> – </li><b>bold</b>"
    assert shown[1]["by"] == "<svg onload=alert(3)>"
    public = await open_page(browser, await public_url(bot_env), dialogs)
    assert XSS in await public.text_content("main")
    await asyncio.sleep(0.5)
    for checked in (page, public):
        assert await checked.locator("img, svg, b, main script").count() == 0
    assert dialogs == []
    await shot(page, "overlay-hostile-text")
    await shot(public, "public-hostile-text")


async def test_tokenless_and_wrong_token_urls_are_404(bot_env: BotEnv, browser: Any) -> None:
    url = await overlay_url(bot_env)
    base = bot_env.bot.web.local_url
    page = await browser.new_page()
    for target in (base + "/o/", base + "/o", url[:-3] + "abc", base + "/overlay", url + "/../x"):
        response = await page.goto(target)
        assert response is not None and response.status == 404, target
        assert (await page.text_content("body")).strip() == "404: Not Found"
    await shot(page, "overlay-404")

"""The web server against the real bot on the fake Discord, over HTTP: tokens, safety, SSE, public page."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from models import Line
from services.web_access import OVERLAY
from tests.conftest import BotEnv
from tests.web.helpers import EventStream, add, overlay_url, public_url, settings_switch
from ui import palette

XSS = "<img src=x onerror=alert(1)>"


def comparable(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() != "date"}


async def test_overlay_link_is_ephemeral_secret_and_a_wrong_token_looks_like_an_unknown_path(
    bot_env: BotEnv,
) -> None:
    url = await overlay_url(bot_env)
    base = bot_env.bot.web.local_url
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 32  # 24 random bytes, URL-safe
    stored = await bot_env.bot.db.conn.execute_fetchall("SELECT token_hash FROM web_tokens")
    assert token not in str(list(stored[0])) and len(stored[0][0]) == 64  # only the SHA-256 is kept
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            assert page.status == 200
            assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert page.headers["X-Content-Type-Options"] == "nosniff"
            assert page.headers["Cache-Control"] == "no-store"
            assert page.headers["Referrer-Policy"] == "no-referrer"
            html = await page.text()
            assert "<script>" not in html and "style=" not in html  # nothing inline for the CSP to allow
        answers = []
        changed = token[:-1] + ("x" if token[-1] != "x" else "y")  # one character off (never the token itself)
        for path in ("/nothing-here", "/o/", f"/o/{changed}", f"/o/{token}x", "/o/" + "A" * 32,
                     f"/o/{token[:-2]}/events", f"/q/{token}", "/f/1.2.3"):  # fmt: skip
            async with http.get(base + path) as response:
                answers.append((path, response.status, await response.text(), comparable(response)))
        first = answers[0]
        for path, status, body, headers in answers[1:-1]:
            assert (status, body, headers) == first[1:], path
        assert answers[-1][1] == 403  # a malformed file link is a refused link
        async with http.post(url) as post, http.put(base + "/nothing") as put:
            assert post.status == put.status == 405
    again = await bot_env.admin.slash_sub(bot_env.channels["general"], "overlay", "links")
    assert "/o/" not in await again.wait_text("can't show them again")
    bot_env.fake.allow_command("overlay")  # shown to members, as Server Settings → Integrations can: still refused
    refused = await bot_env.member.slash_sub(bot_env.channels["general"], "overlay", "links")
    await refused.wait_text("Only admins")
    assert refused.ephemeral
    synced = bot_env.fake.commands["overlay"]
    assert str(synced.get("default_member_permissions")) == str(1 << 5)  # Manage Server
    assert synced.get("contexts") in (None, [0]) and synced.get("dm_permission") in (None, False)


async def test_query_parameters_are_validated_or_clamped(bot_env: BotEnv) -> None:
    url = await overlay_url(bot_env)
    async with aiohttp.ClientSession() as http:
        for bad in ("n=abc", "scale=nan", "scale=x", "accent=red", "accent=%22%3E%3Cscript%3E", "layout=wide",
                    "widgets=now,evil", "widgets="):  # fmt: skip
            async with http.get(f"{url}?{bad}") as response:
                body = await response.text()
                if bad == "widgets=":
                    assert response.status == 200  # empty means the default (all widgets)
                    continue
                assert response.status == 400, bad
                assert "script" not in body and "evil" not in body  # the value is never echoed
        async with http.get(f"{url}?n=999&scale=9&accent=%23ABC&layout=landscape&widgets=now,next") as response:
            html = await response.text()
        assert 'data-n="20"' in html and 'data-scale="3.0"' in html and 'data-accent="aabbcc"' in html
        assert 'class="layout-landscape"' in html and 'id="w-now"' in html and 'id="w-top"' not in html


async def test_sse_sends_retry_and_a_snapshot_then_pushes_changes_coalesced(bot_env: BotEnv) -> None:
    url = await overlay_url(bot_env)
    await add(bot_env, 1, 1, Line.SKIP)
    async with aiohttp.ClientSession() as http, http.get(url + "/events") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-store"
        stream = EventStream(response)
        event, first = await stream.next()
        assert event == "snapshot" and stream.retry == 1000
        assert [r["title"] for r in first["next"]] == ["Song 1"] and first["now"] is None
        pushes = bot_env.bot.web.hub.pushes
        for n in range(2, 12):  # a burst of ten changes
            await add(bot_env, n, n)
        snap = await stream.until(lambda s: s["total"] == 11)
        assert bot_env.bot.web.hub.pushes - pushes <= 4  # coalesced, not one push per change
        assert snap["lines"][2] == {"line": "Skip", "badge": palette.badge(Line.SKIP), "cls": "skip", "count": 1}
        record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
        await record.wait_text("Now playing")
        snap = await stream.until(lambda s: s["now"] is not None)
        assert snap["now"]["title"] == "Song 1" and snap["now"]["line"] == "Skip" and snap["now"]["by"] == "user1"
        assert "user_id" not in str(snap) and str(bot_env.member.id) not in str(snap)


async def test_rotate_revokes_open_streams_and_old_links_at_once(bot_env: BotEnv) -> None:
    url = await overlay_url(bot_env)
    async with aiohttp.ClientSession() as http, http.get(url + "/events") as response:
        stream = EventStream(response)
        assert (await stream.next())[0] == "snapshot"
        rotated = await bot_env.admin.slash_sub(bot_env.channels["general"], "overlay", "rotate")
        new_text = await rotated.wait_text("/o/")
        assert await stream.next() == ("revoked", {})
        with pytest.raises(EOFError):
            await stream.next()
        async with http.get(url) as old:
            assert old.status == 404
        new_url = new_text.split("Portrait")[1].split("\n")[1].split("?")[0]
        assert new_url != url
        async with http.get(new_url) as new:
            assert new.status == 200


async def test_a_token_shows_one_guild_only(bot_env: BotEnv) -> None:
    url = await overlay_url(bot_env)
    other = bot_env.guild_id + 1
    other_token = await bot_env.bot.web_access.rotate(other, OVERLAY)
    await add(bot_env, 1, 1, title="Mine")
    draft = bot_env.bot.queue.draft(artist="X", title="Theirs", note=None, link="https://x.test/theirs")
    await bot_env.bot.db.update_settings(other, submit_cooldown_seconds=0, max_pending_per_user=0)
    await bot_env.bot.queue.submit(other, 5, "stranger", draft, skip=False)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/events") as response:
            snap = await EventStream(response).next()
        async with http.get(f"{bot_env.bot.web.local_url}/o/{other_token}/events") as response:
            theirs = await EventStream(response).next()
    assert [r["title"] for r in snap[1]["next"]] == ["Mine"]
    assert [r["title"] for r in theirs[1]["next"]] == ["Theirs"]


async def test_public_page_is_off_by_default_then_lists_every_line_paged_without_ids(bot_env: BotEnv) -> None:
    await add(bot_env, 1, 0, Line.BACK_TO_BACK, title=XSS, note="secret note", name="Ada Lovelace")
    for n in range(1, 30):
        await add(bot_env, 100 + n, n)
    await add(bot_env, 999, 99, Line.PENDING)
    from services.web_access import PUBLIC

    token = await bot_env.bot.web_access.rotate(bot_env.guild_id, PUBLIC)  # made, but the page is still off
    base = bot_env.bot.web.local_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/q/{token}") as off:
            assert off.status == 404 and await off.text() == "404: Not Found"
        url = await public_url(bot_env, new_link=True)
        async with http.get(url) as page:
            assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
            html = await page.text()
        async with http.get(url + "?page=2") as second:
            page_two = await second.text()
        async with http.get(url + "?page=x") as bad:
            assert bad.status == 400
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html
    assert "Ada Lovelace" in html and palette.badge(Line.BACK_TO_BACK) in html and "Page 1 of 2" in html
    assert "secret note" not in html and str(bot_env.member.id) not in html and "user101" in html
    assert "youtu.be" not in html and "1 pending" in html
    assert "Song 29" in page_two and "Page 2 of 2" in page_two and '<td class="pos">30</td>' in page_two
    with_links = await bot_env.admin.slash(bot_env.channels["general"], "overlay", "public", state="on",
                                           show_links=True)  # fmt: skip
    await with_links.wait_text("with links")
    async with aiohttp.ClientSession() as http, http.get(url) as page:
        assert 'href="https://youtu.be/v1" rel="noopener noreferrer nofollow"' in await page.text()
    off = await bot_env.admin.slash(bot_env.channels["general"], "overlay", "public", state="off")
    await off.wait_text("is off")
    async with aiohttp.ClientSession() as http, http.get(url) as page:
        assert page.status == 404


async def test_rate_limit_per_address(bot_env: BotEnv) -> None:
    bot_env.bot.web.limiter.capacity = 5
    bot_env.bot.web.limiter._buckets.clear()
    base = bot_env.bot.web.local_url
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(8):
            async with http.get(base + "/healthz") as response:
                statuses.append(response.status)
        async with http.get(base + "/healthz", headers={"X-Forwarded-For": "203.0.113.9"}) as proxied:
            assert proxied.status == 200  # another client behind a local reverse proxy has its own budget
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3


async def test_tokens_never_reach_the_logs(bot_env: BotEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = await overlay_url(bot_env)
    token = url.rsplit("/", 1)[1]
    async with aiohttp.ClientSession() as http:
        for path in (url, url + "/events?x=1", url + "x", url + "?n=bad"):
            async with http.get(path) as response:
                if response.status == 200 and path.endswith("x=1"):
                    await EventStream(response).next()
    await bot_env.admin.slash_sub(bot_env.channels["general"], "overlay", "rotate")
    await asyncio.sleep(0.2)
    assert token not in caplog.text
    assert all(token not in record.getMessage() for record in caplog.records)


async def test_web_enabled_false_serves_nothing(tmp_path, monkeypatch) -> None:
    import discord

    from tests.fakediscord.harness import close_env, create_env

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)
    env = await create_env(tmp_path / "data", WEB_ENABLED="false")
    try:
        assert not env.bot.web.running and env.bot.web.port is None
        record = await env.admin.slash_sub(env.channels["general"], "overlay", "links")
        await record.wait_text("web server is off")
    finally:
        await close_env(env)


async def test_the_settings_panel_and_overlay_public_are_one_switch(bot_env: BotEnv) -> None:
    await add(bot_env, 1, 1, title="Visible song")
    url = await public_url(bot_env)
    assert (await bot_env.bot.db.get_settings(bot_env.guild_id)).public_queue_enabled  # /overlay public wrote it
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            assert page.status == 200 and "Visible song" in await page.text()
        await settings_switch(bot_env, "public_queue_enabled", "off")
        async with http.get(url) as page:
            assert page.status == 404 and await page.text() == "404: Not Found"  # closed, like a wrong token
        await settings_switch(bot_env, "public_queue_enabled", "on")
        async with http.get(url) as page:
            assert page.status == 200 and "Visible song" in await page.text()  # the same link opens again
        off = await bot_env.admin.slash(bot_env.channels["general"], "overlay", "public", state="off")
        await off.wait_text("is off")
        assert not (await bot_env.bot.db.get_settings(bot_env.guild_id)).public_queue_enabled  # the panel shows it
        async with http.get(url) as page:
            assert page.status == 404
    shown = await bot_env.admin.slash(bot_env.channels["general"], "show-settings")
    assert "Public queue page: off" in shown.text()

"""Issue 11 B2 and signed file links: a file the bot accepts always reaches the reviewer.

The fake Discord is made to announce the real default upload limit (10 MiB, ``attachment_size_limit``) on
every interaction, whatever its own default, so an 11 MB file is over the server's limit here.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord
import pytest

from services.file_links import SECRET_FILE
from services.queue import AudioFile
from tests.audio_samples import mp3_bytes
from tests.conftest import BotEnv
from tests.fakediscord.actors import Actor
from tests.fakediscord.harness import close_env, create_env
from tests.web.helpers import free_port, settings_switch

TEN_MIB = 10 * 1024 * 1024
BIG = mp3_bytes(27_000)  # 11.2 MB of valid MP3 frames: over 10 MiB, under the 25 MB cap


@pytest.fixture(autouse=True)
def ten_mib_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every interaction carries Discord's unboosted limit, as the real one does since January 2025."""
    original = Actor._interaction

    def with_limit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        payload, record = original(self, *args, **kwargs)
        payload["attachment_size_limit"] = TEN_MIB
        return payload, record

    monkeypatch.setattr(Actor, "_interaction", with_limit)


@pytest.fixture
async def linked_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BotEnv]:
    """The bot with a public address (here: its own local port, so the test can follow the links)."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)
    port = free_port()
    env = await create_env(tmp_path / "data", WEB_PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    try:
        yield env
    finally:
        await close_env(env)


async def submit_file(env: BotEnv, data: bytes, name: str = "song.mp3") -> str:
    record = await env.member.upload(env.channels["general"], "submitfile", (name, data), artist="Big",
                                     song="Lossless")  # fmt: skip
    await env.fake.wait_for(lambda: "skip" in record.text() or "server lets me" in record.text(), 10, "an answer")
    return record.text()


async def test_without_a_public_address_a_file_over_the_server_limit_is_refused_naming_it(bot_env: BotEnv) -> None:
    text = await submit_file(bot_env, BIG)
    assert "This server lets me send files up to 10 MB; this one is 10.7 MB" in text
    assert "PUBLIC_BASE_URL" in text and "MP3" in text
    assert await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id) == []
    audio = bot_env.config.data_dir / "audio"
    assert not audio.exists() or not [p for p in audio.rglob("*") if p.is_file()]  # nothing stored
    small = await submit_file(bot_env, mp3_bytes(80))
    assert "Is this submission a skip" in small
    helped = await bot_env.member.slash(bot_env.channels["general"], "help")
    assert "up to 10 MB" in helped.text() and "WAV and FLAC are 20–40 MB" in helped.text()


async def test_with_a_public_address_the_reviewer_gets_a_signed_link_that_plays(linked_env: BotEnv) -> None:
    env = linked_env
    await settings_switch(env, "file_link_expiry_hours", "3")  # this server's File-link expiry, not the 24 h default
    text = await submit_file(env, BIG, "Lossless master.mp3")
    assert "Is this submission a skip" in text
    records = [r for r in env.fake.interactions.values() if r.label == "/submitfile"]
    question = records[-1].messages()[0]
    done = await env.member.click(question, env.member.find_custom_id(question, "No"))
    await done.wait_text("Submitted")
    record = await env.reviewer.slash(env.channels["reviewers"], "next")
    answer_text = await record.wait_text("Listen or download")
    answer = record.messages()[0]
    assert not answer["attachments"]  # never an upload Discord would refuse with 413
    assert "too large" not in answer_text and record.ephemeral
    link = next(word for word in answer_text.split() if "/f/" in word)
    assert link.startswith(f"http://127.0.0.1:{env.bot.web.port}/f/")
    assert "(valid 3 h)" in answer_text
    expires = int(link.rsplit("/f/", 1)[1].split(".")[1])
    assert abs(expires - (time.time() + 3 * 3600)) < 60  # signed with the guild's 3 h
    async with aiohttp.ClientSession() as http:
        async with http.get(link) as player:
            html = await player.text()
            assert player.status == 200 and player.headers["Cache-Control"] == "no-store"
            assert "<audio controls" in html and "Big – Lossless" in html
        async with http.get(link + "/audio") as full:
            assert full.status == 200 and full.headers["Content-Type"] == "audio/mpeg"
            assert full.headers["Accept-Ranges"] == "bytes"
            assert "inline" in full.headers["Content-Disposition"]
            assert await full.read() == BIG
        async with http.get(link + "/audio", headers={"Range": "bytes=100-199"}) as part:
            assert part.status == 206 and await part.read() == BIG[100:200]
            assert part.headers["Content-Range"] == f"bytes 100-199/{len(BIG)}"
        async with http.head(link + "/audio") as head:
            assert head.status == 200 and int(head.headers["Content-Length"]) == len(BIG)
        async with http.get(link + "/audio?download=1") as download:
            assert "attachment" in download.headers["Content-Disposition"]
            assert "Lossless%20master.mp3" in download.headers["Content-Disposition"]
        links = env.bot.web.links
        assert links is not None
        real_clock = links.clock
        try:
            links.clock = lambda: real_clock() + 3 * 3600 - 120  # two minutes before its expiry: still plays
            async with http.head(link + "/audio") as late:
                assert late.status == 200
            links.clock = lambda: real_clock() + 3 * 3600 + 60  # a minute after: refused
            async with http.get(link) as expired:
                assert expired.status == 403 and "expired" in await expired.text()
        finally:
            links.clock = real_clock


async def test_tampered_expired_and_traversing_links_get_403(linked_env: BotEnv) -> None:
    env = linked_env
    queue = env.bot.queue
    path = await env.bot.audio.save(env.guild_id, "mp3", mp3_bytes(40))
    good = await queue.submit(env.guild_id, 1, "u1", queue.draft(artist="A", title="B", note=None,
                              audio=AudioFile(path, "a.mp3", 1.0)), skip=False)  # fmt: skip
    outside = await queue.submit(env.guild_id, 2, "u2", queue.draft(artist="C", title="D", note=None,
                                 audio=AudioFile("../../web_secret", "x.mp3", 1.0)), skip=False)  # fmt: skip
    links = env.bot.web.links
    assert links is not None
    base = f"{env.bot.web.local_url}/f/"
    day = 24 * 3600
    valid = links.make(env.guild_id, good.submission.id, lifetime_seconds=day)
    row, expires, signature = valid.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    real_clock = links.clock
    links.clock = lambda: real_clock() - 2 * 86400  # made two days ago: past the 24 h default
    expired = links.make(env.guild_id, good.submission.id, lifetime_seconds=day)
    links.clock = real_clock
    other_guild = links.make(env.guild_id + 1, good.submission.id, lifetime_seconds=day)
    cases = {
        "tampered signature": f"{row}.{expires}.{flipped}",
        "longer life": f"{row}.{int(expires) + 3600}.{signature}",
        "another row": f"{outside.submission.id}.{expires}.{signature}",
        "signed for another guild": other_guild,
        "expired": expired,
        "outside the store": links.make(env.guild_id, outside.submission.id, lifetime_seconds=day),
        "encoded traversal": "..%2F..%2Fweb_secret",
        "garbage": "x",
    }
    async with aiohttp.ClientSession() as http:
        async with http.get(base + valid + "/audio") as ok:
            assert ok.status == 200 and await ok.read() == mp3_bytes(40)
        for name, link in cases.items():
            for suffix in ("", "/audio"):
                async with http.get(base + link + suffix) as response:
                    body = await response.text()
                    assert response.status == 403, (name, suffix)
                    assert b"\x00" not in body.encode() and "web_secret" not in body
            if name == "expired":
                assert "expired" in body
    secret = env.config.data_dir / SECRET_FILE
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600 and len(secret.read_bytes()) == 32

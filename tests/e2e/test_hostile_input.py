"""A hostile-input corpus through the real bot.

Each case gets a clear ephemeral reason or is accepted correctly, stores nothing partial, and raises no
unhandled exception.
"""

from __future__ import annotations

import logging

import pytest

from tests.audio_samples import mp3_bytes, wav_bytes
from tests.conftest import BotEnv

OK = None  # the case must be accepted
LONG_URL = "https://example.com/" + "a" * 10_000

# (artist, title, link, note, expected reason or OK)
MODAL_CASES: list[tuple[str, str, str, str, str | None]] = [
    ("A" * 100, "t", "https://x.test/1", "", OK),
    ("A" * 101, "t", "https://x.test/1", "", "limit is 100"),
    ("a", "T" * 100, "https://x.test/1", "", OK),
    ("a", "T" * 101, "https://x.test/1", "", "limit is 100"),
    ("a", "t", "https://x.test/" + "l" * 480, "", OK),
    ("a", "t", "https://x.test/" + "l" * 490, "", "too long"),
    ("a", "t", "https://x.test/1", "n" * 200, OK),
    ("a", "t", "https://x.test/1", "n" * 201, "limit is 200"),
    ("", "t", "https://x.test/1", "", "can't be empty"),
    ("   ", "t", "https://x.test/1", "", "can't be empty"),
    ("a", "\t \n", "https://x.test/1", "", "can't be empty"),
    ("\u200b\u200b", "t", "https://x.test/1", "", "can't be empty"),
    ("a", "\u202e\u202d", "https://x.test/1", "", "can't be empty"),
    ("a", "", "", "", "can't be empty"),
    ("a", "t", "", "", "can't be empty"),
    ("a", "t", "   ", "", "can't be empty"),
    ("Ame\u0301lie", "Cafe\u0301", "https://x.test/c", "", OK),
    ("\u202eevil", "rtl \u202btext", "https://x.test/r", "", OK),
    ("**bold** __u__", "~~s~~ `code` > quote", "https://x.test/m", "||spoiler||", OK),
    ("@everyone", "@here", "https://x.test/e", "<@&123> <@456>", OK),
    ("<@!1>", "<#2>", "https://x.test/mm", "@everyone", OK),
    ("[link](https://evil.test)", "t", "https://x.test/md", "", OK),
    ("'; DROP TABLE submissions; --", "1 OR 1=1", "https://x.test/sql", '" OR ""="', OK),
    ("a", "t", "not a url", "", "no spaces"),
    ("a", "t", "youtube.com/watch?v=x", "", "http:// or https://"),
    ("a", "t", "javascript:alert(1)", "", "http:// or https://"),
    ("a", "t", "data:text/html;base64,PHNjcmlwdD4=", "", "http:// or https://"),
    ("a", "t", "ftp://files.test/song.mp3", "", "http:// or https://"),
    ("a", "t", "https://user:pass@evil.test/x", "", "user name or password"),
    ("a", "t", "https://user@evil.test/x", "", "user name or password"),
    ("a", "t", LONG_URL, "", "too long"),
    ("a", "t", "https://", "", "no valid web address"),
    ("a", "t", "https://localhost/x", "", "no valid web address"),
    ("a", "t", "https://exa mple.com", "", "no spaces"),
    ("a", "t", "https://bad_host!.com/x", "", "no valid web address"),
    ("a", "t", "https://\u0000evil.com", "", "no spaces"),
    ("a", "t", "https://xn--80ak6aa92e.com/", "", OK),
    ("a", "t", "https://пример.рф/song", "", OK),
    ("a", "t", "http://[::1]/x", "", "no valid web address"),
    ("a", "t", "https://example.com:99999/x", "", "not a valid web address"),
]

HANDLE_CASES: list[tuple[str, str | None]] = [
    ("@", "Give a TikTok handle"),
    ("a", "not a valid TikTok handle"),
    ("x" * 25, "not a valid TikTok handle"),
    ("hello world", "not a valid TikTok handle"),
    ("émile", "not a valid TikTok handle"),
    ("名前です", "not a valid TikTok handle"),
    ("drop;table", "not a valid TikTok handle"),
    ("@@Valid.Name_1", OK),
]

FILE_CASES: list[tuple[str, bytes, str | None]] = [
    ("song.mp3", wav_bytes(), "not a valid MP3"),
    ("song.wav", mp3_bytes(), "not a valid WAV"),
    ("song.flac", b"fLaC" + b"\x00" * 8, "not a valid FLAC"),
    ("song.m4a", b"\x00" * 64, "not a valid M4A"),
    ("song.wav", wav_bytes()[:40], "WAV file has no playable audio"),
    ("empty.mp3", b"", "empty"),
    ("song.exe", mp3_bytes(), "Only MP3"),
    ("../../../etc/passwd.mp3", b"root:x:0:0", "not a valid MP3"),
    ("..\\..\\win.ini.wav", b"[fonts]", "not a valid WAV"),
    ("noextension", mp3_bytes(), "Only MP3"),
    ("ok.MP3", mp3_bytes(), OK),
    ("dots...wav", wav_bytes(), OK),
]


def _no_unhandled(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


async def _modal(env: BotEnv, artist: str, title: str, link: str, note: str, handle: str | None = None):
    options = {"tiktok_handle": handle} if handle else {}
    opened = await env.member.slash(env.channels["general"], "submit", **options)
    if opened.modal is None:
        return opened  # refused before the form opened (a bad handle: issue 11 B11)
    ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
    return await env.member.submit_modal(opened, dict(zip(ids, [artist, title, link, note], strict=True)))


@pytest.mark.parametrize(("artist", "title", "link", "note", "reason"), MODAL_CASES)
async def test_modal_fields(bot_env: BotEnv, caplog: pytest.LogCaptureFixture, artist: str, title: str, link: str,
                            note: str, reason: str | None) -> None:  # fmt: skip
    answer = await _modal(bot_env, artist, title, link, note)
    text = answer.text()
    assert answer.ephemeral
    if reason is OK:
        assert "Is this submission a skip" in text, text
        question = answer.messages()[0]
        done = await bot_env.member.click(question, bot_env.member.find_custom_id(question, "No"))
        assert "Submitted" in done.text()
        assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 1
    else:
        assert reason in text, text
        assert len(text) < 300
        assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 0
    _no_unhandled(caplog)


@pytest.mark.parametrize(("handle", "reason"), HANDLE_CASES)
async def test_handles(bot_env: BotEnv, caplog: pytest.LogCaptureFixture, handle: str, reason: str | None) -> None:
    answer = await _modal(bot_env, "a", "t", "https://x.test/h", "", handle)
    linked = await bot_env.member.slash(bot_env.channels["general"], "link-tiktok", handle=handle)
    if reason is OK:
        assert "Is this submission a skip" in answer.text() and "linked to you" in linked.text()
    else:
        assert reason in answer.text() and reason in linked.text()
        assert await bot_env.bot.db.user_handles(bot_env.guild_id, bot_env.member.id) == []
    _no_unhandled(caplog)


@pytest.mark.parametrize(("name", "data", "reason"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
async def test_files(bot_env: BotEnv, caplog: pytest.LogCaptureFixture, name: str, data: bytes,
                     reason: str | None) -> None:  # fmt: skip
    record = await bot_env.member.upload(bot_env.channels["general"], "submitfile", (name, data), artist="A", song="B")
    if reason is OK:
        await record.wait_text("Is this submission a skip")
    else:
        await record.wait_text(reason)
        audio = bot_env.config.data_dir / "audio"
        assert not audio.exists() or not [p for p in audio.rglob("*") if p.is_file()]
    _no_unhandled(caplog)


async def test_file_one_byte_over_25_mb(bot_env: BotEnv, caplog: pytest.LogCaptureFixture) -> None:
    data = b"\x00" * (25 * 1024 * 1024 + 1)
    record = await bot_env.member.upload(bot_env.channels["general"], "submitfile", ("big.mp3", data), artist="A",
                                         song="B")  # fmt: skip
    await record.wait_text("the limit is 25 MB")
    _no_unhandled(caplog)


async def test_bad_ids_for_admin_commands(bot_env: BotEnv, caplog: pytest.LogCaptureFixture) -> None:
    for bad in ("#", "'; DROP TABLE x; --", "#" + "9" * 50, "<@123>"):
        answer = await bot_env.admin.slash(bot_env.channels["general"], "remove", submission_id=bad)
        assert "not a submission id" in answer.text() or "No submission" in answer.text()
    _no_unhandled(caplog)

"""Start-up rules of bot.py that need no Discord: every cog loads or the bot refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest
from discord.ext import commands

import bot as bot_module
from config import load_config


async def test_a_cog_that_fails_to_load_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config({"DISCORD_TOKEN": "x", "DATA_DIR": str(tmp_path)})
    monkeypatch.setattr(bot_module, "EXTENSIONS", ("cogs.submission", "tests.fixtures.broken_cog"))
    instance = bot_module.MusicQueueBot(config)
    await instance._async_setup_hook()  # what login() does before setup_hook (the sharded close needs it)
    try:
        with pytest.raises(commands.ExtensionFailed) as info:
            await instance.setup_hook()
        assert "QuizEvent" in str(info.value.original)
    finally:
        await instance.close()
    assert instance.db._conn is None  # resources were closed on the way out


def test_every_listed_cog_exists_and_has_setup() -> None:
    import importlib

    for name in bot_module.EXTENSIONS:
        assert callable(importlib.import_module(name).setup), name


def test_start_up_freezes_what_it_imported_before_the_loop_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full garbage collection walking discord.py, aiohttp and TikTokLive's classes stalled the loop about
    # 55 ms each time; frozen before the loop starts, collections skip them for the life of the process.
    calls: list[str] = []
    monkeypatch.setenv("DISCORD_TOKEN", "x")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr(bot_module, "setup_logging", lambda config: None)
    monkeypatch.setattr(bot_module.gc, "freeze", lambda: calls.append("freeze"))

    async def run_bot(bot: object, token: str) -> None:
        calls.append("run")

    monkeypatch.setattr(bot_module, "run_bot", run_bot)
    assert bot_module.main([]) == 0
    assert calls == ["freeze", "run"]

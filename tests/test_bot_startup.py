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

"""The real bot logs into the fake Discord and answers a command."""

from __future__ import annotations

from tests.conftest import BotEnv


async def test_bot_logs_in_syncs_and_answers_help(bot_env: BotEnv) -> None:
    assert "submit" in bot_env.fake.commands and "tiktok" in bot_env.fake.commands
    record = await bot_env.member.slash(bot_env.channels["general"], "help")
    assert record.ephemeral
    assert "Points reset when your Free song plays" in record.text()

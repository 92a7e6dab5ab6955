"""Faults the bot survives: gateway drops, and a clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import BotEnv
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]


async def test_gateway_drop_resumes_and_commands_still_work(bot_env: BotEnv) -> None:
    await bot_env.fake.drop_gateway(4000)
    await bot_env.fake.wait_for(lambda: bot_env.fake.resumes == 1, 10, "a RESUME")
    record = await bot_env.member.slash(bot_env.channels["general"], "help")
    assert "How the queue works" in record.text()
    assert bot_env.fake.identifies == 1  # resumed, not a new session: start-up work is not repeated


async def test_sigterm_flushes_and_closes_cleanly(tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    fake.add_channel("general")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "SIGN_", "TIKTOK_"))},
        "DISCORD_TOKEN": "fake-token-for-tests",
        "DATA_DIR": str(tmp_path / "data"),
        "GUILD_ID": fake.guild_id,
        "DISCORD_API_BASE_URL": fake.api_base_url,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "WEB_PORT": "0",
        "ENGAGEMENT_FLUSH_SECONDS": "60",  # nothing flushes on its own during the test: only shutdown can
    }
    admin = fake.admin
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await fake.wait_for(lambda: fake.identifies == 1 and "submit" in fake.commands, 30, "the bot to connect")
        await asyncio.sleep(0.3)
        simulated = await admin.slash_sub(fake.ensure_channel("general"), "tiktok", "simulate", kind="like",
                                          handle="last.fan", amount=7)  # fmt: skip
        await simulated.wait_text("Simulated")
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
        await fake.stop()
    log = err.decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log and "fake-token-for-tests" not in log
    import sqlite3

    con = sqlite3.connect(tmp_path / "data" / "music_queue.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The engagement buffered when SIGTERM arrived was flushed on the way out, and the session was closed.
    assert con.execute("SELECT likes FROM handles WHERE handle = 'last.fan'").fetchone() == (7,)
    assert con.execute("SELECT COUNT(*) FROM live_sessions WHERE ended_at IS NULL").fetchone() == (0,)
    con.close()


async def test_a_5xx_on_a_display_edit_is_retried(bot_env: BotEnv) -> None:
    setup = await bot_env.admin.slash(
        bot_env.channels["general"], "setup-live-queue", channel=bot_env.channels["queue"]
    )
    await setup.wait_text("pinned")
    live = bot_env.fake.pins(bot_env.channels["queue"])[0]
    bot_env.fake.fail_server_error("PATCH", rf"/messages/{live['id']}$")
    draft = bot_env.bot.queue.draft(artist="A", title="B", note=None, link="https://x.test/5xx")
    await bot_env.bot.queue.submit(bot_env.guild_id, 1, "u", draft, skip=False)
    await bot_env.settle()
    shown = bot_env.fake.pins(bot_env.channels["queue"])[0]
    assert shown["id"] == live["id"] and "1 songs" in shown["embeds"][0]["footer"]["text"]
    assert bot_env.fake.count_status(500) == 1


async def test_invalid_session_identifies_again_without_repeating_start_up(bot_env: BotEnv) -> None:
    puts = bot_env.fake.count("PUT", r"/commands$")
    bot_env.fake.invalidate_session()
    await bot_env.fake.wait_for(lambda: bot_env.fake.identifies == 2, 15, "a new IDENTIFY")
    await bot_env.fake.wait_for(lambda: bot_env.bot.is_ready(), 15, "ready again")
    record = await bot_env.member.slash(bot_env.channels["general"], "help")
    assert "How the queue works" in record.text()
    assert bot_env.fake.count("PUT", r"/commands$") == puts  # no resync, no duplicated messages

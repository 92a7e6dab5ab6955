"""Configuration: names, defaults, validation, secrets kept out of logs; and the bot entry point."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, RedactingFilter, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_and_alternative_token_name() -> None:
    config = load_config({"DISCORD_BOT_TOKEN": "abc"})
    assert config.token == "abc" and config.guild_id is None
    assert config.database_path == Path("data/music_queue.db") and config.data_dir == Path("data")
    assert config.display_refresh_seconds == 2.0 and config.log_level == "INFO"
    assert config.shard_count is None and config.shard_ids is None and config.tiktok_workers == 0


def test_every_variable_is_read() -> None:
    config = load_config(
        {
            "DISCORD_TOKEN": "t",
            "GUILD_ID": "123",
            "DATABASE_PATH": "/tmp/x.db",
            "DATA_DIR": "/tmp/d",
            "DISCORD_API_BASE_URL": "http://127.0.0.1:1/",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:1/",
            "SIGN_API_KEY": "key",
            "SIGN_API_URL": "http://127.0.0.1:2",
            "TIKTOK_WEB_URL": "http://127.0.0.1:3",
            "TIKTOK_WEBCAST_URL": "http://127.0.0.1:3/webcast",
            "LOG_LEVEL": "debug",
            "TIKTOK_WORKERS": "3",
            "SHARD_COUNT": "4",
            "SHARD_IDS": "3, 1",
        }
    )
    assert config.guild_id == 123 and config.database_path == Path("/tmp/x.db")
    assert config.discord_api_base_url == "http://127.0.0.1:1" and config.log_level == "DEBUG"
    assert config.sign_api_key == "key" and config.tiktok_webcast_url.endswith("/webcast")
    assert "key" not in repr(config) and "'t'" not in repr(config)
    assert config.tiktok_workers == 3 and config.shard_count == 4 and config.shard_ids == (1, 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "t", "GUILD_ID": "abc"}, "GUILD_ID"),
        ({"DISCORD_TOKEN": "t", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DISCORD_TOKEN": "t", "DISCORD_GATEWAY_URL": "http://x"}, "DISCORD_GATEWAY_URL"),
        ({"DISCORD_TOKEN": "t", "DISPLAY_REFRESH_SECONDS": "soon"}, "DISPLAY_REFRESH_SECONDS"),
        ({"DISCORD_TOKEN": "t", "SHARD_COUNT": "0"}, "SHARD_COUNT"),
        ({"DISCORD_TOKEN": "t", "SHARD_IDS": "0,1"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"DISCORD_TOKEN": "t", "SHARD_COUNT": "2", "SHARD_IDS": "1,2"}, "below SHARD_COUNT"),
    ],
)
def test_invalid_configuration_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_env_example_documents_every_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    names = [
        "DISCORD_TOKEN", "GUILD_ID", "DATABASE_PATH", "DATA_DIR", "DISCORD_API_BASE_URL", "DISCORD_GATEWAY_URL",
        "SIGN_API_KEY", "SIGN_API_URL", "TIKTOK_WEB_URL", "TIKTOK_WEBCAST_URL", "LOG_LEVEL",
        "DISPLAY_REFRESH_SECONDS", "ENGAGEMENT_FLUSH_SECONDS", "BACKUP_INTERVAL_HOURS", "BACKUP_KEEP",
        "TIKTOK_WORKERS", "SHARD_COUNT", "SHARD_IDS",
    ]  # fmt: skip
    assert [n for n in names if f"\n{n}=" not in text] == []


def test_redacting_filter_hides_secrets_in_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    handler_filter = RedactingFilter(("super-secret-token",))
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="test.redact"):
            logger.info("token is %s", "super-secret-token")
            try:
                raise RuntimeError("bad super-secret-token")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.removeFilter(handler_filter)
    assert "super-secret-token" not in caplog.text
    assert "[redacted]" in caplog.text


def _run_bot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "SIGN_", "TIKTOK_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_token_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = _run_bot([], {}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: DISCORD_TOKEN is not set: put DISCORD_TOKEN=<your bot token> in .env (see .env.example)"
    ]


def test_check_migrates_and_imports_every_cog_without_connecting(tmp_path: Path) -> None:
    result = _run_bot(["--check"], {"DISCORD_TOKEN": "x", "DATA_DIR": str(tmp_path / "d")}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cogs import" in result.stderr
    assert (tmp_path / "d" / "music_queue.db").exists()


def test_a_second_process_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    from bot import InstanceLock

    data = tmp_path / "d"
    lock = InstanceLock(data / "music_queue.db")
    lock.acquire()
    try:
        result = _run_bot([], {"DISCORD_TOKEN": "x", "DATA_DIR": str(data)}, tmp_path)
    finally:
        lock.release()
    assert result.returncode == 3
    assert "another bot process (pid" in result.stderr and "stop it first" in result.stderr
    assert "Traceback" not in result.stderr


def test_log_file_rotates_and_is_redacted(tmp_path: Path) -> None:
    import logging.handlers

    from bot import setup_logging

    config = load_config({"DISCORD_TOKEN": "secret-token-value", "DATA_DIR": str(tmp_path)})
    root = logging.getLogger()
    before = list(root.handlers)
    setup_logging(config)
    added = [h for h in root.handlers if h not in before]
    try:
        rotating = next(h for h in added if isinstance(h, logging.handlers.RotatingFileHandler))
        rotating.maxBytes = 2_000
        for i in range(100):
            logging.getLogger("test.rotate").warning("line %s with secret-token-value", i)
        rotating.flush()
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()
    logs = sorted((tmp_path / "logs").glob("bot.log*"))
    assert len(logs) >= 2  # rotated
    assert all("secret-token-value" not in p.read_text() for p in logs)

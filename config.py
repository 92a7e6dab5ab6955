"""Configuration from the environment (and ``.env``), validated once at start.

Every variable is documented in ``.env.example``. ``load_config`` raises ``ConfigError`` with a one-line
message naming the variable, so ``bot.py`` can print it instead of a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class ConfigError(Exception):
    """A missing or invalid configuration value; the message names it."""


@dataclass(frozen=True, slots=True)
class Config:
    """Validated settings of one bot process."""

    token: str = field(repr=False)
    guild_id: int | None = None
    database_path: Path = Path("data/music_queue.db")
    data_dir: Path = Path("data")
    discord_api_base_url: str | None = None
    discord_gateway_url: str | None = None
    sign_api_key: str | None = field(default=None, repr=False)
    sign_api_url: str | None = None
    tiktok_web_url: str | None = None
    tiktok_webcast_url: str | None = None
    log_level: str = "INFO"
    display_refresh_seconds: float = 2.0
    engagement_flush_seconds: float = 1.0
    backup_interval_hours: float = 24.0
    backup_keep: int = 7
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 8765
    public_base_url: str | None = None
    web_rate_per_minute: int = 240

    tiktok_workers: int = 0
    """TikTok connection processes (``TIKTOK_WORKERS``); 0 means one per core."""
    shard_count: int | None = None
    """``SHARD_COUNT``: shards of the whole bot (None: Discord's recommendation)."""
    shard_ids: tuple[int, ...] | None = None
    """``SHARD_IDS``: the shards this process runs (None: all of them)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a message."""
        return tuple(s for s in (self.token, self.sign_api_key) if s)


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"{name} must be a port number (0-65535; 0 picks a free one), got {raw!r}")
    return int(raw)


def _shards(env: Mapping[str, str]) -> tuple[int | None, tuple[int, ...] | None]:
    """``SHARD_COUNT`` and ``SHARD_IDS`` (comma-separated, each below the count; needs the count)."""
    count_raw = env.get("SHARD_COUNT", "").strip()
    ids_raw = env.get("SHARD_IDS", "").strip()
    count: int | None = None
    if count_raw:
        if not count_raw.isdigit() or int(count_raw) < 1:
            raise ConfigError(f"SHARD_COUNT must be a whole number of at least 1, got {count_raw!r}")
        count = int(count_raw)
    if not ids_raw:
        return count, None
    if count is None:
        raise ConfigError("SHARD_IDS needs SHARD_COUNT: every process must agree on the number of shards")
    parts = [part.strip() for part in ids_raw.split(",")]
    if not all(part.isdigit() and int(part) < count for part in parts):
        raise ConfigError(f"SHARD_IDS must be comma-separated shard ids below SHARD_COUNT ({count}), got {ids_raw!r}")
    return count, tuple(sorted({int(part) for part in parts}))


def load_config(env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env") -> Config:
    """Build a ``Config`` from ``env`` (default: ``.env`` values overlaid by the real environment)."""
    if env is None:
        merged: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        merged.update(os.environ)
        env = merged

    token = (env.get("DISCORD_TOKEN") or env.get("DISCORD_BOT_TOKEN") or "").strip()
    if not token:
        raise ConfigError("DISCORD_TOKEN is not set: put DISCORD_TOKEN=<your bot token> in .env (see .env.example)")

    guild_raw = env.get("GUILD_ID", "").strip()
    guild_id: int | None = None
    if guild_raw:
        if not guild_raw.isdigit():
            raise ConfigError(f"GUILD_ID must be a numeric Discord server id, got {guild_raw!r}")
        guild_id = int(guild_raw)

    data_dir = Path(env.get("DATA_DIR", "").strip() or "data")
    database_path = Path(env.get("DATABASE_PATH", "").strip() or data_dir / "music_queue.db")

    level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {level!r}")

    shard_count, shard_ids = _shards(env)
    return Config(
        token=token,
        guild_id=guild_id,
        database_path=database_path,
        data_dir=data_dir,
        discord_api_base_url=_url(env, "DISCORD_API_BASE_URL", ("http", "https")),
        discord_gateway_url=_url(env, "DISCORD_GATEWAY_URL", ("ws", "wss")),
        sign_api_key=env.get("SIGN_API_KEY", "").strip() or None,
        sign_api_url=_url(env, "SIGN_API_URL", ("http", "https")),
        tiktok_web_url=_url(env, "TIKTOK_WEB_URL", ("http", "https")),
        tiktok_webcast_url=_url(env, "TIKTOK_WEBCAST_URL", ("http", "https")),
        log_level=level,
        display_refresh_seconds=_number(env, "DISPLAY_REFRESH_SECONDS", 2.0),
        engagement_flush_seconds=_number(env, "ENGAGEMENT_FLUSH_SECONDS", 1.0, minimum=0.05),
        backup_interval_hours=_number(env, "BACKUP_INTERVAL_HOURS", 24.0),
        backup_keep=int(_number(env, "BACKUP_KEEP", 7, minimum=1)),
        web_enabled=_flag(env, "WEB_ENABLED", True),
        web_host=env.get("WEB_HOST", "").strip() or "127.0.0.1",
        web_port=_port(env, "WEB_PORT", 8765),
        public_base_url=_url(env, "PUBLIC_BASE_URL", ("http", "https")),
        web_rate_per_minute=int(_number(env, "WEB_RATE_PER_MINUTE", 240, minimum=10)),
        tiktok_workers=int(_number(env, "TIKTOK_WORKERS", 0)),
        shard_count=shard_count,
        shard_ids=shard_ids,
    )


class RedactingFilter(logging.Filter):
    """Replaces secrets in every log record, so a token in an exception message never reaches a log."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if len(s) >= 6)

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redact it, and keep the record."""
        if not self._secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "[redacted]")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

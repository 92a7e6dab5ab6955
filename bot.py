"""Entry point: builds the bot, owns every resource, loads the cogs.

Run ``python bot.py`` to start, ``python bot.py --check`` to validate configuration, migrate the
database and import every cog without connecting, and ``python bot.py --sync`` to force a command sync.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import importlib
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
from pathlib import Path
from typing import IO, Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from config import Config, ConfigError, RedactingFilter, load_config
from database import Database, DatabaseError
from services.audio import AudioStore
from services.engagement import EngagementWriter
from services.feed import ChangeFeed
from services.live_sessions import LiveSessionService
from services.points import PointsService
from services.queue import QueueService
from services.tiktok.worker import LiveWorkerPool
from ui.debug_log import DebugChannelHandler, DebugReporter
from ui.displays import DisplayManager
from ui.respond import NO_MENTIONS, report_error

log = logging.getLogger("bot")

# Every cog must load or the bot refuses to start (SPEC 8 rule 11).
EXTENSIONS: tuple[str, ...] = (
    "cogs.submission",
    "cogs.reviewer",
    "cogs.live_queue",
    "cogs.admin",
    "cogs.tiktok",
    "cogs.user",
)
TREE_HASH_KEY = "command_tree_hash"


class InstanceLockError(Exception):
    """Another bot process already uses this database."""


class InstanceLock:
    """An exclusive ``flock`` beside the database, so only one bot process runs per database (SPEC 8.6)."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``InstanceLockError`` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InstanceLockError(
                f"another bot process ({holder}) is already running on {self.path.with_suffix('')}; stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def setup_logging(config: Config) -> None:
    """Console plus a rotating file in ``DATA_DIR/logs``; secrets are redacted from every record."""
    root = logging.getLogger()
    root.setLevel(config.log_level)
    formatter = logging.Formatter("[{asctime}] [{levelname:<7}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{")
    redact = RedactingFilter(config.secrets)
    log_dir = config.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stderr),
        logging.handlers.RotatingFileHandler(
            log_dir / "bot.log", maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
        ),
    ]
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        root.addHandler(handler)
    logging.getLogger("discord.http").setLevel(logging.WARNING)
    # TikTokLive installs its own stderr handler with propagate=False; route it through ours instead.
    tiktok_logger = logging.getLogger("TikTokLive")
    tiktok_logger.handlers.clear()
    tiktok_logger.propagate = True


def apply_endpoint_overrides(config: Config) -> None:
    """Point discord.py's REST and gateway at ``DISCORD_API_BASE_URL`` / ``DISCORD_GATEWAY_URL`` (proxies, tests)."""
    if config.discord_api_base_url:
        base = config.discord_api_base_url
        discord.http.Route.BASE = base if base.endswith("/api/v10") else base + "/api/v10"
    if config.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.discord_gateway_url)


class MusicQueueBot(commands.AutoShardedBot):
    """The bot: owns the database, the services and the TikTok connections; closes them in reverse order.

    Sharded (discord.py picks the shard count, or ``SHARD_COUNT`` / ``SHARD_IDS`` split it over processes);
    with one shard it behaves like a plain ``Bot``.
    """

    db: Database
    queue: QueueService
    points: PointsService
    audio: AudioStore
    engagement: EngagementWriter
    sessions: LiveSessionService
    displays: DisplayManager
    feed: ChangeFeed
    tiktok: LiveWorkerPool

    def __init__(self, config: Config, *, force_sync: bool = False, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # the submission channel rule reads ordinary chatter
        options.setdefault("chunk_guilds_at_startup", False)
        options.setdefault("max_ratelimit_timeout", 60.0)
        options.setdefault("shard_count", config.shard_count)
        options.setdefault("shard_ids", list(config.shard_ids) if config.shard_ids else None)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            **options,
        )
        self.config = config
        self.force_sync = force_sync
        self.db = Database(config.database_path)
        self.feed = ChangeFeed()
        self.audio = AudioStore(config.data_dir)
        self.tree.on_error = self._on_tree_error
        self.synced = False

    async def setup_hook(self) -> None:
        """Open the database, build the services, load every cog, then sync the tree if it changed."""
        if self.shard_count is None and self.config.discord_gateway_url:
            # discord.py takes the gateway URL from /gateway/bot unless the shard count is known: ask for
            # the count here, so that DISCORD_GATEWAY_URL (a proxy, the tests' fake) is still used.
            self.shard_count = (await self.http.get_bot_gateway())[0]
        await self.db.connect()
        self.queue = QueueService(self.db, feed=self.feed)
        self.points = PointsService(self.db, self.queue)
        self.engagement = EngagementWriter(self.db, self.queue, flush_seconds=self.config.engagement_flush_seconds)
        self.engagement.start()
        self._start_debug_reporter()
        self.displays = DisplayManager(self, self.config.display_refresh_seconds)
        self.tiktok = LiveWorkerPool(lambda: self.config)  # children start with the first live
        from ui.submission_ui import PERSISTENT_VIEWS as SUBMISSION_VIEWS

        # Registered before connecting, so buttons on old messages work right after a restart (SPEC 4);
        # the queue displays' views are registered by their cogs' cog_load, also before connecting.
        for view_class in SUBMISSION_VIEWS:
            self.add_view(view_class())
        for extension in EXTENSIONS:
            await self.load_extension(extension)  # an exception here aborts start-up, loudly
        await self.sync_commands(force=self.force_sync)

    def owns_guild(self, guild_id: int) -> bool:
        """Whether this process serves a guild: its shard (Discord's rule) is one of this process's shards."""
        if self.shard_ids is None:
            return True
        return (guild_id >> 22) % (self.shard_count or 1) in self.shard_ids

    def _start_debug_reporter(self) -> None:
        handler = DebugChannelHandler()
        secrets = self.config.secrets

        def redact(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, "[redacted]")
            return text

        async def send(channel_id: int, text: str) -> None:
            try:
                await self.get_partial_messageable(channel_id).send(text, allowed_mentions=NO_MENTIONS)
            except discord.HTTPException as exc:
                # Logged below WARNING on purpose: a warning here would be queued for the same channel.
                log.info("debug channel %s unreachable: %s", channel_id, exc)

        logging.getLogger().addHandler(handler)
        self.debug_handler = handler
        self.debug_reporter = DebugReporter(handler, self.db.debug_channels, send, redact=redact)
        self.debug_reporter.start()

    def tree_hash(self) -> str:
        """A hash of the commands as Discord would receive them."""
        guild = discord.Object(self.config.guild_id) if self.config.guild_id else None
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        if guild is not None:
            payload += [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync only when the tree differs from the last synced one (SPEC 8 rule 5), or when forced."""
        scope = f"guild:{self.config.guild_id}" if self.config.guild_id else "global"
        digest = f"{scope}:{self.tree_hash()}"
        if not force and await self.db.get_meta(TREE_HASH_KEY) == digest:
            log.info("command tree unchanged; not syncing")
            return False
        if self.config.guild_id:
            guild = discord.Object(self.config.guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        await self.db.set_meta(TREE_HASH_KEY, digest)
        self.synced = True
        log.info("synced the command tree (%s)", scope)
        return True

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)

    async def on_ready(self) -> None:
        """Log once per connection; start-up work lives in ``setup_hook`` so reconnects repeat nothing."""
        log.info("ready as %s in %d guild(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        """Stop TikTok, flush engagement, close the database, then disconnect (reverse order of creation)."""
        for name in reversed(EXTENSIONS):
            if name in self.extensions:
                try:
                    await self.unload_extension(name)
                except Exception:
                    log.exception("unloading %s failed", name)
        if hasattr(self, "tiktok"):
            await self.tiktok.close()  # lives the cog left (none normally), then the processes
        if hasattr(self, "engagement"):
            try:
                await self.engagement.stop()
            except Exception:
                log.exception("final engagement flush failed")
        if hasattr(self, "displays"):
            await self.displays.close()
        if hasattr(self, "debug_reporter"):
            await self.debug_reporter.stop()
            logging.getLogger().removeHandler(self.debug_handler)
        await super().close()
        await self.db.close()


def check_setup(config: Config) -> None:
    """``--check``: migrate the database and import every cog, without connecting to Discord."""

    async def run() -> int:
        db = Database(config.database_path)
        await db.connect()
        version = await db.schema_version()
        await db.close()
        return version

    version = asyncio.run(run())
    for extension in EXTENSIONS:
        module = importlib.import_module(extension)
        if not hasattr(module, "setup"):
            raise ImportError(f"{extension} has no setup()")
    log.info("configuration ok; database at schema version %s; %d cogs import", version, len(EXTENSIONS))


async def run_bot(bot: MusicQueueBot, token: str) -> None:
    """Run until closed; SIGTERM and SIGINT close cleanly (buffers flushed, TikTok stopped, database closed)."""
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: closing.append(asyncio.create_task(bot.close())))
    async with bot:
        await bot.start(token)
    if closing:
        await asyncio.gather(*closing)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, validate configuration, take the instance lock and run the bot."""
    parser = argparse.ArgumentParser(description="Music review queue bot for TikTok LIVE streamers.")
    parser.add_argument("--check", action="store_true", help="validate config, migrate the database, import cogs")
    parser.add_argument("--sync", action="store_true", help="sync slash commands even if unchanged")
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    setup_logging(config)
    if args.check:
        try:
            check_setup(config)
        except (DatabaseError, ImportError) as exc:
            log.error("check failed: %s", exc)
            return 1
        return 0
    lock = InstanceLock(config.database_path)
    try:
        lock.acquire()
    except InstanceLockError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 3
    apply_endpoint_overrides(config)
    log.info("starting (pid %s on %s)", os.getpid(), socket.gethostname())
    bot = MusicQueueBot(config, force_sync=args.sync)
    try:
        asyncio.run(run_bot(bot, config.token))
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN in .env")
        return 1
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())

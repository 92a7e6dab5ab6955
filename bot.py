"""Entry point and composition root: builds every long-lived object once, loads the cogs, closes in reverse.

``MusicQueueBot.setup_hook`` builds, in dependency order: the change feed, the database (with its
settings cache), the notifier (every outgoing DM and channel post), the queue, points, the engagement
writer, the live sessions, the TikTok connections and their status messages, the displays, the backups
and the warnings digest; then it registers the persistent components and loads the cogs, which only
translate interactions into calls on these objects. ``close`` stops them in the reverse order. No cog or
view builds, schedules or re-wires any of them, so reloading a cog changes nothing but its commands.

Run ``python bot.py`` to start, ``python bot.py --check`` to validate configuration, migrate the
database and import every cog without connecting, ``python bot.py --sync`` to force a command sync, and
``python bot.py --invite`` to print the invite URL with exactly the permissions the bot needs.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import hashlib
import importlib
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from config import Config, ConfigError, RedactingFilter, load_config
from database import Database, DatabaseError
from services.audio import AudioStore
from services.backup import BackupService
from services.engagement import EngagementWriter
from services.feed import ChangeFeed
from services.live_sessions import LiveSessionService
from services.log_context import set_guild
from services.permissions import client_id_from_token, invite_url
from services.points import PointsService
from services.positions import PositionMemory
from services.queue import QueueService
from services.tiktok.connections import LiveConnections
from services.tiktok.worker import LiveWorkerPool
from services.web_access import WebAccess
from ui import expiry, queue_ui, setup_ui, submission_ui
from ui.debug_log import DebugChannelHandler, DebugReporter
from ui.displays import DisplayManager
from ui.leaderboard_ui import LeaderboardButton
from ui.live_status import LiveStatusBoard
from ui.notifier import Notifier
from ui.respond import NO_MENTIONS, report_error
from web.server import WebServer

log = logging.getLogger("bot")

# Every cog must load or the bot refuses to start: a silently missing command group is worse than no bot.
EXTENSIONS: tuple[str, ...] = (
    "cogs.submission",
    "cogs.reviewer",
    "cogs.live_queue",
    "cogs.admin",
    "cogs.tiktok",
    "cogs.user",
    "cogs.leaderboard",
    "cogs.setup",
    "cogs.overlay",
)
TREE_HASH_KEY = "command_tree_hash"


class InstanceLockError(Exception):
    """Another bot process already uses this database."""


class InstanceLock:
    """An exclusive ``flock`` beside the database, so only one bot process runs per database.

    Two processes on one database would both answer every interaction and race on every write.
    """

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


class GuildScopedTree(app_commands.CommandTree):
    """The command tree; every command's task reports its log records as the guild it runs in."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Tag the rest of this interaction's task (and tasks it starts) with its guild; never refuses."""
        set_guild(interaction.guild_id)
        return True


def required_intents() -> discord.Intents:
    """Only what features use, and nothing privileged (no portal switch, no review past 100 servers).

    ``guilds``: the guild, channel and role caches every command and display relies on. ``guild_messages``:
    the submission channel rule sees chatter arrive and deletes it; it never reads the text, so the
    privileged Message Content intent is not needed. Members come with each interaction, so no members intent.
    """
    return discord.Intents(guilds=True, guild_messages=True)


class MusicQueueBot(commands.AutoShardedBot):
    """The bot: owns the database, the services and the TikTok connections; closes them in reverse order.

    Sharded (discord.py picks the shard count, or ``SHARD_COUNT`` / ``SHARD_IDS`` split it over processes);
    with one shard it behaves like a plain ``Bot``.
    """

    feed: ChangeFeed
    db: Database
    audio: AudioStore
    notifier: Notifier
    queue: QueueService
    points: PointsService
    engagement: EngagementWriter
    sessions: LiveSessionService
    lives: LiveConnections
    live_status: LiveStatusBoard
    displays: DisplayManager
    backups: BackupService
    tiktok: LiveWorkerPool
    web_access: WebAccess
    web: WebServer

    def __init__(self, config: Config, *, force_sync: bool = False, **options: Any) -> None:
        # ``options``: discord.py's own Client options (typed ``**options: Any`` there too), passed through.
        intents = required_intents()
        options.setdefault("chunk_guilds_at_startup", False)
        options.setdefault("max_ratelimit_timeout", 60.0)
        options.setdefault("shard_count", config.shard_count)
        options.setdefault("shard_ids", list(config.shard_ids) if config.shard_ids else None)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=GuildScopedTree,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            **options,
        )
        self.config = config
        self.force_sync = force_sync
        self.feed = ChangeFeed()
        self.db = Database(config.database_path, feed=self.feed)
        self.audio = AudioStore(config.data_dir)
        self.positions = PositionMemory()  # the last position each member was shown (why it moved, on /queue)
        self.tree.error(self._on_tree_error)  # the tree's one error handler (the decorator, called directly)
        self.synced = False
        # What setup_hook started, in order; close() stops it in reverse.
        self._closers: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    async def setup_hook(self) -> None:
        """Build every long-lived object in dependency order, register the components, load every cog."""
        config = self.config
        if self.shard_count is None and config.discord_gateway_url:
            # discord.py takes the gateway URL from /gateway/bot unless the shard count is known: ask for
            # the count here, so that DISCORD_GATEWAY_URL (a proxy, the tests' fake) is still used.
            self.shard_count = (await self.http.get_bot_gateway())[0]
        await self.db.connect()  # migrations first: nothing reads the database before they ran
        # Uploads whose submission was never written (a crash in between) go after an hour's grace.
        await self.audio.prune_orphans(await self.db.referenced_files(), older_than=3600)
        self.queue = QueueService(self.db, feed=self.feed)
        # The notifier is the sink of everything below that tells someone something, so it is built before
        # them and closed after them (a final engagement flush can still thank a gifter).
        self.notifier = Notifier(self, self.db, self.feed, self.queue)
        self.notifier.start()
        self._closers.append(("notifier", self.notifier.close))
        self.points = PointsService(self.db, self.queue)
        self.engagement = EngagementWriter(
            self.db, self.queue, feed=self.feed, flush_seconds=config.engagement_flush_seconds
        )
        self.engagement.start()
        self._closers.append(("engagement writer (final flush)", self.engagement.stop))
        self.sessions = LiveSessionService(self.db, self.engagement, feed=self.feed)
        self._closers.append(("live session grace timers", self.sessions.close))
        # A session a crash left open is closed now; its recap (marked recovered) follows from LiveEnded.
        await self.sessions.recover()
        # The connection processes, each hosting many guilds' lives; children start with the first live.
        self.tiktok = LiveWorkerPool(lambda: self.config)
        self._closers.append(("TikTok connection processes", self.tiktok.close))
        self.lives = LiveConnections(self.sessions, self.feed, self.tiktok.connection)
        # Every live is disconnected and every open session ended (with its recap) before the writer stops.
        self._closers.append(("TikTok connections", self.lives.close))
        self.live_status = LiveStatusBoard(self.lives, self.sessions, self.notifier, self.feed)
        self.live_status.start()
        self._closers.append(("TikTok status messages", self.live_status.close))
        self.displays = DisplayManager(self, config.display_refresh_seconds)
        await self.displays.load_windows()
        self.displays.start()  # waits for READY inside a task: nothing calls Discord before connecting
        self._closers.append(("displays", self.displays.close))
        self.backups = BackupService(self.db, config.data_dir, config.backup_keep)
        self.backups.start(config.backup_interval_hours)
        self._closers.append(("backups", self.backups.stop))
        self._start_debug_reporter()
        self.web_access = WebAccess(self.db, self.feed)
        self.web = WebServer(
            self.config,
            db=self.db,
            queue=self.queue,
            feed=self.feed,
            access=self.web_access,
            audio=self.audio,
            current_session=self.sessions.on_screen,
        )
        self._register_components()
        for extension in EXTENSIONS:
            await self.load_extension(extension)  # an exception here aborts start-up, loudly
        await self.sync_commands(force=self.force_sync)
        await self.web.start()  # last: a page that loads at once finds every service ready
        self._closers.append(("web server", self.web.close))  # first to stop: no page reads a closing service

    def _register_components(self) -> None:
        """Every persistent view and dynamic item, registered before connecting and never by a cog.

        So a button on a message posted before a restart (or a cog reload) answers at once: discord.py
        dispatches a click by its custom id to whatever is registered for it.
        """
        for view_class in (*queue_ui.PERSISTENT_VIEWS, *submission_ui.PERSISTENT_VIEWS, *setup_ui.PERSISTENT_VIEWS):
            self.add_view(view_class())
        self.add_dynamic_items(*queue_ui.DYNAMIC_ITEMS, LeaderboardButton)

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
            # Logged below WARNING on purpose: a warning here would be queued for the same channel.
            await self.notifier.post(channel_id, text, what="the warnings digest", level=logging.INFO)

        logging.getLogger().addHandler(handler)
        self.debug_handler = handler
        self.debug_reporter = DebugReporter(handler, self.db.debug_channel_map, send, redact=redact)
        self.debug_reporter.start()

        async def stop() -> None:
            await self.debug_reporter.stop()
            logging.getLogger().removeHandler(handler)

        self._closers.append(("warnings digest", stop))

    def tree_hash(self) -> str:
        """A hash of the commands as Discord would receive them."""
        guild = discord.Object(self.config.guild_id) if self.config.guild_id else None
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        if guild is not None:
            payload += [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync only when the tree differs from the last synced one, or when forced.

        Syncing on every start would hit Discord's daily command-create limit during a crash loop.
        """
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

    async def _on_tree_error(
        self, interaction: discord.Interaction[MusicQueueBot], error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """Dispatch as discord.py does; a click or form that no live view or item handles is answered at once.

        Decided here, synchronously, right after discord.py's view store dispatched it (see ``ui.expiry``).
        """
        super().dispatch(event_name, *args, **kwargs)
        if event_name == "interaction":
            expiry.answer_if_stale(self, args[0])

    async def on_ready(self) -> None:
        """Log once per connection; start-up work lives in ``setup_hook`` so reconnects repeat nothing."""
        log.info("ready as %s in %d guild(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        """Unload the cogs, stop everything ``setup_hook`` started in reverse order, then disconnect.

        The database, built first, closes last, after the gateway: the last recaps and DMs are sent while
        still connected, and nothing that could still write is left when it closes.
        """
        for name in reversed(EXTENSIONS):
            if name in self.extensions:
                try:
                    await self.unload_extension(name)
                except Exception:
                    log.exception("unloading %s failed", name)
        closers, self._closers = self._closers, []
        for name, closer in reversed(closers):
            try:
                await closer()
            except Exception:
                log.exception("stopping the %s failed", name)
        await super().close()
        await self.db.close()  # idempotent, and also right when setup_hook failed half-way


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


async def application_id(config: Config) -> int:
    """The application's id: from the token's first segment, else asked of Discord (application info)."""
    from_token = client_id_from_token(config.token)
    if from_token is not None:
        return from_token
    client = discord.Client(intents=discord.Intents.none())
    async with client:
        await client.login(config.token)
        info = await client.application_info()
    return info.id


def print_invite(config: Config) -> int:
    """``--invite``: write the OAuth2 URL (bot + applications.commands, the exact permissions) to stdout."""
    apply_endpoint_overrides(config)
    try:
        client_id = asyncio.run(application_id(config))
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN in .env")
        return 1
    sys.stdout.write(invite_url(client_id) + "\n")
    return 0


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
    parser.add_argument("--invite", action="store_true", help="print the invite URL with the permissions needed")
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    setup_logging(config)
    if args.invite:
        return print_invite(config)
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
    # Everything imported so far (discord.py, aiohttp, TikTokLive's protobuf classes, matplotlib, ...) lives
    # as long as the process, and each full garbage collection walked it: about 55 ms of stalled event loop
    # on these machines. Frozen, collections skip it (bench/queue_scale.py, "start-up heap").
    gc.freeze()
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

"""The self-updating pinned displays: render, coalesce, skip unchanged, recreate, replace.

``DisplayManager`` subscribes to ``QueueChanged`` on the change feed and asks a ``Coalescer`` for one
refresh per display per window (``config.display_refresh_seconds``), so a burst of changes costs one
trailing edit that shows the latest state (one edit per event ran into Discord's 5 edits per 5 s per
channel, and 429s). A refresh renders the display, hashes the payload, and edits the message only when
the hash changed. It edits through a partial message (no fetch first), so a refresh is at most one REST
call.

Self-healing, each a real failure of long-lived pinned messages:

* 10008 Unknown Message (someone deleted it): post it again, pin it, store the new id;
* 30046 (Discord's cap on edits of messages older than an hour) or ``discord.RateLimited`` (a long
  ``retry_after``; the bot sets ``max_ratelimit_timeout`` so such waits raise instead of sleeping): post a
  replacement, pin it, then take the old one down; a second long limit soon after a replacement waits
  instead of replacing again (no storm of new messages when the limit is on the channel, not the message);
* missing permissions (403) or a deleted channel: logged once, the guild's debug channel told once, and
  that display left alone until it is set up again or the bot restarts (no retry storm of 403s, which
  also count towards Discord's invalid-request ban).

Display messages are found through the database (``displays`` table), never a settings cache loaded
later (research R5); start-up asks for one verified refresh of every stored display once the bot is
ready, so changes made while it was down show up and a message deleted meanwhile comes back. Those
verifications are spread over time (``VERIFY_PER_SECOND``): a bot in 1,000 servers has 3,000 displays, and
asking for all of them at once would be 3,000 renders and REST calls in the first seconds, queued in front
of the interactions it must answer within 3 s. Only the displays of guilds this process serves (its
shards) are verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import discord

from errors import BotError
from models import Display, DisplayKind
from services.feed import QueueChanged, Subscription
from services.log_context import set_guild
from services.refresh import Coalescer
from ui import queue_ui
from ui.respond import NO_MENTIONS, guild_id_of, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)

QUEUE_DISPLAYS = (DisplayKind.LIVE_QUEUE, DisplayKind.REVIEWER_MAIN, DisplayKind.REVIEWER_PENDING)
EDIT_CAP_CODE = 30046
UNKNOWN_CHANNEL_CODE = 10003
MAX_PINS_CODE = 30003
# After a replacement, another long rate limit within this time is the channel's, not the message's.
REPLACE_COOLDOWN = 300.0
MAX_BACKOFF = 600.0
VERIFY_PER_SECOND = 10.0
"""Start-up verifications per second (a fifth of Discord's global 50 requests/s, the rest for the users)."""
NAMES = {
    DisplayKind.LIVE_QUEUE: "live queue",
    DisplayKind.REVIEWER_MAIN: "reviewer queue panel",
    DisplayKind.REVIEWER_PENDING: "pending skips panel",
    DisplayKind.PORTAL: "submission portal",
}

Key = tuple[int, DisplayKind]
Rendered = tuple[discord.Embed, discord.ui.View]
Renderer = Callable[[int, DisplayKind], Awaitable[Rendered]]


class DisplayPermissionError(BotError):
    """The bot may not post, pin or edit in the chosen channel."""


def payload_hash(embed: discord.Embed, view: discord.ui.View | None) -> str:
    """A stable hash of what a message shows (the timestamp is left out: it changes every render)."""
    data = embed.to_dict()
    data.pop("timestamp", None)
    components = view.to_components() if view is not None else []
    raw = json.dumps([data, components], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(slots=True)
class DisplayStats:
    """Counters for tests, benchmarks and ``/show-settings``-style diagnostics."""

    renders: int = 0
    edits: int = 0
    skipped: int = 0
    posted: int = 0
    recreated: int = 0
    replaced: int = 0
    blocked: int = 0
    backoffs: int = 0


class DisplayManager:
    """Keeps every guild's display messages in step with the queue.

    ``request(guild_id)`` is the queue listener (cheap, synchronous); ``ensure`` posts or adopts a
    display; ``holding`` + ``answer_in_place`` let a button on a display answer with the redrawn display
    itself (interaction type 7, no channel PATCH). Every operation on one display runs under that
    display's lock, so a setup command, a button and a coalesced refresh never interleave on one message.
    """

    def __init__(
        self,
        bot: MusicQueueBot,
        window: float | None = None,
        *,
        render: Renderer | None = None,
        verify_rate: float = VERIFY_PER_SECOND,
    ) -> None:
        self.bot = bot
        self.verify_rate = verify_rate
        self.window = bot.config.display_refresh_seconds if window is None else window
        self._render = render or self.render
        self._guild_windows: dict[int, float] = {}
        self.coalescer: Coalescer[Key] = Coalescer(
            self._run, self.window, window_of=lambda key: self._guild_windows.get(key[0])
        )
        self.stats = DisplayStats()
        self._blocked: set[Key] = set()
        self._verify: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        self._replaced_at: dict[Key, float] = {}
        self._retries: dict[Key, asyncio.TimerHandle] = {}
        self._startup: asyncio.Task[None] | None = None
        self._startup_requested = False
        self._closed = False
        self._feed = Subscription(bot.feed, "displays")
        self._feed.on(QueueChanged, lambda event: self.request(event.guild_id))

    # ------------------------------------------------------------------ asking for refreshes

    def request(self, guild_id: int) -> None:
        """Ask for a refresh of every display of a guild (coalesced; the queue listener)."""
        if self._closed:
            return
        for kind in QUEUE_DISPLAYS:
            self.request_kind(guild_id, kind)

    def request_kind(self, guild_id: int, kind: DisplayKind) -> None:
        """Ask for a refresh of one display (coalesced)."""
        key = (guild_id, kind)
        if self._closed or key in self._blocked:
            return
        self.coalescer.request(key)

    def start(self) -> None:
        """Once the bot is ready, refresh every stored display once (idempotent; never calls Discord early)."""
        if self._startup is None and not self._closed:
            self._startup = asyncio.create_task(self._refresh_when_ready(), name="displays-startup")

    async def load_windows(self) -> None:
        """Read every guild's own refresh window (before anything refreshes, so none runs on the default)."""
        self._guild_windows.update(await self.bot.db.display_windows())

    async def _refresh_when_ready(self) -> None:
        await self.bot.wait_until_ready()
        await self.refresh_all()

    async def refresh_all(self) -> None:
        """Verify and refresh every stored display of the guilds served here, ``verify_rate`` per second.

        After a restart; repeated calls add nothing. A display whose queue changes before its turn is
        verified by that refresh and skipped here.
        """
        if self._startup_requested:
            return
        self._startup_requested = True
        owns = getattr(self.bot, "owns_guild", None)
        keys = [(d.guild_id, d.kind) for d in await self.bot.db.all_displays()
                if d.kind in QUEUE_DISPLAYS and d.message_id is not None
                and (owns is None or owns(d.guild_id))]  # fmt: skip
        # Verified once: a message deleted while the bot was down comes back even if nothing changed.
        self._verify.update(keys)
        pause = 1.0 / self.verify_rate if self.verify_rate > 0 else 0.0
        for key in keys:
            if self._closed:
                return
            if key in self._verify:
                self.request_kind(*key)
                await asyncio.sleep(pause)

    async def flush(self) -> None:
        """Wait for every requested refresh, including a start-up verification pass under way (tests)."""
        startup = self._startup
        if startup is not None and self._startup_requested and not startup.done():
            await asyncio.wait({startup})
        await self.coalescer.flush()

    @contextlib.asynccontextmanager
    async def holding(self, guild_id: int, kind: DisplayKind) -> AsyncIterator[bool]:
        """Hold one display's lock if it is free; yields whether it is held.

        For a button that changes the queue and redraws the display in place. It never waits: a
        refresh in progress may be sleeping on a rate limit, and the click must be answered within 3 s
        (when the lock is busy the caller defers and the coalescer redraws instead).
        """
        lock = self._lock((guild_id, kind))
        if lock.locked():
            yield False
            return
        async with lock:  # free, so this returns at once
            yield True

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # ------------------------------------------------------------------ rendering

    async def render(self, guild_id: int, kind: DisplayKind) -> Rendered:
        """The embed and persistent view of a display as it should look now."""
        self.stats.renders += 1
        if kind is DisplayKind.LIVE_QUEUE:
            settings = await self.bot.db.get_settings(guild_id)
            first_page = await self.bot.queue.queue_page(guild_id, 0, queue_ui.PAGE_SIZE)
            played = await self.bot.db.latest_played(guild_id)
            embed = queue_ui.live_queue_embed(first_page, free_open=settings.free_open, now_playing=played)
            return embed, queue_ui.LiveQueueView(first_page.pages)
        if kind is DisplayKind.REVIEWER_MAIN:
            settings = await self.bot.db.get_settings(guild_id)
            first_page = await self.bot.queue.queue_page(guild_id, 0, queue_ui.PAGE_SIZE)
            _, pending = await self.bot.queue.pending_head(guild_id, 0)
            played = await self.bot.db.latest_played(guild_id)
            embed = queue_ui.reviewer_main_embed(
                first_page, settings.weights, pending_count=pending, now_playing=played
            )
            return embed, queue_ui.ReviewerMainView()
        if kind is DisplayKind.REVIEWER_PENDING:
            oldest, total = await self.bot.queue.pending_head(guild_id, queue_ui.PENDING_SHOWN)
            return queue_ui.pending_embed(oldest, total=total), queue_ui.PendingView(oldest)
        raise ValueError(f"{kind} is not a queue display")

    # ------------------------------------------------------------------ setup

    async def ensure(self, guild_id: int, kind: DisplayKind, channel: discord.abc.Snowflake | int) -> int:
        """Post and pin a display, or adopt the one already there; returns the message id.

        Idempotent: a repeated setup (or one after a restart) reuses the stored message when it still
        exists in that channel, re-pins it if someone unpinned it, and edits it only if it looks outdated.
        Moving to another channel posts the new one first, then takes the old one down. Raises
        ``DisplayPermissionError`` with a clear message when the bot lacks permissions there.
        """
        channel_id = channel if isinstance(channel, int) else channel.id
        key = (guild_id, kind)
        self._blocked.discard(key)
        self._replaced_at.pop(key, None)
        async with self._lock(key):
            embed, view = await self._render(guild_id, kind)
            digest = payload_hash(embed, view)
            existing = await self.bot.db.get_display(guild_id, kind)
            try:
                if existing is not None and existing.message_id is not None and existing.channel_id == channel_id:
                    adopted = await self._adopt(existing, embed, view, digest)
                    if adopted is not None:
                        return adopted
                message_id = await self._post(guild_id, kind, channel_id, embed, view, digest)
            except discord.Forbidden as exc:
                raise DisplayPermissionError(
                    f"I can't post the {NAMES[kind]} in <#{channel_id}>: I need View Channel, Send Messages, "
                    "Embed Links, Read Message History and Pin Messages there."
                ) from exc
            if existing is not None and existing.message_id is not None and existing.channel_id != channel_id:
                await self._retire(existing)
            return message_id

    async def _adopt(self, existing: Display, embed: discord.Embed, view: discord.ui.View, digest: str) -> int | None:
        """Reuse a stored message if it still exists (re-pin, refresh); None when it is gone."""
        assert existing.message_id is not None  # checked by the caller
        channel = self.bot.get_partial_messageable(existing.channel_id)
        try:
            message = await channel.fetch_message(existing.message_id)
        except discord.NotFound:
            return None
        if not message.pinned:
            await self._pin(message, existing.kind)
        if digest != existing.content_hash:
            try:
                await message.edit(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
                self.stats.edits += 1
            except discord.RateLimited:
                return None  # replace it: a fresh message is the only thing that can be edited soon
            except discord.HTTPException as exc:
                if exc.code == EDIT_CAP_CODE:
                    return None
                raise
            await self.bot.db.save_display(replace(existing, content_hash=digest))
        return message.id

    # ------------------------------------------------------------------ the coalesced refresh

    async def _run(self, key: Key) -> None:
        set_guild(key[0])  # this refresh task's warnings belong to that guild's debug channel
        if self._closed or key in self._blocked:
            return
        async with self._lock(key):
            await self._refresh(key)

    async def _refresh(self, key: Key) -> None:
        guild_id, kind = key
        display = await self.bot.db.get_display(guild_id, kind)
        if display is None or display.message_id is None:
            return
        embed, view = await self._render(guild_id, kind)
        digest = payload_hash(embed, view)
        verify = key in self._verify
        self._verify.discard(key)
        if digest == display.content_hash and not verify:
            self.stats.skipped += 1
            return
        message = self.bot.get_partial_messageable(display.channel_id).get_partial_message(display.message_id)
        try:
            if digest == display.content_hash:
                # Start-up check: one GET instead of an edit; a gone message is recreated below.
                fetched = await message.fetch()
                self.stats.skipped += 1
                if not fetched.pinned:
                    await self._pin(fetched, kind)
                return
            await message.edit(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_CHANNEL_CODE:
                await self._block(display, "its channel no longer exists")
                return
            log.info("the %s of guild %s was deleted; posting it again", NAMES[kind], guild_id)
            self.stats.recreated += 1
            await self._post_guarded(display, embed, view, digest)
            return
        except discord.RateLimited as exc:
            await self._replace_or_wait(display, embed, view, digest, exc.retry_after)
            return
        except discord.Forbidden as exc:
            await self._block(display, f"missing permissions ({exc.text or exc.status})")
            return
        except discord.HTTPException as exc:
            if exc.code == EDIT_CAP_CODE:
                await self._replace_or_wait(display, embed, view, digest, None)
                return
            raise  # the coalescer logs it with a traceback; the next change tries again
        self.stats.edits += 1
        await self.bot.db.save_display(replace(display, content_hash=digest))

    async def _replace_or_wait(
        self, display: Display, embed: discord.Embed, view: discord.ui.View, digest: str, retry_after: float | None
    ) -> None:
        key = (display.guild_id, display.kind)
        last = self._replaced_at.get(key)
        if retry_after is not None and last is not None and time.monotonic() - last < REPLACE_COOLDOWN:
            # The fresh replacement is limited too: the limit is the channel's; wait instead of posting more.
            delay = min(max(retry_after, self.window), MAX_BACKOFF)
            log.warning("the %s of guild %s is rate limited; retrying in %.0f s", NAMES[display.kind], key[0], delay)
            self.stats.backoffs += 1
            self._retry_later(key, delay)
            return
        why = "Discord's edit cap on old messages" if retry_after is None else f"a {retry_after:.0f} s rate limit"
        log.info("replacing the %s of guild %s (%s)", NAMES[display.kind], display.guild_id, why)
        self.stats.replaced += 1
        if await self._post_guarded(display, embed, view, digest):
            self._replaced_at[key] = time.monotonic()
            await self._retire(display)

    def _retry_later(self, key: Key, delay: float) -> None:
        previous = self._retries.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._retries[key] = asyncio.get_running_loop().call_later(delay, self.request_kind, *key)

    # ------------------------------------------------------------------ posting, pinning, retiring

    async def _post(
        self,
        guild_id: int,
        kind: DisplayKind,
        channel_id: int,
        embed: discord.Embed,
        view: discord.ui.View,
        digest: str,
    ) -> int:
        channel = self.bot.get_partial_messageable(channel_id)
        message = await channel.send(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
        self.stats.posted += 1
        # Stored before pinning, so a failed pin never leaves an untracked duplicate behind.
        await self.bot.db.save_display(Display(guild_id, kind, channel_id, message.id, digest))
        await self._pin(message, kind)
        return message.id

    async def _post_guarded(self, display: Display, embed: discord.Embed, view: discord.ui.View, digest: str) -> bool:
        """Post a display again from a refresh; False (and handled) when Discord refuses."""
        try:
            await self._post(display.guild_id, display.kind, display.channel_id, embed, view, digest)
        except discord.Forbidden as exc:
            await self._block(display, f"missing permissions ({exc.text or exc.status})")
            return False
        except discord.NotFound:
            await self._block(display, "its channel no longer exists")
            return False
        except discord.RateLimited as exc:
            log.warning("could not post the %s of guild %s (rate limited)", NAMES[display.kind], display.guild_id)
            self.stats.backoffs += 1
            self._retry_later((display.guild_id, display.kind), min(max(exc.retry_after, self.window), MAX_BACKOFF))
            return False
        return True

    async def _pin(self, message: discord.Message | discord.PartialMessage, kind: DisplayKind) -> None:
        try:
            await message.pin(reason=f"queue bot: {NAMES[kind]}")
        except discord.HTTPException as exc:
            # Not fatal: the display still updates; a full pin list (30003) or a missing permission is said once.
            why = exc.text or str(exc)
            if isinstance(exc, discord.Forbidden):  # since 12 January 2026 Manage Messages alone no longer pins
                why = "the bot needs Pin Messages and Read Message History in that channel"
            log.warning("could not pin the %s in channel %s: %s", NAMES[kind], message.channel.id, why)

    async def _retire(self, old: Display) -> None:
        """Take an old display message down (deleting also unpins it); unpin at least if deleting fails."""
        if old.message_id is None:
            return
        message = self.bot.get_partial_messageable(old.channel_id).get_partial_message(old.message_id)
        try:
            await message.delete()
        except discord.NotFound:
            return
        except discord.HTTPException as exc:
            log.info("old %s %s not deleted (%s); unpinning it", NAMES[old.kind], old.message_id, exc.text or exc)
            try:
                await message.unpin(reason="queue bot: replaced")
            except discord.HTTPException as unpin_exc:
                log.info("old %s %s not unpinned either: %s", NAMES[old.kind], old.message_id, unpin_exc)

    async def _block(self, display: Display, why: str) -> None:
        key = (display.guild_id, display.kind)
        if key in self._blocked:
            return
        self._blocked.add(key)
        self.stats.blocked += 1
        text = (
            f"⚠️ I can't update the {NAMES[display.kind]} in <#{display.channel_id}>: {why}. "
            "Fix the channel permissions (View Channel, Send Messages, Embed Links, Read Message History, "
            "Pin Messages), then run the setup command again."
        )
        log.warning(
            "guild %s: %s display in channel %s stopped: %s", key[0], display.kind.value, display.channel_id, why
        )
        settings = await self.bot.db.get_settings(display.guild_id)
        # Not when the debug channel is the blocked display's own: that post would fail the same way.
        if settings.debug_channel_id != display.channel_id:
            await self.bot.notifier.debug(display.guild_id, text)

    def is_blocked(self, guild_id: int, kind: DisplayKind) -> bool:
        """True while a display is left alone after a permission failure."""
        return (guild_id, kind) in self._blocked

    # ------------------------------------------------------------------ answering a click on a display

    async def answer_in_place(self, interaction: discord.Interaction[MusicQueueBot], kind: DisplayKind) -> bool:
        """Answer a click on display ``kind`` by redrawing that message in the interaction response.

        Call inside ``holding(guild, kind)``. One request on the interaction endpoint (type 7) replaces
        the channel PATCH the coalescer would otherwise send, and the stored hash makes that coalesced
        refresh a no-op. Returns False (nothing sent) when the click was not on the stored display,
        e.g. a forged id on another message or an old replaced message.
        """
        guild_id = guild_id_of(interaction)
        display = await self.bot.db.get_display(guild_id, kind)
        message = interaction.message
        if display is None or message is None or display.message_id != message.id:
            return False
        embed, view = await self._render(guild_id, kind)
        digest = payload_hash(embed, view)
        await update(interaction, embed=embed, view=view)
        await self.bot.db.save_display(replace(display, content_hash=digest))
        return True

    # ------------------------------------------------------------------ per-guild window, the portal (issue 14)

    def set_window(self, guild_id: int, seconds: float | None) -> None:
        """A guild's own refresh window (``/settings``); None goes back to the bot's default."""
        if seconds is None:
            self._guild_windows.pop(guild_id, None)
        else:
            self._guild_windows[guild_id] = seconds

    def window_of(self, guild_id: int) -> float:
        """The refresh window in use for a guild."""
        return self._guild_windows.get(guild_id, self.window)

    async def ensure_portal(self, guild_id: int, channel: discord.abc.Snowflake) -> int:
        """Post and pin the submission portal once per guild, or adopt the one already in that channel.

        Like ``ensure``: the stored message is reused (and re-pinned) while it exists in that channel, a
        move posts the new one first and then takes the old one down, so repeated setups never duplicate it.
        """
        from ui.submission_ui import PortalView, portal_embed  # the portal's own module builds it

        key = (guild_id, DisplayKind.PORTAL)
        async with self._lock(key):
            existing = await self.bot.db.get_display(guild_id, DisplayKind.PORTAL)
            if existing is not None and existing.message_id is not None and existing.channel_id == channel.id:
                try:
                    message = await self.bot.get_partial_messageable(channel.id).fetch_message(existing.message_id)
                except discord.NotFound:
                    message = None
                if message is not None:
                    if not message.pinned:
                        await self._pin(message, DisplayKind.PORTAL)
                    return message.id
            sent = await self.bot.get_partial_messageable(channel.id).send(
                embed=portal_embed(), view=PortalView(), allowed_mentions=NO_MENTIONS
            )
            self.stats.posted += 1
            await self.bot.db.save_display(Display(guild_id, DisplayKind.PORTAL, channel.id, sent.id, None))
            await self._pin(sent, DisplayKind.PORTAL)
            if existing is not None and existing.message_id is not None and existing.channel_id != channel.id:
                await self._retire(existing)
            return sent.id

    # ------------------------------------------------------------------ pin notices

    async def clear_pin_notice(self, message: discord.Message) -> bool:
        """Delete the "pinned a message" notice one of the bot's own pins left; True when it was removed.

        Pinning a display every time it is posted or replaced would otherwise leave a trail of system
        notices in the channel. Where Discord refuses (permissions), the notice stays and that is all.
        """
        me = self.bot.user
        if message.type is not discord.MessageType.pins_add or me is None or message.author.id != me.id:
            return False
        try:
            await message.delete()
        except discord.NotFound:
            return False
        except discord.HTTPException as exc:
            log.info("could not remove a pin notice in channel %s: %s", message.channel.id, exc.text or exc)
            return False
        return True

    # ------------------------------------------------------------------ shutdown

    async def close(self) -> None:
        """Stop listening and cancel pending refreshes (idempotent)."""
        self._closed = True
        await self._feed.close()
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._startup
        await self.coalescer.close()

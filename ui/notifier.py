"""The notifier: every outgoing message that is not an answer to an interaction goes through here.

DMs to members, posts to a guild's configured channels (now playing, bookmarks, recaps, the debug
channel), the TikTok status message and the warnings digest. Delivery failures are handled in one place:
Forbidden (closed DMs, missing permissions), NotFound (a deleted channel or user) and any other
HTTPException are logged once, with what was being sent and where, and never raised into the caller's
flow (a song still plays when its announcement can't be posted). Everything is sent with mentions
disabled, because most of it carries user text (song titles, names).

The notifier also subscribes to the change feed for what members and admins are told about without
asking: a gift that promoted a song (DM plus a debug note), a verified handle (DM), a live connected
(green embed) or dropped (orange embed), and the recap of every ended live (metrics channel). Feed
subscribers must not block, so each of those runs as a task of the notifier's ``Subscription``, awaited
on ``close``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, TypedDict

import discord

from database import Database
from errors import NotFoundError
from services.analytics import play_report, summarize
from services.charts import session_chart
from services.feed import ChangeFeed, GiftPromoted, HandleVerified, LiveConnected, LiveDropped, LiveEnded, Subscription
from ui import limits, tiktok_ui
from ui.metrics_ui import recap_messages
from ui.respond import NO_MENTIONS

if TYPE_CHECKING:
    from services.queue import QueueService

log = logging.getLogger(__name__)


class _Post(TypedDict, total=False):
    """The keyword arguments of one channel post (one overload of ``Messageable.send``)."""

    content: str
    embed: discord.Embed
    file: discord.File
    allowed_mentions: discord.AllowedMentions


RECAPS_KEPT = 32
NO_RECAP_CHANNEL = "📊 No recap channel is set, so the recap was not posted (set one with /setup-post-live-metrics)."


class Notifier:
    """Sends DMs and channel posts for the whole bot; built once by ``bot.py``, closed last."""

    def __init__(self, client: discord.Client, db: Database, feed: ChangeFeed, queue: QueueService) -> None:
        self.client = client
        self.db = db
        self.feed = feed
        self.queue = queue
        self._feed = Subscription(feed, "notify")
        self.failures = 0
        # Where each ended session's recap went, in words (for /tiktok disconnect and the status message).
        self._recaps: dict[int, asyncio.Future[str]] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe to the feed events that someone is told about (idempotent)."""
        if self._feed.active:
            return
        self._feed.spawn_on(GiftPromoted, self._gift_promoted)
        self._feed.spawn_on(HandleVerified, self._handle_verified)
        self._feed.spawn_on(LiveConnected, self._live_connected)
        self._feed.spawn_on(LiveDropped, self._live_dropped)
        self._feed.spawn_on(LiveEnded, self._live_ended)

    async def close(self) -> None:
        """Stop listening and wait for what is being sent."""
        await self._feed.close()

    # ------------------------------------------------------------------ sending

    def _failed(self, what: str, where: str, exc: discord.HTTPException, *, level: int) -> None:
        self.failures += 1
        reason = "no permission" if isinstance(exc, discord.Forbidden) else "gone" if isinstance(
            exc, discord.NotFound
        ) else f"HTTP {exc.status}"  # fmt: skip
        log.log(level, "could not send %s to %s (%s): %s", what, where, reason, exc.text or exc)

    async def dm(self, user_id: int, text: str, *, what: str = "a DM") -> bool:
        """DM a user; closed DMs are normal (logged at INFO), never an error for the caller."""
        try:
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(limits.clip(text, limits.CONTENT), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            self._failed(what, f"user {user_id}", exc, level=logging.INFO)
            return False
        return True

    async def dm_if_opted_in(self, guild_id: int, user_id: int, text: str, *, what: str = "a DM") -> bool:
        """DM a member who turned DMs about their songs on (``/notify``)."""
        if not await self.db.get_dm_notify(guild_id, user_id):
            return False
        return await self.dm(user_id, text, what=what)

    async def post(
        self,
        channel_id: int,
        content: str | None = None,
        *,
        embed: discord.Embed | None = None,
        file: discord.File | None = None,
        what: str = "a message",
        level: int = logging.WARNING,
    ) -> discord.Message | None:
        """Post to a channel; returns the message, or None (logged once) when Discord refused it."""
        kwargs: _Post = {"allowed_mentions": NO_MENTIONS}
        if content is not None:
            kwargs["content"] = limits.clip(content, limits.CONTENT)
        if embed is not None:
            kwargs["embed"] = embed
        if file is not None:
            kwargs["file"] = file
        try:
            return await self.client.get_partial_messageable(channel_id).send(**kwargs)
        except discord.HTTPException as exc:
            self._failed(what, f"channel {channel_id}", exc, level=level)
            return None

    async def post_to_setting(
        self,
        guild_id: int,
        key: str,
        content: str | None = None,
        *,
        embed: discord.Embed | None = None,
        file: discord.File | None = None,
        what: str = "a message",
    ) -> discord.Message | None:
        """Post to the channel a guild configured under ``key`` (like ``now_playing_channel_id``), if any."""
        settings = await self.db.get_settings(guild_id)
        channel_id = getattr(settings, key)
        if channel_id is None:
            log.info("guild %s has no %s; %s not posted", guild_id, key, what)
            return None
        # A failure to reach the debug channel is logged below WARNING: a warning would be queued for it.
        level = logging.INFO if key == "debug_channel_id" else logging.WARNING
        return await self.post(channel_id, content, embed=embed, file=file, what=what, level=level)

    async def debug(self, guild_id: int, content: str | None = None, *, embed: discord.Embed | None = None) -> None:
        """A note for the admins in the guild's debug channel (nothing when none is set)."""
        await self.post_to_setting(guild_id, "debug_channel_id", content, embed=embed, what="a debug note")

    async def edit(self, channel_id: int, message_id: int, *, embed: discord.Embed, what: str = "an edit") -> bool:
        """Edit a message the bot posted; False when it is gone or can't be edited (logged once)."""
        message = self.client.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(embed=embed, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            self._failed(what, f"message {message_id} in channel {channel_id}", exc, level=logging.INFO)
            return False
        return True

    # ------------------------------------------------------------------ what the feed asks for

    async def _gift_promoted(self, event: GiftPromoted) -> None:
        if not event.user_id:
            return
        try:
            sub = await self.queue.get(event.guild_id, event.public_id)
        except NotFoundError:
            return
        await self.dm(
            event.user_id,
            f"🎁 Thanks for the gifts! {event.coins} coins this live moved {sub.display_id} "
            f"({sub.artist} – {sub.title}) into **{event.line}**.",
            what="a gift reward DM",
        )
        await self.debug(
            event.guild_id,
            f"🎁 Gift reward: <@{event.user_id}> reached {event.coins} coins → {sub.display_id} moved to {event.line}.",
        )

    async def _handle_verified(self, event: HandleVerified) -> None:
        await self.dm(
            event.user_id,
            f"✅ @{event.handle} is now proven as yours: its points count for your Free songs.",
            what="a verification DM",
        )
        if event.previous_owner is not None and event.previous_owner != event.user_id:
            await self.dm(
                event.previous_owner,
                f"ℹ️ @{event.handle} was proven by another member with a code typed in the live chat, so it is "
                "now linked to them. If that is a mistake, ask an admin.",
                what="a handle takeover DM",
            )

    async def _live_connected(self, event: LiveConnected) -> None:
        if event.resumed:
            await self.debug(
                event.guild_id,
                f"🟢 Back on @{limits.clip(event.host, 40)}'s TikTok LIVE: the same session (#{event.session_id}) "
                "goes on.",
            )
            return
        await self.debug(event.guild_id, embed=tiktok_ui.connected_embed(event.host, event.room_id, event.session_id))

    async def _live_dropped(self, event: LiveDropped) -> None:
        embed = tiktok_ui.disconnected_embed(event.host, event.duration, event.session_id, event.last_error)
        if event.grace_seconds > 0:
            embed.description = (
                f"Reconnecting… If the live is back within {tiktok_ui.grace_words(event.grace_seconds)}, it stays one "
                "session with one recap."
            )
        await self.debug(event.guild_id, embed=embed)

    async def _live_ended(self, event: LiveEnded) -> None:
        note = ""
        try:
            summary = await summarize(self.db, event.session_id)
            if summary is None:
                return
            settings = await self.db.get_settings(event.guild_id)
            channel_id = settings.metrics_channel_id
            if channel_id is None:
                log.info("guild %s has no metrics channel; recap of session %s not posted", event.guild_id,
                         event.session_id)  # fmt: skip
                note = NO_RECAP_CHANNEL
                return
            chart: bytes | None = None
            try:
                chart = await session_chart(self.db, summary.session)
            except Exception:  # the recap goes out without its picture rather than not at all
                log.exception("rendering the chart of session %s failed", event.session_id)
            report = await play_report(self.db, summary.session)
            posted: discord.Message | None = None
            for embeds, files in recap_messages(summary, report, chart, reason=event.reason):
                message = await self.post_many(
                    channel_id, embeds, files, what=f"the recap of live session {event.session_id}"
                )
                posted = posted or message
            if posted is not None:
                note = f"📊 The recap is in <#{posted.channel.id}>: {posted.jump_url}"
            else:
                note = f"📊 The recap could not be posted in <#{channel_id}>; check my permissions there."
        finally:
            future = self._recap(event.session_id)
            if not future.done():
                future.set_result(note)

    async def post_many(
        self, channel_id: int, embeds: list[discord.Embed], files: list[discord.File], *, what: str
    ) -> discord.Message | None:
        """One message with several embeds and files (a recap); None (logged once) when Discord refused it."""
        try:
            return await self.client.get_partial_messageable(channel_id).send(
                embeds=embeds, files=files, allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException as exc:
            self._failed(what, f"channel {channel_id}", exc, level=logging.WARNING)
            return None

    def _recap(self, session_id: int) -> asyncio.Future[str]:
        future = self._recaps.get(session_id)
        if future is None:
            future = self._recaps[session_id] = asyncio.get_running_loop().create_future()
            while len(self._recaps) > RECAPS_KEPT:  # a handful of lives a day: keep the latest few
                self._recaps.pop(next(iter(self._recaps)))
        return future

    async def recap_note(self, session_id: int, timeout: float = 10.0) -> str | None:
        """Where the recap of an ended session went, in words ("" when it had none); None if not known in time."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._recap(session_id)), timeout)
        except TimeoutError:
            return None

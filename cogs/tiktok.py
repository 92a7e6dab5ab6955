"""The TikTok cog: ``/tiktok connect|status|disconnect|simulate`` and the live connection's Discord side.

The connection itself is a service (``services.tiktok.live.LiveConnectionManager``, one per guild, run in a
pool of processes by ``services.tiktok.worker.LiveWorkerPool`` so that decoding a busy live never delays an
interaction); this cog wires its callbacks to the engagement writer, the session records and the Discord
messages: a status message in the channel where the connect was asked (edited as the state changes, because
interaction tokens expire), the green and orange embeds in the debug channel, and the recap in the metrics
channel.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from errors import NotConnectedError
from models import EngagementEvent, EventKind
from services import validation
from services.live_sessions import LiveSessionService
from services.refresh import Coalescer
from ui import tiktok_ui
from ui.checks import admin_only
from ui.metrics_ui import metrics_embed, metrics_file
from ui.respond import NO_MENTIONS, defer, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)

SIMULATE_KINDS = {
    "like": EventKind.LIKE,
    "comment": EventKind.COMMENT,
    "share": EventKind.SHARE,
    "follow": EventKind.FOLLOW,
    "subscribe": EventKind.SUBSCRIBE,
    "gift": EventKind.GIFT,
}


class _GuildLive:
    """What the cog keeps per guild: the manager and where its status message is."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.status_channel_id: int | None = None
        self.status_message_id: int | None = None


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class TikTok(commands.GroupCog, group_name="tiktok", group_description="Connect the bot to your TikTok LIVE."):
    """TikTok LIVE connection commands (admins)."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        self.sessions = LiveSessionService(bot.db, bot.engagement)
        bot.sessions = self.sessions
        self.lives: dict[int, _GuildLive] = {}
        self.status_edits: Coalescer[int] = Coalescer(self._edit_status, 1.0)
        bot.engagement.on_reward = self._on_reward
        bot.engagement.on_verified = self._on_verified
        super().__init__()

    async def cog_unload(self) -> None:
        """Disconnect every live (user-initiated: no alert) and close the sessions with their recaps."""
        for guild_id, live in list(self.lives.items()):
            try:
                await live.manager.close()  # disconnects, then stops the connection's process
            except Exception:
                log.exception("disconnecting the live of guild %s failed", guild_id)
            await self._finish_session(guild_id)
        for guild_id in self.sessions.open_guilds():  # simulation sessions have no connection to end
            await self._finish_session(guild_id)
        await self.status_edits.close()

    # ------------------------------------------------------------------ manager wiring

    def _manager(self, guild_id: int) -> _GuildLive:
        live = self.lives.get(guild_id)
        if live is None:
            manager = self.bot.tiktok.connection(guild_id, self._listener(guild_id))
            live = self.lives[guild_id] = _GuildLive(manager)
        return live

    def _listener(self, guild_id: int) -> Any:
        cog = self

        class Listener:
            def on_events(self, events: list[EngagementEvent]) -> None:
                cog.sessions.record(guild_id, events)

            def on_state(self, snapshot: Any) -> None:
                cog.status_edits.request(guild_id)

            async def on_connected(self, info: Any) -> None:
                await cog._on_connected(guild_id, info)

            async def on_disconnected(self, info: Any, unexpected: bool, duration: float) -> None:
                if unexpected:
                    await cog._on_unexpected_disconnect(guild_id, info, duration)

            async def on_session_end(self, info: Any) -> None:
                await cog._finish_session(guild_id)

        return Listener()

    async def _on_connected(self, guild_id: int, info: Any) -> None:
        session = await self.sessions.start(guild_id, info.username, getattr(info, "room_id", None))
        await self._post_debug(
            guild_id, tiktok_ui.connected_embed(info.username, getattr(info, "room_id", None), session.id)
        )

    async def _on_unexpected_disconnect(self, guild_id: int, info: Any, duration: float) -> None:
        session = self.sessions.current(guild_id)
        embed = tiktok_ui.disconnected_embed(
            info.username, duration, session.id if session else None, getattr(info, "last_error", None)
        )
        await self._post_debug(guild_id, embed)

    async def _finish_session(self, guild_id: int) -> None:
        summary = await self.sessions.end(guild_id)
        if summary is None:
            return
        settings = await self.bot.db.get_settings(guild_id)
        if settings.metrics_channel_id is None:
            log.info("no metrics channel set in guild %s; recap of session %s not posted", guild_id, summary.session.id)
            return
        try:
            await self.bot.get_partial_messageable(settings.metrics_channel_id).send(
                embed=metrics_embed(summary), file=metrics_file(summary), allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException:
            log.exception("posting the live recap to channel %s failed", settings.metrics_channel_id)

    async def _post_debug(self, guild_id: int, embed: discord.Embed) -> None:
        settings = await self.bot.db.get_settings(guild_id)
        if settings.debug_channel_id is None:
            return
        try:
            await self.bot.get_partial_messageable(settings.debug_channel_id).send(
                embed=embed, allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException:
            log.exception("posting to the debug channel %s failed", settings.debug_channel_id)

    async def _edit_status(self, guild_id: int) -> None:
        live = self.lives.get(guild_id)
        if live is None or live.status_channel_id is None or live.status_message_id is None:
            return
        embed = self._status_embed(live)
        message = self.bot.get_partial_messageable(live.status_channel_id).get_partial_message(live.status_message_id)
        try:
            await message.edit(embed=embed, allowed_mentions=NO_MENTIONS)
        except discord.NotFound:
            live.status_message_id = None  # someone deleted it; the next /tiktok connect posts a new one

    def _status_embed(self, live: _GuildLive | None) -> discord.Embed:
        if live is None:
            return tiktok_ui.status_embed(state="idle", username=None)
        s = live.manager.status()
        session = self.sessions.current(live.manager.guild_id)
        return tiktok_ui.status_embed(
            state=str(getattr(s.state, "value", s.state)),
            username=s.username,
            room_id=s.room_id,
            session_id=session.id if session else None,
            connected_since=s.connected_since,
            attempts=s.attempts,
            persistent=s.persistent,
            started_at=s.started_at,
            last_error=s.last_error,
        )

    async def _on_reward(self, guild_id: int, user_id: int, submission: Any, line: Any, coins: int) -> None:
        text = (
            f"🎁 Thanks for the gifts! {coins} coins this live moved {submission.display_id} "
            f"({submission.artist} – {submission.title}) into **{line.value}**."
        )
        user = self.bot.get_user(user_id)
        try:
            if user is None:
                user = await self.bot.fetch_user(user_id)
            await user.send(text[:2000], allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not DM user %s about a gift reward: %s", user_id, exc)
        settings = await self.bot.db.get_settings(guild_id)
        if settings.debug_channel_id:
            note = (
                f"🎁 Gift reward: <@{user_id}> reached {coins} coins → {submission.display_id} moved to {line.value}."
            )
            try:
                await self.bot.get_partial_messageable(settings.debug_channel_id).send(
                    note, allowed_mentions=NO_MENTIONS
                )
            except discord.HTTPException:
                log.exception("posting the gift reward note failed")

    async def _on_verified(self, guild_id: int, user_id: int, handle: str) -> None:
        try:
            user = self.bot.get_user(user_id) or await self.bot.fetch_user(user_id)
            await user.send(f"✅ @{handle} is now verified as yours.", allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not DM user %s about a verified handle: %s", user_id, exc)

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="connect")
    @app_commands.describe(
        username="The TikTok handle of the streamer, like @yourname",
        persistent="Keep retrying while the host is offline, and reconnect after drops (default: yes)",
    )
    @admin_only()
    async def connect(self, interaction: discord.Interaction, username: str, persistent: bool = True) -> None:
        """Connect to a TikTok LIVE (waits for the host to go live when persistent)."""
        handle = validation.normalize_handle(username)
        await defer(interaction)
        guild_id = interaction.guild_id or 0
        live = self._manager(guild_id)
        await live.manager.connect(handle, persistent=persistent)
        channel = interaction.channel
        if channel is not None and isinstance(channel, discord.abc.Messageable):
            try:
                message = await channel.send(embed=self._status_embed(live), allowed_mentions=NO_MENTIONS)
                live.status_channel_id, live.status_message_id = message.channel.id, message.id
            except discord.HTTPException as exc:
                log.info("could not post the TikTok status message: %s", exc)
        await respond(interaction, f"Connecting to @{handle}. The status message in this channel follows along.")

    @app_commands.command(name="status")
    @admin_only()
    async def status(self, interaction: discord.Interaction) -> None:
        """Show the TikTok LIVE connection: active, in progress, or not connected."""
        await respond(interaction, embed=self._status_embed(self.lives.get(interaction.guild_id or 0)))

    @app_commands.command(name="disconnect")
    @admin_only()
    async def disconnect(self, interaction: discord.Interaction) -> None:
        """End the TikTok LIVE connection or cancel the attempts (no alert is sent)."""
        guild_id = interaction.guild_id or 0
        live = self.lives.get(guild_id)
        if live is None:
            if self.sessions.current(guild_id) is None:
                raise NotConnectedError("There is no TikTok LIVE connection to end.")
            await defer(interaction)
            await self._finish_session(guild_id)  # a simulation session: close it and post its recap
            await respond(interaction, "Ended the simulation session.")
            return
        await defer(interaction)
        await live.manager.disconnect()
        await respond(interaction, "Disconnected from TikTok LIVE.")

    @app_commands.command(name="simulate")
    @app_commands.describe(
        kind="What to simulate",
        handle="The TikTok handle that engages",
        amount="Likes in the batch, or coins of the gift (default 1)",
    )
    @app_commands.choices(kind=[app_commands.Choice(name=k, value=k) for k in SIMULATE_KINDS])
    @admin_only()
    async def simulate(
        self, interaction: discord.Interaction, kind: str, handle: str, amount: app_commands.Range[int, 1, 100_000] = 1
    ) -> None:
        """Simulate engagement to test your setup without going live (marked as simulated in analytics)."""
        normalized = validation.normalize_handle(handle)
        guild_id = interaction.guild_id or 0
        if self.sessions.current(guild_id) is None:
            await self.sessions.start(guild_id, "simulation", None, simulated=True)
        event_kind = SIMULATE_KINDS[kind]
        event = EngagementEvent(
            kind=event_kind,
            handle=normalized,
            at=time.time(),
            count=amount if event_kind is EventKind.LIKE else 1,
            coins=amount if event_kind is EventKind.GIFT else 0,
            text="(simulated comment)" if event_kind is EventKind.COMMENT else None,
            simulated=True,
        )
        self.sessions.record(guild_id, [event])
        await respond(interaction, f"Simulated a {kind} from @{normalized}; points update within a second.")


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(TikTok(bot))

"""The TikTok cog: ``/tiktok connect|status|disconnect|simulate``.

The connections belong to the bot (``bot.lives``, a ``services.tiktok.connections.LiveConnections`` built
in ``bot.py``), so reloading this cog never drops a live. What members and admins are told about a live
(the green and orange embeds, the recap, gift rewards, verified handles) is the notifier's, from the
change feed; the status message that follows a connection is ``bot.live_status``'s.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import NotConnectedError, ValidationError
from models import EngagementEvent, EventKind, LiveSession
from services import validation
from services.analytics import fit_upload, history_csv
from services.tiktok.live import ConnectionState
from ui.checks import admin_only
from ui.respond import defer, guild_id_of, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot

SIMULATE_KINDS = {
    "like": EventKind.LIKE,
    "comment": EventKind.COMMENT,
    "share": EventKind.SHARE,
    "follow": EventKind.FOLLOW,
    "subscribe": EventKind.SUBSCRIBE,
    "gift": EventKind.GIFT,
}


# On a GroupCog these apply to the /tiktok group (Discord sets visibility per top-level command); every
# subcommand still checks the admin role at runtime.
@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class TikTok(commands.GroupCog, group_name="tiktok", group_description="Connect the bot to your TikTok LIVE."):
    """TikTok LIVE connection commands (admins)."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        super().__init__()

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="connect")
    @app_commands.describe(
        username="The TikTok handle of the streamer, like @yourname",
        persistent="Keep retrying while the host is offline, and reconnect after drops (default: yes)",
    )
    @admin_only()
    async def connect(
        self, interaction: discord.Interaction[MusicQueueBot], username: str, persistent: bool = True
    ) -> None:
        """Connect to a TikTok LIVE (waits for the host to go live when persistent)."""
        handle = validation.normalize_handle(username)
        await defer(interaction)
        guild_id = guild_id_of(interaction)
        await self.bot.lives.connect(guild_id, handle, persistent=persistent)
        if interaction.channel_id is not None:
            # A channel message, edited as the state changes: the interaction token expires in 15 minutes.
            await self.bot.live_status.post(guild_id, interaction.channel_id)
        await respond(interaction, f"Connecting to @{handle}. The status message in this channel follows along.")

    @app_commands.command(name="status")
    @admin_only()
    async def status(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Show the TikTok LIVE connection: active, in progress, or not connected."""
        await defer(interaction)  # the live's totals are read from the database
        await respond(interaction, embed=await self.bot.live_status.status(guild_id_of(interaction)))

    @app_commands.command(name="disconnect")
    @admin_only()
    async def disconnect(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """End the TikTok LIVE connection or cancel the attempts, and any simulation (no alert is sent)."""
        guild_id = guild_id_of(interaction)
        connection = self.bot.lives.get(guild_id)
        live = connection is not None and connection.status().state is not ConnectionState.IDLE
        simulating = self.bot.sessions.simulation(guild_id) is not None
        if not live and not simulating:
            raise NotConnectedError("There is no TikTok LIVE connection to end.")
        await defer(interaction)
        done = []
        if connection is not None and live:
            session = self.bot.sessions.current(guild_id)
            await connection.disconnect()  # returns once the connected period's session has ended
            done.append("Disconnected from TikTok LIVE.\n" + await self._recap_note(session))
        simulation = self.bot.sessions.simulation(guild_id)
        if simulation is not None:
            await self.bot.sessions.end_simulation(guild_id)  # its recap follows from LiveEnded
            note = await self._recap_note(simulation)
            done.append("Ended the simulation session (its recap is marked as simulated).\n" + note)
        await respond(interaction, "\n".join(done))

    async def _recap_note(self, session: LiveSession | None) -> str:
        """Where the recap of the live that just ended went, for the admin who ended it."""
        if session is None:
            return "No live was connected, so there is no recap."
        note = await self.bot.notifier.recap_note(session.id)
        return note or "📊 The recap follows in the recap channel in a moment."

    @app_commands.command(name="simulate")
    @app_commands.describe(
        kind="What to simulate",
        handle="The TikTok handle that engages",
        amount="Likes in the batch, or coins of the gift (default 1)",
        promote="Let this simulated gift promote a song like a real one (default: no)",
    )
    @app_commands.choices(kind=[app_commands.Choice(name=k, value=k) for k in SIMULATE_KINDS])
    @admin_only()
    async def simulate(
        self,
        interaction: discord.Interaction[MusicQueueBot],
        kind: str,
        handle: str,
        amount: app_commands.Range[int, 1, 100_000] = 1,
        promote: bool = False,
    ) -> None:
        """Simulate engagement to test your setup without going live (marked as simulated in analytics)."""
        normalized = validation.normalize_handle(handle)
        guild_id = guild_id_of(interaction)
        await defer(interaction)
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
        # Its own session, never the real live's (which may be running): kept apart in every recap.
        session = await self.bot.sessions.simulate(guild_id, [event], promote=promote)
        text = f"Simulated a {kind} from @{normalized} in simulation session {session.id}; points are updated."
        if event_kind is EventKind.GIFT and not promote:
            text += " It promotes no song (add `promote: True` to test gift rewards)."
        await respond(interaction, text + " /tiktok disconnect ends the simulation with its recap.")


EXPORT_PERIODS = {"last 24 hours": 1, "last 7 days": 7, "last 30 days": 30, "all time": 0}


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Export(commands.GroupCog, group_name="export", group_description="Download the server's data as CSV."):
    """Data exports (admins)."""

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="history")
    @app_commands.describe(period="Which plays to include (default: last 30 days)")
    @app_commands.choices(period=[app_commands.Choice(name=k, value=k) for k in EXPORT_PERIODS])
    @admin_only()
    async def history(self, interaction: discord.Interaction[MusicQueueBot], period: str = "last 30 days") -> None:
        """Download the play history as CSV (zipped when it is bigger than this server's upload limit)."""
        days = EXPORT_PERIODS.get(period)
        if days is None:
            raise ValidationError("Pick a period from the list.")
        await defer(interaction)
        now = time.time()
        since = now - days * 86_400 if days else 0.0
        plays = await self.bot.db.played_between(guild_id_of(interaction), since, now)
        if not plays:
            await respond(interaction, f"Nothing was played in the {period}.")
            return
        stamp = time.strftime("%Y%m%d", time.gmtime(now))
        # The limit of this server, as Discord tells it in the interaction (boosts raise it).
        fitted = fit_upload(history_csv(plays), f"history-{stamp}.csv", interaction.filesize_limit)
        if fitted is None:
            await respond(interaction, "The history is too big to upload even zipped; pick a shorter period.")
            return
        data, filename = fitted
        await respond(interaction, f"📄 {len(plays)} plays ({period}).", file=discord.File(io.BytesIO(data), filename))


async def setup(bot: MusicQueueBot) -> None:
    """Add the cogs."""
    await bot.add_cog(TikTok(bot))
    await bot.add_cog(Export(bot))

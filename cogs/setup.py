"""The setup cog: ``/setup run``, ``/setup check``, ``/settings``, the welcome and the start-up check (issue 14).

The plan (which channels, which overwrites, what counts as a problem) lives in ``services.setup`` and the
settings registry in ``services.settings``; this cog reads the guild from discord.py's cache, asks Discord
for each missing piece one step at a time, and reports every step. A step Discord refuses is recorded with
its reason and the run goes on, so one missing permission never leaves the rest undone. Everything it
creates is found again on the next run (stored ids first, then the names it uses), so a second run
changes nothing and a later run repairs only what is missing.

``/setup`` is a command group because Discord does not let a command with subcommands run by itself:
``/setup run`` sets up, ``/setup check`` is the permission doctor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from models import DisplayKind, GuildSettings
from services import permissions as perms
from services import settings as registry
from services.setup import (
    CATEGORY_NAME,
    LAYOUT,
    REVIEWER_ROLE_NAME,
    Access,
    ChannelPlan,
    ChannelState,
    Checklist,
    Environment,
    Mark,
    Report,
    Target,
    diagnose,
    grantable,
    merged_overwrite,
    names,
    overwrite_needs,
)
from ui import limits, setup_ui
from ui.checks import admin_only
from ui.displays import DisplayPermissionError
from ui.respond import defer, guild_id_of, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

log = logging.getLogger(__name__)

REASON = "queue bot /setup"
_DISPLAYS = (
    ("live_queue_channel_id", DisplayKind.LIVE_QUEUE, "live queue"),
    ("reviewer_channel_id", DisplayKind.REVIEWER_MAIN, "reviewer queue panel"),
    ("reviewer_channel_id", DisplayKind.REVIEWER_PENDING, "pending skips panel"),
    ("submission_channel_id", DisplayKind.PORTAL, "submission portal"),
)


ACCESS_TEXT = {
    Access.OPEN: "open for commands",
    Access.READ_ONLY: "read-only for members",
    Access.PRIVATE: "reviewers and admins only",
}


def refusal(exc: discord.HTTPException, need: str) -> str:
    """Why Discord refused a step, in one line, with the permission it needed when that was the reason."""
    text = exc.text or exc.__class__.__name__
    if isinstance(exc, discord.Forbidden):
        return f"Discord refused ({exc.status} {text}): I need {need}"
    return f"Discord refused ({exc.status} {text})"


class Setup(commands.Cog):
    """One-command setup, the permission doctor, the settings panel and the welcome."""

    setup_group = app_commands.Group(
        name="setup",
        description="Set the bot up in this server, or check its permissions.",
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: MusicQueueBot) -> None:
        self.bot = bot
        self._startup_checked = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._views: list[discord.ui.View] = []
        # One run per guild at a time: two admins pressing Set up together must not create two of anything.
        self._runs: dict[int, asyncio.Lock] = {}

    async def cog_load(self) -> None:
        """Register the settings panel's persistent select (before connecting, so old panels keep working)."""
        for view_class in setup_ui.PERSISTENT_VIEWS:
            view = view_class()
            self.bot.add_view(view)
            self._views.append(view)

    async def cog_unload(self) -> None:
        """Stop the views and any start-up check still running."""
        for view in self._views:
            view.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ /setup run

    @setup_group.command(name="run")
    @admin_only()
    async def setup_run(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Create (or adopt) the channels, the reviewer role and the pinned displays; run again to repair."""
        settings = await self.bot.db.get_settings(guild_id_of(interaction))
        wizard = setup_ui.SetupWizard(interaction.user.id, self.run_from_wizard)
        await respond(interaction, embed=wizard.embed(settings, interaction.guild), view=wizard)
        wizard.message = await interaction.original_response()

    async def run_from_wizard(
        self, interaction: discord.Interaction[MusicQueueBot], picks: dict[str, int], role_id: int | None
    ) -> None:
        """The wizard's Set up button: acknowledge at once, do every step, answer with the checklist."""
        await defer(interaction, thinking=False)
        guild = interaction.guild
        if guild is None:
            return
        checklist = await self.run_setup(guild, picks, role_id)
        await update(interaction, content="", embed=setup_ui.checklist_embed(checklist), view=discord.ui.View())

    async def run_setup(self, guild: discord.Guild, picks: dict[str, int], role_id: int | None) -> Checklist:
        """Every step of a setup run; Discord refusing one step never stops the others."""
        async with self._runs.setdefault(guild.id, asyncio.Lock()):
            return await self._run_setup(guild, picks, role_id)

    async def _run_setup(self, guild: discord.Guild, picks: dict[str, int], role_id: int | None) -> Checklist:
        checklist = Checklist()
        settings = await self.bot.db.get_settings(guild.id)
        role = await self._reviewer_role(guild, settings, role_id, checklist)
        channels = await self._channels(guild, settings, picks, checklist)
        admin_role = guild.get_role(settings.admin_role_id) if settings.admin_role_id else None
        for plan in LAYOUT:
            channel = channels.get(plan.key)
            if channel is not None:
                await self._overwrites(guild, channel, plan, role, admin_role, checklist)
        await self._displays(guild, channels, checklist)
        log.info(
            "guild %s: /setup run: %d done, %d kept, %d failed",
            guild.id,
            checklist.count(Mark.DONE),
            checklist.count(Mark.KEPT),
            checklist.count(Mark.FAILED),
        )
        return checklist

    async def _reviewer_role(
        self, guild: discord.Guild, settings: GuildSettings, picked: int | None, checklist: Checklist
    ) -> discord.Role | None:
        if picked is not None and (role := guild.get_role(picked)) is not None:
            if role.id != settings.reviewer_role_id:
                await self.bot.db.update_settings(guild.id, reviewer_role_id=role.id)
                checklist.add(Mark.DONE, f"Reviewer role: {role.mention} (picked)")
            else:
                checklist.add(Mark.KEPT, f"Reviewer role: {role.mention}")
            return role
        current = guild.get_role(settings.reviewer_role_id) if settings.reviewer_role_id else None
        if current is not None:
            checklist.add(Mark.KEPT, f"Reviewer role: {current.mention}")
            return current
        found = discord.utils.get(guild.roles, name=REVIEWER_ROLE_NAME)
        if found is not None:
            await self.bot.db.update_settings(guild.id, reviewer_role_id=found.id)
            checklist.add(Mark.DONE, f"Reviewer role: adopted {found.mention}")
            return found
        try:
            role = await guild.create_role(name=REVIEWER_ROLE_NAME, mentionable=True, reason=REASON)
        except discord.HTTPException as exc:
            why = refusal(exc, "Manage Roles")
            checklist.add(Mark.FAILED, f"Reviewer role: couldn't create @{REVIEWER_ROLE_NAME}: {why}")
            return None
        await self.bot.db.update_settings(guild.id, reviewer_role_id=role.id)
        gone = " (the old one was deleted)" if settings.reviewer_role_id else ""
        checklist.add(Mark.DONE, f"Reviewer role: created {role.mention}{gone}; give it to your reviewers")
        return role

    async def _category(
        self, guild: discord.Guild, settings: GuildSettings, checklist: Checklist
    ) -> discord.CategoryChannel | None:
        stored = guild.get_channel(settings.setup_category_id) if settings.setup_category_id else None
        if isinstance(stored, discord.CategoryChannel):
            return stored
        found = discord.utils.get(guild.categories, name=CATEGORY_NAME)
        if found is None:
            try:
                found = await guild.create_category(CATEGORY_NAME, reason=REASON)
            except discord.HTTPException as exc:
                why = refusal(exc, "Manage Channels")
                checklist.add(Mark.FAILED, f"Category **{CATEGORY_NAME}**: couldn't create it: {why}")
                return None
            checklist.add(Mark.DONE, f"Category: created **{CATEGORY_NAME}**")
        await self.bot.db.update_settings(guild.id, setup_category_id=found.id)
        return found

    async def _channels(
        self, guild: discord.Guild, settings: GuildSettings, picks: dict[str, int], checklist: Checklist
    ) -> dict[str, discord.TextChannel]:
        chosen: dict[str, discord.TextChannel] = {}
        category: discord.CategoryChannel | None = None
        category_tried = False
        for plan in LAYOUT:
            current_id = getattr(settings, plan.key)
            picked = guild.get_channel(picks[plan.key]) if plan.key in picks else None
            current = guild.get_channel(current_id) if current_id else None
            if isinstance(picked, discord.TextChannel):
                if picked.id != current_id:
                    await self.bot.db.update_settings(guild.id, weights=None, gift_tiers=None, **{plan.key: picked.id})
                    checklist.add(Mark.DONE, f"{plan.label}: {picked.mention} (picked)")
                else:
                    checklist.add(Mark.KEPT, f"{plan.label}: {picked.mention}")
                chosen[plan.key] = picked
                continue
            if isinstance(current, discord.TextChannel):
                checklist.add(Mark.KEPT, f"{plan.label}: {current.mention}")
                chosen[plan.key] = current
                continue
            if not category_tried:
                category_tried = True
                category = await self._category(guild, settings, checklist)
            gone = " (the old one was deleted)" if current_id else ""
            existing = discord.utils.get(category.text_channels, name=plan.name) if category else None
            if existing is not None:
                await self.bot.db.update_settings(guild.id, weights=None, gift_tiers=None, **{plan.key: existing.id})
                checklist.add(Mark.DONE, f"{plan.label}: adopted {existing.mention}{gone}")
                chosen[plan.key] = existing
                continue
            try:
                created = await guild.create_text_channel(plan.name, category=category, reason=REASON)
            except discord.HTTPException as exc:
                why = refusal(exc, "Manage Channels")
                checklist.add(Mark.FAILED, f"{plan.label}: couldn't create #{plan.name}: {why}")
                continue
            await self.bot.db.update_settings(guild.id, weights=None, gift_tiers=None, **{plan.key: created.id})
            checklist.add(Mark.DONE, f"{plan.label}: created {created.mention}{gone}")
            chosen[plan.key] = created
        return chosen

    async def _overwrites(
        self,
        guild: discord.Guild,
        channel: discord.TextChannel,
        plan: ChannelPlan,
        reviewer: discord.Role | None,
        admin: discord.Role | None,
        checklist: Checklist,
    ) -> None:
        targets: dict[Target, discord.Role | discord.Member | None] = {
            Target.EVERYONE: guild.default_role,
            Target.REVIEWER: reviewer,
            Target.ADMIN: admin,
            Target.BOT: guild.me,
        }
        bot_bits = guild.me.guild_permissions.value
        current = {target.id: overwrite.pair() for target, overwrite in channel.overwrites.items()}
        changed: list[str] = []
        refusals: dict[str, list[str]] = {}  # reason -> whom it was for (one line per reason)
        left_out = 0
        for need in overwrite_needs(plan, has_admin_role=admin is not None):
            target = targets[need.target]
            if target is None:
                refusals.setdefault("there is no reviewer role yet", []).append(need.target.value)
                continue
            settable, refused = grantable(need, bot_bits)
            left_out |= refused
            pair = current.get(target.id)
            wanted = merged_overwrite((pair[0].value, pair[1].value) if pair else None, settable)
            if wanted is None:
                continue
            overwrite = discord.PermissionOverwrite.from_pair(
                discord.Permissions(wanted[0]), discord.Permissions(wanted[1])
            )
            try:
                await channel.set_permissions(target, overwrite=overwrite, reason=REASON)
            except discord.HTTPException as exc:
                refusals.setdefault(refusal(exc, "Manage Roles"), []).append(need.target.value)
                continue
            changed.append(need.target.value)
        problems = [f"not set for {', '.join(whom)}: {why}" for why, whom in refusals.items()]
        if left_out:
            problems.append(f"left out {names(left_out)} (I can only grant what I have myself)")
        summary = ACCESS_TEXT[plan.access]
        if problems:
            checklist.add(Mark.FAILED, f"{channel.mention} permissions ({summary}): " + "; ".join(problems))
        elif changed:
            checklist.add(Mark.DONE, f"{channel.mention} permissions: {summary} (set for {', '.join(changed)})")
        else:
            checklist.add(Mark.KEPT, f"{channel.mention} permissions: {summary}")

    async def _displays(
        self, guild: discord.Guild, channels: dict[str, discord.TextChannel], checklist: Checklist
    ) -> None:
        displays = self.bot.displays
        for key, kind, label in _DISPLAYS:
            channel = channels.get(key)
            if channel is None:
                checklist.add(Mark.FAILED, f"The {label} was not posted: its channel is missing")
                continue
            before = await self.bot.db.get_display(guild.id, kind)
            try:
                if kind is DisplayKind.PORTAL:
                    message_id = await displays.ensure_portal(guild.id, channel)
                else:
                    message_id = await displays.ensure(guild.id, kind, channel)
            except DisplayPermissionError as exc:
                checklist.add(Mark.FAILED, exc.message)
                continue
            except discord.HTTPException as exc:
                why = refusal(exc, "Send Messages and Embed Links")
                checklist.add(Mark.FAILED, f"The {label} in {channel.mention}: {why}")
                continue
            pinned = await self._is_pinned(channel, message_id)
            fresh = before is None or before.message_id != message_id
            if not pinned:
                checklist.add(
                    Mark.FAILED,
                    f"The {label} is in {channel.mention} but not pinned: I need Pin Messages there "
                    "(Edit Channel → Permissions)",
                )
            elif fresh:
                checklist.add(Mark.DONE, f"The {label}: posted and pinned in {channel.mention}")
            else:
                checklist.add(Mark.KEPT, f"The {label}: pinned in {channel.mention}")

    @staticmethod
    async def _is_pinned(channel: discord.TextChannel, message_id: int) -> bool:
        try:
            message = await channel.fetch_message(message_id)
        except discord.HTTPException:
            return False
        return message.pinned

    # ------------------------------------------------------------------ /setup check

    @setup_group.command(name="check")
    @admin_only()
    async def setup_check(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """List every permission I'm missing per channel, deleted channels, and configuration problems."""
        guild = interaction.guild
        if guild is None:
            return
        report = await self.diagnose(guild)
        await respond(interaction, embed=setup_ui.doctor_embed(report))

    async def diagnose(self, guild: discord.Guild) -> Report:
        """The doctor's report for one guild, from discord.py's cache (no REST calls)."""
        settings = await self.bot.db.get_settings(guild.id)
        me = guild.me
        states: list[ChannelState] = []
        mentions: dict[int, str] = {}
        for plan in LAYOUT:
            channel_id = getattr(settings, plan.key)
            channel = guild.get_channel(channel_id) if channel_id else None
            if channel is not None:
                mentions[channel.id] = channel.mention
            bits = channel.permissions_for(me).value if channel is not None else 0
            states.append(ChannelState(plan, channel_id, channel is not None, bits))
        reviewer = guild.get_role(settings.reviewer_role_id) if settings.reviewer_role_id else None
        config = self.bot.config
        env = Environment(
            guild_bits=me.guild_permissions.value,
            # Names, not mentions: the same text goes to the owner by DM, where role mentions don't resolve.
            bot_role=f"@{limits.safe(me.top_role.name if not me.top_role.is_default() else me.display_name, 60)}",
            bot_role_position=me.top_role.position,
            reviewer_role=(f"@{limits.safe(reviewer.name, 60)}" if reviewer else f"role {settings.reviewer_role_id}")
            if settings.reviewer_role_id
            else None,
            reviewer_role_exists=reviewer is not None,
            reviewer_role_position=reviewer.position if reviewer else 0,
            admin_role_exists=not settings.admin_role_id or guild.get_role(settings.admin_role_id) is not None,
            sign_api_key=bool(config.sign_api_key),
            web_enabled=bool(getattr(config, "web_enabled", False)),
            web_host=str(getattr(config, "web_host", "127.0.0.1")),
            web_port=int(getattr(config, "web_port", 8765)),
            public_base_url=getattr(config, "public_base_url", None),
            public_page_wanted=settings.public_queue_enabled,
        )
        return diagnose(states, env, mentions)

    async def report_problems(self, guild: discord.Guild) -> None:
        """Post what is wrong to the debug channel, or DM the owner once; the same findings are not repeated.

        The findings are remembered only once they reached someone (or the owner already had their one DM),
        so a post Discord refused is tried again at the next start.
        """
        report = await self.diagnose(guild)
        fingerprint = report.fingerprint if report.problems else None
        if fingerprint == await self.bot.db.doctor_fingerprint(guild.id):
            return
        if fingerprint is None:
            await self.bot.db.set_doctor_fingerprint(guild.id, None)
            return
        if await self._deliver(guild, setup_ui.doctor_text(guild.name, report)):
            await self.bot.db.set_doctor_fingerprint(guild.id, fingerprint)

    async def _deliver(self, guild: discord.Guild, text: str) -> bool:
        settings = await self.bot.db.get_settings(guild.id)
        debug = guild.get_channel(settings.debug_channel_id) if settings.debug_channel_id else None
        if isinstance(debug, discord.TextChannel) and debug.permissions_for(guild.me).send_messages:
            posted = await self.bot.notifier.post(debug.id, text, what="the permission check", level=logging.INFO)
            if posted is not None:
                return True
        if await self.bot.db.owner_notified(guild.id):
            return True  # the owner already had their one message
        # Recorded only once it arrived: closed DMs, or a shutdown mid-send, leave it for the next check.
        if not await self._dm_owner(guild, text):
            return False
        await self.bot.db.claim_owner_notice(guild.id, time.time())
        return True

    async def _dm_owner(self, guild: discord.Guild, text: str) -> bool:
        if guild.owner_id is None:
            return False
        return await self.bot.notifier.dm(guild.owner_id, text, what=f"a note to the owner of guild {guild.id}")

    # ------------------------------------------------------------------ start-up, joining, welcome

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Once per process: the invite URL when in no server, and the doctor for every server."""
        if self._startup_checked:
            return
        self._startup_checked = True
        if not self.bot.guilds:
            client_id = self.bot.application_id or (self.bot.user.id if self.bot.user else 0)
            log.info("I am in no server yet; invite me with %s", perms.invite_url(client_id))
        self._spawn(self._check_all(), "doctor-startup")

    async def _check_all(self) -> None:
        for guild in list(self.bot.guilds):
            try:
                await self.report_problems(guild)
            except Exception:
                # One guild's failure must not skip the others; the traceback is logged.
                log.exception("start-up permission check of guild %s failed", guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Welcome (system channel, else the owner), then the doctor."""
        await self.welcome(guild)
        await self.report_problems(guild)

    async def welcome(self, guild: discord.Guild) -> None:
        """One short message saying to run /setup: in the system channel if I may post there, else to the owner."""
        channel = guild.system_channel
        if (
            channel is not None
            and channel.permissions_for(guild.me).send_messages
            and await self.bot.notifier.post(channel.id, setup_ui.WELCOME, what="the welcome", level=logging.INFO)
        ):
            return
        await self._dm_owner(guild, setup_ui.WELCOME)

    # ------------------------------------------------------------------ /settings

    @app_commands.command(name="settings")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def settings(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        """Every setting with its value and default; choose one to change it."""
        settings = await self.bot.db.get_settings(guild_id_of(interaction))
        await respond(interaction, embed=setup_ui.settings_panel_embed(settings), view=setup_ui.SettingsPanelView())

    async def apply_setting(self, guild_id: int, key: str, value: registry.Value) -> GuildSettings:
        """Store a validated value and apply its effect now."""
        spec = registry.spec(key)
        stored = await self.bot.db.update_settings(
            guild_id, weights=None, gift_tiers=None, **{spec.key: spec.check(value)}
        )
        if key == "display_refresh_seconds":
            self.bot.displays.set_window(guild_id, stored.display_refresh_seconds)
        return stored


async def setup(bot: MusicQueueBot) -> None:
    """Add the cog."""
    await bot.add_cog(Setup(bot))

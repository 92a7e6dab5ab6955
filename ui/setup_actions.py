"""What ``/setup run``, ``/setup check``, ``/settings`` and their components do (issue 14).

The bot's one dispatch pattern (see ``ui.queue_actions``): the setup wizard's buttons, the settings panel's
select and modal, and the setup cog's commands and listeners all call these functions. They reach the
services through ``interaction.client`` (or the bot they are given), never through a cog, so unloading
or reloading the setup cog never breaks a wizard or a settings panel that is still open.

The plan (which channels, which overwrites, what counts as a problem) lives in ``services.setup`` and the
settings registry in ``services.settings``; a run reads the guild from discord.py's cache, asks Discord for
each missing piece one step at a time, and reports every step. A step Discord refuses is recorded with its
reason and the run goes on, so one missing permission never leaves the rest undone. Everything a run
creates is found again on the next run (stored ids first, then the names it uses), so a second run changes
nothing and a later run repairs only what is missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING

import discord

from models import DisplayKind, GuildSettings
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
from ui.checks import check_admin
from ui.displays import DisplayPermissionError
from ui.respond import defer, guild_id_of, respond, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

    Interaction = discord.Interaction[MusicQueueBot]

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

# One run per guild at a time: two admins pressing Set up together must not create two of anything. Kept per
# bot (not per cog), so a wizard opened before a cog reload and a run after it still wait for each other.
_runs: weakref.WeakKeyDictionary[MusicQueueBot, dict[int, asyncio.Lock]] = weakref.WeakKeyDictionary()


def refusal(exc: discord.HTTPException, need: str) -> str:
    """Why Discord refused a step, in one line, with the permission it needed when that was the reason."""
    text = exc.text or exc.__class__.__name__
    if isinstance(exc, discord.Forbidden):
        return f"Discord refused ({exc.status} {text}): I need {need}"
    return f"Discord refused ({exc.status} {text})"


# ---------------------------------------------------------------------- /setup run and the wizard


async def open_wizard(interaction: Interaction) -> None:
    """``/setup run``: the ephemeral wizard with what a run would do so far."""
    settings = await interaction.client.db.get_settings(guild_id_of(interaction))
    wizard = setup_ui.SetupWizard(interaction.user.id)
    await respond(interaction, embed=wizard.embed(settings, interaction.guild), view=wizard)
    wizard.message = await interaction.original_response()


async def run_from_wizard(interaction: Interaction, picks: dict[str, int], role_id: int | None) -> None:
    """The wizard's Set up button: acknowledge at once, do every step, answer with the checklist."""
    await defer(interaction, thinking=False)
    guild = interaction.guild
    if guild is None:
        return
    checklist = await run_setup(interaction.client, guild, picks, role_id)
    await update(interaction, content="", embed=setup_ui.checklist_embed(checklist), view=discord.ui.View())


async def run_setup(bot: MusicQueueBot, guild: discord.Guild, picks: dict[str, int], role_id: int | None) -> Checklist:
    """Every step of a setup run; Discord refusing one step never stops the others."""
    async with _runs.setdefault(bot, {}).setdefault(guild.id, asyncio.Lock()):
        return await _run_setup(bot, guild, picks, role_id)


async def _run_setup(bot: MusicQueueBot, guild: discord.Guild, picks: dict[str, int], role_id: int | None) -> Checklist:
    checklist = Checklist()
    settings = await bot.db.get_settings(guild.id)
    role = await _reviewer_role(bot, guild, settings, role_id, checklist)
    channels = await _channels(bot, guild, settings, picks, checklist)
    admin_role = guild.get_role(settings.admin_role_id) if settings.admin_role_id else None
    for plan in LAYOUT:
        channel = channels.get(plan.key)
        if channel is not None:
            await _overwrites(guild, channel, plan, role, admin_role, checklist)
    await _displays(bot, guild, channels, checklist)
    log.info(
        "guild %s: /setup run: %d done, %d kept, %d failed",
        guild.id,
        checklist.count(Mark.DONE),
        checklist.count(Mark.KEPT),
        checklist.count(Mark.FAILED),
    )
    return checklist


async def _reviewer_role(
    bot: MusicQueueBot, guild: discord.Guild, settings: GuildSettings, picked: int | None, checklist: Checklist
) -> discord.Role | None:
    if picked is not None and (role := guild.get_role(picked)) is not None:
        if role.id != settings.reviewer_role_id:
            await bot.db.update_settings(guild.id, reviewer_role_id=role.id)
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
        await bot.db.update_settings(guild.id, reviewer_role_id=found.id)
        checklist.add(Mark.DONE, f"Reviewer role: adopted {found.mention}")
        return found
    try:
        role = await guild.create_role(name=REVIEWER_ROLE_NAME, mentionable=True, reason=REASON)
    except discord.HTTPException as exc:
        why = refusal(exc, "Manage Roles")
        checklist.add(Mark.FAILED, f"Reviewer role: couldn't create @{REVIEWER_ROLE_NAME}: {why}")
        return None
    await bot.db.update_settings(guild.id, reviewer_role_id=role.id)
    gone = " (the old one was deleted)" if settings.reviewer_role_id else ""
    checklist.add(Mark.DONE, f"Reviewer role: created {role.mention}{gone}; give it to your reviewers")
    return role


async def _category(
    bot: MusicQueueBot, guild: discord.Guild, settings: GuildSettings, checklist: Checklist
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
    await bot.db.update_settings(guild.id, setup_category_id=found.id)
    return found


async def _channels(
    bot: MusicQueueBot, guild: discord.Guild, settings: GuildSettings, picks: dict[str, int], checklist: Checklist
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
                await bot.db.update_settings(guild.id, weights=None, gift_tiers=None, **{plan.key: picked.id})
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
            category = await _category(bot, guild, settings, checklist)
        gone = " (the old one was deleted)" if current_id else ""
        existing = discord.utils.get(category.text_channels, name=plan.name) if category else None
        if existing is not None:
            await bot.db.update_settings(guild.id, weights=None, gift_tiers=None, **{plan.key: existing.id})
            checklist.add(Mark.DONE, f"{plan.label}: adopted {existing.mention}{gone}")
            chosen[plan.key] = existing
            continue
        try:
            created = await guild.create_text_channel(plan.name, category=category, reason=REASON)
        except discord.HTTPException as exc:
            why = refusal(exc, "Manage Channels")
            checklist.add(Mark.FAILED, f"{plan.label}: couldn't create #{plan.name}: {why}")
            continue
        await bot.db.update_settings(guild.id, weights=None, gift_tiers=None, **{plan.key: created.id})
        checklist.add(Mark.DONE, f"{plan.label}: created {created.mention}{gone}")
        chosen[plan.key] = created
    return chosen


async def _overwrites(
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
    bot: MusicQueueBot, guild: discord.Guild, channels: dict[str, discord.TextChannel], checklist: Checklist
) -> None:
    displays = bot.displays
    for key, kind, label in _DISPLAYS:
        channel = channels.get(key)
        if channel is None:
            checklist.add(Mark.FAILED, f"The {label} was not posted: its channel is missing")
            continue
        before = await bot.db.get_display(guild.id, kind)
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
        pinned = await _is_pinned(channel, message_id)
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


async def _is_pinned(channel: discord.TextChannel, message_id: int) -> bool:
    try:
        message = await channel.fetch_message(message_id)
    except discord.HTTPException:
        return False
    return message.pinned


# ---------------------------------------------------------------------- the doctor


async def check(interaction: Interaction) -> None:
    """``/setup check``: the doctor's full report, ephemeral."""
    guild = interaction.guild
    if guild is None:
        return
    report = await diagnose_guild(interaction.client, guild)
    await respond(interaction, embed=setup_ui.doctor_embed(report))


async def diagnose_guild(bot: MusicQueueBot, guild: discord.Guild) -> Report:
    """The doctor's report for one guild, from discord.py's cache (no REST calls)."""
    settings = await bot.db.get_settings(guild.id)
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
    config = bot.config
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


DOCTOR_PER_SECOND = 1.0
"""Guilds checked per second by the start-up doctor (the first at once)."""


async def report_problems(bot: MusicQueueBot, guild: discord.Guild) -> None:
    """Post what is wrong to the debug channel, or DM the owner once; the same findings are not repeated.

    The findings are remembered only once they reached someone (or the owner already had their one DM),
    so a post Discord refused is tried again at the next start.
    """
    report = await diagnose_guild(bot, guild)
    fingerprint = report.fingerprint if report.problems else None
    if fingerprint == await bot.db.doctor_fingerprint(guild.id):
        return
    if fingerprint is None:
        await bot.db.set_doctor_fingerprint(guild.id, None)
        return
    if await _deliver(bot, guild, setup_ui.doctor_text(guild.name, report)):
        await bot.db.set_doctor_fingerprint(guild.id, fingerprint)


async def report_all(bot: MusicQueueBot) -> None:
    """The start-up check of every guild, ``DOCTOR_PER_SECOND`` guilds a second; one failure skips no other.

    Paced because each report may cost a post or a DM: a bot in 1,000 servers must not spend Discord's
    global budget of 50 requests a second (shared with the displays and every answer) in one burst at start.
    """
    for number, guild in enumerate(list(bot.guilds)):
        if number:
            await asyncio.sleep(1 / DOCTOR_PER_SECOND)
        try:
            await report_problems(bot, guild)
        except Exception:
            # Logged with its traceback; the next guild is still checked.
            log.exception("start-up permission check of guild %s failed", guild.id)


async def _deliver(bot: MusicQueueBot, guild: discord.Guild, text: str) -> bool:
    settings = await bot.db.get_settings(guild.id)
    debug = guild.get_channel(settings.debug_channel_id) if settings.debug_channel_id else None
    if isinstance(debug, discord.TextChannel) and debug.permissions_for(guild.me).send_messages:
        posted = await bot.notifier.post(debug.id, text, what="the permission check", level=logging.INFO)
        if posted is not None:
            return True
    if await bot.db.owner_notified(guild.id):
        return True  # the owner already had their one message
    # Recorded only once it arrived: closed DMs, or a shutdown mid-send, leave it for the next check.
    if not await _dm_owner(bot, guild, text):
        return False
    await bot.db.claim_owner_notice(guild.id, time.time())
    return True


async def _dm_owner(bot: MusicQueueBot, guild: discord.Guild, text: str) -> bool:
    if guild.owner_id is None:
        return False
    return await bot.notifier.dm(guild.owner_id, text, what=f"a note to the owner of guild {guild.id}")


async def welcome(bot: MusicQueueBot, guild: discord.Guild) -> None:
    """One short message saying to run /setup: in the system channel if I may post there, else to the owner."""
    channel = guild.system_channel
    if (
        channel is not None
        and channel.permissions_for(guild.me).send_messages
        and await bot.notifier.post(channel.id, setup_ui.WELCOME, what="the welcome", level=logging.INFO)
    ):
        return
    await _dm_owner(bot, guild, setup_ui.WELCOME)


# ---------------------------------------------------------------------- /settings


async def show_settings(interaction: Interaction) -> None:
    """``/settings``: every setting with its value and default, and the select to change one."""
    settings = await interaction.client.db.get_settings(guild_id_of(interaction))
    await respond(interaction, embed=setup_ui.settings_panel_embed(settings), view=setup_ui.SettingsPanelView())


async def pick_setting(interaction: Interaction, key: str) -> None:
    """The panel's select: open the modal for the chosen setting (admins only, checked on every click)."""
    await check_admin(interaction)
    spec = registry.spec(key)
    settings = await interaction.client.db.get_settings(guild_id_of(interaction))
    await interaction.response.send_modal(setup_ui.SettingModal(spec, getattr(settings, spec.key)))


async def submit_setting(interaction: Interaction, spec: registry.SettingSpec, text: str) -> None:
    """The modal's submit: validate (a clear reason on bad input), store, apply at once, confirm."""
    await check_admin(interaction)
    value = spec.parse(text)
    await apply_setting(interaction.client, guild_id_of(interaction), spec.key, value)
    await respond(
        interaction,
        f"✅ **{spec.label}** is now {spec.describe(value)} (default {spec.describe(spec.default)}).",
    )


async def apply_setting(bot: MusicQueueBot, guild_id: int, key: str, value: registry.Value) -> GuildSettings:
    """Store a validated value and apply its effect now."""
    spec = registry.spec(key)
    stored = await bot.db.update_settings(guild_id, weights=None, gift_tiers=None, **{spec.key: spec.check(value)})
    if key == "display_refresh_seconds":
        bot.displays.set_window(guild_id, stored.display_refresh_seconds)
    return stored

"""Embeds and views of ``/setup``, ``/setup check`` and ``/settings`` (issue 14).

The setup wizard is one ephemeral message: pick which channel to replace, pick an existing channel for it,
pick an existing reviewer role, then **Set up** (anything not picked is created). The settings panel is a
persistent view (stable custom ids, registered by ``bot.py`` before connecting), so its select still works
on an old ephemeral message after a restart or a cog reload; every click checks the admin role again.
Changing a value opens a modal prefilled with the current value; the value is validated by
``services.settings``. What the buttons, the select and the modal do is in ``ui.setup_actions`` (the one
dispatch pattern, see ``ui.queue_actions``); these classes only hold the picks and call it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, cast

import discord

from errors import ValidationError
from models import GuildSettings
from services import settings as registry
from services.setup import LAYOUT, Checklist, Mark, Report
from ui import limits, setup_actions
from ui.checks import check_admin
from ui.respond import BaseModal, BaseView, Denied, guild_id_of, update

if TYPE_CHECKING:
    from bot import MusicQueueBot

SETTINGS_PICK_ID = "mq:settings:pick"
SETUP_COLOUR = discord.Colour.blurple()
WELCOME = (
    "👋 Thanks for adding me! Three steps to get going (admins):\n"
    "1. **/setup run**: creates the channels, the reviewer role and the pinned displays (or adopts yours).\n"
    "2. **/setup check**: lists any permission I'm missing, with the fix.\n"
    "3. **/settings**: cooldowns, caps and limits, each with its default."
)
ADMIN_STEPS = (
    "1. **/setup run** creates the channels, the reviewer role and the pinned displays.\n"
    "2. **/setup check** names any missing permission with its fix.\n"
    "3. **/settings** shows and changes every setting."
)


# ---------------------------------------------------------------------- /setup run


class SetupWizard(BaseView):
    """The ephemeral /setup message: optional picks of existing channels and role, then Set up."""

    def __init__(self, owner_id: int) -> None:
        super().__init__(timeout=600)
        self.owner_id = owner_id
        self.slot: str = LAYOUT[0].key
        self.picks: dict[str, int] = {}
        self.role_id: int | None = None
        self.message: discord.InteractionMessage | None = None
        slot = cast("discord.ui.Select[SetupWizard]", self.slot_select)  # the decorator's item type loses the view
        slot.options = [
            discord.SelectOption(label=f"Pick an existing channel for: {plan.label}", value=plan.key) for plan in LAYOUT
        ]
        slot.options[0].default = True

    def embed(self, settings: GuildSettings, guild: discord.Guild | None) -> discord.Embed:
        """What a run will do with the picks so far."""
        embed = discord.Embed(title="🛠️ Set up the music queue", colour=SETUP_COLOUR)
        lines = []
        for plan in LAYOUT:
            picked = self.picks.get(plan.key)
            current = getattr(settings, plan.key)
            if picked is not None:
                lines.append(f"**{plan.label}**: use <#{picked}> (picked)")
            elif current is not None and guild is not None and guild.get_channel(current) is not None:
                lines.append(f"**{plan.label}**: keep <#{current}>")
            else:
                lines.append(f"**{plan.label}**: create #{plan.name}")
        role = (
            f"use <@&{self.role_id}> (picked)"
            if self.role_id
            else (
                f"keep <@&{settings.reviewer_role_id}>"
                if settings.reviewer_role_id and guild and guild.get_role(settings.reviewer_role_id)
                else "create @Queue Reviewer"
            )
        )
        lines.append(f"**Reviewer role**: {role}")
        embed.description = (
            "\n".join(lines) + "\n\nPick existing channels or a role below to use them instead, then press **Set up**."
            " Running it again later repairs whatever is missing and never duplicates anything."
        )
        return embed

    async def interaction_check(self, interaction: discord.Interaction[MusicQueueBot]) -> bool:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Only the admin who opened it, and only while still an admin."""
        await check_admin(interaction)
        if interaction.user.id != self.owner_id:
            raise Denied("Only the admin who opened this menu can use it; run /setup run yourself.")
        return True

    async def _redraw(self, interaction: discord.Interaction[MusicQueueBot]) -> None:
        settings = await interaction.client.db.get_settings(guild_id_of(interaction))
        for option in cast("discord.ui.Select[SetupWizard]", self.slot_select).options:
            option.default = option.value == self.slot
        await update(interaction, embed=self.embed(settings, interaction.guild), view=self)

    @discord.ui.select(placeholder="Pick an existing channel for…", row=0)
    async def slot_select(
        self, interaction: discord.Interaction[MusicQueueBot], select: discord.ui.Select[SetupWizard]
    ) -> None:
        """Which channel of the layout the next channel pick is for."""
        self.slot = select.values[0]
        await self._redraw(interaction)

    @discord.ui.select(
        cls=discord.ui.ChannelSelect,
        channel_types=[discord.ChannelType.text],
        placeholder="…this existing channel",
        row=1,
    )
    async def channel_select(
        self, interaction: discord.Interaction[MusicQueueBot], select: discord.ui.ChannelSelect[SetupWizard]
    ) -> None:
        """Use an existing text channel for the chosen slot (one channel per slot: their permissions differ)."""
        channel_id = select.values[0].id
        taken = next(
            (plan.label for plan in LAYOUT if plan.key != self.slot and self.picks.get(plan.key) == channel_id), None
        )
        if taken is not None:
            raise ValidationError(f"<#{channel_id}> is already picked for {taken}; pick another channel.")
        self.picks[self.slot] = channel_id
        await self._redraw(interaction)

    @discord.ui.select(cls=discord.ui.RoleSelect, placeholder="Use an existing reviewer role (optional)", row=2)
    async def role_select(
        self, interaction: discord.Interaction[MusicQueueBot], select: discord.ui.RoleSelect[SetupWizard]
    ) -> None:
        """Use an existing role as the reviewer role."""
        self.role_id = select.values[0].id
        await self._redraw(interaction)

    @discord.ui.button(label="Set up", emoji="🛠️", style=discord.ButtonStyle.success, row=3)
    async def go(self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[SetupWizard]) -> None:
        """Run the setup with the picks (the answer replaces this message with the checklist)."""
        self.stop()
        await setup_actions.run_from_wizard(interaction, dict(self.picks), self.role_id)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, row=3)
    async def cancel(
        self, interaction: discord.Interaction[MusicQueueBot], button: discord.ui.Button[SetupWizard]
    ) -> None:
        """Close the wizard without changing anything."""
        self.stop()
        await update(interaction, content="Setup cancelled; nothing was changed.", embed=None, view=None)

    async def on_timeout(self) -> None:
        """End visibly: an expired wizard says so instead of failing on the next click."""
        if self.message is not None:
            # The token may have expired too: then there is nothing left to tell.
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(content="This setup menu expired; run **/setup run** again.", view=None)


def checklist_embed(checklist: Checklist) -> discord.Embed:
    """The answer of a run: every step with its mark."""
    failed = checklist.count(Mark.FAILED)
    title = "🛠️ Setup finished" if not failed else f"🛠️ Setup finished with {failed} problem(s)"
    embed = discord.Embed(title=title, colour=discord.Colour.green() if not failed else discord.Colour.orange())
    embed.description = limits.clip("\n".join(checklist.lines()), 4000)
    summary = "Nothing needed changing." if not checklist.changed else "Run **/setup run** again any time to repair."
    if failed:
        summary = "Fix what ❌ says, then run **/setup run** again: it only redoes what is missing."
    embed.set_footer(text=summary + " /setup check lists permissions.")
    return embed


def doctor_embed(report: Report) -> discord.Embed:
    """``/setup check``: every line, problems with their fixes."""
    count = len(report.problems)
    embed = discord.Embed(
        title="🩺 Permission check: all good" if not count else f"🩺 Permission check: {count} problem(s)",
        colour=discord.Colour.green() if not count else discord.Colour.red(),
    )
    embed.description = limits.clip("\n".join(report.lines), 4000)
    return embed


def doctor_text(guild_name: str, report: Report) -> str:
    """What the start-up or join check posts to the debug channel (or the owner): the problems only."""
    head = f"🩺 I found {len(report.problems)} problem(s) with my setup in **{limits.safe(guild_name, 80)}**:"
    body = "\n".join(p.line() for p in report.problems)
    return limits.clip(f"{head}\n{body}\nRun **/setup check** for the full list.", limits.CONTENT)


# ---------------------------------------------------------------------- /settings


def settings_panel_embed(settings: GuildSettings) -> discord.Embed:
    """Every setting of the registry with its value and default."""
    embed = discord.Embed(title="⚙️ Settings", colour=SETUP_COLOUR)
    lines = []
    for spec in registry.SETTINGS:
        value = getattr(settings, spec.key)
        lines.append(
            f"**{spec.label}**: {spec.describe(value)} (default {spec.describe(spec.default)})\n-# {spec.help}"
        )
    embed.description = limits.clip("\n".join(lines), 4000)
    embed.set_footer(text="Choose a setting below to change it. Channels and roles: /setup run or /show-settings.")
    return embed


class SettingsPanelView(BaseView):
    """The select of settings (persistent: the same custom id on every panel)."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        cast("discord.ui.Select[SettingsPanelView]", self.pick).options = [
            discord.SelectOption(label=spec.label, value=spec.key, description=limits.clip(spec.help, 100))
            for spec in registry.SETTINGS
        ]

    @discord.ui.select(placeholder="Change a setting…", custom_id=SETTINGS_PICK_ID)
    async def pick(
        self, interaction: discord.Interaction[MusicQueueBot], select: discord.ui.Select[SettingsPanelView]
    ) -> None:
        """Open the modal for the chosen setting (admins only, checked on every click)."""
        await setup_actions.pick_setting(interaction, select.values[0])


class SettingModal(BaseModal):
    """One setting's new value, typed; validated on submit with a clear reason."""

    def __init__(self, spec: registry.SettingSpec, current: registry.Value) -> None:
        super().__init__(title=limits.clip(f"Change: {spec.label}", 45), custom_id=f"mq:settings:modal:{spec.key}")
        self.spec = spec
        shown = "" if current is None else spec.describe(current).removesuffix(f" {spec.unit}")
        self.value: discord.ui.TextInput[SettingModal] = discord.ui.TextInput(
            label=limits.clip(spec.label, 45),
            placeholder=limits.clip(spec.range_text(), 100),
            default=shown or None,
            required=False,
            max_length=40,
            custom_id="value",
        )
        self.add_item(self.value)

    async def on_submit(self, interaction: discord.Interaction[MusicQueueBot]) -> None:  # type: ignore[override]  # client-generic hook, see ui/respond.py
        """Validate, store, confirm (the setting's effect applies at once)."""
        await setup_actions.submit_setting(interaction, self.spec, self.value.value or "")


PERSISTENT_VIEWS: tuple[type[discord.ui.View], ...] = (SettingsPanelView,)

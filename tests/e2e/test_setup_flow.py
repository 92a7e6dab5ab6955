"""/setup run, /setup check, /settings, the welcome and the start-up check, through the fake Discord."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from bot import application_id, print_invite
from config import load_config
from services import permissions as perms
from services import settings as registry
from services.setup import CATEGORY_NAME, LAYOUT, REVIEWER_ROLE_NAME
from tests.conftest import BotEnv
from tests.fakediscord.guildadmin import GuildAdmin, channel_permissions
from ui import setup_actions
from ui.setup_ui import ADMIN_STEPS, SETTINGS_PICK_ID, WELCOME

VIEW, SEND, PIN = perms.VIEW_CHANNEL.bit, perms.SEND_MESSAGES.bit, perms.PIN_MESSAGES.bit
BASIC = VIEW | SEND | perms.EMBED_LINKS.bit | perms.READ_MESSAGE_HISTORY.bit
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def admin_api(env: BotEnv) -> GuildAdmin:
    return env.fake.rest.guild_admin


async def grant(env: BotEnv, permissions: int) -> str:
    """Give the bot its role (as the invite would) and wait until the bot's cache knows it."""
    role_id = admin_api(env).grant_bot(permissions)
    guild = env.bot.get_guild(env.guild_id)
    await env.fake.wait_for(lambda: guild.me.guild_permissions.value == permissions | int(
        env.fake.roles[env.fake.guild_id]["permissions"]), 5, "the bot to see its role")  # fmt: skip
    return role_id


async def fresh_guild(env: BotEnv) -> None:
    """The harness sets a reviewer role; a fresh guild has none."""
    await env.bot.db.update_settings(env.guild_id, reviewer_role_id=None)
    await grant(env, perms.INVITE_PERMISSIONS)


async def run_setup(env: BotEnv, role: str | None = None, **picks: Any) -> tuple[str, Any]:
    """/setup run, optional picks in the wizard, then Set up; returns the checklist text and the click's record."""
    opened = await env.admin.slash(env.channels["general"], "setup", "run")
    wizard = opened.messages()[0]
    assert opened.ephemeral and "Set up the music queue" in opened.text()
    if role is not None:
        await env.admin.select(wizard, env.admin.find_custom_id(wizard, "reviewer role"), [role])
    for slot, channel_id in picks.items():
        wizard = env.fake.messages[wizard["id"]]
        await env.admin.select(wizard, env.admin.find_custom_id(wizard, "Pick an existing channel"), [slot])
        wizard = env.fake.messages[wizard["id"]]
        await env.admin.select(wizard, env.admin.find_custom_id(wizard, "this existing channel"), [channel_id])
    wizard = env.fake.messages[wizard["id"]]
    click = await env.admin.click(wizard, env.admin.find_custom_id(wizard, "Set up"))
    text = await click.wait_text("Setup finished", timeout=30)
    return text, click


def overwrite(env: BotEnv, channel_id: str, target: str) -> tuple[int, int] | None:
    for item in env.fake.channels[channel_id]["permission_overwrites"]:
        if item["id"] == target:
            return int(item["allow"]), int(item["deny"])
    return None


def setup_channels(env: BotEnv) -> dict[str, str]:
    category = next(c for c in env.fake.channels.values() if c.get("type") == 4 and c["name"] == CATEGORY_NAME)
    return {c["name"]: c["id"] for c in env.fake.channels.values() if c.get("parent_id") == category["id"]}


def mutations(env: BotEnv) -> list[str]:
    """Every change the bot asked of Discord, except answering interactions."""
    return [f"{r.method} {r.path}" for r in env.fake.requests
            if r.method in MUTATING and not r.path.startswith(("/interactions/", "/webhooks/"))]  # fmt: skip


async def test_setup_on_a_fresh_guild_creates_everything_once_and_a_second_run_changes_nothing(
    bot_env: BotEnv,
) -> None:
    env, fake = bot_env, bot_env.fake
    await fresh_guild(env)
    before = len(fake.channels)
    text, _ = await run_setup(env)

    created = setup_channels(env)
    assert sorted(created) == sorted(plan.name for plan in LAYOUT)
    assert len(fake.channels) == before + len(LAYOUT) + 1  # the seven channels and the category
    roles = [r for r in fake.roles.values() if r["name"] == REVIEWER_ROLE_NAME]
    assert len(roles) == 1
    reviewer_role = roles[0]["id"]
    settings = await env.bot.db.get_settings(env.guild_id)
    assert settings.reviewer_role_id == int(reviewer_role)
    for plan in LAYOUT:
        assert getattr(settings, plan.key) == int(created[plan.name]), plan.key

    everyone, bot = fake.guild_id, fake.app_id
    member, reviewer = env.member.user_id, fake.new_member("rev", [reviewer_role])
    # Live queue (and the other bot-only channels): members read, cannot write; the bot can post and pin.
    for name in ("live-queue", "now-playing", "bookmarks", "post-live-metrics"):
        assert overwrite(env, created[name], everyone) == (0, SEND), name
        assert channel_permissions(fake, member, created[name]) & VIEW
        assert not channel_permissions(fake, member, created[name]) & SEND
    # Reviewer panel and debug: hidden from members, open to reviewers, the bot still sees them.
    for name in ("reviewer-panel", "bot-debug"):
        assert overwrite(env, created[name], everyone) == (0, VIEW), name
        assert not channel_permissions(fake, member, created[name]) & VIEW
        assert channel_permissions(fake, reviewer, created[name]) & (VIEW | SEND) == VIEW | SEND
    # Submissions: open for slash commands.
    assert overwrite(env, created["submissions"], everyone) == (
        VIEW | perms.READ_MESSAGE_HISTORY.bit | perms.USE_APPLICATION_COMMANDS.bit,
        0,
    )
    for plan in LAYOUT:
        bits = channel_permissions(fake, bot, created[plan.name])
        assert all(bits & p.bit for p in plan.needs), plan.name
        assert overwrite(env, created[plan.name], bot) == (sum(p.bit for p in plan.needs), 0)
    # Pins: the live queue, the two reviewer panels, the portal.
    assert len(fake.pins(created["live-queue"])) == 1
    assert len(fake.pins(created["reviewer-panel"])) == 2
    portal = fake.pins(created["submissions"])
    assert len(portal) == 1 and "submission portal" in portal[0]["embeds"][0]["title"]
    assert "❌" not in text and "created" in text and "posted and pinned" in text

    # The second run: nothing created, nothing written, nothing posted or pinned.
    await env.settle()
    done = len(mutations(env))
    text2, _ = await run_setup(env)
    assert mutations(env)[done:] == []
    assert "Nothing needed changing" in text2 and "❌" not in text2 and "✅" not in text2
    assert len(setup_channels(env)) == len(LAYOUT)
    assert len([r for r in fake.roles.values() if r["name"] == REVIEWER_ROLE_NAME]) == 1
    assert len(fake.pins(created["reviewer-panel"])) == 2 and len(fake.pins(created["submissions"])) == 1
    env.extra["transcript"] = text


async def test_setup_repairs_a_deleted_channel_and_adopts_picked_ones(bot_env: BotEnv) -> None:
    env, fake = bot_env, bot_env.fake
    await fresh_guild(env)
    await run_setup(env)
    created = setup_channels(env)
    admin_api(env).delete_channel(created["now-playing"])
    guild = env.bot.get_guild(env.guild_id)
    await fake.wait_for(lambda: guild.get_channel(int(created["now-playing"])) is None, 5, "the deletion")
    text, _ = await run_setup(env, role=env.reviewer_role, bookmark_channel_id=env.channels["bookmarks"])
    again = setup_channels(env)
    assert f"Reviewer role: <@&{env.reviewer_role}> (picked)" in text
    assert overwrite(env, again["reviewer-panel"], env.reviewer_role) is not None
    assert channel_permissions(fake, env.reviewer.user_id, again["reviewer-panel"]) & VIEW
    assert "now-playing" in again and again["now-playing"] != created["now-playing"]
    assert "the old one was deleted" in text and "(picked)" in text
    settings = await env.bot.db.get_settings(env.guild_id)
    assert settings.now_playing_channel_id == int(again["now-playing"])
    assert settings.bookmark_channel_id == int(env.channels["bookmarks"])
    assert settings.reviewer_role_id == int(env.reviewer_role)
    assert overwrite(env, env.channels["bookmarks"], fake.guild_id) == (0, SEND)


async def test_doctor_names_each_missing_permission_and_setup_reports_what_it_could_not_do(
    bot_env: BotEnv,
) -> None:
    env, fake = bot_env, bot_env.fake
    bot_role = await grant(env, BASIC)  # no Pin Messages, Manage Messages, Manage Channels, Manage Roles
    queue, submit = env.channels["queue"], env.channels["submit"]
    admin_api(env).set_overwrite(queue, bot_role, deny=perms.EMBED_LINKS.bit)
    await env.bot.db.update_settings(
        env.guild_id,
        live_queue_channel_id=int(queue),
        submission_channel_id=int(submit),
        debug_channel_id=int(env.channels["debug"]),
        now_playing_channel_id=424242,  # a channel that was deleted
        reviewer_role_id=None,
    )
    guild = env.bot.get_guild(env.guild_id)
    await fake.wait_for(lambda: not guild.get_channel(int(queue)).permissions_for(guild.me).embed_links, 5, "deny")
    check = await env.admin.slash(env.channels["general"], "setup", "check")
    text = check.text()
    assert check.ephemeral
    live_line = next(line for line in text.splitlines() if "Live queue" in line)
    assert "Embed Links" in live_line and "Pin Messages" in live_line and "Send Messages" not in live_line.split(
        "I lack")[1].split("(")[0]  # fmt: skip
    submit_line = next(line for line in text.splitlines() if "Submissions" in line)
    assert "Manage Messages" in submit_line and "Pin Messages" in submit_line
    assert "Now playing" in text and "deleted" in text
    assert "Manage Channels, Manage Roles" in text
    assert all("Fix:" in line for line in text.splitlines() if line.startswith("❌"))

    text2, _ = await run_setup(env)
    env.extra["transcript"] = text2
    assert "couldn't create #reviewer-panel" in text2 and "Manage Channels" in text2
    assert f"couldn't create @{REVIEWER_ROLE_NAME}" in text2 and "Manage Roles" in text2
    assert "403" in text2
    # The rest still happened: the displays in the channels that exist were posted.
    assert any(m["embeds"] for m in fake.channel_messages(queue))
    assert "The submission portal" in text2


async def test_every_setting_round_trips_through_the_panel_and_out_of_range_is_refused(bot_env: BotEnv) -> None:
    env = bot_env
    general = env.channels["general"]
    panel_answer = await env.admin.slash(general, "settings")
    panel = panel_answer.messages()[0]
    assert panel_answer.ephemeral
    for spec in registry.SETTINGS:
        assert spec.label in panel_answer.text()
    for spec in registry.SETTINGS:
        if spec.kind == "bool":
            good, want, bad = ("off", False, "maybe") if spec.default else ("on", True, "maybe")
        else:
            top = spec.maximum
            good, want = str(int(top) if spec.kind == "int" else top), (int(top) if spec.kind == "int" else top)
            bad = str(int(top) + 1)
        before = getattr(await env.bot.db.get_settings(env.guild_id), spec.key)
        opened = await env.admin.select(panel, SETTINGS_PICK_ID, [spec.key])
        assert opened.modal is not None, spec.key
        refused = await env.admin.submit_modal(opened, {"value": bad})
        reason = await refused.wait_text(spec.label)
        assert (refused.ephemeral and "must be" in reason) or "on or off" in reason, reason
        assert getattr(await env.bot.db.get_settings(env.guild_id), spec.key) == before, spec.key
        opened = await env.admin.select(panel, SETTINGS_PICK_ID, [spec.key])
        accepted = await env.admin.submit_modal(opened, {"value": good})
        await accepted.wait_text("✅")
        assert getattr(await env.bot.db.get_settings(env.guild_id), spec.key) == want, spec.key
    assert env.bot.displays.window_of(env.guild_id) == 60
    await env.restart()  # the guild's own window is loaded again at start
    assert env.bot.displays.window_of(env.guild_id) == 60
    panel = (await env.admin.slash(general, "settings")).messages()[0]
    shown = await env.admin.slash(general, "show-settings")
    assert "Maximum track length: 14400 s" in shown.text() and "Like cap: 100000 per min" in shown.text()
    # Members can't open it, and a forged click on the panel is refused too.
    manage_server = 1 << 5  # as discord.py sends it
    assert env.fake.commands["settings"]["default_member_permissions"] == str(manage_server)
    assert env.fake.commands["setup"]["default_member_permissions"] == str(manage_server)
    assert {o["name"] for o in env.fake.commands["setup"]["options"]} == {"run", "check"}
    env.fake.allow_command("settings")  # as a server admin can in Server Settings → Integrations
    denied = await env.member.slash(general, "settings")
    assert "Only admins" in denied.text()
    forged = await env.member.select(panel, SETTINGS_PICK_ID, ["like_cap_per_minute"])
    assert forged.modal is None and "Only admins" in forged.text()


async def test_welcome_goes_to_the_system_channel_else_the_owner_and_help_starts_with_setup(
    bot_env: BotEnv,
) -> None:
    env, fake = bot_env, bot_env.fake
    guild = env.bot.get_guild(env.guild_id)
    guild._system_channel_id = int(env.channels["general"])  # what GUILD_CREATE of a new server carries
    await setup_actions.welcome(env.bot, guild)
    assert [m["content"] for m in fake.channel_messages(env.channels["general"])] == [WELCOME]
    guild._system_channel_id = None
    guild.owner_id = env.admin.id
    await setup_actions.welcome(env.bot, guild)
    dm = fake.dm_channel_of(env.admin.user_id)
    assert [m["content"] for m in fake.channel_messages(dm)] == [WELCOME]
    assert "/setup run" in WELCOME
    helped = await env.admin.slash(env.channels["general"], "help")
    embed = helped.messages()[0]["embeds"][0]
    assert embed["fields"][0]["value"] == ADMIN_STEPS
    member_help = await env.member.slash(env.channels["general"], "help")
    assert ADMIN_STEPS not in member_help.text()


async def test_start_up_check_posts_problems_to_the_debug_channel_once_else_dms_the_owner_once(
    bot_env: BotEnv,
) -> None:
    env, fake = bot_env, bot_env.fake
    debug = env.channels["debug"]
    await env.bot.db.update_settings(env.guild_id, debug_channel_id=int(debug), live_queue_channel_id=int(
        env.channels["queue"]))  # fmt: skip
    admin_api(env).grant_bot(BASIC)  # invited with too few permissions: no Pin Messages, no Manage Channels
    await env.restart()
    await fake.wait_for(lambda: any("problem(s)" in m["content"] for m in fake.channel_messages(debug)), 10, "post")
    posted = [m["content"] for m in fake.channel_messages(debug) if "problem(s)" in m["content"]]
    assert "Pin Messages" in posted[0] and "Manage Channels" in posted[0]
    first = env.bot.get_cog("Setup")
    await fake.wait_for(lambda: not first._tasks, 10, "the check to remember what it posted")
    await env.restart()
    cog = env.bot.get_cog("Setup")
    await fake.wait_for(lambda: not cog._tasks, 10, "the start-up check")
    again = [m["content"] for m in fake.channel_messages(debug) if "problem(s)" in m["content"]]
    assert len(again) == 1, again  # same findings: not posted again
    # No debug channel: the owner hears it, once.
    await env.bot.db.update_settings(env.guild_id, debug_channel_id=None, now_playing_channel_id=31337)
    guild = env.bot.get_guild(env.guild_id)
    guild.owner_id = env.admin.id
    await setup_actions.report_problems(env.bot, guild)
    await env.bot.db.update_settings(env.guild_id, bookmark_channel_id=31338)
    await setup_actions.report_problems(env.bot, guild)
    dms = fake.channel_messages(fake.dm_channel_of(env.admin.user_id))
    assert len(dms) == 1 and "deleted" in dms[0]["content"]


def test_invite_url_from_the_token_has_both_scopes_and_the_doctors_permission_integer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = base64.b64encode(b"123456789012345678").decode().rstrip("=") + ".x.y"
    assert print_invite(load_config({"DISCORD_TOKEN": token})) == 0
    query = parse_qs(urlparse(capsys.readouterr().out.strip()).query)
    assert query["client_id"] == ["123456789012345678"]
    assert query["scope"] == ["bot applications.commands"]
    # The doctor checks exactly permissions of the one list, and the URL asks for all of that list.
    doctor_bits = {p.bit for plan in LAYOUT for p in plan.needs} | {perms.MANAGE_CHANNELS.bit, perms.MANAGE_ROLES.bit}
    assert doctor_bits <= {p.bit for p in perms.BOT_PERMISSIONS}
    assert int(query["permissions"][0]) == sum(p.bit for p in perms.BOT_PERMISSIONS) == perms.INVITE_PERMISSIONS
    assert int(query["permissions"][0]) & PIN and not int(query["permissions"][0]) & (1 << 3)  # no Administrator


async def test_invite_url_asks_discord_for_the_application_id_when_the_token_does_not_say(bot_env: BotEnv) -> None:
    assert perms.client_id_from_token(bot_env.config.token) is None
    assert await application_id(bot_env.config) == int(bot_env.fake.app_id)


async def test_start_up_log_has_the_invite_url_when_in_no_server(
    bot_env: BotEnv, caplog: pytest.LogCaptureFixture
) -> None:
    cog = bot_env.bot.get_cog("Setup")
    cog._startup_checked = False
    bot_env.bot._connection._guilds.clear()  # as if the bot was in no server
    with caplog.at_level("INFO", logger="cogs.setup"):
        await cog.on_ready()
    assert perms.invite_url(int(bot_env.fake.app_id)) in caplog.text


async def test_check_names_two_problems_and_a_second_run_repairs_them(bot_env: BotEnv) -> None:
    env, fake = bot_env, bot_env.fake
    env.bot.config = replace(env.bot.config, sign_api_key="sign-key-for-tests")
    await fresh_guild(env)
    await run_setup(env)
    created = setup_channels(env)
    live = next(p for p in LAYOUT if p.key == "live_queue_channel_id")
    needs = sum(p.bit for p in live.needs)
    admin_api(env).set_overwrite(created["live-queue"], fake.app_id, allow=needs & ~PIN, deny=PIN)
    admin_api(env).delete_channel(created["bookmarks"])
    guild = env.bot.get_guild(env.guild_id)
    channel = guild.get_channel(int(created["live-queue"]))
    await fake.wait_for(lambda: guild.get_channel(int(created["bookmarks"])) is None
                        and not channel.permissions_for(guild.me).pin_messages, 5, "the changes")  # fmt: skip
    check = await env.admin.slash(env.channels["general"], "setup", "check")
    problems = [line for line in check.text().splitlines() if line.startswith("❌")]
    assert "2 problem(s)" in check.text() and len(problems) == 2
    assert "Live queue" in problems[0] and "Pin Messages" in problems[0]
    assert "Bookmarks" in problems[1] and "deleted" in problems[1]
    await env.settle()
    text, _ = await run_setup(env)
    assert "Bookmarks: created" in text and "(the old one was deleted)" in text
    assert "read-only for members (set for the bot)" in text and "❌" not in text
    again = await env.admin.slash(env.channels["general"], "setup", "check")
    assert "all good" in again.text()
    env.extra["transcript"] = (check.text(), text)


async def test_two_runs_at_once_create_everything_once(bot_env: BotEnv) -> None:
    env = bot_env
    await fresh_guild(env)
    guild = env.bot.get_guild(env.guild_id)
    first, second = await asyncio.gather(
        setup_actions.run_setup(env.bot, guild, {}, None), setup_actions.run_setup(env.bot, guild, {}, None)
    )
    assert first.changed and not second.changed
    assert len(setup_channels(env)) == len(LAYOUT)
    assert len([r for r in env.fake.roles.values() if r["name"] == REVIEWER_ROLE_NAME]) == 1


async def test_the_same_channel_cannot_be_picked_for_two_slots(bot_env: BotEnv) -> None:
    env = bot_env
    opened = await env.admin.slash(env.channels["general"], "setup", "run")
    wizard = opened.messages()[0]
    channel_pick = env.admin.find_custom_id(wizard, "this existing channel")
    slot_pick = env.admin.find_custom_id(wizard, "Pick an existing channel")
    await env.admin.select(wizard, channel_pick, [env.channels["queue"]])  # for the first slot, Submissions
    await env.admin.select(env.fake.messages[wizard["id"]], slot_pick, ["live_queue_channel_id"])
    refused = await env.admin.select(env.fake.messages[wizard["id"]], channel_pick, [env.channels["queue"]])
    assert "already picked for Submissions" in await refused.wait_text("already picked")
    # Another admin can't drive this admin's menu.
    other = env.fake.member("otto", admin=True)
    foreign = await other.click(env.fake.messages[wizard["id"]], other.find_custom_id(wizard, "Set up"))
    assert "Only the admin who opened this menu" in await foreign.wait_text("Only the admin")


async def test_an_open_wizard_and_settings_panel_work_with_the_setup_cog_unloaded_and_reloaded(
    bot_env: BotEnv,
) -> None:
    env = bot_env
    await fresh_guild(env)
    general = env.channels["general"]
    opened = await env.admin.slash(general, "setup", "run")
    wizard = opened.messages()[0]
    panel = (await env.admin.slash(general, "settings")).messages()[0]
    await env.bot.unload_extension("cogs.setup")
    assert env.bot.get_cog("Setup") is None
    # The panel's select and modal still answer, and the setting's effect still applies at once.
    picked = await env.admin.select(panel, SETTINGS_PICK_ID, ["display_refresh_seconds"])
    assert picked.modal is not None
    accepted = await env.admin.submit_modal(picked, {"value": "42"})
    await accepted.wait_text("✅")
    assert (await env.bot.db.get_settings(env.guild_id)).display_refresh_seconds == 42
    assert env.bot.displays.window_of(env.guild_id) == 42
    # The wizard opened before the unload still sets everything up.
    click = await env.admin.click(env.fake.messages[wizard["id"]], env.admin.find_custom_id(wizard, "Set up"))
    text = await click.wait_text("Setup finished", timeout=30)
    assert "❌" not in text and sorted(setup_channels(env)) == sorted(plan.name for plan in LAYOUT)
    # Loaded again, a new run finds everything in place.
    await env.bot.load_extension("cogs.setup")
    reopened = (await env.admin.slash(general, "setup", "run")).messages()[0]
    second = await env.admin.click(reopened, env.admin.find_custom_id(reopened, "Set up"))
    assert "Nothing needed changing" in await second.wait_text("Setup finished", timeout=30)

"""The bot under Discord's real rules (issue 11): command visibility, intents, pin permission, debug routing."""

from __future__ import annotations

import logging

import discord
import pytest

from services.log_context import guild_scope
from tests.conftest import BotEnv
from tests.fakediscord import CommandHidden
from tests.fakediscord.state import BOT_PERMISSIONS, PIN_MESSAGES, PRIVILEGED_INTENTS

MANAGE_SERVER = str(1 << 5)
GUILD_ONLY = [0]
ADMIN_COMMANDS = (
    "move", "remove", "clearfree", "opensubmissions", "closesubmissions", "setbookmarkchannel",
    "setnowplayingchannel", "setup-post-live-metrics", "setdebugchannel", "set-submission-channel",
    "set-reviewer-role", "set-admin-role", "show-settings", "resetpoints", "points-weights", "gift-tiers",
    "link-handle", "blocklist", "backup", "setup-live-queue", "setup-reviewer-channel", "setup-submission-portal",
    "tiktok", "setup", "settings", "overlay", "export",
)  # fmt: skip
# Reviewer and member commands: visible to everyone in the server (the reviewer role is a custom role with no
# Discord permission to key on, so /next relies on its runtime check), never in DMs.
MEMBER_COMMANDS = ("queue", "next", "submit", "submitfile", "mysubmissions", "link-tiktok", "unlink-tiktok",
                   "my-tiktok-handles", "notify", "help", "leaderboard")  # fmt: skip


async def test_every_command_syncs_with_its_default_permission_and_guild_context(bot_env: BotEnv) -> None:
    expected = {name: (MANAGE_SERVER, GUILD_ONLY) for name in ADMIN_COMMANDS}
    expected |= {name: (None, GUILD_ONLY) for name in MEMBER_COMMANDS}
    assert bot_env.fake.synced_visibility() == expected


async def test_admin_commands_are_hidden_from_members_and_dms_but_not_from_admins(bot_env: BotEnv) -> None:
    general = bot_env.channels["general"]
    for name in ADMIN_COMMANDS:
        assert not bot_env.member.can_see(name, general) and not bot_env.reviewer.can_see(name, general), name
        assert bot_env.admin.can_see(name, general), name
        assert not bot_env.admin.can_see(name, bot_env.admin.dm), name
    with pytest.raises(CommandHidden):
        await bot_env.member.slash(general, "clearfree")
    assert bot_env.member.can_see("next", general)  # shown; the runtime check answers
    assert "Only reviewers" in (await bot_env.member.slash(general, "next")).text()
    assert "Cleared" in (await bot_env.admin.slash(general, "clearfree")).text()


async def test_help_says_how_the_admin_role_gets_to_see_admin_commands(bot_env: BotEnv) -> None:
    text = (await bot_env.member.slash(bot_env.channels["general"], "help")).text()
    assert "Server Settings → Integrations" in text and "Manage Server" in text


async def test_no_privileged_intent_and_chatter_is_still_removed(bot_env: BotEnv) -> None:
    fake = bot_env.fake
    assert fake.intents & PRIVILEGED_INTENTS == 0 and fake.gateway.refused_intents == 0
    assert fake.intents == discord.Intents(guilds=True, guild_messages=True).value
    await bot_env.bot.db.update_settings(bot_env.guild_id, submission_channel_id=int(bot_env.channels["submit"]))
    chatter = await bot_env.member.send(bot_env.channels["submit"], "hello everyone")  # arrives with no content
    kept = await bot_env.reviewer.send(bot_env.channels["submit"], "reviewer note")
    await fake.wait_for(lambda: chatter["id"] not in fake.messages, 5, "the chatter removed")
    assert kept["id"] in fake.messages


async def test_a_pin_refused_for_lack_of_pin_messages_is_reported_to_that_guilds_debug_channel_only(
    bot_env: BotEnv,
) -> None:
    fake, bot = bot_env.fake, bot_env.bot
    other_guild = bot_env.guild_id + 1  # a second server the bot is in, with its own debug channel
    other_debug = fake.add_channel("other-debug")
    await bot.db.update_settings(bot_env.guild_id, debug_channel_id=int(bot_env.channels["debug"]))
    await bot.db.update_settings(other_guild, debug_channel_id=int(other_debug))
    fake.set_bot_permissions(BOT_PERMISSIONS & ~PIN_MESSAGES)  # Manage Messages alone no longer pins
    guild = bot.get_guild(bot_env.guild_id)
    await fake.wait_for(lambda: not guild.me.guild_permissions.pin_messages, 5, "the role update")
    queue = bot_env.channels["queue"]
    setup = await bot_env.admin.slash(bot_env.channels["general"], "setup-live-queue", channel=queue)
    await setup.wait_text("queue")
    assert fake.channel_messages(queue) and fake.pins(queue) == []
    assert fake.count("PUT", r"/messages/pins/\d+$") >= 1 and fake.count_status(403) >= 1
    with guild_scope(other_guild):
        logging.getLogger("cogs.test").warning("the other server's host @other.streamer is offline")
    logging.getLogger("cogs.test").warning("a process-wide hiccup")  # concerns no guild
    await bot.debug_reporter.report_once()
    mine = "\n".join(m["content"] for m in fake.channel_messages(bot_env.channels["debug"]))
    theirs = "\n".join(m["content"] for m in fake.channel_messages(other_debug))
    assert "could not pin the live queue" in mine and "Pin Messages" in mine
    assert "other.streamer" not in mine and "process-wide" not in mine
    assert "other.streamer" in theirs and "could not pin" not in theirs and "process-wide" not in theirs

"""Every admin and user command through the fake Discord: the happy path and the refusal."""

from __future__ import annotations

import pytest

from models import Line
from tests.conftest import BotEnv
from tests.e2e.prose import prose_problems
from tests.e2e.test_displays_flow import next_page_id
from tests.fakediscord import CommandHidden
from tests.fakediscord.openapi import ContractChecker, spec_path


async def _sub(env: BotEnv, user: int, n: int, *, skip: bool = False) -> str:
    draft = env.bot.queue.draft(artist="A", title=f"S{n}", note=None, link=f"https://x.test/{n}")
    return (await env.bot.queue.submit(env.guild_id, user, f"u{user}", draft, skip=skip)).submission.public_id


async def post_portal(env: BotEnv) -> dict:
    """An admin posts the submission portal in the submit channel; returns the portal message."""
    setup = await env.admin.slash(env.channels["general"], "setup-submission-portal", channel=env.channels["submit"])
    await setup.wait_text("portal is in")
    return env.fake.channel_messages(env.channels["submit"])[-1]


async def _known(env: BotEnv, role: str) -> None:
    guild = env.bot.get_guild(env.guild_id)
    await env.fake.wait_for(lambda: guild.get_role(int(role)) is not None, 5, "the bot to learn the new role")


ADMIN_COMMANDS: list[tuple[str, dict[str, object], str]] = [
    ("opensubmissions", {}, "Free line is open"),
    ("closesubmissions", {}, "Free line is closed"),
    ("clearfree", {}, "Cleared the Free line"),
    ("setbookmarkchannel", {"channel": "bookmarks"}, "Bookmarks channel set"),
    ("setnowplayingchannel", {"channel": "now"}, "Now playing channel set"),
    ("setup-post-live-metrics", {"channel": "metrics"}, "Post-live metrics channel set"),
    ("setdebugchannel", {"channel": "debug"}, "Debug channel set"),
    ("set-submission-channel", {"channel": "submit"}, "Submissions channel set to"),
    ("show-settings", {}, "Settings"),
    ("points-weights", {}, "Points: like 1"),
    ("gift-tiers", {}, "Skip 1000 coins"),
    ("blocklist", {"action": "list"}, "blocklist is empty"),
    ("backup", {}, "Backup saved"),
]


def _resolve(env: BotEnv, options: dict[str, object]) -> dict[str, object]:
    return {k: env.channels[v] if k == "channel" else v for k, v in options.items()}  # type: ignore[index]


@pytest.mark.parametrize(("command", "options", "expected"), ADMIN_COMMANDS, ids=[c[0] for c in ADMIN_COMMANDS])
async def test_admin_command_works_for_admins_and_is_refused_to_others(
    bot_env: BotEnv, command: str, options: dict[str, object], expected: str
) -> None:
    resolved = _resolve(bot_env, options)
    for outsider in (bot_env.member, bot_env.reviewer):
        with pytest.raises(CommandHidden):  # Discord does not even show it to them
            await outsider.slash(bot_env.channels["general"], command, **resolved)
    # A server admin shows the command to everyone (Server Settings → Integrations): the runtime check refuses.
    bot_env.fake.allow_command(command)
    for outsider in (bot_env.member, bot_env.reviewer):
        refused = await outsider.slash(bot_env.channels["general"], command, **resolved)
        assert refused.ephemeral and "Only admins" in refused.text(), command
    done = await bot_env.admin.slash(bot_env.channels["general"], command, **resolved)
    assert expected in await done.wait_text(expected)


def test_the_prose_check_finds_doubled_and_missing_words() -> None:
    assert prose_problems("✅ Submission channel channel set to <#12>.")
    assert prose_problems("✅ Bookmarks channel set to .")
    assert prose_problems("Reset 2 handle(s) of <@1>.")
    assert prose_problems("plays in unknown yet")
    assert prose_problems("✅ Submissions channel set to <#12>.") == []


async def test_every_admin_answer_reads_well(bot_env: BotEnv) -> None:
    """Issue 16 point 2: every admin confirmation, swept for doubled or missing words."""
    env, general = bot_env, bot_env.channels["general"]
    pid = await _sub(env, 1, 1)
    other = await _sub(env, 2, 2)
    await env.bot.points.admin_link(env.guild_id, env.member.id, "max.tt")
    calls: list[tuple[str, str | None, dict[str, object]]] = [
        *((command, None, _resolve(env, options)) for command, options, _ in ADMIN_COMMANDS),
        ("setup-live-queue", None, {"channel": env.channels["queue"]}),
        ("setup-reviewer-channel", None, {"channel": env.channels["reviewers"]}),
        ("setup-submission-portal", None, {"channel": env.channels["submit"]}),
        ("set-reviewer-role", None, {"role": env.reviewer_role}),
        ("set-admin-role", None, {"role": env.reviewer_role}),
        ("move", None, {"submission_id": f"#{pid}", "line": "Skip"}),
        ("remove", None, {"submission_id": other}),
        ("resetpoints", None, {"user": env.member.user_id}),
        ("resetpoints", None, {"handle": "max.tt"}),
        ("resetpoints", None, {"everything": True}),
        ("resetpoints", None, {}),
        ("points-weights", None, {"comment": 3}),
        ("gift-tiers", None, {"skip": 500}),
        ("link-handle", None, {"member": env.member.user_id, "handle": "max.two"}),
        ("blocklist", None, {"action": "add", "kind": "word", "value": "spam"}),
        ("blocklist", None, {"action": "add", "kind": "word", "value": "spam"}),
        ("blocklist", None, {"action": "remove", "kind": "word", "value": "spam"}),
        ("blocklist", None, {"action": "remove", "kind": "word", "value": "spam"}),
        ("tiktok", "simulate", {"kind": "like", "handle": "fan.one", "amount": 3}),
        ("tiktok", "status", {}),
        ("tiktok", "disconnect", {}),
        ("tiktok", "disconnect", {}),
    ]
    problems = []
    for command, sub, options in calls:
        record = await env.admin.slash(general, command, sub, **options)
        await env.fake.wait_for(lambda r=record: r.text(), 5, f"an answer to /{command}")
        await env.settle()
        problems += [f"/{command} {sub or ''}: {p}" for p in prose_problems(record.text())]
    assert problems == []


async def test_admin_role_grants_admin_rights(bot_env: BotEnv) -> None:
    role = bot_env.fake.add_role("Mods")
    await _known(bot_env, role)
    mod = bot_env.fake.member("mod", roles=[role])
    with pytest.raises(CommandHidden):  # without Manage Server the command is hidden...
        await mod.slash(bot_env.channels["general"], "clearfree")
    bot_env.fake.allow_command("clearfree", role)  # ...until the role is allowed in the integration settings
    assert "Only admins" in (await mod.slash(bot_env.channels["general"], "clearfree")).text()
    await bot_env.admin.slash(bot_env.channels["general"], "set-admin-role", role=role)
    assert "Cleared" in (await mod.slash(bot_env.channels["general"], "clearfree")).text()


async def test_reviewer_role_is_set_by_an_admin(bot_env: BotEnv) -> None:
    role = bot_env.fake.add_role("Crew")
    await _known(bot_env, role)
    crew = bot_env.fake.member("crew", roles=[role])
    assert "Only reviewers" in (await crew.slash(bot_env.channels["general"], "next")).text()
    await bot_env.admin.slash(bot_env.channels["general"], "set-reviewer-role", role=role)
    record = await crew.slash(bot_env.channels["general"], "next")
    await record.wait_text("queue is empty")


async def test_move_remove_with_or_without_hash(bot_env: BotEnv) -> None:
    pid = await _sub(bot_env, 1, 1)
    moved = await bot_env.admin.slash(bot_env.channels["general"], "move", submission_id=f"#{pid}", line="DoubleSkip")
    assert "DoubleSkip" in moved.text()
    removed = await bot_env.admin.slash(bot_env.channels["general"], "remove", submission_id=pid.lower())
    assert "Removed" in removed.text()
    again = await bot_env.admin.slash(bot_env.channels["general"], "move", submission_id=pid, line="Free")
    assert "can't be moved back" in again.text() and again.ephemeral
    unknown = await bot_env.admin.slash(bot_env.channels["general"], "remove", submission_id="#NOPE9")
    assert "No submission #NOPE9" in unknown.text()


async def test_resetpoints_needs_exactly_one_target(bot_env: BotEnv) -> None:
    await bot_env.bot.points.admin_link(bot_env.guild_id, bot_env.member.id, "max.tt")
    none = await bot_env.admin.slash(bot_env.channels["general"], "resetpoints")
    assert "exactly one" in none.text()
    one = await bot_env.admin.slash(bot_env.channels["general"], "resetpoints", user=bot_env.member.user_id)
    assert "Reset 1 handle" in one.text()
    everything = await bot_env.admin.slash(bot_env.channels["general"], "resetpoints", everything=True)
    assert "Reset every handle" in everything.text()


async def test_weights_tiers_blocklist_and_link_handle(bot_env: BotEnv) -> None:
    general = bot_env.channels["general"]
    assert "comment 9" in (await bot_env.admin.slash(general, "points-weights", comment=9)).text()
    assert "Skip 100 coins" in (await bot_env.admin.slash(general, "gift-tiers", skip=100)).text()
    bad = await bot_env.admin.slash(general, "gift-tiers", skip=9000)
    assert "must rise" in bad.text()
    added = await bot_env.admin.slash(
        general, "blocklist", action="add", kind="domain", value="https://www.Evil.test/x"
    )
    assert "Added" in added.text()
    listed = await bot_env.admin.slash(general, "blocklist", action="list")
    assert "domain: evil.test" in listed.text()
    linked = await bot_env.admin.slash(general, "link-handle", member=bot_env.member.user_id, handle="@Max.Real")
    assert "@max.real" in linked.text()
    assert (await bot_env.bot.db.get_handle(bot_env.guild_id, "max.real")).verified


async def test_show_settings_flags_a_deleted_channel(bot_env: BotEnv) -> None:
    await bot_env.bot.db.update_settings(bot_env.guild_id, bookmark_channel_id=123456789)
    shown = await bot_env.admin.slash(bot_env.channels["general"], "show-settings")
    assert "missing (was 123456789)" in shown.text() and "not set" in shown.text()


async def test_user_commands(bot_env: BotEnv) -> None:
    general = bot_env.channels["general"]
    linked = await bot_env.member.slash(general, "link-tiktok", handle="@Max.Beats")
    assert "LINK-" in linked.text()
    taken = await bot_env.fake.member("other").slash(general, "link-tiktok", handle="max.beats")
    assert "linked to another member" in taken.text()
    handles = await bot_env.member.slash(general, "my-tiktok-handles")
    assert "@max.beats" in handles.text().replace("\\", "")
    auto = await bot_env.member.autocomplete(general, "unlink-tiktok", "handle", "max")
    assert [c["value"] for c in auto.choices] == ["max.beats"]
    assert "Unlinked" in (await bot_env.member.slash(general, "unlink-tiktok", handle="max.beats")).text()
    assert "DMs on" in (await bot_env.member.slash(general, "notify", enabled=True)).text()
    await _sub(bot_env, bot_env.member.id, 1)
    queue = await bot_env.member.slash(general, "queue")
    assert "Your songs" in queue.text() and queue.ephemeral
    bad = await bot_env.member.slash(general, "link-tiktok", handle="not a handle!")
    assert "not a valid TikTok handle" in bad.text()


async def test_submission_channel_rule(bot_env: BotEnv) -> None:
    await bot_env.bot.db.update_settings(bot_env.guild_id, submission_channel_id=int(bot_env.channels["submit"]))
    chatter = await bot_env.member.send(bot_env.channels["submit"], "hello everyone")
    kept = await bot_env.reviewer.send(bot_env.channels["submit"], "reviewer note")
    await bot_env.fake.wait_for(lambda: chatter["id"] not in bot_env.fake.messages, 5, "the chatter removed")
    assert kept["id"] in bot_env.fake.messages


async def test_sync_happens_only_when_the_tree_changed(bot_env: BotEnv) -> None:
    puts = bot_env.fake.count("PUT", r"/commands$")
    await bot_env.restart()
    assert bot_env.fake.count("PUT", r"/commands$") == puts  # unchanged tree: no sync on restart
    assert await bot_env.bot.sync_commands(force=True)
    assert bot_env.fake.count("PUT", r"/commands$") == puts + 1


async def test_global_429_on_a_command_is_survived(bot_env: BotEnv) -> None:
    await _sub(bot_env, 1, 1)
    bot_env.fake.fail_next("POST", r"/channels/\d+/messages$", 429, retry_after=0.3, global_=True)
    await bot_env.bot.db.update_settings(bot_env.guild_id, now_playing_channel_id=int(bot_env.channels["now"]))
    record = await bot_env.reviewer.slash(bot_env.channels["general"], "next")
    await record.wait_text("Now playing")
    await bot_env.fake.wait_for(lambda: bot_env.fake.channel_messages(bot_env.channels["now"]), 5, "announcement")


def test_contract_checks_are_on_or_say_why_not() -> None:
    checker = ContractChecker()
    if not checker.enabled:
        pytest.skip(f"Discord OpenAPI spec not found at {spec_path()}; contract checks skipped")
    assert checker.check("POST", "/channels/1/messages", {"content": 5})
    assert checker.check("POST", "/channels/1/messages", {"content": "ok", "allowed_mentions": {"parse": []}}) == []


def test_contract_checker_reports_absence(tmp_path) -> None:
    checker = ContractChecker(tmp_path / "missing.json")
    assert not checker.enabled and checker.check("POST", "/channels/1/messages", {"content": 5}) == []


async def test_pending_is_not_playable(bot_env: BotEnv) -> None:
    await _sub(bot_env, 1, 1, skip=True)
    record = await bot_env.reviewer.slash(bot_env.channels["general"], "next")
    await record.wait_text("queue is empty")
    oldest, waiting = await bot_env.bot.queue.pending_head(bot_env.guild_id, 1)
    assert waiting == 1 and oldest[0].line is Line.PENDING


async def test_tiktok_simulate_moves_points_and_is_marked_in_the_recap(bot_env: BotEnv) -> None:
    await bot_env.bot.db.update_settings(bot_env.guild_id, metrics_channel_id=int(bot_env.channels["metrics"]))
    general = bot_env.channels["general"]
    bot_env.fake.allow_command("tiktok")  # shown to everyone: the runtime check must refuse the member
    refused = await bot_env.member.slash_sub(general, "tiktok", "simulate", kind="like", handle="fan.one", amount=5)
    assert "Only admins" in refused.text()
    done = await bot_env.admin.slash_sub(general, "tiktok", "simulate", kind="gift", handle="@Fan.One", amount=40)
    await done.wait_text("Simulated a gift from @fan.one")
    await bot_env.settle()
    assert (await bot_env.bot.db.get_handle(bot_env.guild_id, "fan.one")).counts.coins == 40
    ended = await bot_env.admin.slash_sub(general, "tiktok", "disconnect")
    await ended.wait_text("Ended the simulation session")
    metrics = bot_env.channels["metrics"]
    await bot_env.fake.wait_for(lambda: bot_env.fake.channel_messages(metrics), 5, "the recap")
    recap = bot_env.fake.channel_messages(metrics)[-1]["embeds"][0]
    assert recap["title"] == "🧪 Simulation recap" and "Simulated engagement only" in recap["description"]


async def test_portal_history_button_and_history_paging(bot_env: BotEnv) -> None:
    for n in range(7):
        pid = await _sub(bot_env, bot_env.member.id, 100 + n)
        await bot_env.bot.queue.move(bot_env.guild_id, pid, Line.SKIP)
    portal = await post_portal(bot_env)
    picker = await bot_env.member.click(portal, "mq:portal:history")
    await picker.wait_text("Choose a song to submit again")
    menu = picker.messages()[-1]
    chosen = (await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id))[0]
    select_id = menu["components"][0]["components"][0]["custom_id"]
    question = await bot_env.member.click(menu, select_id, values=[chosen.public_id])
    ask = question.messages()[-1]
    assert "Is this submission a skip" in ask["content"]
    mine = await bot_env.member.slash(bot_env.channels["general"], "mysubmissions")
    page = mine.messages()[0]
    assert "Page 1/2" in mine.text()
    second = await bot_env.member.click(page, next_page_id(page))
    assert "Page 2/2" in second.text()


REFUSAL_MATRIX: list[tuple[str, str | None, dict[str, object]]] = [
    ("move", None, {"submission_id": "#AAAAA", "line": "Skip"}),
    ("remove", None, {"submission_id": "#AAAAA"}),
    ("setup-live-queue", None, {"channel": "queue"}),
    ("setup-reviewer-channel", None, {"channel": "reviewers"}),
    ("setup-submission-portal", None, {"channel": "submit"}),
    ("resetpoints", None, {"everything": True}),
    ("set-reviewer-role", None, {"role": "@everyone"}),
    ("set-admin-role", None, {"role": "@everyone"}),
    ("link-handle", None, {"member": "self", "handle": "stolen"}),
    ("points-weights", None, {"like": 100}),
    ("gift-tiers", None, {"skip": 1}),
    ("blocklist", None, {"action": "add", "kind": "word", "value": "x"}),
    ("tiktok", "connect", {"username": "someone"}),
    ("tiktok", "disconnect", {}),
    ("tiktok", "simulate", {"kind": "like", "handle": "fan.one"}),
]


@pytest.mark.parametrize(
    ("command", "sub", "options"), REFUSAL_MATRIX, ids=[f"{c} {s or ''}" for c, s, _ in REFUSAL_MATRIX]
)
async def test_members_and_reviewers_are_refused_every_admin_command(
    bot_env: BotEnv, command: str, sub: str | None, options: dict[str, object]
) -> None:
    settings_before = await bot_env.bot.db.get_settings(bot_env.guild_id)
    for outsider in (bot_env.member, bot_env.reviewer):
        assert not outsider.can_see(command, bot_env.channels["general"]), command  # hidden by default
    # Shown to everyone by a server admin (Server Settings → Integrations): the runtime role check still refuses.
    bot_env.fake.allow_command(command)
    for outsider in (bot_env.member, bot_env.reviewer):
        resolved = {
            k: bot_env.channels[v] if k == "channel" else (
                bot_env.fake.guild.everyone_role_id if v == "@everyone" else (outsider.user_id if v == "self" else v))
            for k, v in options.items()
        }  # fmt: skip
        if sub:
            refused = await outsider.slash_sub(bot_env.channels["general"], command, sub, **resolved)
        else:
            refused = await outsider.slash(bot_env.channels["general"], command, **resolved)
        assert refused.ephemeral and "Only admins" in refused.text(), (command, sub)
    assert await bot_env.bot.db.get_settings(bot_env.guild_id) == settings_before
    assert bot_env.fake.pins(bot_env.channels["queue"]) == []


async def test_a_stranger_cannot_use_someone_elses_history_view(bot_env: BotEnv) -> None:
    await _sub(bot_env, bot_env.member.id, 1)
    mine = await bot_env.member.slash(bot_env.channels["general"], "mysubmissions")
    page = mine.messages()[0]
    sub = (await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id))[0]
    stranger = bot_env.fake.member("stranger")
    tried = await stranger.click(page, stranger.find_custom_id(page, "Withdraw"))
    assert "someone else's" in tried.text()
    assert (await bot_env.bot.queue.get(bot_env.guild_id, sub.public_id)).line is Line.FREE

"""Proves the fake Discord with a tiny sample bot (not the project's bot) driven by the real discord.py client.

Run with ``-p tests.fakediscord.pytest_plugin`` unless the root conftest loads the plugin.
"""

from __future__ import annotations

import asyncio
import gc
import io
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import CommandHidden, FakeDiscord, InteractionRecord
from tests.fakediscord.openapi import ContractChecker, spec_path
from tests.fakediscord.state import (
    BOT_PERMISSIONS,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    PIN_MESSAGES,
    PRIVILEGED_INTENTS,
    READ_MESSAGE_HISTORY,
)

MiB = 1024 * 1024


class PanelView(discord.ui.View):
    """A persistent view: a counter button and a string select."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.presses = 0

    @discord.ui.button(label="Press", custom_id="sample:press")
    async def press(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.presses += 1
        await interaction.response.edit_message(content=f"pressed {self.presses}")

    @discord.ui.select(custom_id="sample:pick", options=[discord.SelectOption(label=x) for x in "ab"])
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.send_message(f"picked {','.join(select.values)}", ephemeral=True)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    """One text input in an action row (implicit) and one inside a Label, as discord.py 2.7 sends both."""

    plain = discord.ui.TextInput(label="Plain", custom_id="plain")
    labelled = discord.ui.Label(text="Labelled", component=discord.ui.TextInput(custom_id="labelled"))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        inner = self.labelled.component
        assert isinstance(inner, discord.ui.TextInput)
        await interaction.response.send_message(f"thanks {self.plain.value} {inner.value}")


class SampleBot(commands.Bot):
    """Just enough bot to exercise every path of the harness."""

    def __init__(self, guild_id: str, intents: discord.Intents | None = None, **options: Any) -> None:
        if intents is None:
            intents = discord.Intents.default()
            intents.members = intents.message_content = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05, **options)
        self.guild_ref = discord.Object(int(guild_id))
        self.errors: list[BaseException] = []
        self.seen: list[str] = []
        self.interactions: list[discord.Interaction] = []
        self.ready_count = 0
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self._define_commands()

    async def setup_hook(self) -> None:
        self.add_view(PanelView())
        await self.tree.sync()  # global commands too, so DMs have something to run
        self.tree.copy_global_to(guild=self.guild_ref)
        await self.tree.sync(guild=self.guild_ref)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every non-initial IDENTIFY by default; not needed against the fake."""

    async def on_ready(self) -> None:
        self.ready_count += 1

    async def on_message(self, message: discord.Message) -> None:
        if not message.author.bot:
            self.seen.append(message.content)

    async def _on_tree_error(self, _: discord.Interaction, error: app_commands.AppCommandError) -> None:
        self.errors.append(getattr(error, "original", error))

    def _define_commands(self) -> None:
        tree = self.tree

        @tree.command(description="Echo privately")
        async def echo(interaction: discord.Interaction, text: str, times: int, loud: bool = False) -> None:
            said = " ".join([text.upper() if loud else text] * times)
            await interaction.response.send_message(said, ephemeral=True,
                                                    allowed_mentions=discord.AllowedMentions.none())  # fmt: skip

        @tree.command(description="Think, then answer")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send("done")
            await interaction.followup.send("and more", ephemeral=True)

        @tree.command(description="Post the panel")
        async def panel(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pressed 0", view=PanelView())

        @tree.command(description="Open the form")
        async def form(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(FeedbackModal())

        @tree.command(description="Upload a file")
        async def submitfile(interaction: discord.Interaction, file: discord.Attachment, note: str = "") -> None:
            await interaction.response.defer()
            data = await file.read()
            copy = discord.File(io.BytesIO(data[::-1]), filename="reversed.bin")
            await interaction.followup.send(f"{file.filename} {len(data)} {note}", file=copy)

        @tree.command(description="Pick a song")
        async def pick(interaction: discord.Interaction, song: str) -> None:
            await interaction.response.send_message(f"picked {song}")

        @pick.autocomplete("song")
        async def pick_song(_: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=s, value=s) for s in ("alpha", "beta", "alps") if s.startswith(current)]

        @tree.command(description="Too slow")
        async def late(interaction: discord.Interaction) -> None:
            await asyncio.sleep(3.2)
            await interaction.response.send_message("finally")

        @tree.command(description="Answers twice")
        async def twice(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("one")
            await interaction.client.http.request(  # bypasses discord.py's own is_done() guard on purpose
                discord.http.Route("POST", "/interactions/{i}/{t}/callback", i=interaction.id, t=interaction.token),
                json={"type": 4, "data": {"content": "two"}},
            )

        group = app_commands.Group(name="queue", description="Queue admin")
        settings = app_commands.Group(name="settings", description="Settings", parent=group)

        @group.command(description="Add someone")
        async def add(interaction: discord.Interaction, who: discord.Member, role: discord.Role,
                      where: discord.TextChannel, weight: float = 1.0) -> None:  # fmt: skip
            await interaction.response.send_message(f"{who.name} {role.name} {where.name} {weight}")

        @settings.command(description="Set a limit")
        async def limit(interaction: discord.Interaction, value: int) -> None:
            await interaction.response.send_message(f"limit {value}")

        tree.add_command(group)

        @tree.command(description="Admins only")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.guild_only()
        async def admin(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("admin ok")

        @tree.command(name="limit", description="The upload limit here")
        async def upload_limit(interaction: discord.Interaction) -> None:
            tier = interaction.guild.premium_tier if interaction.guild else None
            await interaction.response.send_message(f"{interaction.filesize_limit} {tier}")

        @tree.command(description="Upload size bytes as a response, a followup or a channel message")
        async def blob(interaction: discord.Interaction, size: int, how: str) -> None:
            file = discord.File(io.BytesIO(bytes(size)), filename="blob.bin")
            try:
                if how == "response":
                    await interaction.response.send_message(file=file)
                    return
                await interaction.response.defer()
                if how == "followup":
                    await interaction.followup.send(file=file)
                else:
                    assert isinstance(interaction.channel, discord.TextChannel)
                    await interaction.channel.send(file=file)
                    await interaction.followup.send("sent")
            except discord.HTTPException as exc:
                text = f"refused {exc.status} {exc.code}"
                if interaction.response.is_done():
                    await interaction.followup.send(text)
                else:
                    await interaction.response.send_message(text)


@asynccontextmanager
async def running(fake: FakeDiscord, **options: Any) -> AsyncIterator[SampleBot]:
    """Start a SampleBot against ``fake`` and close it afterwards (its privileged intents are switched on)."""
    fake.enable_privileged_intents(discord.Intents(members=True, message_content=True).value)
    bot = SampleBot(fake.guild_id, **options)
    task = asyncio.create_task(bot.start("fake-token"))
    try:
        await fake.wait_for(lambda: bot.is_ready() or task.done(), 5, "the bot to be ready")
        if task.done():
            task.result()
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, 5)


async def test_login_ready_and_guild_command_sync(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord) as bot:
        guild = bot.get_guild(int(fake_discord.guild_id))
        assert guild is not None and guild.member_count == len(guild.members) == len(fake_discord.members)
        assert {c.name for c in guild.text_channels} >= {"general", "queue", "reviewers", "debug"}
        assert set(fake_discord.commands) == {"echo", "slow", "panel", "form", "submitfile", "pick", "late",
                                              "twice", "queue", "admin", "limit", "blob"}  # fmt: skip
        assert all(c["guild_id"] == fake_discord.guild_id for c in fake_discord.commands.values())
        assert bot.application_id == int(fake_discord.app_id) and fake_discord.identifies == 1
        members = await guild.query_members(user_ids=[int(fake_discord.admin.user_id)])  # op 8 with a nonce
        assert [m.name for m in members] == ["admin"]


async def test_slash_with_options_answers_ephemerally_without_mentions(fake_discord: FakeDiscord) -> None:
    alice = fake_discord.member("alice")
    async with running(fake_discord):
        record = await alice.slash(fake_discord.guild.channels["general"], "echo", text="hi", times=2, loud=True)
    assert record.response_type == 4 and record.ephemeral and record.text() == "HI HI"
    assert record.messages()[0]["allowed_mentions"] == {"parse": []}
    assert fake_discord.channel_messages(fake_discord.guild.channels["general"]) == []  # ephemeral: not visible


async def test_a_forgotten_interaction_is_freed_once_its_3_s_clock_has_run(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The benches forget answered interactions between rounds; each ack clock kept its record alive, so a
    # long run's every interaction stayed in memory, and every full garbage collection walked them all.
    import tests.fakediscord.server as server

    monkeypatch.setattr(server, "ACK_WINDOW", 0.05)
    alice = fake_discord.member("alice")
    async with running(fake_discord):
        record = await alice.slash(fake_discord.guild.channels["general"], "echo", text="hi", times=1, loud=False)
        answered = weakref.ref(record)
        del record
        fake_discord.interactions.clear()
        await asyncio.sleep(0.2)
        gc.collect()
        assert answered() is None


async def test_subcommands_groups_and_resolved_options(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    role = fake_discord.add_role("Reviewer")
    bob = fake_discord.add_member("bob", roles=[role])
    async with running(fake_discord):
        added = await bob.slash(general, "queue", "add", who=bob, role=role, where=general, weight=2)
        limited = await bob.slash(general, "queue", "settings limit", value=7)
    assert added.text() == "bob Reviewer general 2.0" and limited.text() == "limit 7"


async def test_defer_then_followups(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord):
        record = await fake_discord.member("carol").slash(fake_discord.guild.channels["general"], "slow")
        assert record.response_type == 5
        first = await record.wait_for_followup(1)
        second = await record.wait_for_followup(2)
    assert first["id"] == record.original_id and first["content"] == "done" and not first["flags"] & 128
    assert second["content"] == "and more" and second["flags"] & 64
    assert [m["content"] for m in record.messages()] == ["done", "and more"]


async def test_button_edits_with_type_7_and_select(fake_discord: FakeDiscord) -> None:
    dave = fake_discord.member("dave")
    async with running(fake_discord):
        posted = await dave.slash(fake_discord.guild.channels["queue"], "panel")
        message = posted.messages()[0]
        click = await dave.click(message, "sample:press")
        picked = await dave.select(message, "sample:pick", ["b"])
    assert click.response_type == 7 and message["content"] == "pressed 1"
    assert fake_discord.count_edits(message["id"]) == 0  # the edit went through the interaction, not a PATCH
    assert picked.ephemeral and picked.text() == "picked b"


async def test_modal_round_trip_with_row_and_label_inputs(fake_discord: FakeDiscord) -> None:
    erin = fake_discord.member("erin")
    async with running(fake_discord):
        opened = await erin.slash(fake_discord.guild.channels["general"], "form")
        assert opened.modal is not None and opened.modal["title"] == "Feedback"
        answered = await erin.submit_modal(opened, {"plain": "good", "labelled": "great"})
    assert answered.text() == "thanks good great"


async def test_upload_and_attachment_read(fake_discord: FakeDiscord) -> None:
    song = b"ID3" + bytes(range(200))
    async with running(fake_discord):
        finn = fake_discord.member("finn")
        record = await finn.upload(fake_discord.guild.channels["general"], "submitfile",
                                   file=("song.mp3", song, "audio/mpeg"), note="hey")  # fmt: skip
        answer = await record.wait_for_followup(1)
    assert answer["content"] == f"song.mp3 {len(song)} hey"
    assert fake_discord.attachments[answer["attachments"][0]["id"]] == song[::-1]


async def test_autocomplete_choices(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord):
        record = await fake_discord.member("gus").autocomplete(fake_discord.guild.channels["general"], "pick",
                                                               focused="song", song="al")  # fmt: skip
    assert record.response_type == 8 and [c["value"] for c in record.choices] == ["alpha", "alps"]


async def test_send_pin_list_fetch_edit_and_history(fake_discord: FakeDiscord) -> None:
    queue_id = fake_discord.guild.channels["queue"]
    async with running(fake_discord) as bot:
        channel = bot.get_channel(int(queue_id))
        assert isinstance(channel, discord.TextChannel)
        first = await channel.send("first")
        second = await channel.send("second", embed=discord.Embed(title="Queue"))
        await second.pin()
        assert [m.id async for m in channel.pins()] == [second.id]
        fetched = await channel.fetch_message(second.id)
        await fetched.edit(content="second, edited")
        history = [m.content async for m in channel.history(limit=10)]
        older = [m.id async for m in channel.history(before=second)]
        await fake_discord.member("hana").send(queue_id, "hello bot")
        await fake_discord.wait_for(lambda: "hello bot" in bot.seen, 2, "on_message")
    # The pin left Discord's "pinned a message" notice (type 6, no content) after the pinned message.
    assert history == ["", "second, edited", "first"] and older == [first.id]
    notices = [m for m in fake_discord.channel_messages(queue_id) if m["type"] == 6]
    assert [n["message_reference"]["message_id"] for n in notices] == [str(second.id)]
    assert [m["content"] for m in fake_discord.pins(queue_id)] == ["second, edited"]
    assert fake_discord.count_edits(str(second.id)) == 1


async def test_a_429_is_retried(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    async with running(fake_discord) as bot:
        fake_discord.fail_next("POST", rf"/channels/{general}/messages$", 429, retry_after=0.2)
        started = time.monotonic()
        await bot.get_partial_messageable(int(general)).send("after a wait")
    assert time.monotonic() - started >= 0.2
    assert fake_discord.count("POST", rf"/channels/{general}/messages$") == 2 and fake_discord.count_status(429) == 1
    assert [m["content"] for m in fake_discord.channel_messages(general)] == ["after a wait"]


async def test_scripted_403_revoked_channel_closed_dms_and_edit_cap(fake_discord: FakeDiscord) -> None:
    general, debug = fake_discord.guild.channels["general"], fake_discord.guild.channels["debug"]
    shy = fake_discord.member("shy")
    fake_discord.close_dms(shy)
    async with running(fake_discord, max_ratelimit_timeout=30) as bot:
        user = await bot.fetch_user(shy.id)
        with pytest.raises(discord.Forbidden) as closed:
            await user.send("hi")
        old = await bot.get_partial_messageable(int(general)).send("old")
        fake_discord.fail_edit_cap(rf"/messages/{old.id}$")
        with pytest.raises(discord.RateLimited):  # retry_after 3600 > max_ratelimit_timeout: surfaced, not slept
            await old.edit(content="new")
        fake_discord.fail_forbidden("POST", rf"/channels/{general}/messages$")
        with pytest.raises(discord.Forbidden) as refused:
            await bot.get_partial_messageable(int(general)).send("nope")
        fake_discord.revoke_channel_permission(debug)
        with pytest.raises(discord.Forbidden):
            await bot.get_partial_messageable(int(debug)).send("nope")
    assert refused.value.code == 50013 and closed.value.code == 50007


@pytest.mark.allow_violations
async def test_double_response_gets_40060(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord) as bot:
        record = await fake_discord.member("ivan").slash(fake_discord.guild.channels["general"], "twice")
        await fake_discord.wait_for(lambda: bot.errors, 2, "the second callback to fail")
    assert record.text() == "one"
    assert isinstance(bot.errors[0], discord.HTTPException) and bot.errors[0].code == 40060
    assert fake_discord.violations == [f"interaction {record.id} (/twice) acknowledged twice"]


@pytest.mark.allow_violations
async def test_the_three_second_rule(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord) as bot:
        record = await fake_discord.member("jo").slash(fake_discord.guild.channels["general"], "late", wait=False)
        await fake_discord.wait_for(lambda: bot.errors, 5, "the late callback to fail")
    assert record.response_type is None
    assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062
    assert any("not acknowledged within 3 s" in v for v in fake_discord.violations)
    assert any("acknowledged after 3.2" in v for v in fake_discord.violations)


@pytest.mark.allow_violations
async def test_message_limits_answer_50035(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord) as bot:
        channel = bot.get_partial_messageable(int(fake_discord.guild.channels["general"]))
        with pytest.raises(discord.HTTPException) as refused:
            big = discord.Embed(title="report")
            for i in range(7):  # each field is within its own limit; the 6000 total is not (the spec cannot say so)
                big.add_field(name=f"part {i}", value="x" * 1000)
            await channel.send(embed=big)
    assert refused.value.code == 50035 and fake_discord.violations[0].startswith("limits: embeds: Embed size exceeds")


def require_contract_checks(fake: FakeDiscord) -> None:
    """Skip, saying why, when the spec is absent: a contract test must never pass silently."""
    if not fake.contract_checks_enabled:
        pytest.skip(f"Discord OpenAPI spec not found at {fake.contract.path}; contract checks skipped")


@pytest.mark.allow_violations
async def test_contract_check_rejects_an_invalid_body(fake_discord: FakeDiscord) -> None:
    require_contract_checks(fake_discord)
    url = f"{fake_discord.api_base_url}/channels/{fake_discord.guild.channels['general']}/messages"
    async with aiohttp.ClientSession() as session, session.post(url, json={"content": 5, "tts": "yes"}) as resp:
        status, body = resp.status, await resp.json()
    assert status == 400 and body["code"] == 50035
    assert any(v.startswith("contract: POST /channels/") for v in fake_discord.violations)
    assert fake_discord.channel_messages(fake_discord.guild.channels["general"]) == []


def test_contract_check_skips_when_the_spec_is_absent(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DISCORD_OPENAPI_SPEC", str(tmp_path / "missing.json"))
    assert spec_path() == tmp_path / "missing.json" and not ContractChecker().enabled
    fake = FakeDiscord()
    assert not fake.contract_checks_enabled
    with pytest.raises(pytest.skip.Exception, match=r"OpenAPI spec not found at .*missing\.json"):
        require_contract_checks(fake)


async def test_gateway_drop_resumes_and_replays_missed_events(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord) as bot:
        await fake_discord.drop_gateway(4000)
        await fake_discord.member("kim").send(fake_discord.guild.channels["general"], "while you were away")
        await fake_discord.wait_for(lambda: fake_discord.resumes == 1, 3, "a RESUME")
        await fake_discord.wait_for(lambda: "while you were away" in bot.seen, 2, "the replayed message")
    assert fake_discord.identifies == 1


async def test_invalid_session_makes_the_client_identify_again(fake_discord: FakeDiscord) -> None:
    async with running(fake_discord) as bot:
        fake_discord.invalidate_session()
        await fake_discord.wait_for(lambda: fake_discord.identifies == 2 and bot.ready_count == 2, 3, "re-IDENTIFY")
        record = await fake_discord.member("lea").slash(fake_discord.guild.channels["general"], "pick", song="x")
    assert record.text() == "picked x" and fake_discord.resumes == 0


async def test_persistent_view_survives_a_restart(fake_discord: FakeDiscord) -> None:
    mo = fake_discord.member("mo")
    async with running(fake_discord):
        message = (await mo.slash(fake_discord.guild.channels["queue"], "panel")).messages()[0]
    async with running(fake_discord):
        clicked: InteractionRecord = await mo.click(message, "sample:press")
    assert clicked.response_type == 7 and message["content"] == "pressed 1"
    assert fake_discord.identifies == 2


# ---------------------------------------------------------------------- Discord's real conditions (issue 11 A)


async def test_upload_limit_is_10_mib_unboosted_and_follows_the_boost_level(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    ivy = fake_discord.member("ivy")
    async with running(fake_discord) as bot:
        assert (await ivy.slash(general, "limit")).text() == f"{10 * MiB} 0"
        for how in ("response", "followup", "channel"):
            over = await ivy.slash(general, "blob", size=10 * MiB + 1, how=how)
            assert "refused 413 40005" in await over.wait_text("refused"), how
        fits = await ivy.slash(general, "blob", size=10 * MiB, how="followup")
        assert (await fits.wait_for_followup(1))["attachments"][0]["size"] == 10 * MiB
        fake_discord.set_boost_tier(2)
        guild = bot.get_guild(int(fake_discord.guild_id))
        await fake_discord.wait_for(lambda: guild.premium_tier == 2, 2, "GUILD_UPDATE")
        assert (await ivy.slash(general, "limit")).text() == f"{50 * MiB} 2"
        boosted = await ivy.slash(general, "blob", size=20 * MiB, how="channel")
        assert "sent" in await boosted.wait_text("sent")
    assert fake_discord.count_status(413) == 3
    assert not any(len(data) > 50 * MiB for data in fake_discord.attachments.values())


async def test_commands_are_hidden_by_default_permission_and_context_unless_granted(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    role = fake_discord.add_role("Mods")
    mod = fake_discord.add_member("mod", roles=[role])
    boss = fake_discord.add_member("boss", permissions=MANAGE_GUILD)
    root = fake_discord.add_member("root", permissions=1 << 3)  # Administrator sees everything
    async with running(fake_discord):
        assert fake_discord.commands["admin"]["default_member_permissions"] == str(MANAGE_GUILD)
        assert fake_discord.commands["admin"]["contexts"] == [0]
        with pytest.raises(CommandHidden):
            await mod.slash(general, "admin")
        assert (await boss.slash(general, "admin")).text() == "admin ok"
        assert (await root.slash(general, "admin")).text() == "admin ok"
        fake_discord.allow_command("admin", role)  # Server Settings → Integrations: the role may see it
        assert (await mod.slash(general, "admin")).text() == "admin ok"
        fake_discord.allow_command("admin", mod, allowed=False)  # a member override beats the role's
        assert not mod.can_see("admin", general)
        # In a DM only global commands exist, and a guild-only one is not offered there.
        with pytest.raises(CommandHidden):
            await boss.slash(boss.dm, "admin")
        in_dm = await mod.slash(mod.dm, "echo", text="dm", times=1)
    assert in_dm.text() == "dm"


async def test_interaction_tokens_expire_after_15_minutes(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    async with running(fake_discord) as bot:
        record = await fake_discord.member("jo").slash(general, "slow")
        await record.wait_for_followup(2)
        interaction = bot.interactions[-1]
        fake_discord.advance_clock(14 * 60)
        await interaction.followup.send("still in time")
        await interaction.edit_original_response(content="edited in time")
        fake_discord.advance_clock(60 + 1)
        with pytest.raises(discord.HTTPException) as late:
            await interaction.followup.send("too late")
        with pytest.raises(discord.HTTPException) as late_edit:
            await interaction.edit_original_response(content="too late")
    assert (late.value.status, late.value.code) == (401, 50027)
    assert (late_edit.value.status, late_edit.value.code) == (401, 50027)
    assert "too late" not in record.text() and "edited in time" in record.text()


@pytest.mark.allow_violations  # nobody answers the stale click: that is the point
async def test_a_click_on_a_component_whose_view_is_gone_is_still_delivered(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    row = {"type": 1, "components": [{"type": 2, "style": 1, "label": "Old", "custom_id": "gone:menu"}]}
    stale = fake_discord.new_message(general, {"content": "an old menu", "components": [row]}, flags=1 << 6)
    async with running(fake_discord) as bot:
        await fake_discord.member("kai").click(stale, "gone:menu", wait=False)
        await fake_discord.wait_for(lambda: bot.interactions, 2, "the stale click to reach the bot")
    assert bot.interactions[0].data["custom_id"] == "gone:menu"  # type: ignore[index]


async def test_pinning_needs_pin_messages_and_read_history_not_manage_messages(fake_discord: FakeDiscord) -> None:
    queue_id = fake_discord.guild.channels["queue"]
    async with running(fake_discord) as bot:
        channel = bot.get_channel(int(queue_id))
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("pin me")
        fake_discord.set_bot_permissions(BOT_PERMISSIONS & ~PIN_MESSAGES)  # Manage Messages is kept
        assert BOT_PERMISSIONS & ~PIN_MESSAGES & MANAGE_MESSAGES
        await fake_discord.wait_for(lambda: not channel.permissions_for(channel.guild.me).pin_messages, 2, "role")
        with pytest.raises(discord.Forbidden) as no_pin:
            await message.pin()
        fake_discord.set_bot_permissions(BOT_PERMISSIONS)
        fake_discord.set_overwrite(queue_id, fake_discord.bot_role_id, deny=READ_MESSAGE_HISTORY)
        await fake_discord.wait_for(lambda: not channel.permissions_for(channel.guild.me).read_message_history, 2,
                                    "overwrite")  # fmt: skip
        with pytest.raises(discord.Forbidden) as no_history:
            await message.pin()
        fake_discord.set_overwrite(queue_id, fake_discord.bot_role_id)
        await message.pin()
    assert no_pin.value.code == no_history.value.code == 50013
    assert [m["content"] for m in fake_discord.pins(queue_id)] == ["pin me"]


async def test_without_message_content_other_peoples_text_arrives_empty(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild.channels["general"]
    async with running(fake_discord, intents=discord.Intents(guilds=True, guild_messages=True)) as bot:
        await fake_discord.member("lea").send(general, "secret chatter")
        await fake_discord.wait_for(lambda: bot.seen, 2, "on_message")
        own = await bot.get_partial_messageable(int(general)).send("my own words")
    assert bot.seen == [""] and own.content == "my own words"
    assert fake_discord.intents & PRIVILEGED_INTENTS == 0


async def test_privileged_intents_need_the_portal_switch(fake_discord: FakeDiscord) -> None:
    bot = SampleBot(fake_discord.guild_id)  # asks for members and message content; the portal has neither
    try:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(bot.start("fake-token"), 5)
    finally:
        await bot.close()
    assert fake_discord.gateway.refused_intents == discord.Intents(members=True, message_content=True).value

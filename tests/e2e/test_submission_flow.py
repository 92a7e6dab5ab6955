"""Submitting the way people do: /submit modal, the skip question, files, history, the portal."""

from __future__ import annotations

import pytest

from models import Line
from tests.audio_samples import mp3_bytes, wav_bytes
from tests.conftest import BotEnv
from tests.fakediscord import Actor, InteractionRecord
from tests.fakediscord.actors import walk_components


async def submit_link(env: BotEnv, who: Actor, artist: str, title: str, link: str, *, skip: bool = False,
                      note: str = "", handle: str | None = None) -> InteractionRecord:  # fmt: skip
    """Run /submit, fill the modal, answer the skip question; returns the skip-question interaction."""
    options = {"tiktok_handle": handle} if handle else {}
    opened = await who.slash(env.channels["general"], "submit", **options)
    assert opened.modal is not None and opened.modal["title"] == "Submit a song"
    ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
    answered = await who.submit_modal(opened, dict(zip(ids, [artist, title, link, note], strict=True)))
    question = answered.messages()[0]
    if "Is this submission a skip" not in question["content"]:
        return answered  # refused before the question (the reason is in the answer)
    label = "Yes" if skip else "No"
    return await who.click(question, who.find_custom_id(question, label))


async def test_submit_free_then_pending_with_confirmation(bot_env: BotEnv) -> None:
    done = await submit_link(bot_env, bot_env.member, "Daft Punk", "One More Time", "https://youtu.be/FGBhQbmPwH8")
    text = done.text()
    assert done.response_type == 7 and "Submitted" in text and "Free" in text and "#1" in text
    assert "YouTube" in text and "Estimated wait" in text
    queue = await bot_env.bot.queue.ordered_queue(bot_env.guild_id)
    assert [e.submission.title for e in queue] == ["One More Time"]
    other = bot_env.fake.member("zoe")
    pending = await submit_link(bot_env, other, "A", "B", "https://open.spotify.com/track/x", skip=True)
    shown = pending.text().replace("\xa0", " ")  # badges glue their words with no-break spaces
    assert "Pending Skips" in shown and "A reviewer checks your skip" in shown


async def test_invalid_link_is_refused_and_nothing_stored(bot_env: BotEnv) -> None:
    refused = await submit_link(bot_env, bot_env.member, "A", "B", "javascript:alert(1)")
    assert refused.ephemeral and "http://" in refused.text()
    assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 0


async def test_free_closed_one_active_free_and_duplicates(bot_env: BotEnv) -> None:
    await bot_env.bot.queue.set_free_open(bot_env.guild_id, False)
    closed = await submit_link(bot_env, bot_env.member, "A", "B", "https://x.test/1")
    assert "Free line is closed" in closed.text()
    await bot_env.bot.queue.set_free_open(bot_env.guild_id, True)
    await submit_link(bot_env, bot_env.member, "A", "B", "https://x.test/1")
    second = await submit_link(bot_env, bot_env.member, "C", "D", "https://x.test/2")
    assert "already have" in second.text()
    dup = await submit_link(bot_env, bot_env.fake.member("dupe"), "a", "b", "https://x.test/other")
    assert "already in the queue" in dup.text()


async def test_everyone_in_a_title_pings_nobody(bot_env: BotEnv) -> None:
    await bot_env.bot.displays.ensure(bot_env.guild_id, __import__("models").DisplayKind.LIVE_QUEUE,
                                      bot_env.bot.get_partial_messageable(int(bot_env.channels["queue"])))  # fmt: skip
    await submit_link(bot_env, bot_env.member, "@everyone", "@here <@&123>", "https://x.test/ping")
    await bot_env.settle()
    for message in bot_env.fake.messages.values():
        if message["author"]["id"] == bot_env.fake.app_id:
            mentions = message.get("allowed_mentions")
            assert mentions is not None and mentions.get("parse") == [], message


async def test_submitfile_stores_a_durable_copy(bot_env: BotEnv) -> None:
    record = await bot_env.member.upload(bot_env.channels["general"], "submitfile", ("demo.mp3", mp3_bytes(80)),
                                         artist="Me", song="Demo")  # fmt: skip
    await bot_env.fake.wait_for(lambda: "skip" in record.text(), 5, "the skip question")
    question = record.messages()[0]
    done = await bot_env.member.click(question, bot_env.member.find_custom_id(question, "No"))
    assert "Submitted" in done.text() and "Audio file" in done.text()
    sub = (await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id))[0]
    assert sub.file_path and (await bot_env.bot.audio.read(sub.file_path)) == mp3_bytes(80)
    assert sub.duration and sub.duration > 1


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("song.mp3", wav_bytes(), "not a valid MP3"),
        ("song.exe", wav_bytes(), "Only MP3"),
        ("empty.wav", b"", "empty"),
        ("../../etc/passwd.wav", b"RIFFxxxx", "not a valid WAV"),
    ],
)
async def test_bad_files_get_a_reason(bot_env: BotEnv, name: str, data: bytes, reason: str) -> None:
    record = await bot_env.member.upload(bot_env.channels["general"], "submitfile", (name, data), artist="A", song="B")
    await record.wait_text(reason)
    assert record.ephemeral
    audio_dir = bot_env.config.data_dir / "audio"
    assert not audio_dir.exists() or not [p for p in audio_dir.rglob("*") if p.is_file()]  # nothing partial kept


async def test_mysubmissions_withdraw_and_resubmit(bot_env: BotEnv) -> None:
    await submit_link(bot_env, bot_env.member, "A", "Song", "https://x.test/s")
    mine = await bot_env.member.slash(bot_env.channels["general"], "mysubmissions")
    page = mine.messages()[0]
    assert "Your submissions" in mine.text()
    sub = (await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id))[0]
    # Issue 16 point 14: one song, so no select, no paging and no disabled button; only what can be done.
    controls = [c for c in walk_components(page["components"]) if c["type"] in (2, 3)]
    assert [c.get("label") for c in controls] == [f"Withdraw #{sub.public_id}"]
    assert not any(c.get("disabled") for c in controls)
    withdrawn = await bot_env.member.click(page, controls[0]["custom_id"])
    assert "Withdrew" in withdrawn.text() and withdrawn.response_type == 7
    assert (await bot_env.bot.queue.get(bot_env.guild_id, sub.public_id)).line is Line.REMOVED
    page = bot_env.fake.messages[page["id"]]
    assert "removed" in withdrawn.text() and "Withdraw" not in str(page["components"])
    again = await bot_env.member.click(page, bot_env.member.find_custom_id(page, "again"))
    question = again.messages()[-1]
    done = await bot_env.member.click(question, bot_env.member.find_custom_id(question, "No"))
    assert "Submitted" in done.text()
    assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 2


async def test_mysubmissions_with_several_songs_offers_actions_once_one_is_chosen(bot_env: BotEnv) -> None:
    for n in range(2):
        await submit_link(bot_env, bot_env.member, "A", f"Song {n}", f"https://x.test/m{n}", skip=n == 0)
        if n == 0:
            pending = (await bot_env.bot.queue.pending_head(bot_env.guild_id, 1))[0][0]
            await bot_env.bot.queue.approve(bot_env.guild_id, pending.public_id, Line.SKIP)
    mine = await bot_env.member.slash(bot_env.channels["general"], "mysubmissions")
    page = mine.messages()[0]
    controls = [c for c in walk_components(page["components"]) if c["type"] in (2, 3)]
    assert [c["type"] for c in controls] == [3]  # only the select: nothing else can be used yet
    newest = (await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id))[0]
    chosen = await bot_env.member.click(page, controls[0]["custom_id"], values=[newest.public_id])
    assert chosen.response_type == 7 and f"Withdraw #{newest.public_id}" in str(chosen.messages()[0]["components"])


async def test_someone_else_cannot_answer_my_skip_question(bot_env: BotEnv) -> None:
    opened = await bot_env.member.slash(bot_env.channels["general"], "submit")
    ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
    answered = await bot_env.member.submit_modal(
        opened, dict(zip(ids, ["A", "B", "https://x.test/q", ""], strict=True))
    )
    question = answered.messages()[0]
    stranger = bot_env.fake.member("stranger")
    refused = await stranger.click(question, stranger.find_custom_id(question, "Yes"))
    assert "someone else's" in refused.text()
    assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 0


async def test_portal_survives_a_restart(bot_env: BotEnv) -> None:
    setup = await bot_env.admin.slash(
        bot_env.channels["general"], "setup-submission-portal", channel=bot_env.channels["submit"]
    )
    await setup.wait_text("submission portal is in")
    portal = bot_env.fake.channel_messages(bot_env.channels["submit"])[-1]
    await bot_env.restart()
    howto = await bot_env.member.click(portal, "mq:portal:file")
    assert "/submitfile" in howto.text()
    opened = await bot_env.member.click(portal, "mq:portal:link")
    assert opened.modal is not None


async def test_handle_autocomplete_answers_from_the_index(bot_env: BotEnv) -> None:
    await bot_env.bot.points.link(bot_env.guild_id, bot_env.member.id, "max.beats")
    await bot_env.bot.db.ensure_handle(bot_env.guild_id, "maxine")
    record = await bot_env.member.autocomplete(bot_env.channels["general"], "submit", "tiktok_handle", "@ma")
    assert [c["value"] for c in record.choices] == ["max.beats", "maxine"]


async def test_two_members_fill_the_form_at_the_same_time(bot_env: BotEnv) -> None:
    """discord.py keys open modals by custom_id: each form must have its own, or one replaces the other."""
    first, second = bot_env.fake.member("first"), bot_env.fake.member("second")
    opened_a = await first.slash(bot_env.channels["general"], "submit", tiktok_handle="first.handle")
    opened_b = await second.slash(bot_env.channels["general"], "submit")
    assert opened_a.modal["custom_id"] != opened_b.modal["custom_id"]
    for who, opened, n in ((second, opened_b, 2), (first, opened_a, 1)):
        ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
        answered = await who.submit_modal(
            opened, dict(zip(ids, ["A", f"T{n}", f"https://x.test/{n}", ""], strict=True))
        )
        question = answered.messages()[0]
        assert "Is this submission a skip" in question["content"]
        await who.click(question, who.find_custom_id(question, "No"))
    history = await bot_env.bot.db.user_history(bot_env.guild_id, first.id)
    assert history[0].tiktok_handle == "first.handle"  # the first form kept its own option
    assert await bot_env.bot.db.count_user_history(bot_env.guild_id, second.id) == 1


# ---------------------------------------------------------------------- the named handle's standing (issue 12.4)

NO_POINTS = "carries no points for this song"


async def test_an_unproven_own_handle_is_accepted_and_the_receipt_gives_its_code(bot_env: BotEnv) -> None:
    linked = await bot_env.member.slash(bot_env.channels["general"], "link-tiktok", handle="@Max.Beats")
    code = await bot_env.bot.db.link_code_of(bot_env.guild_id, "max.beats", bot_env.member.id)
    assert code and code in linked.text()
    done = await submit_link(bot_env, bot_env.member, "A", "Unproven", "https://x.test/u", handle="max.beats")
    text = done.text()
    assert "Submitted" in text and NO_POINTS in text
    assert f"type `{code}` in the live chat from @max.beats" in text
    assert (await bot_env.bot.db.user_history(bot_env.guild_id, bot_env.member.id))[0].tiktok_handle == "max.beats"


async def test_an_unlinked_handle_points_to_link_tiktok_and_someone_elses_says_so(bot_env: BotEnv) -> None:
    done = await submit_link(bot_env, bot_env.member, "A", "Unlinked", "https://x.test/n", handle="never.linked")
    assert NO_POINTS in done.text() and "`/link-tiktok never.linked`" in done.text()
    other = bot_env.fake.member("owner")
    await bot_env.bot.points.admin_link(bot_env.guild_id, other.id, "their.handle")
    rider = bot_env.fake.member("rider")
    taken = await submit_link(bot_env, rider, "B", "Borrowed", "https://x.test/b", handle="their.handle")
    assert "Submitted" in taken.text() and "linked to another member" in taken.text()
    assert f"<@{other.id}>" not in taken.text() and "owner" not in taken.text().lower()


async def test_a_proven_handle_and_the_setting_off_add_no_line(bot_env: BotEnv) -> None:
    await bot_env.bot.points.admin_link(bot_env.guild_id, bot_env.member.id, "max.real")
    proven = await submit_link(bot_env, bot_env.member, "A", "Proven", "https://x.test/p", handle="max.real")
    assert "Submitted" in proven.text() and "⚠️" not in proven.text() and NO_POINTS not in proven.text()
    await bot_env.bot.db.update_settings(bot_env.guild_id, verified_handles_only=False)
    other = bot_env.fake.member("zoe")
    await other.slash(bot_env.channels["general"], "link-tiktok", handle="zoe.unproven")
    off = await submit_link(bot_env, other, "B", "Off", "https://x.test/o", handle="zoe.unproven")
    assert "Submitted" in off.text() and "⚠️" not in off.text() and NO_POINTS not in off.text()

"""Reviewing through the fake Discord: /next and its handover, approvals, ratings, bookmarks, refusals."""

from __future__ import annotations

import re
import time

import pytest

from models import EngagementEvent, EventKind, Line
from services.queue import AudioFile
from tests.audio_samples import mp3_bytes
from tests.conftest import BotEnv
from tests.fakediscord.actors import walk_components


async def add(env: BotEnv, user: int, n: int, line: Line = Line.FREE, **kw) -> str:
    queue = env.bot.queue
    draft = queue.draft(artist=f"Artist {n}", title=f"Song {n}", note=kw.get("note"),
                        link=kw.get("link", f"https://youtu.be/v{n}"), audio=kw.get("audio"),
                        handle=kw.get("handle"))  # fmt: skip
    placed = await queue.submit(env.guild_id, user, f"user{user}", draft, skip=line is not Line.FREE)
    if line not in (Line.FREE, Line.PENDING):
        await queue.approve(env.guild_id, placed.submission.public_id, line)
    return placed.submission.public_id


async def setup_displays(env: BotEnv) -> None:
    live = await env.admin.slash(env.channels["general"], "setup-live-queue", channel=env.channels["queue"])
    await live.wait_text("live queue is pinned")
    rev = await env.admin.slash(env.channels["general"], "setup-reviewer-channel", channel=env.channels["reviewers"])
    await rev.wait_text("reviewer panel is pinned")


def display_message(env: BotEnv, channel: str, title: str) -> dict:
    for message in env.fake.channel_messages(env.channels[channel]):
        if any(title in (e.get("title") or "") for e in message["embeds"]):
            return message
    raise AssertionError(f"no {title!r} display in #{channel}")


async def test_next_plays_by_priority_fifo_and_free_by_points(bot_env: BotEnv) -> None:
    await bot_env.bot.db.update_settings(bot_env.guild_id, now_playing_channel_id=int(bot_env.channels["now"]))
    free_early = await add(bot_env, 1, 1)
    skip = await add(bot_env, 2, 2, Line.SKIP)
    b2b = await add(bot_env, 3, 3, Line.BACK_TO_BACK)
    ds = await add(bot_env, 4, 4, Line.DOUBLE_SKIP)
    skip2 = await add(bot_env, 5, 5, Line.SKIP)
    free_fan = await add(bot_env, 6, 6, handle="big.fan")
    await bot_env.bot.points.admin_link(bot_env.guild_id, 6, "big.fan")  # proven: its points count
    # A share on the live puts the later Free song ahead of the earlier one.
    bot_env.bot.engagement.add(bot_env.guild_id, [EngagementEvent(EventKind.SHARE, "big.fan", time.time())])
    await bot_env.settle()
    played = []
    for _ in range(6):
        record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
        text = await record.wait_text("Now playing")
        assert record.ephemeral
        played.append(re.search(r"#([A-Z0-9]{5})", text).group(1))
    assert played == [b2b, ds, skip, skip2, free_fan, free_early]
    empty = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await empty.wait_text("queue is empty")
    assert empty.ephemeral
    announcements = bot_env.fake.channel_messages(bot_env.channels["now"])
    assert len(announcements) == 6 and all("Now playing" in m["content"] for m in announcements)
    assert all(m["allowed_mentions"] == {"parse": []} for m in announcements)


async def test_next_dms_the_opted_in_submitter_and_the_one_who_is_next(bot_env: BotEnv) -> None:
    member, other = bot_env.member, bot_env.fake.member("olga")
    await add(bot_env, member.id, 1, Line.SKIP)
    await add(bot_env, other.id, 2)
    for who in (member, other):
        await bot_env.bot.db.set_dm_notify(bot_env.guild_id, who.id, True)
    bot_env.fake.closed_dms.add(other.user_id)  # closed DMs are fine: the song still plays
    record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await record.wait_text("Now playing")
    dm = bot_env.fake.dm_channel_of(member.user_id)
    await bot_env.fake.wait_for(lambda: bot_env.fake.channel_messages(dm), 5, "the DM")
    assert "playing now" in bot_env.fake.channel_messages(dm)[0]["content"]
    second = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await second.wait_text("Now playing")


async def test_next_hands_over_the_stored_file_and_bookmark_and_rating(bot_env: BotEnv) -> None:
    path = await bot_env.bot.audio.save(bot_env.guild_id, "mp3", mp3_bytes(40))
    await add(bot_env, 1, 1, link=None, audio=AudioFile(path, "demo.mp3", 1.0))
    record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await record.wait_text("Now playing")
    answer = record.messages()[0]
    assert answer["attachments"] and bot_env.fake.attachments[answer["attachments"][0]["id"]] == mp3_bytes(40)
    assert "attached: demo.mp3" in record.text()
    bookmark_id = bot_env.reviewer.find_custom_id(answer, "Bookmark")
    unset = await bot_env.reviewer.click(answer, bookmark_id)
    assert "No bookmark channel" in unset.text() and unset.ephemeral
    await bot_env.bot.db.update_settings(bot_env.guild_id, bookmark_channel_id=int(bot_env.channels["bookmarks"]))
    bookmark = await bot_env.reviewer.click(answer, bookmark_id)
    await bot_env.fake.wait_for(lambda: bot_env.fake.channel_messages(bot_env.channels["bookmarks"]), 5, "bookmark")
    assert bookmark.response_type == 6  # acknowledged first: posting elsewhere may wait on a rate limit
    # Issue 16 point 10: the button says where the bookmark went, and so does the answer.
    await bot_env.fake.wait_for(lambda: "Bookmarked in #bookmarks" in str(answer["components"]), 5, "the button")
    posted = bot_env.fake.channel_messages(bot_env.channels["bookmarks"])[0]
    assert "Song 1" in posted["embeds"][0]["description"]
    assert (
        f"bookmarked in <#{bot_env.channels['bookmarks']}>" in answer["content"] and posted["id"] in answer["content"]
    )
    # One select from 1 to 10, not ten buttons.
    score = bot_env.reviewer.find_custom_id(answer, "Rate it")
    assert not [c for c in walk_components(answer["components"]) if c.get("label") in {str(n) for n in range(1, 11)}]
    rated = await bot_env.reviewer.click(answer, score, values=["8"])
    assert rated.response_type == 7 and "8/10" in rated.text()
    assert answer["attachments"], "rating keeps the file on the message"
    sub = (await bot_env.bot.db.user_history(bot_env.guild_id, 1))[0]
    assert sub.rating == 8 and sub.line is Line.PLAYED


async def test_plain_members_are_refused_everywhere_including_forged_ids(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    await add(bot_env, 1, 1)
    refused = await bot_env.member.slash(bot_env.channels["general"], "next")
    assert "Only reviewers" in refused.text() and refused.ephemeral
    panel = display_message(bot_env, "reviewers", "Reviewer queue")
    click = await bot_env.member.click(panel, "mq:rv:next")
    assert "Only reviewers" in click.text()
    # A member replays the reviewer button's id on a message of their own choosing: still refused.
    forged = await bot_env.member.click(display_message(bot_env, "queue", "Live Music Queue"), "mq:rv:next")
    assert "Only reviewers" in forged.text()
    bot_env.fake.allow_command("clearfree")  # even when shown to everyone, the runtime check refuses
    admin_cmd = await bot_env.member.slash(bot_env.channels["general"], "clearfree")
    assert "Only admins" in admin_cmd.text()
    assert len(await bot_env.bot.queue.ordered_queue(bot_env.guild_id)) == 1


async def test_pending_skip_approved_from_the_select_and_in_place(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    first = await add(bot_env, 1, 1, Line.PENDING)
    second = await add(bot_env, 2, 2, Line.PENDING)
    await bot_env.settle()
    panel = display_message(bot_env, "reviewers", "Pending skips")
    # A plain member pressing a real approve button on the panel is refused, and nothing moves.
    refused = await bot_env.member.click(panel, f"mq:rv:ap:{first}:b2b")
    assert "Only reviewers" in refused.text() and refused.ephemeral
    assert (await bot_env.bot.queue.get(bot_env.guild_id, first)).line is Line.PENDING
    # Through the select: a private offer whose buttons approve.
    choose = await bot_env.reviewer.click(panel, "mq:rv:pending", values=[first])
    offer = choose.messages()[0]
    assert choose.ephemeral
    done = await bot_env.reviewer.click(offer, bot_env.reviewer.find_custom_id(offer, "Approve: DoubleSkip"))
    assert done.response_type == 7 and "DoubleSkip" in done.text()
    assert (await bot_env.bot.queue.get(bot_env.guild_id, first)).line is Line.DOUBLE_SKIP
    # A row button on the panel itself: the panel is redrawn by the interaction (type 7), no channel PATCH.
    await bot_env.settle()
    patches = bot_env.fake.count("PATCH", f"/messages/{panel['id']}$")
    denied = await bot_env.reviewer.click(panel, f"mq:rv:ap:{second}:free")
    assert denied.response_type == 7
    await bot_env.settle()
    assert bot_env.fake.count("PATCH", f"/messages/{panel['id']}$") == patches
    assert "No pending skips" in bot_env.fake.messages[panel["id"]]["embeds"][0]["description"]
    assert (await bot_env.bot.queue.get(bot_env.guild_id, second)).line is Line.FREE
    await bot_env.fake.wait_for(lambda: "denied" in denied.text(), 5, "the private note")


@pytest.mark.allow_violations
async def test_the_fake_flags_a_late_acknowledgement(bot_env: BotEnv) -> None:
    """The 3 second rule is enforced by the harness itself (so the other tests mean something)."""
    from tests.fakediscord.server import ACK_WINDOW

    _payload, record = bot_env.member._envelope(2, bot_env.channels["general"], {"name": "help"})
    record.created -= ACK_WINDOW + 0.5  # as if the bot had taken too long
    bot_env.fake.interactions[record.id] = record
    status = await _raw_callback(bot_env, record)
    assert status == 404 and any("after" in v for v in bot_env.fake.violations)


async def _raw_callback(env: BotEnv, record) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        url = f"{env.fake.api_base_url}/interactions/{record.id}/{record.token}/callback"
        async with session.post(url, json={"type": 4, "data": {"content": "late"}}) as response:
            return response.status

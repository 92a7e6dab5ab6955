"""Reviewing and the pinned displays, through the fake Discord."""

from __future__ import annotations

import asyncio
import re

import pytest

from models import Line
from services.queue import AudioFile
from tests.audio_samples import mp3_bytes
from tests.conftest import BotEnv


async def add(env: BotEnv, user: int, n: int, line: Line = Line.FREE, **kw) -> str:
    queue = env.bot.queue
    draft = queue.draft(artist=f"Artist {n}", title=f"Song {n}", note=kw.get("note"),
                        link=kw.get("link", f"https://youtu.be/v{n}"), audio=kw.get("audio"))  # fmt: skip
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


async def test_next_plays_by_priority_and_fifo(bot_env: BotEnv) -> None:
    await bot_env.bot.db.update_settings(bot_env.guild_id, now_playing_channel_id=int(bot_env.channels["now"]))
    free = await add(bot_env, 1, 1)
    skip = await add(bot_env, 2, 2, Line.SKIP)
    b2b = await add(bot_env, 3, 3, Line.BACK_TO_BACK)
    ds = await add(bot_env, 4, 4, Line.DOUBLE_SKIP)
    skip2 = await add(bot_env, 5, 5, Line.SKIP)
    played = []
    for _ in range(5):
        record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
        text = await record.wait_text("Now playing")
        played.append(re.search(r"#([A-Z0-9]{5})", text).group(1))
    assert played == [b2b, ds, skip, skip2, free]
    empty = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await empty.wait_text("queue is empty")
    announcements = [m["content"] for m in bot_env.fake.channel_messages(bot_env.channels["now"])]
    assert len(announcements) == 5 and all("Now playing" in a for a in announcements)


async def test_next_hands_over_the_stored_file_and_bookmark_and_rating(bot_env: BotEnv) -> None:
    path = await bot_env.bot.audio.save(bot_env.guild_id, "mp3", mp3_bytes(40))
    await add(bot_env, 1, 1, link=None, audio=AudioFile(path, "demo.mp3", 1.0))
    await bot_env.bot.db.update_settings(bot_env.guild_id, bookmark_channel_id=int(bot_env.channels["bookmarks"]))
    record = await bot_env.reviewer.slash(bot_env.channels["reviewers"], "next")
    await record.wait_text("Now playing")
    answer = record.messages()[0]
    assert answer["attachments"] and bot_env.fake.attachments[answer["attachments"][0]["id"]] == mp3_bytes(40)
    bookmark = await bot_env.reviewer.click(answer, bot_env.reviewer.find_custom_id(answer, "Bookmark"))
    await bot_env.fake.wait_for(lambda: bot_env.fake.channel_messages(bot_env.channels["bookmarks"]), 5, "bookmark")
    assert bookmark.response_type == 6
    rated = await bot_env.reviewer.click(answer, bot_env.reviewer.find_custom_id(answer, "8"))
    assert "8/10" in rated.text()
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
    admin_cmd = await bot_env.member.slash(bot_env.channels["general"], "clearfree")
    assert "Only admins" in admin_cmd.text()
    assert len(await bot_env.bot.queue.ordered_queue(bot_env.guild_id)) == 1


async def test_pending_skip_approved_from_the_panel(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    pid = await add(bot_env, 1, 1, Line.PENDING)
    await bot_env.settle()
    panel = display_message(bot_env, "reviewers", "Pending skips")
    choose = await bot_env.reviewer.click(panel, "mq:rv:pending", values=[pid])
    offer = choose.messages()[0]
    done = await bot_env.reviewer.click(offer, bot_env.reviewer.find_custom_id(offer, "Approve: DoubleSkip"))
    assert "DoubleSkip" in done.text()
    assert (await bot_env.bot.queue.get(bot_env.guild_id, pid)).line is Line.DOUBLE_SKIP
    denied = await bot_env.member.click(offer, bot_env.member.find_custom_id(offer, "Deny"))
    assert "Only reviewers" in denied.text()


async def test_displays_update_coalesced_under_a_burst(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    live = display_message(bot_env, "queue", "Live Music Queue")
    before = bot_env.fake.count("PATCH", f"/messages/{live['id']}$")
    start = asyncio.get_running_loop().time()
    await asyncio.gather(*(add(bot_env, 100 + n, n) for n in range(50)))
    await bot_env.settle()
    elapsed = asyncio.get_running_loop().time() - start
    edits = bot_env.fake.count("PATCH", f"/messages/{live['id']}$") - before
    window = bot_env.config.display_refresh_seconds
    assert 1 <= edits <= int(elapsed / window) + 2, (edits, elapsed)
    shown = bot_env.fake.messages[live["id"]]["embeds"][0]
    assert "50 songs" in shown["footer"]["text"]
    # Nothing changed: no edit at all.
    bot_env.bot.displays.request(bot_env.guild_id)
    await bot_env.settle()
    assert bot_env.fake.count("PATCH", f"/messages/{live['id']}$") - before == edits


async def test_deleted_display_is_recreated_and_repinned(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    live = display_message(bot_env, "queue", "Live Music Queue")
    await bot_env.fake.delete_message(bot_env.channels["queue"], live["id"])
    await add(bot_env, 1, 1)
    await bot_env.settle()
    pins = bot_env.fake.pins(bot_env.channels["queue"])
    assert len(pins) == 1 and pins[0]["id"] != live["id"]
    assert "1 songs" in pins[0]["embeds"][0]["footer"]["text"]


async def test_edit_cap_replaces_the_message_and_429_is_survived(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    live = display_message(bot_env, "queue", "Live Music Queue")
    bot_env.fake.fail_next("PATCH", f"/messages/{live['id']}$", 429, retry_after=0.2, times=2)
    await add(bot_env, 1, 1)
    await bot_env.settle()
    assert "1 songs" in bot_env.fake.messages[live["id"]]["embeds"][0]["footer"]["text"]
    bot_env.fake.fail_next("PATCH", f"/messages/{live['id']}$", 429, code=30046, retry_after=3600)
    await add(bot_env, 2, 2)
    await bot_env.settle()
    pins = bot_env.fake.pins(bot_env.channels["queue"])
    assert len(pins) == 1 and pins[0]["id"] != live["id"] and live["id"] not in bot_env.fake.messages
    assert "2 songs" in pins[0]["embeds"][0]["footer"]["text"]


async def test_restart_keeps_queue_buttons_and_no_duplicate_pins(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    await add(bot_env, 1, 1)
    await bot_env.settle()
    await bot_env.restart()
    # Setting up again after the restart reuses the pinned messages instead of posting new ones.
    await setup_displays(bot_env)
    assert len(bot_env.fake.pins(bot_env.channels["queue"])) == 1
    assert len(bot_env.fake.pins(bot_env.channels["reviewers"])) == 2
    panel = display_message(bot_env, "reviewers", "Reviewer queue")
    record = await bot_env.reviewer.click(panel, "mq:rv:next")
    await record.wait_text("Now playing")
    assert bot_env.fake.identifies == 2


async def test_public_paging_is_private_to_the_clicker(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    for n in range(25):
        await add(bot_env, 10 + n, n)
    await bot_env.settle()
    live = display_message(bot_env, "queue", "Live Music Queue")
    shown_before = bot_env.fake.messages[live["id"]]["embeds"][0]["description"]
    browse = await bot_env.member.click(live, "mq:lq:browse")
    assert browse.ephemeral
    page = browse.messages()[0]
    nxt = await bot_env.member.click(page, bot_env.member.find_custom_id(page, "Next"))
    assert "Page 2/3" in nxt.text()
    assert bot_env.fake.messages[live["id"]]["embeds"][0]["description"] == shown_before


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

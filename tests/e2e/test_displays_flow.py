"""The pinned displays through the fake Discord: coalescing, no-op skips, self-healing, restarts, paging."""

from __future__ import annotations

import asyncio

from models import Line
from tests.conftest import BotEnv
from tests.e2e.test_reviewer_flow import add, display_message, setup_displays
from tests.fakediscord.actors import walk_components


def next_page_id(message: dict) -> str:
    """The custom id of a pager's next-page arrow (paging buttons carry arrows only, no words)."""
    for item in walk_components(message.get("components") or []):
        if (item.get("emoji") or {}).get("name") == "➡️":
            return item["custom_id"]
    raise AssertionError("no next-page arrow")


def patches(env: BotEnv, message_id: str) -> int:
    return env.fake.count("PATCH", f"/messages/{message_id}$")


async def test_displays_update_coalesced_under_a_burst_and_skip_unchanged(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    live = display_message(bot_env, "queue", "Live Music Queue")
    before = patches(bot_env, live["id"])
    start = asyncio.get_running_loop().time()
    await asyncio.gather(*(add(bot_env, 100 + n, n) for n in range(50)))
    await bot_env.settle()
    elapsed = asyncio.get_running_loop().time() - start
    edits = patches(bot_env, live["id"]) - before
    window = bot_env.config.display_refresh_seconds
    # Behaviour, not timing: never more than one edit per window (plus the leading one).
    assert 1 <= edits <= int(elapsed / window) + 2, (edits, elapsed)
    assert "50 songs" in bot_env.fake.messages[live["id"]]["embeds"][0]["footer"]["text"]
    # Nothing changed: asking again sends nothing to any display.
    all_patches = bot_env.fake.count("PATCH", r"/channels/\d+/messages/\d+$")
    bot_env.bot.displays.request(bot_env.guild_id)
    await bot_env.settle()
    assert bot_env.fake.count("PATCH", r"/channels/\d+/messages/\d+$") == all_patches


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
    # The replacement keeps working: later changes edit it.
    await add(bot_env, 3, 3)
    await bot_env.settle()
    assert "3 songs" in bot_env.fake.messages[pins[0]["id"]]["embeds"][0]["footer"]["text"]


async def test_missing_permissions_stop_that_display_and_tell_the_debug_channel_once(bot_env: BotEnv) -> None:
    await bot_env.bot.db.update_settings(bot_env.guild_id, debug_channel_id=int(bot_env.channels["debug"]))
    await setup_displays(bot_env)
    live = display_message(bot_env, "queue", "Live Music Queue")
    bot_env.fake.forbidden_channels.add(bot_env.channels["queue"])
    for n in range(3):
        await add(bot_env, 1 + n, n)
        await bot_env.settle()
    assert patches(bot_env, live["id"]) == 1  # one refused attempt, then the display is left alone
    notes = [
        m["content"] for m in bot_env.fake.channel_messages(bot_env.channels["debug"]) if "can't update" in m["content"]
    ]
    assert len(notes) == 1 and "setup command" in notes[0]
    # The reviewer panel in another channel kept updating.
    panel = display_message(bot_env, "reviewers", "Reviewer queue")
    assert "3 songs" in bot_env.fake.messages[panel["id"]]["embeds"][0]["footer"]["text"]
    # Fixed and set up again: the same message is adopted and brought up to date.
    bot_env.fake.forbidden_channels.discard(bot_env.channels["queue"])
    await setup_displays(bot_env)
    assert "3 songs" in bot_env.fake.messages[live["id"]]["embeds"][0]["footer"]["text"]
    assert len(bot_env.fake.pins(bot_env.channels["queue"])) == 1


async def test_restart_keeps_queue_buttons_and_no_duplicate_pins(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    await add(bot_env, 1, 1)
    pending = await add(bot_env, 2, 2, Line.PENDING)
    await bot_env.settle()
    live = display_message(bot_env, "queue", "Live Music Queue")
    await bot_env.bot.queue.approve(bot_env.guild_id, pending, Line.SKIP)  # changed just before going down
    await bot_env.bot.displays.close()  # ... so the bot never got to redraw it
    await bot_env.restart()
    await bot_env.settle()
    # The start-up refresh picked up the change made while the displays were not listening.
    assert "2 songs" in bot_env.fake.messages[live["id"]]["embeds"][0]["footer"]["text"]
    # Setting up again after the restart reuses the pinned messages instead of posting new ones.
    await setup_displays(bot_env)
    assert len(bot_env.fake.pins(bot_env.channels["queue"])) == 1
    assert len(bot_env.fake.pins(bot_env.channels["reviewers"])) == 2
    page = await bot_env.member.click(live, "mq:lq:next")
    assert page.ephemeral and "Live Music Queue" in page.text()
    panel = display_message(bot_env, "reviewers", "Reviewer queue")
    record = await bot_env.reviewer.click(panel, "mq:rv:next")
    await record.wait_text("Now playing")
    answer = record.messages()[0]
    rated = await bot_env.reviewer.click(answer, bot_env.reviewer.find_custom_id(answer, "Rate it"), values=["9"])
    assert "9/10" in rated.text()
    assert bot_env.fake.identifies == 2


async def test_a_display_deleted_while_the_bot_was_down_comes_back_at_start(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    live = display_message(bot_env, "queue", "Live Music Queue")
    await bot_env.stop()
    await bot_env.fake.delete_message(bot_env.channels["queue"], live["id"])
    await bot_env.start()
    await bot_env.fake.wait_for(lambda: len(bot_env.fake.pins(bot_env.channels["queue"])) == 1, 5, "the new pin")
    assert bot_env.fake.pins(bot_env.channels["queue"])[0]["id"] != live["id"]


async def test_public_paging_is_private_to_the_clicker(bot_env: BotEnv) -> None:
    await setup_displays(bot_env)
    for n in range(25):
        await add(bot_env, 10 + n, n)
    await add(bot_env, bot_env.member.id, 99, Line.SKIP)
    await bot_env.settle()
    live = display_message(bot_env, "queue", "Live Music Queue")
    shown_before = bot_env.fake.messages[live["id"]]["embeds"][0]["description"]
    edits_before = patches(bot_env, live["id"])
    second = await bot_env.member.click(live, "mq:lq:next")
    assert second.ephemeral and "Page 2/3" in second.text()
    page = second.messages()[0]
    third = await bot_env.member.click(page, next_page_id(page))
    assert third.response_type == 7 and "Page 3/3" in third.text()  # the clicker's own message, edited
    last = await bot_env.member.click(live, "mq:lq:prev")
    assert last.ephemeral and "Page 3/3" in last.text()
    mine = await bot_env.member.click(live, "mq:lq:mine")
    assert mine.ephemeral and "Your songs" in mine.text() and "#1" in mine.text()
    fresh = await bot_env.member.click(live, "mq:lq:refresh")
    assert fresh.ephemeral and "Page 1/3" in fresh.text()
    await bot_env.settle()
    assert bot_env.fake.messages[live["id"]]["embeds"][0]["description"] == shown_before
    assert patches(bot_env, live["id"]) == edits_before


async def test_private_pages_leave_no_view_behind(bot_env: BotEnv) -> None:
    """Pagers are made of DynamicItems: nothing may stay behind per answer.

    discord.py keeps an unfinished ephemeral view, with a timeout task, for 15 minutes.
    """

    def view_timeouts() -> int:
        return sum("timeout_task_impl" in t.get_coro().__qualname__ for t in asyncio.all_tasks())  # type: ignore[union-attr]

    for n in range(25):
        await add(bot_env, 10 + n, n)
    await bot_env.settle()
    before = view_timeouts()
    for _ in range(5):
        answer = await bot_env.member.slash(bot_env.channels["general"], "queue")
        assert "Page 1/3" in answer.text()
    page = answer.messages()[0]
    second = await bot_env.member.click(page, next_page_id(page))
    assert "Page 2/3" in second.text()  # the buttons still work from their custom ids alone
    assert view_timeouts() == before

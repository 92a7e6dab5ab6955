"""Issue 16: what a member, a reviewer and an admin see, asserted on the rendered messages and answers."""

from __future__ import annotations

import re
import time

from models import EngagementEvent, EventKind, Line
from tests.conftest import BotEnv
from tests.e2e.prose import prose_problems
from tests.e2e.test_reviewer_flow import add, display_message, setup_displays
from tests.e2e.test_submission_flow import submit_link
from tests.fakediscord.actors import walk_components
from ui import palette

NBSP = "\u00a0"


def description(env: BotEnv, channel: str, title: str) -> str:
    message = display_message(env, channel, title)
    return env.fake.messages[message["id"]]["embeds"][0]["description"]


# ---------------------------------------------------------------------- point 4: now playing, up next


async def test_both_displays_open_with_now_playing_and_the_public_one_with_up_next(bot_env: BotEnv) -> None:
    env = bot_env
    await setup_displays(env)
    first = await add(env, 11, 1, Line.SKIP)
    await add(env, 12, 2)
    await env.settle()
    before = description(env, "queue", "Live Music Queue")
    assert before.startswith("🎶 **Now playing**: nothing yet")
    played = await env.reviewer.slash(env.channels["reviewers"], "next")
    await played.wait_text("Now playing")
    await env.settle()
    public = description(env, "queue", "Live Music Queue")
    head = public.split("\n\n")[0]
    assert head.startswith("🎶 **Now playing**: **Artist 1 – Song 1**")
    assert "by user11" in head and f"🎟️{NBSP}Skip" in head and re.search(r"started <t:\d+:R>", head)
    assert "🔜 **Up next**: **Artist 2 – Song 2** — user12" in head
    reviewer = description(env, "reviewers", "Reviewer queue")
    assert reviewer.startswith(f"🎶 **Now playing**: `#{first}` **Artist 1 – Song 1**")
    assert "started <t:" in reviewer.split("\n\n")[0]


# ---------------------------------------------------------------------- point 5: waits from the first song


async def test_waits_are_estimated_from_the_first_song(bot_env: BotEnv) -> None:
    env = bot_env
    first = await submit_link(env, env.member, "Daft Punk", "One More Time", "https://youtu.be/a1")
    assert "about 4 min (next up)" in first.text()
    zoe = env.fake.member("zoe")
    second = await submit_link(env, zoe, "Air", "La Femme", "https://youtu.be/a2")
    assert "about 8 min (1 song ahead)" in second.text()
    await env.bot.db.update_settings(env.guild_id, avg_review_seconds=180)
    mine = await zoe.slash(env.channels["general"], "queue")
    assert "plays in about 6 min (1 song ahead)" in mine.text()
    for record in (first, second, mine):
        assert "unknown" not in record.text() and not prose_problems(record.text())


async def test_queue_explains_why_a_position_moved(bot_env: BotEnv) -> None:
    env = bot_env
    general = env.channels["general"]
    await add(env, 21, 1)
    mine = await add(env, env.member.id, 2)
    rival = await add(env, 23, 3, handle="rival.fan")
    await env.bot.points.admin_link(env.guild_id, 23, "rival.fan")  # proven: its points count
    await add(env, 24, 4)
    seen = await env.member.slash(general, "queue")
    assert "**#2**" in seen.text() and "moved" not in seen.text()
    # A paid song goes ahead.
    paid = await add(env, 25, 5, Line.PENDING)
    await env.bot.queue.approve(env.guild_id, paid, Line.SKIP)
    moved = await env.member.slash(general, "queue")
    assert f"`#{mine}` moved down from #2 to #3: 1 paid song went ahead." in moved.text()
    # A Free song with more points goes ahead.
    env.bot.engagement.add(env.guild_id, [EngagementEvent(EventKind.SHARE, "rival.fan", time.time())])
    await env.settle()
    assert (await env.bot.queue.ordered_queue(env.guild_id))[1].submission.public_id == rival
    again = await env.member.slash(general, "queue")
    assert f"`#{mine}` moved down from #3 to #4: 1 song with more points went ahead." in again.text()
    # Songs ahead play: it moves up, and says why.
    for _ in range(2):
        await env.bot.queue.next(env.guild_id)
    up = await env.member.slash(general, "queue")
    assert f"`#{mine}` moved up from #4 to #2: 2 songs ahead of it played or left." in up.text()
    for record in (seen, moved, again, up):
        assert not prose_problems(record.text()), record.text()


# ---------------------------------------------------------------------- point 6: /tiktok disconnect says where


async def test_disconnect_says_where_the_recap_went(bot_env: BotEnv) -> None:
    env = bot_env
    general = env.channels["general"]
    simulated = await env.admin.slash_sub(general, "tiktok", "simulate", kind="like", handle="fan.one", amount=3)
    await simulated.wait_text("Simulated")  # the simulation session is open before it is ended
    ended = await env.admin.slash_sub(general, "tiktok", "disconnect")
    assert "No recap channel is set" in await ended.wait_text("recap")
    await env.bot.db.update_settings(env.guild_id, metrics_channel_id=int(env.channels["metrics"]))
    simulated = await env.admin.slash_sub(general, "tiktok", "simulate", kind="like", handle="fan.one", amount=3)
    await simulated.wait_text("Simulated")  # the simulation session is open before it is ended
    ended = await env.admin.slash_sub(general, "tiktok", "disconnect")
    text = await ended.wait_text("recap is in")
    recap = env.fake.channel_messages(env.channels["metrics"])[-1]
    assert f"<#{env.channels['metrics']}>" in text and recap["id"] in text


# ---------------------------------------------------------------------- points 7, 8, 11: badges and colours


async def test_badges_never_wrap_and_every_display_uses_the_palette(bot_env: BotEnv) -> None:
    env = bot_env
    await setup_displays(env)
    for n, line in enumerate((Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE), start=1):
        await add(env, 30 + n, n, line)
    await add(env, 40, 9, Line.PENDING)
    await env.settle()
    colours = {c.value for c in palette.COLOURS.values()}
    for channel in ("queue", "reviewers"):
        for message in env.fake.channel_messages(env.channels[channel]):
            for embed in message["embeds"]:
                assert embed["color"] in colours, embed["title"]
                text = embed.get("description", "") + embed.get("footer", {}).get("text", "")
                # No inline code around a badge (it wraps between the emoji and the word on a phone).
                spans = re.findall(r"`([^`]*)`", text)
                assert not [c for c in spans if re.search(r"BackToBack|DoubleSkip|Skip|Free|Pending", c)]
    public = description(env, "queue", "Live Music Queue")
    for line in ("BackToBack", "DoubleSkip", "Skip", "Free"):
        assert f"{palette.LINE_EMOJI[Line(line)]}{NBSP}{line}" in public
    assert display_message(env, "queue", "Live Music Queue")["embeds"][0]["color"] == palette.QUEUE.value
    assert display_message(env, "reviewers", "Reviewer queue")["embeds"][0]["color"] == palette.REVIEWER.value
    assert display_message(env, "reviewers", "Pending skips")["embeds"][0]["color"] == palette.REVIEWER.value


# ---------------------------------------------------------------------- point 12: pin notices


async def test_pin_notices_of_the_bots_own_pins_are_removed(bot_env: BotEnv) -> None:
    env = bot_env
    await setup_displays(env)

    def notices(channel: str) -> list[dict]:
        return [m for m in env.fake.channel_messages(env.channels[channel]) if m["type"] == 6]

    await env.fake.wait_for(lambda: not notices("queue") and not notices("reviewers"), 5, "the pin notices removed")
    assert env.fake.count("DELETE", rf"/channels/{env.channels['queue']}/messages/\d+$") >= 1
    assert len(env.fake.pins(env.channels["queue"])) == 1  # the display itself stays pinned
    # A member's pin notice is not the bot's to remove.
    member_notice = env.fake.new_message(env.channels["queue"], {"content": ""},
                                         author=env.fake.members[env.member.user_id]["user"])  # fmt: skip
    member_notice["type"] = 6
    member_notice["message_reference"] = {"message_id": member_notice["id"], "channel_id": env.channels["queue"]}
    env.fake.dispatch("MESSAGE_CREATE", env.fake.public(member_notice)
                      | {"member": env.fake.member_without_user(env.member.user_id)})  # fmt: skip
    display = display_message(env, "queue", "Live Music Queue")
    await env.fake.delete_message(env.channels["queue"], display["id"])
    await add(env, 50, 50)
    await env.settle()  # recreated and re-pinned: its new notice goes too
    await env.fake.wait_for(lambda: len(notices("queue")) == 1, 5, "only the member's notice left")
    assert notices("queue")[0]["id"] == member_notice["id"]


# ---------------------------------------------------------------------- point 13: /link-tiktok


async def test_link_tiktok_says_what_to_do_now_and_promises_nothing_early(bot_env: BotEnv) -> None:
    linked = await bot_env.member.slash(bot_env.channels["general"], "link-tiktok", handle="@Max.Beats")
    text = linked.text()
    code = re.search(r"LINK-[A-Z0-9]+", text)[0]
    assert f"type `{code}` in the live chat" in text
    assert "if you are not live yet, at the start of the next live" in text
    assert "once it is proven" in text
    assert "now count" not in text and not prose_problems(text)


# ---------------------------------------------------------------------- point 1: the skip question goes away


async def test_the_answered_skip_question_goes_away_and_its_old_buttons_still_answer(bot_env: BotEnv) -> None:
    env = bot_env
    done = await submit_link(env, env.member, "Daft Punk", "Da Funk", "https://youtu.be/df")
    receipt = done.messages()[0]
    assert receipt["components"] == [] and receipt["content"] == ""  # no question text, no buttons
    assert "Submitted" in done.text() and "Is this submission a skip" not in done.text()
    # A member presses the old "Yes" (a stale client still shows it): a short answer, not "interaction failed".
    old_id = "0123456789abcdef0123456789abcdef"
    button = {"type": 2, "style": 3, "label": "Yes, it's a skip", "custom_id": old_id}
    stale = dict(receipt, components=[{"type": 1, "components": [button]}])
    pressed = await env.member.click(stale, old_id)
    assert pressed.ephemeral and "expired" in await pressed.wait_text("expired")
    assert len(await env.bot.queue.ordered_queue(env.guild_id)) == 1  # and nothing else happened


# ---------------------------------------------------------------------- point 9: paging


async def test_paging_is_disabled_on_one_page_and_keeps_your_songs(bot_env: BotEnv) -> None:
    env = bot_env
    await setup_displays(env)
    await add(env, env.member.id, 1)
    await env.settle()
    live = display_message(env, "queue", "Live Music Queue")
    arrows = {c["custom_id"]: c for c in walk_components(live["components"]) if c.get("custom_id") in
              ("mq:lq:prev", "mq:lq:next")}  # fmt: skip
    assert "Page 1/1" in live["embeds"][0]["footer"]["text"]
    assert len(arrows) == 2 and all(c.get("disabled") for c in arrows.values())
    assert all("label" not in c or not c["label"] for c in arrows.values())  # arrows only
    for n in range(2, 13):
        await add(env, 100 + n, n)
    await env.settle()
    live = env.fake.messages[live["id"]]
    assert not any(c.get("disabled") for c in walk_components(live["components"]) if c.get("custom_id") == "mq:lq:next")
    second = await env.member.click(live, "mq:lq:next")
    assert "Page 2/2" in second.text() and "Your songs" in second.text() and "**#1**" in second.text()

"""Every Nth song from Free (issue 12.9) through the fake Discord: set in /settings, shown, played by /next."""

from __future__ import annotations

import re

from models import Line
from tests.conftest import BotEnv
from ui.setup_ui import SETTINGS_PICK_ID


async def add(env: BotEnv, user: int, n: int, line: Line = Line.FREE) -> str:
    queue = env.bot.queue
    draft = queue.draft(artist=f"Artist {n}", title=f"Song {n}", note=None, link=f"https://youtu.be/nth{n}")
    placed = await queue.submit(env.guild_id, user, f"user{user}", draft, skip=line is not Line.FREE)
    if line is not Line.FREE:
        await queue.approve(env.guild_id, placed.submission.public_id, line)
    return placed.submission.public_id


async def play(env: BotEnv) -> str:
    record = await env.reviewer.slash(env.channels["reviewers"], "next")
    text = await record.wait_text("Now playing")
    found = re.search(r"#([A-Z0-9]{5})", text)
    assert found is not None, text
    return found.group(1)


async def test_next_plays_a_free_song_after_n_minus_one_paid_ones(bot_env: BotEnv) -> None:
    env = bot_env
    general = env.channels["general"]
    # The admin switches it on in the /settings panel: every 3rd song from Free.
    panel = (await env.admin.slash(general, "settings")).messages()[0]
    opened = await env.admin.select(panel, SETTINGS_PICK_ID, ["free_every_nth"])
    accepted = await env.admin.submit_modal(opened, {"value": "3"})
    await accepted.wait_text("✅")
    assert (await env.bot.db.get_settings(env.guild_id)).free_every_nth == 3

    free = [await add(env, 10 + i, i) for i in range(2)]  # waiting first: strict priority would starve them
    paid = [await add(env, 20 + i, 10 + i, Line.SKIP if i % 2 else Line.BACK_TO_BACK) for i in range(4)]
    expected = [paid[0], paid[2], free[0], paid[1], paid[3], free[1]]  # BackToBack before Skip, FIFO within
    titles = {pid: f"Song {n}" for pid, n in zip([*free, *paid], [0, 1, 10, 11, 12, 13], strict=True)}

    # What people see is what will play: the member's /queue lists the interleaved order, numbered.
    shown = (await env.member.slash(general, "queue")).text()
    for position, pid in enumerate(expected, start=1):
        assert re.search(rf"\*\*{position}\.\*\* Artist \d+ – {titles[pid]} ", shown), (position, shown)
    assert f"Up next**: **Artist 10 – {titles[expected[0]]}**" in shown

    # /help and /show-settings explain the rule.
    assert "Every 3rd song comes from Free" in (await env.member.slash(general, "help")).text()
    assert "Every 3rd song comes from Free" in (await env.admin.slash(general, "show-settings")).text()

    played = [await play(env)]
    await env.restart()  # mid-cycle: the count of paid plays is read back from the archive
    played += [await play(env) for _ in range(5)]
    assert played == expected

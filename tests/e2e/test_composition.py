"""The composition root: services outlive cog reloads, settings are cached, constraint races answer right."""

from __future__ import annotations

import asyncio

from bot import EXTENSIONS
from errors import ActiveFreeExistsError
from models import Line
from services.feed import GiftPromoted
from tests.conftest import BotEnv


async def test_every_cog_reloads_and_the_bot_still_works(bot_env: BotEnv) -> None:
    bot = bot_env.bot
    bot.backups.start(24)  # the harness switches the schedule off; switch it on to see it survive
    services = (bot.db, bot.queue, bot.points, bot.engagement, bot.sessions, bot.lives, bot.displays,
                bot.notifier, bot.backups)  # fmt: skip
    subscribers = bot.feed.subscriber_count
    for extension in EXTENSIONS:
        await bot.unload_extension(extension)
        await bot.load_extension(extension)
    # The same objects, still running, and no cog added or re-wired a subscription.
    assert (bot.db, bot.queue, bot.points, bot.engagement, bot.sessions, bot.lives, bot.displays,
            bot.notifier, bot.backups) == services  # fmt: skip
    assert bot.feed.subscriber_count == subscribers
    loop = bot.backups._loop
    assert loop is not None and loop._task is not None and not loop._task.done()  # still scheduled
    # Commands and persistent buttons answer after the reloads.
    done = await bot_env.admin.slash(bot_env.channels["general"], "backup")
    await done.wait_text("Backup saved")
    queue = await bot_env.member.slash(bot_env.channels["general"], "queue")
    await queue.wait_text("")
    # A gift reward is still delivered (DM and debug note) through the notifier's feed subscription.
    await bot.db.update_settings(bot_env.guild_id, debug_channel_id=int(bot_env.channels["debug"]))
    placed = await bot.queue.submit(bot_env.guild_id, bot_env.member.id, "max", bot.queue.draft(
        artist="A", title="Gift", note=None, link="https://x.test/gift"), skip=False)  # fmt: skip
    moved = await bot.queue.promote_newest(bot_env.guild_id, bot_env.member.id, Line.SKIP)
    assert moved is not None and moved.id == placed.submission.id
    bot.feed.publish(GiftPromoted(bot_env.guild_id, moved.public_id, Line.SKIP.value, "", 1100, bot_env.member.id))
    dm = bot_env.fake.dm_channel_of(bot_env.member.user_id)
    await bot_env.fake.wait_for(
        lambda: any("1100 coins" in m["content"] for m in bot_env.fake.channel_messages(dm)), 5, "the reward DM"
    )
    debug = bot_env.channels["debug"]
    await bot_env.fake.wait_for(
        lambda: any("Gift reward" in m["content"] for m in bot_env.fake.channel_messages(debug)), 5, "the note"
    )


async def test_chat_in_the_submission_channel_reads_settings_from_sqlite_at_most_once(bot_env: BotEnv) -> None:
    bot = bot_env.bot
    channel = bot_env.channels["submit"]
    await bot.db.update_settings(bot_env.guild_id, submission_channel_id=int(channel))
    reads: list[str] = []

    def trace(statement: str) -> None:
        if "FROM guild_settings WHERE guild_id" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    await bot.db.conn.set_trace_callback(trace)
    try:
        sent = [await bot_env.member.send(channel, f"chatter {n}") for n in range(100)]
        await bot_env.fake.wait_for(
            lambda: all(m["id"] not in bot_env.fake.messages for m in sent), 20, "all chatter removed"
        )
    finally:
        await bot.db.conn.set_trace_callback(None)
    assert len(reads) <= 1, f"{len(reads)} settings queries for 100 messages"


async def test_two_concurrent_submissions_of_one_member_get_the_one_free_answer(bot_env: BotEnv) -> None:
    bot = bot_env.bot
    guild = bot_env.guild_id
    drafts = [bot.queue.draft(artist="A", title=f"Race {n}", note=None, link=f"https://x.test/race{n}")
              for n in range(2)]  # fmt: skip
    results = await asyncio.gather(
        *(bot.queue.submit(guild, 4242, "racer", d, skip=False) for d in drafts), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    refused = next(r for r in results if isinstance(r, Exception))
    assert isinstance(refused, ActiveFreeExistsError) and "waiting in Free" in refused.message

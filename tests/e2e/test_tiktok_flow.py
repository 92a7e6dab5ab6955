"""TikTok LIVE end to end: the real TikTokLive client on the fake TikTok, the real bot on the fake Discord."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator

import pytest

from models import Line
from services.tiktok.adapter import warm_event_classes
from tests.conftest import BotEnv
from tests.faketiktok.server import FakeTikTok, chat, gift, like, user, viewers

# The first /tiktok connect starts the connection's process, which imports TikTokLive: seconds on two busy
# cores. A bound on waiting, not a speed requirement (the answer itself is deferred within 3 s).
CHILD_START = 30.0

warm_event_classes()


@pytest.fixture
async def live_env(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[BotEnv, FakeTikTok]]:
    """The bot configured (through its own settings) to reach the fake TikTok."""
    from dataclasses import replace

    from TikTokLive.client.web.web_settings import WebDefaults

    fake = FakeTikTok()
    await fake.start()
    # Record originals: the bot writes these process-wide settings from its configuration.
    monkeypatch.setattr(WebDefaults, "tiktok_app_url", WebDefaults.tiktok_app_url)
    monkeypatch.setattr(WebDefaults, "tiktok_webcast_url", WebDefaults.tiktok_webcast_url)
    monkeypatch.setenv("SIGN_API_URL", "unset")
    bot_env.bot.config = replace(
        bot_env.bot.config,
        sign_api_url=fake.base_url,
        tiktok_web_url=fake.base_url,
        tiktok_webcast_url=fake.base_url + "/webcast",
    )
    settings = {name: int(bot_env.channels[name]) for name in ("debug", "metrics")}
    await bot_env.bot.db.update_settings(bot_env.guild_id, debug_channel_id=settings["debug"],
                                         metrics_channel_id=settings["metrics"])  # fmt: skip
    yield bot_env, fake
    connection = bot_env.bot.lives.get(bot_env.guild_id)
    if connection is not None:
        await connection.disconnect()
    await fake.stop()


def embeds_in(env: BotEnv, channel: str) -> list[dict]:
    return [e for m in env.fake.channel_messages(env.channels[channel]) for e in m["embeds"]]


async def test_live_engagement_reorders_the_free_line_on_the_pinned_display(live_env) -> None:
    env, tiktok = live_env
    tiktok.host("streamer", live=True)
    live = await env.admin.slash(env.channels["queue"], "setup-live-queue", channel=env.channels["queue"])
    await live.wait_text("pinned")
    queue = env.bot.queue
    # Handles named on a song count only when unproven handles are allowed (the default counts proven ones).
    await env.bot.db.update_settings(env.guild_id, verified_handles_only=False)
    first = await queue.submit(env.guild_id, 1, "first", queue.draft(artist="A", title="First", note=None,
                               link="https://x.test/1", handle="early.bird"), skip=False)  # fmt: skip
    second = await queue.submit(env.guild_id, 2, "second", queue.draft(artist="B", title="Second", note=None,
                                link="https://x.test/2", handle="super.fan"), skip=False)  # fmt: skip
    await env.settle()
    record = await env.admin.slash_sub(env.channels["general"], "tiktok", "connect", username="@Streamer")
    await record.wait_text("Connecting to @streamer", CHILD_START)
    await tiktok.wait_connected()
    await env.fake.wait_for(lambda: any("Connected to TikTok LIVE" in e.get("title", "") for e in
                                        embeds_in(env, "debug")), 5, "the green embed")  # fmt: skip
    fan = user("Super.Fan", 42)
    await tiktok.push(chat(fan, "love it", 1), like(fan, 15, 15, 2))
    pinned = env.fake.pins(env.channels["queue"])[0]

    def order() -> list[str]:
        description = env.fake.messages[pinned["id"]]["embeds"][0]["description"]
        return [line for line in description.splitlines() if line.startswith("**")]

    await env.fake.wait_for(lambda: "Second" in order()[0], 8, "the fan's song to move up")
    assert "17 pts" in order()[0] and "First" in order()[1]
    assert second.submission.id != first.submission.id
    await tiktok.push(viewers(321, 3))
    await env.fake.wait_for(lambda: env.bot.sessions._viewers.get(env.guild_id) == 321, 5, "the viewer count")
    await env.settle()
    status = await env.admin.slash_sub(env.channels["general"], "tiktok", "status")
    # Issue 16 point 6: what matters during a live first; room and session ids only in the footer.
    shown = await status.wait_text("Active")  # deferred first: the live's totals are read from the database
    fields = {f["name"]: f["value"] for m in status.messages() for e in m["embeds"] for f in e.get("fields", [])}
    assert "Active" in shown and fields["Viewers now"] == "321" and fields["Likes"] == "15"
    assert fields["Coins"] == "0" and fields["Songs played"] == "0" and "Live for" in fields
    assert not {"Room id", "Session id"} & set(fields)
    footer = status.messages()[0]["embeds"][0]["footer"]["text"]
    assert re.fullmatch(r"Room \S+ · Session \d+", footer)
    bye = await env.admin.slash_sub(env.channels["general"], "tiktok", "disconnect")
    said = await bye.wait_text("Disconnected")
    assert f"The recap is in <#{env.channels['metrics']}>" in said

    # The status message the connect left in #general ends as a short summary, not "Not connected".
    def status_message() -> dict:
        return next(m for m in env.fake.channel_messages(env.channels["general"]) if m["embeds"])

    await env.fake.wait_for(lambda: "Live ended" in status_message()["embeds"][0]["title"], 5, "the summary")
    summary = status_message()["embeds"][0]
    assert "15 likes" in summary["description"] and "recap is in" in summary["description"]
    assert "Not connected" not in str(summary) and "Last username" not in str(summary)
    await env.fake.wait_for(lambda: env.fake.channel_messages(env.channels["metrics"]), 5, "the recap")
    recap = env.fake.channel_messages(env.channels["metrics"])[-1]
    assert "@streamer" in recap["embeds"][0]["title"]
    table = env.fake.attachments[recap["attachments"][0]["id"]].decode()
    rows = {r["handle"]: r for r in csv.DictReader(io.StringIO(table))}
    assert rows["super.fan"]["likes"] == "15" and rows["super.fan"]["comments"] == "1"
    # A user-initiated disconnect sends no orange alert.
    assert not any("unexpectedly" in e.get("title", "") for e in embeds_in(env, "debug"))


async def test_gift_reward_and_chat_code_verification(live_env) -> None:
    env, tiktok = live_env
    tiktok.host("streamer", live=True)
    link = await env.member.slash(env.channels["general"], "link-tiktok", handle="@Max.Gifts")
    code = re.search(r"`(LINK-[A-Z0-9]{6})`", link.text())[1]  # type: ignore[index]
    assert "type `LINK-" in link.text() and "once it is proven" in link.text()
    queue = env.bot.queue
    placed = await queue.submit(env.guild_id, env.member.id, "max", queue.draft(
        artist="Max", title="Gifted", note=None, link="https://x.test/g"), skip=False)  # fmt: skip
    record = await env.admin.slash_sub(env.channels["general"], "tiktok", "connect", username="streamer")
    await record.wait_text("Connecting", CHILD_START)
    await tiktok.wait_connected()
    max_user = user("max.gifts", 77)
    await tiktok.push(chat(max_user, f"hi it's me {code}", 1),
                      gift(max_user, diamonds=500, repeat=3, end=True, streakable=True, msg_id=2))  # fmt: skip
    for _ in range(200):
        current = await queue.get(env.guild_id, placed.submission.public_id)
        handle = await env.bot.db.get_handle(env.guild_id, "max.gifts")
        if current.line is Line.SKIP and handle.verified:
            break
        await asyncio.sleep(0.05)
    assert current.line is Line.SKIP and handle.verified
    debug = env.channels["debug"]
    await env.fake.wait_for(
        lambda: any("Gift reward" in m["content"] for m in env.fake.channel_messages(debug)), 5, "the reward note"
    )
    dm = env.fake.channel_messages(env.fake.dm_channel_of(env.member.user_id))
    assert any("1500 coins" in m["content"] for m in dm) and any("proven as yours" in m["content"] for m in dm)


async def test_unexpected_drop_posts_the_orange_embed(live_env) -> None:
    env, tiktok = live_env
    tiktok.host("streamer", live=True)
    record = await env.admin.slash_sub(env.channels["general"], "tiktok", "connect", username="streamer")
    await record.wait_text("Connecting", CHILD_START)
    await tiktok.wait_connected()
    await env.fake.wait_for(lambda: embeds_in(env, "debug"), 5, "the green embed")
    await tiktok.close_sockets(code=1011)
    await env.fake.wait_for(lambda: any("unexpectedly" in e.get("title", "") for e in embeds_in(env, "debug")),
                            5, "the orange embed")  # fmt: skip


async def test_tiktok_commands_are_admin_only_and_not_found_is_clear(live_env) -> None:
    env, _tiktok = live_env
    env.fake.allow_command("tiktok")  # shown to everyone: the runtime check must refuse the member
    refused = await env.member.slash_sub(env.channels["general"], "tiktok", "status")
    assert "Only admins" in refused.text()
    missing = await env.admin.slash_sub(env.channels["general"], "tiktok", "connect", username="nobody.here")
    await missing.wait_text("was not found", CHILD_START)


async def test_simulating_during_a_live_stays_out_of_its_recap_and_disconnect_ends_both(live_env) -> None:
    # Issue 12 point 5: a simulation has its own session, even while a real live runs.
    env, tiktok = live_env
    tiktok.host("streamer", live=True)
    general = env.channels["general"]
    record = await env.admin.slash_sub(general, "tiktok", "connect", username="@Streamer")
    await record.wait_text("Connecting to @streamer", timeout=CHILD_START)
    await tiktok.wait_connected()
    await env.fake.wait_for(lambda: env.bot.sessions.current(env.guild_id) is not None, 5, "the live session")
    await tiktok.push(like(user("Real.Fan", 7), 5, 5, 1))
    simulated = await env.admin.slash_sub(general, "tiktok", "simulate", kind="gift", handle="tester", amount=300)
    await simulated.wait_text("promotes no song")
    ended = await env.admin.slash_sub(general, "tiktok", "disconnect")
    await ended.wait_text("Ended the simulation session", timeout=10)
    assert "Disconnected from TikTok LIVE" in ended.text()
    await env.fake.wait_for(lambda: len(embeds_in(env, "metrics")) >= 2, 10, "two recaps")
    recaps = {e["title"]: e for e in embeds_in(env, "metrics")}
    live_recap, simulation_recap = recaps["📊 Live recap: @streamer"], recaps["🧪 Simulation recap"]
    live_text = str(live_recap)
    assert "real.fan" in live_text and "tester" not in live_text
    assert "tester" in str(simulation_recap) and "Simulated engagement only" in simulation_recap["description"]
    files = [a for m in env.fake.channel_messages(env.channels["metrics"]) for a in m.get("attachments", [])]
    sim_csv = next(a for a in files if "simulation" in a["filename"])
    rows = list(csv.DictReader(io.StringIO(env.fake.attachments[sim_csv["id"]].decode())))
    assert [(r["handle"], r["simulated"]) for r in rows] == [("tester", "yes")]

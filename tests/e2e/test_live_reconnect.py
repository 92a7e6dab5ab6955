"""One live is one session (issue 12 point 1), end to end: a network drop mid-live and what Discord shows.

The real bot on the fake Discord; its TikTok connection in its child process, with the real TikTokLive client
on the fake TikTok. The fake cuts the webcast socket with no close frame and no live-end message while the
host stays live (``FakeTikTok.drop_sockets``), as a network drop does; the connection reconnects by itself.
The connection's retry delays are scaled down (the production ones are 10 s and 30 s); the grace window is
the guild setting, left at its default (5 minutes) in the first test and set to 1 s in the second.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator, Callable

import pytest

from services.feed import FeedEvent, LiveConnected, LiveDropped, LiveEnded
from services.live_sessions import LiveFigures
from services.tiktok.adapter import warm_event_classes
from services.tiktok.live import LiveListener
from tests.conftest import BotEnv
from tests.faketiktok.server import FakeTikTok, chat, gift, like, live_end, streak, user

# The first /tiktok connect starts the connection's process, which imports TikTokLive: seconds on two busy
# cores. Every bound below is a bound on waiting, never a speed requirement.
CHILD_START = 30.0
WAIT = 20.0

warm_event_classes()


class FeedLog:
    """The live's feed events in the order the bot published them."""

    def __init__(self) -> None:
        self.events: list[FeedEvent] = []

    def __call__(self, event: FeedEvent) -> None:
        self.events.append(event)

    def connected(self) -> list[tuple[int | None, bool]]:
        return [(e.session_id, e.resumed) for e in self.events if isinstance(e, LiveConnected)]

    def dropped(self) -> list[tuple[int | None, int]]:
        return [(e.session_id, e.grace_seconds) for e in self.events if isinstance(e, LiveDropped)]

    def ended(self) -> list[tuple[int, str]]:
        return [(e.session_id, e.reason) for e in self.events if isinstance(e, LiveEnded)]


@pytest.fixture
async def live(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[BotEnv, FakeTikTok, FeedLog]]:
    """The bot reaching the fake TikTok through its own settings, with fast retries and a feed log."""
    from dataclasses import replace

    from TikTokLive.client.web.web_settings import WebDefaults

    from services.tiktok.worker import LiveWorker

    fake = FakeTikTok()
    await fake.start()
    monkeypatch.setattr(WebDefaults, "tiktok_app_url", WebDefaults.tiktok_app_url)
    monkeypatch.setattr(WebDefaults, "tiktok_webcast_url", WebDefaults.tiktok_webcast_url)
    monkeypatch.setenv("SIGN_API_URL", "unset")
    bot = bot_env.bot
    bot.config = replace(bot.config, sign_api_url=fake.base_url, tiktok_web_url=fake.base_url,
                         tiktok_webcast_url=fake.base_url + "/webcast")  # fmt: skip

    def factory(guild_id: int, listener: LiveListener) -> LiveWorker:
        # The production connection, with the reconnect cadence scaled down from 10 s / 30 s.
        return LiveWorker(guild_id, listener, config=bot.config,
                          manager_options={"short_delay": 0.2, "long_delay": 0.5})  # fmt: skip

    monkeypatch.setattr(bot.lives, "_factory", factory)
    await bot.db.update_settings(bot_env.guild_id, debug_channel_id=int(bot_env.channels["debug"]),
                                 metrics_channel_id=int(bot_env.channels["metrics"]))  # fmt: skip
    log = FeedLog()
    unsubscribe = bot.feed.subscribe(log, LiveConnected, LiveDropped, LiveEnded)
    yield bot_env, fake, log
    unsubscribe()
    connection = bot.lives.get(bot_env.guild_id)
    if connection is not None:
        await connection.disconnect()
    await fake.stop()


def debug_embeds(env: BotEnv) -> list[dict]:
    return [e for m in env.fake.channel_messages(env.channels["debug"]) for e in m["embeds"]]


def debug_texts(env: BotEnv) -> list[str]:
    return [m["content"] for m in env.fake.channel_messages(env.channels["debug"]) if m["content"]]


def recaps(env: BotEnv) -> list[dict]:
    """The recap messages in the metrics channel."""
    return [m for m in env.fake.channel_messages(env.channels["metrics"])
            if m["embeds"] and m["embeds"][0].get("title", "").startswith("📊 Live recap")]  # fmt: skip


def recap_fields(message: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


def recap_rows(env: BotEnv, message: dict) -> dict[str, dict[str, str]]:
    """The recap's engagement CSV (always its first attachment), by handle."""
    table = env.fake.attachments[message["attachments"][0]["id"]].decode()
    return {row["handle"]: row for row in csv.DictReader(io.StringIO(table))}


def green_embeds(env: BotEnv) -> list[dict]:
    return [e for e in debug_embeds(env) if e.get("title", "").startswith("🟢 Connected to TikTok LIVE")]


def orange_embeds(env: BotEnv) -> list[dict]:
    return [e for e in debug_embeds(env) if "disconnected unexpectedly" in e.get("title", "")]


def status_message(env: BotEnv) -> dict:
    """The TikTok status message, posted where ``/tiktok connect`` ran."""
    return next(m for m in env.fake.channel_messages(env.channels["general"]) if m["embeds"])


def status_title(env: BotEnv) -> str:
    return str(status_message(env)["embeds"][0].get("title", ""))


async def wait_figures(env: BotEnv, check: Callable[[LiveFigures], bool], what: str) -> None:
    """Wait until the open session's figures (what ``/tiktok status`` reads from the database) pass ``check``."""
    deadline = time.monotonic() + WAIT
    figures = None
    while time.monotonic() < deadline:
        figures = await env.bot.sessions.figures(env.guild_id)
        if figures is not None and check(figures):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {WAIT} s waiting for {what} (figures: {figures})")


async def connect(env: BotEnv, tiktok: FakeTikTok) -> None:
    """``/tiktok connect`` as an admin does, until the green embed is in the debug channel."""
    tiktok.host("streamer", live=True)
    record = await env.admin.slash_sub(env.channels["general"], "tiktok", "connect", username="@Streamer")
    await record.wait_text("Connecting to @streamer", CHILD_START)
    await tiktok.wait_connected(1, WAIT)
    await env.fake.wait_for(lambda: green_embeds(env), WAIT, "the green embed")


async def test_a_drop_and_a_reconnect_within_the_grace_window_make_one_live_with_one_recap(live) -> None:
    env, tiktok, feed = live
    await connect(env, tiktok)
    session = env.bot.sessions.current(env.guild_id)
    assert session is not None
    fan, rose, quiet = user("Super.Fan", 42), user("Rose.Giver", 43), user("Quiet.One", 44)

    # Part one: a comment, 25 likes, a Rose streak of 3 x 5 diamonds (15 coins, counted at its end).
    rose_streak = streak(rose, diamonds=5, steps=3, first_msg_id=10)
    await tiktok.push(chat(fan, "first!", 1), like(fan, 15, 15, 2), like(quiet, 10, 25, 3), *rose_streak)
    await wait_figures(env, lambda f: f.likes == 25 and f.coins == 15, "part one in the session")

    # TikTok replays recent messages to a client that enters the room again (the sign answer's backlog):
    # the comment and the streak's end come again on the reconnect and must not count twice.
    tiktok.backlog = [chat(fan, "first!", 1), rose_streak[-1]]
    assert await tiktok.drop_sockets() == 1  # the host stays live: no live-end message, no close frame

    # The orange alert says the bot is reconnecting; the session is held, no recap is posted.
    await env.fake.wait_for(lambda: orange_embeds(env), WAIT, "the orange alert")
    alert = orange_embeds(env)[0]
    assert "Reconnecting" in alert["description"] and "one recap" in alert["description"]
    assert f"{session.id}" in {f["value"] for f in alert["fields"]}
    assert feed.dropped() == [(session.id, 300)]  # the default grace window: 5 minutes

    # The connection reconnects by itself; a short note says the live is back, and the session goes on.
    await tiktok.wait_connected(2, WAIT)
    await env.fake.wait_for(lambda: any("Back on" in t for t in debug_texts(env)), WAIT, "the back note")
    back = next(t for t in debug_texts(env) if "Back on" in t)
    assert "@streamer" in back and f"#{session.id}" in back and "same session" in back
    assert feed.ended() == [] and recaps(env) == []  # nothing ended at the drop
    assert len(green_embeds(env)) == 1  # the reconnect is not a new live
    current = env.bot.sessions.current(env.guild_id)
    assert current is not None and current.id == session.id and not env.bot.sessions.reconnecting(env.guild_id)
    assert feed.connected() == [(session.id, False), (session.id, True)]

    # Part two: the backlog replay above, then 5 more likes from the fan, a comment and a 100-coin gift.
    await tiktok.push(like(fan, 5, 30, 20), chat(quiet, "back again", 21),
                      gift(quiet, diamonds=100, repeat=1, end=True, streakable=False, msg_id=22))  # fmt: skip
    await wait_figures(env, lambda f: f.likes == 30 and f.coins == 115, "part two in the same session")

    # The host really ends the live: one recap, with both parts.
    tiktok.set_live("streamer", False)
    await tiktok.push(live_end(30))
    await env.fake.wait_for(lambda: recaps(env), WAIT, "the recap")

    # The connection is persistent: it now waits for the host's next live. Stopping it ends nothing more (the
    # live already ended), and the status message becomes the live's summary, which waits for the recap.
    bye = await env.admin.slash_sub(env.channels["general"], "tiktok", "disconnect")
    await bye.wait_text("Disconnected", WAIT)
    await env.fake.wait_for(lambda: "Live ended" in status_message(env)["embeds"][0]["title"], WAIT, "the summary")
    assert feed.ended() == [(session.id, "ended")]
    assert len(recaps(env)) == 1
    recap = recaps(env)[0]
    fields = recap_fields(recap)
    assert fields["Likes"] == "30" and fields["Comments"] == "2" and fields["Coins"] == "115"
    assert fields["Gifts"] == "2" and fields["People engaged"] == "3"
    assert recap["embeds"][0]["footer"]["text"] == f"Session {session.id}"
    rows = recap_rows(env, recap)
    assert rows["super.fan"]["likes"] == "20" and rows["super.fan"]["comments"] == "1"
    assert rows["rose.giver"]["coins"] == "15" and rows["rose.giver"]["gifts"] == "1"
    assert rows["quiet.one"]["likes"] == "10" and rows["quiet.one"]["coins"] == "100"
    summary = status_message(env)["embeds"][0]["description"]
    assert "30 likes" in summary and "115 coins" in summary
    assert len(orange_embeds(env)) == 1  # the host's end is not an unexpected drop
    assert [s.id for s in await env.bot.db.open_sessions()] == []


async def test_a_drop_longer_than_the_grace_window_ends_the_session_and_a_later_reconnect_starts_a_new_one(
    live,
) -> None:
    env, tiktok, feed = live
    await env.bot.db.update_settings(env.guild_id, reconnect_grace_seconds=1)
    await connect(env, tiktok)
    first = env.bot.sessions.current(env.guild_id)
    assert first is not None
    fan = user("Super.Fan", 42)
    await tiktok.push(chat(fan, "hello", 1), like(fan, 12, 12, 2),
                      gift(fan, diamonds=50, repeat=1, end=True, streakable=False, msg_id=3))  # fmt: skip
    await wait_figures(env, lambda f: f.likes == 12 and f.coins == 50, "the first live's engagement")

    # The connection drops and the host is offline: the reconnect attempts find no live for longer than
    # the grace window, so the session ends with the window ("expired") and its recap is posted.
    tiktok.set_live("streamer", False)
    assert await tiktok.drop_sockets() == 1
    await env.fake.wait_for(lambda: orange_embeds(env), WAIT, "the orange alert")
    assert "Reconnecting" in orange_embeds(env)[0]["description"] and feed.dropped() == [(first.id, 1)]
    await env.fake.wait_for(lambda: recaps(env), WAIT, "the recap of the expired session")
    assert feed.ended() == [(first.id, "expired")]
    assert env.bot.sessions.current(env.guild_id) is None and not env.bot.sessions.reconnecting(env.guild_id)
    ended = await env.bot.db.get_session(first.id)
    assert ended is not None and ended.ended_at is not None
    recap = recaps(env)[0]
    assert recap["embeds"][0]["footer"]["text"] == f"Session {first.id}"
    assert recap["embeds"][0]["title"] == "📊 Live recap: @streamer · the connection did not come back"
    fields = recap_fields(recap)
    assert fields["Likes"] == "12" and fields["Coins"] == "50" and fields["Comments"] == "1"

    # The host comes back later: the persistent connection finds the live, and it is a new session.
    tiktok.set_live("streamer", True)
    await tiktok.wait_connected(2, WAIT)
    await env.fake.wait_for(lambda: len(green_embeds(env)) == 2, WAIT, "the second green embed")
    second = env.bot.sessions.current(env.guild_id)
    assert second is not None and second.id != first.id
    assert not any("Back on" in t for t in debug_texts(env))
    assert feed.connected() == [(first.id, False), (second.id, False)]
    await tiktok.push(like(fan, 7, 19, 40))
    await wait_figures(env, lambda f: f.likes == 7, "the new live's likes")

    # /tiktok disconnect ends the new live: its own recap, with only its own engagement.
    bye = await env.admin.slash_sub(env.channels["general"], "tiktok", "disconnect")
    await bye.wait_text("Disconnected", WAIT)
    await env.fake.wait_for(lambda: len(recaps(env)) == 2, WAIT, "the second recap")
    assert feed.ended() == [(first.id, "expired"), (second.id, "ended")]
    newest = recaps(env)[1]
    assert newest["embeds"][0]["footer"]["text"] == f"Session {second.id}"
    assert newest["embeds"][0]["title"] == "📊 Live recap: @streamer"  # an ordinary end carries no mark
    fields = recap_fields(newest)
    assert fields["Likes"] == "7" and fields["Coins"] == "0" and fields["Comments"] == "0"
    assert len(recaps(env)) == 2 and len(orange_embeds(env)) == 1


async def test_the_status_message_says_it_is_reconnecting_to_the_same_live_while_the_grace_window_runs(
    live,
) -> None:
    env, tiktok, feed = live
    await connect(env, tiktok)
    session = env.bot.sessions.current(env.guild_id)
    assert session is not None
    await env.fake.wait_for(lambda: status_title(env) == "🟢 Active: @streamer", WAIT, "the connected status")

    # The drop, and the host's live is not found at once: the connection waits to retry, the session is held.
    tiktok.set_live("streamer", False)
    assert await tiktok.drop_sockets() == 1
    await env.fake.wait_for(
        lambda: "Reconnecting to the same live" in status_title(env), WAIT, "the reconnecting status"
    )
    shown = status_message(env)["embeds"][0]
    assert status_title(env) == "🟠 Reconnecting to the same live: @streamer"
    assert "one session with one recap" in shown["description"] and f"Session {session.id}" in shown["footer"]["text"]
    assert feed.dropped() == [(session.id, 300)] and env.bot.sessions.reconnecting(env.guild_id)

    # The live is found again: the same session goes on and the status says connected again.
    tiktok.set_live("streamer", True)
    await tiktok.wait_connected(2, WAIT)
    await env.fake.wait_for(lambda: status_title(env) == "🟢 Active: @streamer", WAIT, "the connected status again")
    assert feed.connected() == [(session.id, False), (session.id, True)] and feed.ended() == []
    assert f"Session {session.id}" in status_message(env)["embeds"][0]["footer"]["text"]

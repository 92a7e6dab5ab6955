"""What the notifier posts about a live's connection: the drop alert's grace window and the recap's title mark."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from database import Database
from services.feed import ChangeFeed, LiveDropped, LiveEnded
from tests.conftest import GUILD
from ui import limits
from ui.metrics_ui import RECAP_MARKS, as_messages, mark_title
from ui.notifier import Notifier
from ui.tiktok_ui import grace_words

DEBUG, METRICS = 11, 12


class Channel:
    def __init__(self, sent: list[tuple[int, dict[str, Any]]], channel_id: int) -> None:
        self.sent, self.id = sent, channel_id

    async def send(self, **kwargs: Any) -> Any:
        self.sent.append((self.id, kwargs))
        return SimpleNamespace(id=len(self.sent), channel=SimpleNamespace(id=self.id), jump_url="https://x.test/m")


class Client:
    """Records what is sent where."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, dict[str, Any]]] = []

    def get_partial_messageable(self, channel_id: int) -> Channel:
        return Channel(self.sent, channel_id)


@pytest.fixture
async def notifier(db: Database) -> Notifier:
    await db.update_settings(GUILD, debug_channel_id=DEBUG, metrics_channel_id=METRICS)
    return Notifier(Client(), db, ChangeFeed(), None)  # type: ignore[arg-type]  # duck-typed client, no queue


@pytest.mark.parametrize(("seconds", "words"), [(20, "20 s"), (59, "59 s"), (60, "1 min"), (90, "1 min 30 s"),
                                                (300, "5 min")])  # fmt: skip
async def test_the_drop_alert_gives_the_grace_window_in_seconds_or_minutes(
    notifier: Notifier, seconds: int, words: str
) -> None:
    assert grace_words(seconds) == words
    await notifier._live_dropped(LiveDropped(GUILD, "streamer", 30.0, 3, None, seconds))
    sent = notifier.client.sent  # type: ignore[attr-defined]  # the recording client
    [(channel, kwargs)] = sent
    assert channel == DEBUG
    assert f"If the live is back within {words}, it stays one session" in kwargs["embed"].description


async def _recap_titles(notifier: Notifier, db: Database, reason: str) -> list[str]:
    session = await db.start_session(GUILD, "streamer", 1, 1_800_000_000.0)
    await db.end_session(session.id, 1_800_000_600.0)
    await notifier._live_ended(LiveEnded(GUILD, session.id, reason=reason))
    sent = notifier.client.sent  # type: ignore[attr-defined]  # the recording client
    return [e.title for channel, kwargs in sent if channel == METRICS for e in kwargs["embeds"]]


@pytest.mark.parametrize(
    ("reason", "mark"),
    [("expired", " · the connection did not come back"), ("recovered", " · recovered after a restart"), ("ended", "")],
)
async def test_a_recap_says_when_its_live_did_not_end_the_ordinary_way(
    notifier: Notifier, db: Database, reason: str, mark: str
) -> None:
    titles = await _recap_titles(notifier, db, reason)
    assert titles[0] == f"📊 Live recap: @streamer{mark}"
    assert not any("·" in t for t in titles[1:])  # only the first embed is marked


def test_the_mark_is_clipped_to_a_title_and_a_full_message_is_split() -> None:
    mark = RECAP_MARKS["expired"]
    long = discord.Embed(title="📊 Live recap: @" + "x" * 240, description="d")
    mark_title(long, mark)
    title = long.title or ""
    assert len(title) == limits.TITLE and title.endswith("x… · the connection did not come back")
    # Two embeds that just fit one message: the mark tips them over 6,000 characters, so they go apart.
    first = discord.Embed(title="📊 Live recap: @streamer", description="a" * 2990)
    second = discord.Embed(title="🎵 Songs", description="b" * (limits.EMBED_TOTAL - len(first) - 8))
    assert len(as_messages([first, second], [])) == 1
    mark_title(first, mark)
    messages = as_messages([first, second], [])
    assert [len(m[0]) for m in messages] == [1, 1] and all(len(m[0][0]) <= limits.EMBED_TOTAL for m in messages)
    assert messages[0][0][0].title == "📊 Live recap: @streamer · the connection did not come back"
    assert "ended" not in RECAP_MARKS  # an ordinary end is not marked

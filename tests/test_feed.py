"""The change feed delivers by kind, isolates failing subscribers and unsubscribes cleanly."""

from __future__ import annotations

import logging

import pytest

from services.feed import ChangeFeed, FeedEvent, LiveStarted, QueueChanged, ScoresChanged


def test_delivers_by_kind_in_order() -> None:
    feed = ChangeFeed()
    seen: list[tuple[str, FeedEvent]] = []
    feed.subscribe(lambda e: seen.append(("all", e)))
    feed.subscribe(lambda e: seen.append(("queue", e)), QueueChanged)
    feed.subscribe(lambda e: seen.append(("scores-or-live", e)), ScoresChanged, LiveStarted)
    feed.publish(QueueChanged(1))
    feed.publish(ScoresChanged(2, ("a",)))
    assert seen == [
        ("all", QueueChanged(1)),
        ("queue", QueueChanged(1)),
        ("all", ScoresChanged(2, ("a",))),
        ("scores-or-live", ScoresChanged(2, ("a",))),
    ]


def test_failing_subscriber_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    feed = ChangeFeed()
    got: list[int] = []

    def broken(event: FeedEvent) -> None:
        raise RuntimeError("boom")

    feed.subscribe(broken)
    feed.subscribe(lambda e: got.append(e.guild_id))
    with caplog.at_level(logging.ERROR, logger="services.feed"):
        feed.publish(QueueChanged(7))
    assert got == [7]
    assert "boom" in caplog.text


def test_unsubscribe_is_idempotent() -> None:
    feed = ChangeFeed()
    got: list[int] = []
    stop = feed.subscribe(lambda e: got.append(e.guild_id))
    assert feed.subscriber_count == 1
    stop()
    stop()
    feed.publish(QueueChanged(1))
    assert got == []
    assert feed.subscriber_count == 0

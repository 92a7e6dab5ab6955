"""The change feed delivers by kind, isolates failing subscribers and unsubscribes cleanly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.feed import ChangeFeed, FeedEvent, LiveStarted, QueueChanged, ScoresChanged, Subscription


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


async def test_subscription_runs_each_event_as_a_task_and_close_waits_for_them() -> None:
    feed = ChangeFeed()
    sub = Subscription(feed, "test")
    release = asyncio.Event()
    done: list[int] = []
    heard: list[int] = []

    async def slow(event: QueueChanged) -> None:
        await release.wait()
        done.append(event.guild_id)

    sub.on(ScoresChanged, lambda event: heard.append(event.guild_id))
    sub.spawn_on(QueueChanged, slow)
    assert sub.active and feed.subscriber_count == 2
    feed.publish(QueueChanged(1))
    feed.publish(ScoresChanged(2))
    feed.publish(LiveStarted(3, 9, "host"))  # neither kind: nobody hears it
    assert heard == [2] and done == []
    closing = asyncio.create_task(sub.close())
    await asyncio.sleep(0)
    assert feed.subscriber_count == 0 and not sub.active  # unsubscribed at once...
    feed.publish(QueueChanged(4))  # ...so nothing new starts while closing
    assert not closing.done()  # ...and the running task is waited for, not cut off
    release.set()
    await closing
    assert done == [1]
    await sub.close()  # idempotent


async def test_a_failing_task_is_logged_with_its_event_and_the_next_event_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = ChangeFeed()
    sub = Subscription(feed, "test")
    done: list[int] = []

    async def handler(event: QueueChanged) -> None:
        if event.guild_id == 1:
            raise RuntimeError("boom")
        done.append(event.guild_id)

    sub.spawn_on(QueueChanged, handler)
    with caplog.at_level(logging.ERROR, logger="services.feed"):
        feed.publish(QueueChanged(1))
        feed.publish(QueueChanged(2))
        await asyncio.sleep(0.01)
        await sub.close()
    assert done == [2]
    assert "test: test-QueueChanged-1 failed" in caplog.text and "boom" in caplog.text

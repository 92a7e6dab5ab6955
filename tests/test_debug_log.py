"""Warnings reach the debug channel of the guild they concern, grouped, bounded and redacted."""

from __future__ import annotations

import asyncio
import logging

from services.log_context import guild_scope, set_guild
from ui.debug_log import MAX_BUFFERED, DebugChannelHandler, DebugReporter, summarize

GUILD_A, GUILD_B = 111, 222
CHANNEL_A, CHANNEL_B = 1, 2


def _record(message: str, level: int = logging.WARNING, name: str = "cogs.x", guild: int | None = GUILD_A
            ) -> logging.LogRecord:  # fmt: skip
    record = logging.LogRecord(name, level, __file__, 1, message, None, None)
    if guild is not None:
        record.guild_id = guild
    return record


def _reporter(handler: DebugChannelHandler, sent: list[tuple[int, str]], **options: object) -> DebugReporter:
    async def channels() -> dict[int, int]:
        return {GUILD_A: CHANNEL_A, GUILD_B: CHANNEL_B}

    async def send(channel: int, text: str) -> None:
        sent.append((channel, text))

    return DebugReporter(handler, channels, send, **options)  # type: ignore[arg-type]


def test_identical_lines_fold_and_output_fits_a_message() -> None:
    records = [_record("display edit failed") for _ in range(40)] + [_record("x" * 5000, logging.ERROR)]
    text = summarize(records, 0, lambda t: t)
    assert "display edit failed (×40)" in text and len(text) <= 2000


def test_buffer_is_bounded_and_info_is_ignored() -> None:
    handler = DebugChannelHandler()
    logger = logging.getLogger("test.debuglog")
    logger.addHandler(handler)
    try:
        logger.info("chatty", extra={"guild_id": GUILD_A})
        for i in range(MAX_BUFFERED + 20):
            logger.warning("w %s", i, extra={"guild_id": GUILD_A})
    finally:
        logger.removeHandler(handler)
    records, dropped = handler.drain()[GUILD_A]
    assert len(records) == MAX_BUFFERED and dropped == 20
    assert "…and 20 more" in summarize(records, dropped, lambda t: t)


async def test_reporter_posts_once_per_round_redacted() -> None:
    handler = DebugChannelHandler()
    sent: list[tuple[int, str]] = []
    reporter = _reporter(handler, sent, redact=lambda t: t.replace("tok123", "[redacted]"))
    for _ in range(100):
        handler.emit(_record("login failed with tok123"))
    assert await reporter.report_once()
    assert not await reporter.report_once()  # nothing new: no message
    assert [c for c, _ in sent] == [CHANNEL_A]
    assert "(×100)" in sent[0][1] and "tok123" not in sent[0][1]


async def test_each_guild_sees_only_its_own_records_and_guildless_ones_stay_in_the_log() -> None:
    handler = DebugChannelHandler()
    logger = logging.getLogger("test.debuglog.routing")
    logger.addHandler(handler)
    sent: list[tuple[int, str]] = []
    reporter = _reporter(handler, sent)

    async def guild_task(guild_id: int, text: str) -> None:
        set_guild(guild_id)  # as an interaction's or a per-guild task's start does
        await asyncio.sleep(0)
        logger.warning(text)

    try:
        logger.warning("user 42 in guild A hit a wall", extra={"guild_id": GUILD_A})
        with guild_scope(GUILD_B):
            logger.error("host streamer.b refused us")
        await asyncio.gather(guild_task(GUILD_A, "task of A"), guild_task(GUILD_B, "task of B"))
        logger.warning("process-wide: the sign server is slow")  # concerns no guild
    finally:
        logger.removeHandler(handler)
    assert await reporter.report_once()
    by_channel = dict(sent)
    assert set(by_channel) == {CHANNEL_A, CHANNEL_B}
    assert "user 42" in by_channel[CHANNEL_A] and "task of A" in by_channel[CHANNEL_A]
    assert "streamer.b" not in by_channel[CHANNEL_A] and "task of B" not in by_channel[CHANNEL_A]
    assert "streamer.b" in by_channel[CHANNEL_B] and "task of B" in by_channel[CHANNEL_B]
    assert "user 42" not in by_channel[CHANNEL_B] and "task of A" not in by_channel[CHANNEL_B]
    assert all("sign server" not in text for text in by_channel.values())


async def test_a_guild_without_a_debug_channel_gets_nothing_posted() -> None:
    handler = DebugChannelHandler()
    sent: list[tuple[int, str]] = []
    reporter = _reporter(handler, sent)
    handler.emit(_record("guild C problem", guild=333))
    assert await reporter.report_once()
    assert sent == []

"""Warnings reach the debug channel grouped, bounded and redacted."""

from __future__ import annotations

import logging

from ui.debug_log import MAX_BUFFERED, DebugChannelHandler, DebugReporter, summarize


def _record(message: str, level: int = logging.WARNING, name: str = "cogs.x") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_identical_lines_fold_and_output_fits_a_message() -> None:
    records = [_record("display edit failed") for _ in range(40)] + [_record("x" * 5000, logging.ERROR)]
    text = summarize(records, 0, lambda t: t)
    assert "display edit failed (×40)" in text and len(text) <= 2000


def test_buffer_is_bounded_and_info_is_ignored() -> None:
    handler = DebugChannelHandler()
    logger = logging.getLogger("test.debuglog")
    logger.addHandler(handler)
    try:
        logger.info("chatty")
        for i in range(MAX_BUFFERED + 20):
            logger.warning("w %s", i)
    finally:
        logger.removeHandler(handler)
    records, dropped = handler.drain()
    assert len(records) == MAX_BUFFERED and dropped == 20
    assert "…and 20 more" in summarize(records, dropped, lambda t: t)


async def test_reporter_posts_once_per_round_to_every_channel_redacted() -> None:
    handler = DebugChannelHandler()
    sent: list[tuple[int, str]] = []

    async def channels() -> list[int]:
        return [1, 2]

    async def send(channel: int, text: str) -> None:
        sent.append((channel, text))

    reporter = DebugReporter(handler, channels, send, redact=lambda t: t.replace("tok123", "[redacted]"))
    for _ in range(100):
        handler.emit(_record("login failed with tok123"))
    assert await reporter.report_once()
    assert not await reporter.report_once()  # nothing new: no message
    assert [c for c, _ in sent] == [1, 2]
    assert "(×100)" in sent[0][1] and "tok123" not in sent[0][1]

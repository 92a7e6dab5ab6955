"""The shared background loop: runs on its interval, survives a failing run, stops cleanly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.periodic import Periodic


async def test_runs_again_after_a_failure_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")

    loop = Periodic(action, 0.01, name="t", failure="test action failed")
    loop.start()
    loop.start()  # idempotent: still one loop
    for _ in range(200):
        if calls >= 3:
            break
        await asyncio.sleep(0.01)
    await loop.stop()
    stopped_at = calls
    await asyncio.sleep(0.05)
    assert stopped_at >= 3 and calls == stopped_at
    assert any(r.levelno == logging.ERROR and "test action failed" in r.getMessage() for r in caplog.records)
    await loop.stop()  # idempotent

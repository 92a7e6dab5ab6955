"""The benchmarks' load generator: what ``bench.live_pool`` relies on to measure the bot and not the fake."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")


async def _generator(*args: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.tiktok_load", "--rate", "10", "--per-frame", "1", "--seconds", "0.1",
        "--lives", "0", *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line.startswith(b"url "), line
    return process


async def _close(process: asyncio.subprocess.Process) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert await asyncio.wait_for(process.wait(), 60) == 0


@pytest.mark.parametrize(("args", "policy"), [(("--background",), "SCHED_IDLE"), ((), "SCHED_OTHER")])
async def test_the_fake_tiktok_takes_only_spare_cpu_when_told_to(args: tuple[str, ...], policy: str) -> None:
    """With ``--background`` the fake TikTok runs in the idle class, where the bot and its pool always go first.

    In production TikTok's servers are not on the bot's machine; at the bot's priority, the fake's bursts
    for 100 lives took CPU the bot then waited for.
    """
    process = await _generator(*args)
    try:
        assert os.sched_getscheduler(process.pid) == getattr(os, policy)
    finally:
        await _close(process)

"""The start-up doctor checks one guild a second: a bot in many servers never bursts its reports at start."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from ui import setup_actions


async def test_start_up_reports_are_paced_and_the_first_goes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, Any]] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        events.append(("sleep", seconds))
        await real_sleep(0)

    async def report(_bot: Any, guild: Any) -> None:
        events.append(("report", guild.id))
        if guild.id == 2:
            raise RuntimeError("one guild's failure")

    monkeypatch.setattr(setup_actions.asyncio, "sleep", sleep)
    monkeypatch.setattr(setup_actions, "report_problems", report)
    bot: Any = SimpleNamespace(guilds=[SimpleNamespace(id=n) for n in (1, 2, 3)])
    await setup_actions.report_all(bot)
    pause = 1 / setup_actions.DOCTOR_PER_SECOND
    assert events == [("report", 1), ("sleep", pause), ("report", 2), ("sleep", pause), ("report", 3)]

"""Pytest fixtures for the fake Discord; load with ``-p tests.fakediscord.pytest_plugin`` or from the root conftest.

``fake_discord`` starts a fresh fake, points discord.py's class-level endpoints at it (restored afterwards) and,
at teardown, fails the test if the fake recorded violations or unknown routes, unless the test is marked
``@pytest.mark.allow_violations``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest
import yarl

from tests.fakediscord.server import FakeDiscord


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker so ``--strict-markers`` accepts it."""
    config.addinivalue_line("markers", "allow_violations: the test provokes Discord rule violations on purpose")


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with discord.py's REST base and gateway URL pointed at it."""
    fake = await FakeDiscord().start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base_url)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    try:
        yield fake
    finally:
        await fake.stop()
    if request.node.get_closest_marker("allow_violations") is None:
        fake.assert_clean()

"""Pytest plugin: the ``fake_tiktok`` fixture (load with ``-p tests.faketiktok.pytest_plugin``).

The fixture starts a ``FakeTikTok`` on 127.0.0.1, points the real TikTokLive client at it (``SIGN_API_URL``
in the environment, ``WebDefaults.tiktok_app_url`` and ``WebDefaults.tiktok_webcast_url``), removes any
``SIGN_API_KEY`` so no real key is ever sent, and restores everything afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.faketiktok.server import FakeTikTok


@pytest_asyncio.fixture
async def fake_tiktok(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTikTok]:
    """A running fake TikTok that every ``TikTokLiveClient`` built during the test talks to."""
    from TikTokLive.client.web.web_settings import WebDefaults

    fake = FakeTikTok()
    await fake.start()
    monkeypatch.setenv("SIGN_API_URL", fake.base_url)
    monkeypatch.delenv("SIGN_API_KEY", raising=False)
    monkeypatch.setattr(WebDefaults, "tiktok_app_url", fake.base_url)
    monkeypatch.setattr(WebDefaults, "tiktok_webcast_url", fake.webcast_url)
    try:
        yield fake
    finally:
        await fake.stop()

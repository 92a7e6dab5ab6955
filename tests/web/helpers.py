"""Shared steps of the web tests: getting links through the real /overlay commands, reading SSE frames."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from typing import Any

import aiohttp

from models import Line
from tests.conftest import BotEnv
from ui.setup_ui import SETTINGS_PICK_ID

URL = re.compile(r"https?://\S+")


def free_port() -> int:
    """A port nobody listens on right now (the restart tests need the same port twice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def overlay_url(env: BotEnv) -> str:
    """The portrait overlay URL an admin gets from /overlay links (without its query)."""
    record = await env.admin.slash_sub(env.channels["general"], "overlay", "links")
    text = await record.wait_text("/o/")
    assert record.ephemeral
    return URL.findall(text)[0].split("?")[0]


async def public_url(env: BotEnv, **options: Any) -> str:
    """Switch the public page on through /overlay public and return its URL."""
    record = await env.admin.slash(env.channels["general"], "overlay", "public", state="on", **options)
    text = await record.wait_text("/q/")
    return URL.findall(text)[0]


async def settings_switch(env: BotEnv, key: str, value: str) -> None:
    """Change one setting the way an admin does: /settings, pick it in the select, type the value."""
    panel = (await env.admin.slash(env.channels["general"], "settings")).messages()[0]
    opened = await env.admin.select(panel, SETTINGS_PICK_ID, [key])
    assert opened.modal is not None
    accepted = await env.admin.submit_modal(opened, {"value": value})
    await accepted.wait_text("✅")


async def add(env: BotEnv, user: int, n: int, line: Line = Line.FREE, **kw: Any) -> str:
    """A song from ``user<user>`` into ``line`` (through the queue service, as a cog would)."""
    queue = env.bot.queue
    draft = queue.draft(artist=kw.get("artist", f"Artist {n}"), title=kw.get("title", f"Song {n}"),
                        note=kw.get("note"), link=kw.get("link", f"https://youtu.be/v{n}"),
                        handle=kw.get("handle"))  # fmt: skip
    placed = await queue.submit(env.guild_id, user, kw.get("name", f"user{user}"), draft, skip=line is not Line.FREE)
    if line not in (Line.FREE, Line.PENDING):
        await queue.approve(env.guild_id, placed.submission.public_id, line)
    return placed.submission.public_id


class EventStream:
    """An SSE client: reads ``(event, data)`` frames from a streaming response."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.retry: int | None = None

    async def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        """The next named event (comments and retry lines are skipped)."""
        return await asyncio.wait_for(self._read(), timeout)

    async def _read(self) -> tuple[str, Any]:
        event, data = "message", ""
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    return event, json.loads(data)
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            if key == "retry":
                self.retry = int(value)
            elif key == "event":
                event = value
            elif key == "data":
                data += value

    async def until(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Read snapshots until one satisfies ``predicate``; returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event, data = await self.next(max(0.01, deadline - loop.time()))
            if event == "snapshot" and predicate(data):
                return data

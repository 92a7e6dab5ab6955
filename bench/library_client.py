"""TikTokLive alone, in a process of its own: the baseline of ``bench.live_throughput``.

``python -m bench.library_client URL COUNT [--as-shipped]`` connects the real client to the fake TikTok at
``URL`` with a listener that only counts, writes ``ready`` once the room is entered, and ``done`` after
``COUNT`` events. It prepares the library as the bot's connection process does (``warm_event_classes``,
``reuse_proto_validators``, ``start_parsed_messages_from_defaults``); ``--as-shipped`` leaves betterproto2's
parsing and validation as the library ships them.
The bot's side of that benchmark runs its connection in a child process too (``LiveWorker``), so both
sides decode on a core of their own while the sender runs in the benchmark's process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(url: str, count: int, as_shipped: bool) -> None:
    """Count ``count`` engagement events, then disconnect."""
    from TikTokLive import TikTokLiveClient
    from TikTokLive.client.web.web_settings import WebDefaults
    from TikTokLive.events import CommentEvent, ConnectEvent, GiftEvent, LikeEvent

    from services.tiktok.adapter import reuse_proto_validators, start_parsed_messages_from_defaults, warm_event_classes

    warm_event_classes()  # the bot's worker does the same before it connects
    if not as_shipped:
        reuse_proto_validators()
        start_parsed_messages_from_defaults()
    WebDefaults.tiktok_app_url = url
    WebDefaults.tiktok_webcast_url = url + "/webcast"
    os.environ["SIGN_API_URL"] = url
    seen = 0
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    client = TikTokLiveClient(unique_id="host")
    for cls in (CommentEvent, LikeEvent, GiftEvent):
        client.add_listener(cls, on_event)
    client.add_listener(ConnectEvent, lambda event: _say("ready"))
    await client.start(fetch_live_check=False)
    await done.wait()
    _say("done")
    await client.disconnect()
    await client.web.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), "--as-shipped" in sys.argv[3:]))

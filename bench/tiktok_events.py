"""TikTokLive 7.x event objects and push frames for the benchmarks, and the project's adapter run over them."""

from __future__ import annotations

import gzip
import importlib.util
import random
from typing import Any

from models import EngagementEvent


def adapter_available() -> bool:
    """True when the project's TikTok adapter is installed (it is, once the TikTok layer landed)."""
    try:
        return importlib.util.find_spec("services.tiktok.adapter") is not None
    except ModuleNotFoundError:
        return False


def library_events(count: int, handles: int, seed: int = 5) -> list[Any]:
    """A realistic mix of library events (likes, comments, gifts, shares, follows), built before timing."""
    from TikTokLive.events import CommentEvent, FollowEvent, GiftEvent, LikeEvent, ShareEvent
    from TikTokLive.proto import CommonMessageData, Gift, User

    from services.tiktok.adapter import warm_event_classes

    warm_event_classes()
    # Build one event of each class with a common block before any Gift: pydantic resolves the forward
    # references lazily, and building a Gift first leaves them unresolvable in 7.0.1.
    for cls in (LikeEvent, CommentEvent, GiftEvent, ShareEvent, FollowEvent):
        cls(common=CommonMessageData(msg_id=1))

    rng = random.Random(seed)
    users = [User(id=10_000 + i, display_id=f"fan{i:05d}", nickname=f"Fan {i}") for i in range(handles)]
    gifts = [Gift(id=5655, name="Rose", type=2, diamond_count=1), Gift(id=5269, name="Lion", type=2, diamond_count=99)]
    out: list[Any] = []
    for i in range(count):
        user = rng.choice(users)
        common = CommonMessageData(msg_id=1_000_000 + i, create_time=0)
        roll = rng.random()
        if roll < 0.5:
            out.append(LikeEvent(user=user, count=rng.randint(1, 15), total=i, common=common))
        elif roll < 0.8:
            out.append(CommentEvent(user=user, content="nice song", common=common))
        elif roll < 0.9:
            out.append(GiftEvent(user=user, gift=rng.choice(gifts), repeat_count=1, repeat_end=1, common=common))
        elif roll < 0.95:
            out.append(ShareEvent(user=user, common=common))
        else:
            out.append(FollowEvent(user=user, common=common))
    return out


_ADAPTER: Any = None


def run_adapter(events: list[Any]) -> list[EngagementEvent]:
    """Translate library events with the project's real adapter (one instance, as the bot keeps)."""
    global _ADAPTER
    if _ADAPTER is None:
        from services.tiktok.adapter import EventAdapter

        _ADAPTER = EventAdapter()
    adapted: list[EngagementEvent] = []
    for event in events:
        adapted.extend(_ADAPTER.handle(event))
    return adapted


def push_frames(count: int, per_frame: int, names: list[str] | None = None) -> list[bytes]:
    """``count`` likes, comments and gifts from 500 fans as gzip push frames of ``per_frame`` messages.

    ``names``: the fans' handles (default ``fan0000``...), e.g. handles that songs in the queue name.
    """
    from TikTokLive.proto import ProtoMessageFetchResult, PushHeader, WebcastPushFrame

    from tests.faketiktok.server import chat, gift, like, user

    names = names or [f"fan{i:04d}" for i in range(500)]
    users = [user(name, 1000 + i) for i, name in enumerate(names)]
    messages = []
    for i in range(count):
        who = users[i % len(users)]
        kind = i % 10
        if kind < 5:
            messages.append(like(who, 5, i, 10_000 + i))
        elif kind < 9:
            messages.append(chat(who, "great track", 10_000 + i))
        else:
            messages.append(gift(who, diamonds=1, repeat=1, end=True, streakable=False, msg_id=10_000 + i))
    frames = []
    for start in range(0, count, per_frame):
        result = ProtoMessageFetchResult(messages=messages[start : start + per_frame], cursor="c", internal_ext="x")
        frame = WebcastPushFrame(payload_type="msg", log_id=start, headers=[PushHeader(key="compress_type",
                                 value="gzip")], payload=gzip.compress(bytes(result)))  # fmt: skip
        frames.append(bytes(frame))
    return frames


async def send_frames(fake: Any, frames: list[bytes]) -> None:
    """Write prebuilt frames to every socket of the fake TikTok."""
    for data in frames:
        for ws in list(fake._sockets):
            await ws.send_bytes(data)

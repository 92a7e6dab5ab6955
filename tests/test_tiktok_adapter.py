"""The adapter on TikTokLive 7.0.1 event objects: exact counting, no doubles, no crash on odd shapes.

Level A builds library events directly; level B replays raw protobuf bytes through the library's own
decoder (``_parse_webcast_response``), the same path a live socket takes.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from TikTokLive.events import (
    CommentEvent,
    FollowEvent,
    GiftEvent,
    JoinEvent,
    LikeEvent,
    RoomUserSeqEvent,
    ShareEvent,
    SocialEvent,
    SubNotifyEvent,
)
from TikTokLive.proto import CommonMessageData, Gift, User

from models import EngagementEvent, EventKind
from services.tiktok.adapter import EVENT_NAMES, EventAdapter, event_classes, normalize, warm_event_classes

warm_event_classes()


class Clock:
    """A hand-driven clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _common(msg_id: int = 0, created_ms: int = 0) -> CommonMessageData:
    return CommonMessageData(msg_id=msg_id, create_time=created_ms)


def _gift(uid: int, repeat: int, end: bool, *, streak: bool = True, diamonds: int = 1, msg: int = 0,
          group: int = 1) -> GiftEvent:  # fmt: skip
    return GiftEvent(user=User(id=uid, display_id=f"@U{uid}", nickname=f"U {uid}"),
                     gift=Gift(id=5655, type=1 if streak else 2, diamond_count=diamonds), gift_id=5655,
                     repeat_count=repeat, repeat_end=int(end), group_id=group, common=_common(msg))  # fmt: skip


def _coins(events: list[EngagementEvent]) -> list[int]:
    return [e.coins for e in events if e.kind is EventKind.GIFT]


def test_streak_counts_once_at_its_end_as_diamonds_times_repeat() -> None:
    adapter = EventAdapter()
    out = [e for r in (1, 2, 3) for e in adapter.handle(_gift(1, r, r == 3, diamonds=5))]
    assert [(e.kind, e.handle, e.coins, e.tiktok_user_id, e.nickname) for e in out] == [
        (EventKind.GIFT, "u1", 15, 1, "U 1")
    ]
    assert adapter.flush_stale(adapter.clock() + 3600) == [] and adapter.flush_all() == []


def test_non_streakable_gift_counts_immediately_even_without_end() -> None:
    out = EventAdapter().handle(_gift(2, 3, False, streak=False, diamonds=99))
    assert _coins(out) == [297]


def test_streak_without_end_is_committed_after_the_timeout_and_a_late_end_adds_only_the_delta() -> None:
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    assert adapter.handle(_gift(3, 4, False, diamonds=2)) == []
    clock.now += 9
    assert adapter.flush_stale() == []  # not quiet long enough
    clock.now += 2
    assert _coins(adapter.flush_stale()) == [8]  # committed at its max: 4 x 2
    assert adapter.flush_stale() == []  # never twice
    assert _coins(adapter.handle(_gift(3, 6, True, diamonds=2))) == [4]  # the late end: only (6 - 4) x 2
    assert adapter.handle(_gift(3, 6, True, diamonds=2)) == []  # a repeated end adds nothing


def test_streak_steps_out_of_order_keep_the_maximum() -> None:
    adapter = EventAdapter()
    adapter.handle(_gift(4, 5, False))
    adapter.handle(_gift(4, 3, False))  # a late, lower step
    assert _coins(adapter.handle(_gift(4, 5, True))) == [5]


def test_flush_all_commits_open_streaks_once_and_a_replayed_end_adds_nothing() -> None:
    adapter = EventAdapter()
    adapter.handle(_gift(5, 3, False, diamonds=10))
    adapter.handle(_gift(6, 1, False, diamonds=1, group=2))
    assert sorted(_coins(adapter.flush_all())) == [1, 30]
    assert adapter.flush_all() == []
    assert adapter.handle(_gift(5, 3, True, diamonds=10)) == []  # the end, replayed after a reconnect


def test_two_streaks_of_the_same_user_are_kept_apart_by_group() -> None:
    adapter = EventAdapter()
    adapter.handle(_gift(7, 2, False, group=1))
    adapter.handle(_gift(7, 4, False, group=2))
    assert _coins(adapter.handle(_gift(7, 2, True, group=1))) == [2]
    assert _coins(adapter.handle(_gift(7, 4, True, group=2))) == [4]


def test_likes_count_what_the_message_carries_not_the_room_total() -> None:
    adapter = EventAdapter()
    bob = User(id=9, display_id="Bob")
    out = adapter.handle(LikeEvent(user=bob, count=12, total=500)) + adapter.handle(LikeEvent(user=bob, count=3))
    assert [(e.kind, e.handle, e.count) for e in out] == [(EventKind.LIKE, "bob", 12), (EventKind.LIKE, "bob", 3)]


def test_follow_and_share_are_not_doubled_by_the_social_event() -> None:
    adapter = EventAdapter()
    bob = User(id=9, display_id="Bob")
    out = adapter.handle(FollowEvent(user=bob, common=_common(1)))
    out += adapter.handle(SocialEvent(user=bob, common=_common(1)))  # the duplicate the library emits
    out += adapter.handle(ShareEvent(user=bob, common=_common(2)))
    out += adapter.handle(SocialEvent(user=bob, common=_common(2)))
    assert [e.kind for e in out] == [EventKind.FOLLOW, EventKind.SHARE]
    assert "SocialEvent" not in EVENT_NAMES and "ControlEvent" not in EVENT_NAMES
    assert {cls.__name__ for cls in event_classes()} == set(EVENT_NAMES)


def test_every_kind_maps_to_its_domain_event() -> None:
    adapter = EventAdapter(clock=Clock(5.0))
    ann = User(id=12, display_id="Ann", nickname="Ann N")
    out: list[EngagementEvent] = []
    events = [
        CommentEvent(user=ann, content="hello", common=_common(1)),
        JoinEvent(user=ann, common=_common(2)),
        SubNotifyEvent(user=ann, common=_common(3)),
        RoomUserSeqEvent(total=55, common=_common(4)),
    ]
    for event in events:
        out += adapter.handle(event)
    assert out == [
        EngagementEvent(EventKind.COMMENT, "ann", 5.0, tiktok_user_id=12, nickname="Ann N", msg_id=1, text="hello"),
        EngagementEvent(EventKind.JOIN, "ann", 5.0, tiktok_user_id=12, nickname="Ann N", msg_id=2),
        EngagementEvent(EventKind.SUBSCRIBE, "ann", 5.0, tiktok_user_id=12, nickname="Ann N", msg_id=3),
        EngagementEvent(EventKind.VIEWERS, None, 5.0, viewers=55, msg_id=4),
    ]


def test_replayed_backlog_is_dropped_by_message_id_in_a_bounded_memory() -> None:
    adapter = EventAdapter(dedupe_size=3)
    comment = CommentEvent(user=User(id=1, display_id="a_b"), content="hi", common=_common(77))
    assert len(adapter.handle(comment)) == 1
    assert adapter.handle(comment) == [] and adapter.duplicates == 1
    for msg_id in (1, 2, 3):
        adapter.handle(CommentEvent(user=User(id=1, display_id="a_b"), content="x", common=_common(msg_id)))
    assert len(adapter.handle(comment)) == 1  # 77 fell out of the bounded memory
    assert len(adapter._seen) == 3


def test_events_older_than_the_connection_start_are_dropped_when_configured() -> None:
    adapter = EventAdapter()
    who = User(id=1, display_id="x1")
    adapter.set_connected_at(2000.0, tolerance=5.0)
    assert adapter.handle(CommentEvent(user=who, content="old", common=_common(1, 1_990_000))) == []
    assert len(adapter.handle(CommentEvent(user=who, content="skewed", common=_common(2, 1_997_000)))) == 1
    assert len(adapter.handle(CommentEvent(user=who, content="no time", common=_common(3, 0)))) == 1
    assert adapter.stale == 1
    adapter.set_connected_at(None)
    assert len(adapter.handle(CommentEvent(user=who, content="old", common=_common(4, 1)))) == 1


def test_plain_users_without_unique_id_are_fine() -> None:
    plain = User(id=3, display_id="@@Plain.User", nickname="P")
    assert not hasattr(plain, "unique_id")
    out = EventAdapter().handle(CommentEvent(user=plain, content="hi"))
    assert [(e.handle, e.tiktok_user_id, e.nickname, e.msg_id) for e in out] == [("plain.user", 3, "P", None)]


def test_missing_or_odd_attributes_never_raise_and_are_counted() -> None:
    adapter = EventAdapter()
    assert adapter.handle(object()) == []  # not an event we know: ignored, not a drop
    assert adapter.handle(CommentEvent(content="no user")) == []
    assert adapter.handle(JoinEvent(user=User(id=5))) == []  # no handle
    assert adapter.handle(RoomUserSeqEvent()) != []  # total defaults to 0 on a proto message
    assert _coins(adapter.handle(GiftEvent(user=User(id=1, display_id="x1")))) == [0]  # no gift object
    # Duck-typed shapes named like library events, with missing or garbage fields.
    like_cls = type("LikeEvent", (), {})
    odd = like_cls()
    odd.user = SimpleNamespace(display_id="Odd")  # no id, no nickname, no count, no common
    assert [(e.handle, e.count, e.tiktok_user_id) for e in adapter.handle(odd)] == [("odd", 1, None)]
    bad = like_cls()
    bad.user, bad.count = SimpleNamespace(display_id="bad", id="not a number"), 2
    assert adapter.handle(bad) == []
    room_cls = type("RoomUserSeqEvent", (), {})
    assert adapter.handle(room_cls()) == []
    assert adapter.dropped == 4
    assert adapter.stats()["dropped"] == 4


def test_normalize() -> None:
    assert normalize("@@Some.User") == "some.user"
    assert normalize("  @Bob ") == "bob"
    assert normalize("") is None and normalize(None) is None and normalize("@@") is None


@settings(max_examples=150, deadline=None)
@given(
    steps=st.integers(min_value=1, max_value=12),
    diamonds=st.integers(min_value=1, max_value=500),
    end_seen=st.booleans(),
    flush_after=st.integers(min_value=0, max_value=12),
    duplicate_steps=st.lists(st.integers(min_value=1, max_value=12), max_size=4),
    late_end=st.booleans(),
)
def test_a_streak_is_never_double_counted_nor_missed(
    steps: int, diamonds: int, end_seen: bool, flush_after: int, duplicate_steps: list[int], late_end: bool
) -> None:
    """Whatever order of steps, timeouts, replays and late ends: the coins equal diamonds x the max step."""
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    msg_ids = itertools.count(1)
    coins = 0
    for repeat in range(1, steps + 1):
        is_end = end_seen and repeat == steps
        coins += sum(_coins(adapter.handle(_gift(1, repeat, is_end, diamonds=diamonds, msg=next(msg_ids)))))
        if repeat == flush_after:
            clock.now += 11
            coins += sum(_coins(adapter.flush_stale()))
        clock.now += 0.5
    for repeat in duplicate_steps:  # replayed steps with new ids: never more than the max
        coins += sum(_coins(adapter.handle(_gift(1, min(repeat, steps), False, diamonds=diamonds,
                                                 msg=next(msg_ids)))))  # fmt: skip
    clock.now += 11
    coins += sum(_coins(adapter.flush_stale()))
    if late_end:
        coins += sum(_coins(adapter.handle(_gift(1, steps, True, diamonds=diamonds, msg=next(msg_ids)))))
    coins += sum(_coins(adapter.flush_all()))
    assert coins == diamonds * steps


async def test_raw_frames_through_the_library_decoder() -> None:
    """Level B: protobuf bytes -> the real client's parser -> adapter, as a socket would deliver them."""
    from TikTokLive import TikTokLiveClient
    from TikTokLive.proto import ProtoMessageFetchResult

    from tests.faketiktok.server import chat, gift, like, live_end, social, unknown, user

    bob = user("Bob", 11)
    raw = bytes(ProtoMessageFetchResult(messages=[
        chat(bob, "hi", 1), like(bob, 4, 40, 2), social(bob, "follow", 3),
        gift(bob, diamonds=5, repeat=1, end=False, streakable=True, msg_id=4),
        gift(bob, diamonds=5, repeat=2, end=True, streakable=True, msg_id=5), unknown(), chat(bob, "hi", 1),
        live_end(6),
    ], cursor="c"))  # fmt: skip
    client = TikTokLiveClient(unique_id="host")
    client._room_id = 1
    adapter = EventAdapter()
    out: list[EngagementEvent] = []
    names: list[str] = []
    try:
        async for event in client._parse_webcast_response(ProtoMessageFetchResult().parse(raw)):
            names.append(type(event).__name__)
            out += adapter.handle(event)
    finally:
        await client.web.close()
    assert names.count("FollowEvent") == 1 and names.count("SocialEvent") == 1  # the library doubles it
    assert [(e.kind, e.count, e.coins, e.text) for e in out] == [
        (EventKind.COMMENT, 1, 0, "hi"), (EventKind.LIKE, 4, 0, None), (EventKind.FOLLOW, 1, 0, None),
        (EventKind.GIFT, 1, 10, None),
    ]  # fmt: skip

"""The adapter on TikTokLive 7.0.1 event objects: exact counting, no doubles, no crash on odd shapes.

Level A builds library events directly; level B replays raw protobuf bytes through the library's own
decoder (``_parse_webcast_response``), the same path a live socket takes.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

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
          group: int = 1, created: int = 0, gift_id: int = 5655) -> GiftEvent:  # fmt: skip
    return GiftEvent(user=User(id=uid, display_id=f"@U{uid}", nickname=f"U {uid}"),
                     gift=Gift(id=gift_id, type=1 if streak else 2, diamond_count=diamonds), gift_id=gift_id,
                     repeat_count=repeat, repeat_end=int(end), group_id=group,
                     common=_common(msg, created))  # fmt: skip


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
    adapter.handle(_gift(4, 5, False, created=5_000))
    adapter.handle(_gift(4, 3, False, created=3_000))  # a late, lower step: TikTok created it earlier
    assert _coins(adapter.handle(_gift(4, 5, True, created=5_100))) == [5]
    assert adapter.flush_all() == []  # the late step started no second streak


def test_a_second_streak_with_group_id_zero_is_not_merged_into_the_first() -> None:
    """Issue 12.2: two Rose streaks of 10 and 5, twenty seconds apart, group id 0: 15 coins, not 10."""
    for with_times in (True, False):
        clock = Clock()
        adapter = EventAdapter(streak_timeout=10, clock=clock)
        coins = 0
        for start_ms, steps in ((1_000_000, 10), (1_020_000, 5)):
            for repeat in range(1, steps + 1):
                created = start_ms + repeat * 300 if with_times else 0
                coins += sum(_coins(adapter.handle(_gift(8, repeat, repeat == steps, group=0, created=created))))
                clock.now += 0.3
            clock.now += 20
        coins += sum(_coins(adapter.flush_stale(clock.now + 3600))) + sum(_coins(adapter.flush_all()))
        assert coins == 15, with_times


def test_a_restart_without_an_end_is_a_new_streak_and_the_first_is_committed_at_its_max() -> None:
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    coins = 0
    for repeat in (1, 2, 3):  # the end of this streak never arrives
        coins += sum(_coins(adapter.handle(_gift(9, repeat, False, group=7, diamonds=2, created=10_000 + repeat))))
    for repeat in (1, 2):  # the repeat count restarts under the same (reused) group id
        coins += sum(_coins(adapter.handle(_gift(9, repeat, repeat == 2, group=7, diamonds=2,
                                                 created=15_000 + repeat))))  # fmt: skip
    assert coins == 4  # the second streak, at its end: 2 x 2
    clock.now += 11
    assert _coins(adapter.flush_stale()) == [6]  # the first streak: 3 x 2, at its max
    assert adapter.flush_all() == []


def test_without_creation_times_a_step_after_an_end_starts_a_new_streak_but_a_repeated_end_does_not() -> None:
    adapter = EventAdapter()
    assert _coins(adapter.handle(_gift(10, 1, False)) + adapter.handle(_gift(10, 1, True))) == [1]
    assert adapter.handle(_gift(10, 1, True, msg=99)) == []  # the same end again, under another id
    assert _coins(adapter.handle(_gift(10, 1, False)) + adapter.handle(_gift(10, 1, True))) == [1]  # a new Rose
    assert adapter.flush_all() == []


def test_late_ends_and_replays_of_quiet_streaks_are_never_counted_again() -> None:
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    adapter.handle(_gift(11, 3, False, diamonds=4, created=50_000))  # its end is late
    assert _coins(adapter.flush_stale(clock.now + 11)) == [12]
    assert adapter.flush_stale(clock.now + 300) == []  # five quiet minutes: still known, its end may come
    assert adapter.handle(_gift(11, 3, True, diamonds=4, created=50_100)) == []  # the end: 0 more
    clock.now += 300
    assert adapter.flush_stale() == [] and adapter.stats()["streaks"] == 0  # ended and quiet: forgotten
    assert adapter.handle(_gift(11, 2, False, diamonds=4, created=49_900)) == []  # a replayed old step
    assert adapter.stats()["late"] == 1
    adapter.handle(_gift(11, 1, False, diamonds=4, created=4_000_000))  # a new streak, much later
    assert _coins(adapter.flush_all()) == [4]


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
    """Whatever order of steps, timeouts, replays and late ends: the coins equal diamonds x the max step.

    A replayed step or end keeps the creation time TikTok gave the original (that is what tells it from
    the start of a new streak, see the interleaved property below).
    """
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    msg_ids = itertools.count(1)
    created = {repeat: 1_000_000 + repeat * 500 for repeat in range(1, steps + 1)}
    end_created = created[steps] + 100
    coins = 0
    for repeat in range(1, steps + 1):
        is_end = end_seen and repeat == steps
        when = end_created if is_end else created[repeat]
        coins += sum(_coins(adapter.handle(_gift(1, repeat, is_end, diamonds=diamonds, msg=next(msg_ids),
                                                 created=when))))  # fmt: skip
        if repeat == flush_after:
            clock.now += 11
            coins += sum(_coins(adapter.flush_stale()))
        clock.now += 0.5
    for repeat in duplicate_steps:  # replayed steps with new ids: never more than the max
        step = min(repeat, steps)
        coins += sum(_coins(adapter.handle(_gift(1, step, False, diamonds=diamonds, msg=next(msg_ids),
                                                 created=created[step]))))  # fmt: skip
    clock.now += 11
    coins += sum(_coins(adapter.flush_stale()))
    if late_end:
        coins += sum(_coins(adapter.handle(_gift(1, steps, True, diamonds=diamonds, msg=next(msg_ids),
                                                 created=end_created))))  # fmt: skip
    coins += sum(_coins(adapter.flush_all()))
    assert coins == diamonds * steps


_GIFT_DIAMONDS = {5655: 1, 5827: 7}


class _FastGift:
    """The fields of a ``GiftEvent`` the adapter reads, without pydantic's validation.

    About 100x cheaper to build, so the property below runs many more examples; the tests above use the
    library's own class.
    """

    __slots__ = ("common", "gift", "gift_id", "group_id", "repeat_count", "repeat_end", "user")

    def __init__(self, viewer: int, repeat: int, end: bool, *, diamonds: int, msg: int, group: int, gift_id: int,
                 created: int) -> None:  # fmt: skip
        self.user = SimpleNamespace(id=viewer, display_id=f"@U{viewer}", nickname=f"U {viewer}")
        self.gift = SimpleNamespace(id=gift_id, type=1, diamond_count=diamonds)
        self.gift_id, self.repeat_count, self.repeat_end, self.group_id = gift_id, repeat, int(end), group
        self.common = SimpleNamespace(msg_id=msg, create_time=created)


_FastGift.__name__ = "GiftEvent"  # the adapter dispatches on the class name, as for the library's classes


@st.composite
def _interleaved_live(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], dict[str, int], bool]:
    """Streaks of several viewers and gifts, interleaved, with TikTok's faults.

    Returns (the arrival script, the expected coins per handle, whether messages carry creation times).
    Script items: ``("gift", GiftEvent)``, ``("tick", None)`` (time passes and the periodic flush runs) and
    ``("late", GiftEvent)`` (delivered after every streak went quiet). Faults: ends lost or late, steps out
    of order, steps repeated under a new message id, messages replayed whole (same id), group id 0, reused
    or distinct per streak. Without creation times only the faults that arrival order can tell apart are
    drawn (whole replays, lost ends, the last streak's end late): nothing else orders the messages then.
    A streak's opening step and its end keep their place among its steps: were a streak's end lost and the
    next streak's second step to arrive before its first, nothing would tell that from one streak going on.
    """
    rnd = draw(st.randoms(use_true_random=False))
    with_times = draw(st.booleans())
    group_mode = draw(st.sampled_from(["zero", "reused", "distinct"]))
    keys = draw(st.lists(st.tuples(st.integers(1, 3), st.sampled_from(sorted(_GIFT_DIAMONDS))),
                         min_size=1, max_size=4, unique=True))  # fmt: skip
    msg_ids = itertools.count(1)
    expected: dict[str, int] = {}
    per_key: list[list[_FastGift]] = []
    late: list[_FastGift] = []
    for viewer, gift_id in keys:
        diamonds = _GIFT_DIAMONDS[gift_id]
        streaks = draw(st.lists(st.tuples(st.integers(1, 8), st.sampled_from(["end", "lost end", "late end"]),
                                          st.booleans()), min_size=1, max_size=3))  # fmt: skip
        now_ms = 1_000_000 + rnd.randrange(0, 5_000)
        sequence: list[_FastGift] = []
        for index, (steps, fate, separate_end) in enumerate(streaks):
            expected[f"u{viewer}"] = expected.get(f"u{viewer}", 0) + diamonds * steps
            group = {"zero": 0, "reused": 42, "distinct": index + 1}[group_mode]
            last_streak = index == len(streaks) - 1
            if fate == "late end" and not with_times and not last_streak:
                fate = "end"
            separate_end = separate_end or steps == 1  # TikTok sends at least two messages per streak

            def make(repeat: int, end: bool, created: int, *, viewer: int = viewer, diamonds: int = diamonds,
                     group: int = group, gift_id: int = gift_id) -> _FastGift:  # fmt: skip
                return _FastGift(viewer, repeat, end, diamonds=diamonds, msg=next(msg_ids), group=group,
                                 gift_id=gift_id, created=created if with_times else 0)  # fmt: skip

            messages = []
            for repeat in range(1, steps + 1):
                now_ms += 300
                messages.append(make(repeat, repeat == steps and not separate_end, now_ms))
            if separate_end:
                now_ms += 100
                messages.append(make(steps, True, now_ms))
            if fate != "end":
                end_message = messages.pop()
                if not separate_end:  # the last step arrives, without its end flag
                    messages.append(make(steps, False, end_message.common.create_time))
                if fate == "late end":
                    late.append(end_message)
            middle = [i for i, m in enumerate(messages) if m.repeat_count > 1 and not m.repeat_end]
            if with_times and len(middle) > 1 and rnd.random() < 0.5:  # two steps arrive swapped
                i = rnd.choice(middle[:-1])
                messages[i], messages[i + 1] = messages[i + 1], messages[i]
            sequence.extend(messages)
            now_ms += rnd.randrange(1_000, 30_000)  # the viewer starts the next streak later
        for original in list(sequence):
            roll = rnd.random()
            if roll < 0.15:  # replayed whole (a reconnect backlog): same message id
                sequence.insert(rnd.randrange(sequence.index(original) + 1, len(sequence) + 1), original)
            elif roll < 0.3 and with_times:  # repeated under a new message id, as TikTok created it
                copy = _FastGift(viewer, original.repeat_count, bool(original.repeat_end), diamonds=diamonds,
                                 msg=next(msg_ids), group=original.group_id, gift_id=gift_id,
                                 created=original.common.create_time)  # fmt: skip
                sequence.insert(rnd.randrange(sequence.index(original) + 1, len(sequence) + 1), copy)
        per_key.append(sequence)
    script: list[tuple[str, Any]] = []
    while any(per_key):
        queue = rnd.choice([q for q in per_key if q])
        script.append(("gift", queue.pop(0)))
        if rnd.random() < 0.1:
            script.append(("tick", None))
    script.extend(("late", message) for message in late)
    return script, expected, with_times


@settings(max_examples=500, deadline=None)
@given(live=_interleaved_live())
def test_interleaved_streaks_of_several_viewers_and_gifts_are_each_counted_once(
    live: tuple[list[tuple[str, Any]], dict[str, int], bool],
) -> None:
    """Issue 12.2: every streak counts exactly diamonds x its count, whatever the group ids and faults."""
    script, expected, _with_times = live
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    got: dict[str, int] = {}

    def add(events: list[EngagementEvent]) -> None:
        for event in events:
            if event.kind is EventKind.GIFT:
                got[event.handle or ""] = got.get(event.handle or "", 0) + event.coins

    late_started = False
    for kind, message in script:
        if kind == "late" and not late_started:
            late_started = True
            clock.now += 11
            add(adapter.flush_stale())  # the lost ends are committed at their max first
        if kind == "tick":
            clock.now += 1
            add(adapter.flush_stale())
        else:
            add(adapter.handle(message))
            clock.now += 0.1
    clock.now += 11
    add(adapter.flush_stale())
    add(adapter.flush_all())
    assert adapter.flush_all() == []
    assert got == expected


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


def _counting_validators(monkeypatch: Any) -> list[object]:
    """Record every pydantic validator built from now on (the module attribute the library calls)."""
    import pydantic_core

    built: list[object] = []
    real = pydantic_core.SchemaValidator

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(pydantic_core, "SchemaValidator", counting)
    return built


def test_the_library_builds_a_message_classs_validator_once_not_per_message(monkeypatch: Any) -> None:
    import betterproto2

    from services.tiktok.adapter import reuse_proto_validators

    # The library as shipped, for this test (restored afterwards); then the connection process's start-up.
    monkeypatch.setattr(betterproto2.Message, "_validate", betterproto2.Message._validate)
    payload = _like_payload()
    built = _counting_validators(monkeypatch)
    LikeEvent().parse(payload)
    per_message = len(built)
    assert per_message > 0  # the nested pydantic messages are validated
    reuse_proto_validators()
    reuse_proto_validators()  # idempotent: one cache, not a wrapper around a wrapper
    built.clear()
    for _ in range(20):
        assert LikeEvent().parse(payload).user.nickname == "fan"
    assert len(built) == per_message  # once per class, at the first message (as shipped: 20 x)


def test_reused_validators_reject_what_the_librarys_own_reject(monkeypatch: Any) -> None:
    import betterproto2
    import pydantic_core
    import pytest

    from services.tiktok.adapter import reuse_proto_validators

    monkeypatch.setattr(betterproto2.Message, "_validate", betterproto2.Message._validate)
    good = User().parse(bytes(User(id=5, nickname="fan")))
    bad = User().parse(bytes(User(id=5, nickname="fan")))
    bad.id = "five"  # type: ignore[assignment]
    for _ in ("as shipped", "reused"):
        good._validate()
        with pytest.raises(pydantic_core.ValidationError):
            bad._validate()
        reuse_proto_validators()
    with pytest.raises(TypeError):  # and a message that is no pydantic dataclass still says so
        LikeEvent()._validate()


def _every_kind_of_message() -> list[Any]:
    """One library message of each kind a live sends (method and payload), as the fake TikTok builds them."""
    from tests.faketiktok.server import chat, follow, gift, join, like, live_end, share, subscribe, user, viewers

    bob = user("Bob", 11, "Bob B")
    return [chat(bob, "hi", 1), like(bob, 4, 40, 2), follow(bob, 3), share(bob, 4), join(bob, 5),
            subscribe(bob, 6), gift(bob, diamonds=5, repeat=2, end=True, streakable=True, msg_id=7), viewers(120, 8),
            live_end(9)]  # fmt: skip


def _like_payload() -> bytes:
    """A like from user 5 ("fan"), message id 1, as the wire carries it."""
    return bytes(LikeEvent(count=3, total=10, user=User(id=5, nickname="fan"), common=_common(1, 2)))


def _as_shipped(monkeypatch: Any) -> None:
    """betterproto2's own ``parse`` and ``_validate`` for this test (whatever was there is restored afterwards)."""
    import betterproto2

    monkeypatch.setattr(betterproto2.Message, "parse", betterproto2.Message.__dict__["parse"])
    monkeypatch.setattr(betterproto2.Message, "_validate", betterproto2.Message._validate)


def _fields_of(message: Any) -> Any:
    """A message as nested plain values with their types, so that equal really means the same message."""
    import betterproto2

    if isinstance(message, betterproto2.Message):
        return type(message), {name: _fields_of(value) for name, value in vars(message).items()}
    if isinstance(message, (list, tuple)):
        return [_fields_of(item) for item in message]
    if isinstance(message, dict):
        return {key: _fields_of(value) for key, value in message.items()}
    return type(message), message


def test_a_parsed_message_starts_from_its_defaults_without_pydantics_init(monkeypatch: Any) -> None:
    from TikTokLive.events import EVENT_MAPPINGS

    from services.tiktok.adapter import start_parsed_messages_from_defaults

    _as_shipped(monkeypatch)
    payload = _like_payload()
    start_parsed_messages_from_defaults()
    start_parsed_messages_from_defaults()  # idempotent: one template per class, not a wrapper around a wrapper
    assert LikeEvent.parse(payload).user.nickname == "fan"  # the first message of each class builds its template
    inits: list[str] = []
    for cls in (User, CommonMessageData, EVENT_MAPPINGS["WebcastLikeMessage"].__mro__[1]):
        real = cls.__init__

        def counting(self: Any, *args: Any, _real: Any = real, _name: str = cls.__name__, **kwargs: Any) -> None:
            inits.append(_name)
            _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    parsed = [LikeEvent.parse(payload) for _ in range(20)]
    assert inits == []  # as shipped: 3 pydantic __init__ runs (like, user, common) per message
    assert [(like.count, like.user.id, like.common.msg_id) for like in parsed] == [(3, 5, 1)] * 20


def test_messages_parse_to_the_same_values_from_defaults_as_through_pydantics_init(monkeypatch: Any) -> None:
    from TikTokLive.events import EVENT_MAPPINGS

    from services.tiktok.adapter import reuse_proto_validators, start_parsed_messages_from_defaults

    _as_shipped(monkeypatch)
    messages = _every_kind_of_message()
    unknown_field = b"\xf8\x3f\x01"  # field 1023, a varint: kept in _unknown_fields by both
    shipped = [_fields_of(EVENT_MAPPINGS[m.method].parse(m.payload + unknown_field)) for m in messages]
    reuse_proto_validators()
    start_parsed_messages_from_defaults()
    assert [_fields_of(EVENT_MAPPINGS[m.method].parse(m.payload + unknown_field)) for m in messages] == shipped
    first, second = (EVENT_MAPPINGS["WebcastLikeMessage"].parse(messages[1].payload) for _ in range(2))
    first.icons.append("x")  # a default list is a new list for every message, never one shared by all
    assert second.icons == [] and first.user.badge_list is not second.user.badge_list


def test_a_message_class_with_its_own_init_is_still_built_by_it(monkeypatch: Any) -> None:
    from TikTokLive.proto.custom_proto import ExtendedGift

    from services.tiktok.adapter import start_parsed_messages_from_defaults

    _as_shipped(monkeypatch)
    start_parsed_messages_from_defaults()
    gift = ExtendedGift.parse(bytes(Gift(id=5655, type=1, diamond_count=1)))
    assert gift.m_gift is None and gift.streakable and gift.diamond_count == 1  # ExtendedGift.__init__ ran


def test_parsing_from_defaults_rejects_what_the_librarys_own_parse_rejects(monkeypatch: Any) -> None:
    import pydantic_core
    import pytest

    from services.tiktok.adapter import reuse_proto_validators, start_parsed_messages_from_defaults

    _as_shipped(monkeypatch)
    nickname = User._betterproto.meta_by_field_name["nickname"].number
    wrong_type = bytes([nickname << 3, 5])  # a string field sent as the number 5
    for _ in ("as shipped", "from defaults"):
        with pytest.raises(pydantic_core.ValidationError):
            User.parse(wrong_type)
        reuse_proto_validators()
        start_parsed_messages_from_defaults()


def test_a_fresh_connection_process_parses_classes_it_never_built_before() -> None:
    """In a new interpreter no class has its pydantic schema yet (it is built at the first ``cls()``)."""
    import subprocess
    import sys

    payload = _like_payload()
    script = (
        "import sys\n"
        "from services.tiktok.adapter import reuse_proto_validators, start_parsed_messages_from_defaults\n"
        "from services.tiktok.adapter import warm_event_classes\n"
        "warm_event_classes(); reuse_proto_validators(); start_parsed_messages_from_defaults()\n"
        "from TikTokLive.events import LikeEvent\n"
        "like = LikeEvent.parse(sys.stdin.buffer.read())\n"
        "sys.stdout.write(f'{like.count} {like.user.id} {like.user.nickname} {like.common.msg_id}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=payload, capture_output=True, timeout=120, check=True)
    assert done.stdout.decode() == "3 5 fan 1"

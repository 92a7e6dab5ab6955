"""The adapter on library event objects: exact counting, no doubles, no crash on odd shapes."""

from __future__ import annotations

from TikTokLive.events import CommentEvent, FollowEvent, GiftEvent, JoinEvent, LikeEvent, RoomUserSeqEvent, SocialEvent
from TikTokLive.proto import CommonMessageData, Gift, User

from models import EventKind
from services.tiktok.adapter import EventAdapter, normalize, warm_event_classes

warm_event_classes()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gift(uid: int, repeat: int, end: bool, *, streak: bool = True, diamonds: int = 1, msg: int = 0) -> GiftEvent:
    return GiftEvent(user=User(id=uid, display_id=f"@U{uid}"), gift=Gift(id=5655, type=1 if streak else 2,
                     diamond_count=diamonds), gift_id=5655, repeat_count=repeat, repeat_end=int(end), group_id=1,
                     common=CommonMessageData(msg_id=msg))  # fmt: skip


def test_streak_counts_once_at_its_end() -> None:
    adapter = EventAdapter()
    out = [e for r in (1, 2, 3) for e in adapter.handle(_gift(1, r, r == 3, diamonds=5))]
    assert [(e.kind, e.handle, e.coins) for e in out] == [(EventKind.GIFT, "u1", 15)]


def test_non_streak_gift_counts_immediately() -> None:
    out = EventAdapter().handle(_gift(2, 1, False, streak=False, diamonds=99))
    assert [e.coins for e in out] == [99]


def test_streak_without_end_is_committed_after_the_timeout_and_a_late_end_adds_the_delta() -> None:
    clock = Clock()
    adapter = EventAdapter(streak_timeout=10, clock=clock)
    adapter.handle(_gift(3, 4, False))
    assert adapter.flush_stale() == []
    clock.now += 11
    assert [e.coins for e in adapter.flush_stale()] == [4]
    assert adapter.flush_stale() == []  # never twice
    assert [e.coins for e in adapter.handle(_gift(3, 6, True))] == [2]


def test_likes_by_count_and_follow_not_doubled_by_social() -> None:
    adapter = EventAdapter()
    bob = User(id=9, display_id="Bob")
    out = adapter.handle(LikeEvent(user=bob, count=12, total=50))
    out += adapter.handle(FollowEvent(user=bob))
    out += adapter.handle(SocialEvent(user=bob))  # the duplicate the library emits for the same follow
    assert [(e.kind, e.count) for e in out] == [(EventKind.LIKE, 12), (EventKind.FOLLOW, 1)]


def test_replayed_backlog_is_dropped_by_message_id() -> None:
    adapter = EventAdapter()
    comment = CommentEvent(user=User(id=1, display_id="a_b"), content="hi", common=CommonMessageData(msg_id=77))
    assert len(adapter.handle(comment)) == 1
    assert adapter.handle(comment) == [] and adapter.duplicates == 1


def test_plain_users_and_missing_attributes_never_crash() -> None:
    adapter = EventAdapter()
    assert adapter.handle(CommentEvent(content="no user")) == []
    assert adapter.handle(GiftEvent(user=User(id=1, display_id="x1"))) != []  # no gift object: 0 coins, no crash
    assert adapter.handle(object()) == []
    assert adapter.handle(JoinEvent(user=User(display_id="@@Joiner")))[0].handle == "joiner"
    assert adapter.handle(RoomUserSeqEvent(total=55))[0].viewers == 55
    assert adapter.dropped == 1


def test_normalize() -> None:
    assert normalize("@@Some.User") == "some.user" and normalize("") is None and normalize(None) is None

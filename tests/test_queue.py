"""The queue engine of SPEC section 2, on a real database: every rule and every refused transition."""

from __future__ import annotations

import asyncio

import pytest

from database import Database, EngagementDelta
from errors import (
    ActiveFreeExistsError,
    BlockedError,
    DuplicateSubmissionError,
    FreeLineClosedError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from models import BlockEntry, BlockKind, EngagementCounts, Line
from services.feed import QueueChanged
from services.points import PointsService
from services.queue import AudioFile, QueueService, estimate_seconds, play_order_key
from tests.conftest import GUILD, FakeClock


def draft(queue: QueueService, n: int | str, **kw):
    return queue.draft(
        artist=kw.get("artist", f"Artist {n}"),
        title=kw.get("title", f"Song {n}"),
        note=kw.get("note"),
        link=kw.get("link", f"https://youtu.be/v{n}"),
        handle=kw.get("handle"),
    )


async def submit(queue: QueueService, user: int, n: int | str, *, skip: bool = False, **kw):
    return await queue.submit(GUILD, user, f"user{user}", draft(queue, n, **kw), skip=skip)


async def to_line(queue: QueueService, user: int, n: int, line: Line):
    placement = await submit(queue, user, n, skip=line is not Line.FREE)
    if line is not Line.FREE:
        await queue.approve(GUILD, placement.submission.public_id, line)
    return placement.submission


async def give_points(db: Database, handle: str, likes: int) -> None:
    await db.apply_engagement(GUILD, None, [EngagementDelta(handle, EngagementCounts(likes=likes))])


async def test_submit_goes_to_free_or_pending_and_names_position(queue: QueueService) -> None:
    free = await submit(queue, 1, 1)
    pending = await submit(queue, 2, 2, skip=True)
    assert free.submission.line is Line.FREE and free.position == 1
    assert pending.submission.line is Line.PENDING and pending.position is None
    assert free.submission.display_id.startswith("#") and len(free.submission.public_id) == 5


async def test_next_plays_highest_line_first_then_fifo_by_line_entry(queue: QueueService) -> None:
    f = await to_line(queue, 1, 1, Line.FREE)
    s1 = await to_line(queue, 2, 2, Line.SKIP)
    d = await to_line(queue, 3, 3, Line.DOUBLE_SKIP)
    b = await to_line(queue, 4, 4, Line.BACK_TO_BACK)
    s2 = await to_line(queue, 5, 5, Line.SKIP)
    order = [e.submission.id for e in await queue.ordered_queue(GUILD)]
    assert order == [b.id, d.id, s1.id, s2.id, f.id]
    played = [(await queue.next(GUILD)).submission.id for _ in range(5)]
    assert played == order
    assert await queue.next(GUILD) is None


async def test_moving_into_a_line_enters_it_at_the_back(queue: QueueService) -> None:
    a = await to_line(queue, 1, 1, Line.SKIP)
    b = await to_line(queue, 2, 2, Line.DOUBLE_SKIP)
    await queue.move(GUILD, b.public_id, Line.SKIP)  # entered Skip after a
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [a.id, b.id]


async def test_free_orders_by_points_then_entry_then_id(queue: QueueService, points: PointsService, db) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)  # unproven and named handles count in this mode
    first = (await submit(queue, 1, 1)).submission
    second = (await submit(queue, 2, 2)).submission
    third = (await submit(queue, 3, 3, handle="@Third.Handle")).submission
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [first.id, second.id, third.id]
    await points.link(GUILD, 2, "two_a")
    await points.link(GUILD, 2, "two_b")
    await give_points(db, "two_a", 3)
    await give_points(db, "two_b", 4)  # user 2 scores 7 from two linked handles
    await give_points(db, "third.handle", 5)  # unlinked handle named on the submission
    queue.invalidate(GUILD)
    entries = await queue.ordered_queue(GUILD)
    assert [(e.submission.id, e.score) for e in entries] == [(second.id, 7), (third.id, 5), (first.id, 0)]
    assert (await queue.placement(first)).position == 3


async def test_named_handle_linked_to_someone_else_does_not_count(queue, points, db) -> None:
    sub = (await submit(queue, 1, 1, handle="shared")).submission
    await points.link(GUILD, 2, "shared")
    await give_points(db, "shared", 10)
    queue.invalidate(GUILD)
    assert (await queue.ordered_queue(GUILD))[0].score == 0
    assert sub.tiktok_handle == "shared"


async def test_playing_from_free_resets_points_of_linked_and_named_handles(queue, points, db) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)
    await points.link(GUILD, 1, "mine")
    await submit(queue, 1, 1, handle="named")
    await give_points(db, "mine", 5)
    await give_points(db, "named", 6)
    await give_points(db, "bystander", 7)
    queue.invalidate(GUILD)
    result = await queue.next(GUILD)
    assert result.from_line is Line.FREE and result.score == 11
    assert set(result.reset_handles) == {"mine", "named"}
    assert (await db.get_handle(GUILD, "mine")).counts == EngagementCounts()
    assert (await db.get_handle(GUILD, "named")).counts == EngagementCounts()
    assert (await db.get_handle(GUILD, "bystander")).counts.likes == 7
    assert result.submission.line is Line.PLAYED and result.submission.played_from is Line.FREE


async def test_only_proven_handles_count_by_default_and_only_they_reset(queue, points, db) -> None:
    await points.admin_link(GUILD, 1, "proven")  # an admin's link counts as proven
    await points.link(GUILD, 1, "unproven")
    await submit(queue, 1, 1, handle="named")  # naming an unlinked handle adds nothing by default
    for handle, likes in (("proven", 5), ("unproven", 6), ("named", 7)):
        await give_points(db, handle, likes)
    queue.invalidate(GUILD)
    assert (await queue.ordered_queue(GUILD))[0].score == 5
    result = await queue.next(GUILD)
    assert result.score == 5 and result.reset_handles == ("proven",)
    assert (await db.get_handle(GUILD, "unproven")).counts.likes == 6  # it added nothing, so it keeps its points
    assert (await db.get_handle(GUILD, "named")).counts.likes == 7


async def test_a_handle_named_on_a_song_but_linked_to_someone_else_is_not_reset(queue, points, db) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)
    await points.admin_link(GUILD, 2, "theirs")
    await submit(queue, 1, 1, handle="theirs")
    await give_points(db, "theirs", 9)
    result = await queue.next(GUILD)
    assert result.score == 0 and result.reset_handles == ()
    assert (await db.get_handle(GUILD, "theirs")).counts.likes == 9  # the other member keeps their points


async def test_playing_from_free_keeps_points_of_a_named_handle_linked_to_someone_else(queue, points, db) -> None:
    """Issue 11 B5: the named handle added nothing to the score, so another member's points stay."""
    await db.update_settings(GUILD, verified_handles_only=False)  # unproven links count in this mode
    await points.link(GUILD, 1, "mine")
    await submit(queue, 1, 1, handle="theirs")
    await points.link(GUILD, 2, "theirs")
    await give_points(db, "mine", 5)
    await give_points(db, "theirs", 9)
    queue.invalidate(GUILD)
    result = await queue.next(GUILD)
    assert result.score == 5 and result.reset_handles == ("mine",)
    assert (await db.get_handle(GUILD, "mine")).counts == EngagementCounts()
    assert (await db.get_handle(GUILD, "theirs")).counts.likes == 9


async def test_playing_from_a_paid_line_keeps_points(queue, points, db) -> None:
    await points.link(GUILD, 1, "mine")
    await give_points(db, "mine", 5)
    await to_line(queue, 1, 1, Line.SKIP)
    result = await queue.next(GUILD)
    assert result.from_line is Line.SKIP and result.reset_handles == ()
    assert (await db.get_handle(GUILD, "mine")).counts.likes == 5


async def test_free_line_closed_refuses_free_but_accepts_skips(queue: QueueService) -> None:
    await queue.set_free_open(GUILD, False)
    with pytest.raises(FreeLineClosedError):
        await submit(queue, 1, 1)
    assert (await submit(queue, 1, 2, skip=True)).submission.line is Line.PENDING
    await queue.set_free_open(GUILD, True)
    assert (await submit(queue, 2, 3)).submission.line is Line.FREE


async def test_one_active_free_or_pending_per_user(queue: QueueService) -> None:
    await submit(queue, 1, 1)
    with pytest.raises(ActiveFreeExistsError):
        await submit(queue, 1, 2)
    with pytest.raises(ActiveFreeExistsError):
        await submit(queue, 1, 3, skip=True)
    await queue.next(GUILD)  # played: the user may submit again
    assert (await submit(queue, 1, 4)).submission.line is Line.FREE


async def test_paid_lines_have_no_per_user_limit(queue: QueueService) -> None:
    for n in range(3):
        await to_line(queue, 1, n, Line.SKIP)
    assert len(await queue.ordered_queue(GUILD)) == 3


async def test_duplicate_link_or_song_is_refused_while_active(queue: QueueService) -> None:
    await submit(queue, 1, 1, link="https://www.youtube.com/watch?v=abc&t=5")
    with pytest.raises(DuplicateSubmissionError):
        await submit(queue, 2, 2, link="https://youtu.be/abc")
    with pytest.raises(DuplicateSubmissionError):
        await submit(queue, 3, 3, artist="artist 1", title="  SONG   1 ")
    await queue.next(GUILD)
    assert (await submit(queue, 2, 4, link="https://youtu.be/abc")).submission.line is Line.FREE


async def test_blocklist_refuses_user_word_and_domain(queue: QueueService, db: Database) -> None:
    await db.add_block(BlockEntry(GUILD, BlockKind.USER, "66"))
    await db.add_block(BlockEntry(GUILD, BlockKind.WORD, "badword"))
    await db.add_block(BlockEntry(GUILD, BlockKind.DOMAIN, "evil.test"))
    with pytest.raises(BlockedError):
        await submit(queue, 66, 1)
    with pytest.raises(BlockedError):
        await submit(queue, 1, 2, title="A BadWord song")
    with pytest.raises(BlockedError):
        await submit(queue, 1, 3, link="https://cdn.evil.test/x.mp3")
    assert await db.count_user_history(GUILD, 1) == 0


async def test_two_tracks_of_one_album_are_not_duplicates(queue: QueueService) -> None:
    """Issue 11 B6: the Apple Music track is the ``i`` parameter; a Drive file is its ``id``."""
    album = "https://music.apple.com/us/album/an-album/1440857781"
    await submit(queue, 1, 1, link=f"{album}?i=1440857783")
    await submit(queue, 2, 2, link=f"{album}?i=1440857790")
    await submit(queue, 3, 3, link="https://drive.google.com/open?id=FirstFile")
    await submit(queue, 4, 4, link="https://drive.google.com/open?id=SecondFile")
    with pytest.raises(DuplicateSubmissionError):
        await submit(queue, 5, 5, link=f"{album}?i=1440857790&ls=1")
    with pytest.raises(DuplicateSubmissionError):
        await submit(queue, 6, 6, link="https://drive.google.com/file/d/SecondFile/view?usp=sharing")


async def test_blocked_domain_matches_aliases_and_idn(queue: QueueService, db: Database) -> None:
    """Issue 11 B6: a rule on youtu.be blocks youtube.com links; unicode and punycode hosts are one domain."""
    from services.validation import normalize_block

    for domain in ("youtu.be", "Bücher.example"):
        await db.add_block(BlockEntry(GUILD, BlockKind.DOMAIN, normalize_block(BlockKind.DOMAIN, domain)))
    for n, link in enumerate(
        ("https://www.youtube.com/watch?v=abc", "https://m.youtube.com/watch?v=abc", "https://xn--bcher-kva.example/s")
    ):
        with pytest.raises(BlockedError):
            await submit(queue, 1, n, link=link)
    assert await db.count_user_history(GUILD, 1) == 0


async def test_cooldown_and_cap_on_waiting_submissions(queue: QueueService, db: Database, clock: FakeClock) -> None:
    await db.update_settings(GUILD, submit_cooldown_seconds=30, max_pending_per_user=1)
    first = (await submit(queue, 1, 1, skip=True)).submission
    await queue.approve(GUILD, first.public_id, Line.SKIP)
    with pytest.raises(RateLimitedError, match="again in"):
        await queue.submit(GUILD, 1, "u", draft(queue, 9), skip=False)
    clock.advance(31)
    await submit(queue, 1, 2, skip=True)  # the approved skip does not count against the cap
    clock.advance(10)
    with pytest.raises(RateLimitedError, match=r"1 skip waiting for a reviewer.*limit is 1"):
        await submit(queue, 1, 3, skip=True)
    # admins are exempt from the cooldown (still running) as from the cap
    second = next(s for s in await db.user_active(GUILD, 1) if s.line is Line.PENDING)
    await queue.approve(GUILD, second.public_id, Line.SKIP)
    placed = await queue.submit(GUILD, 1, "u", draft(queue, 4), skip=True, exempt=True)
    assert placed.submission.line is Line.PENDING


async def test_cap_on_waiting_submissions_counts_pending_skips_only(queue: QueueService, db: Database) -> None:
    """Issue 11 B7: three verified paid skips do not stop a member from claiming a fourth."""
    await db.update_settings(GUILD, max_pending_per_user=3)
    for n in range(3):
        await to_line(queue, 1, n, Line.SKIP)
    fourth = await submit(queue, 1, 3, skip=True)
    assert fourth.submission.line is Line.PENDING
    assert len(await db.user_active(GUILD, 1)) == 4


async def test_admin_is_exempt_from_spam_control_not_queue_rules(queue: QueueService, db: Database) -> None:
    await db.update_settings(GUILD, submit_cooldown_seconds=3600, max_pending_per_user=1)
    await queue.submit(GUILD, 1, "admin", draft(queue, 1), skip=False, exempt=True)
    with pytest.raises(ActiveFreeExistsError):
        await queue.submit(GUILD, 1, "admin", draft(queue, 3), skip=False, exempt=True)
    await queue.move(GUILD, (await db.user_active(GUILD, 1))[0].public_id, Line.SKIP)
    placed = await queue.submit(GUILD, 1, "admin", draft(queue, 4), skip=True, exempt=True)
    assert placed.submission.line is Line.PENDING


async def test_approve_and_deny_only_pending(queue: QueueService) -> None:
    pending = (await submit(queue, 1, 1, skip=True)).submission
    free = (await submit(queue, 2, 2)).submission
    with pytest.raises(InvalidTransitionError, match="not a pending skip"):
        await queue.approve(GUILD, free.public_id, Line.SKIP)
    with pytest.raises(InvalidTransitionError):
        await queue.approve(GUILD, pending.public_id, Line.REMOVED)
    denied = await queue.approve(GUILD, f"#{pending.public_id.lower()}", Line.FREE)  # the Deny button
    assert denied.line is Line.FREE


async def test_played_and_removed_never_move_back(queue: QueueService) -> None:
    a = (await submit(queue, 1, 1)).submission
    b = (await submit(queue, 2, 2)).submission
    await queue.next(GUILD)
    await queue.remove(GUILD, b.public_id)
    for sid in (a.public_id, b.public_id):
        with pytest.raises(InvalidTransitionError, match="can't be moved back"):
            await queue.move(GUILD, sid, Line.FREE)
    with pytest.raises(InvalidTransitionError):
        await queue.move(GUILD, a.public_id, Line.PLAYED)


async def test_unknown_ids_and_bad_ids_raise_clear_errors(queue: QueueService) -> None:
    with pytest.raises(NotFoundError, match="#ZZZZZ"):
        await queue.move(GUILD, "#zzzzz", Line.SKIP)
    with pytest.raises(ValidationError):
        await queue.remove(GUILD, "'; DROP TABLE submissions; --")


async def test_withdraw_only_by_owner(queue: QueueService) -> None:
    sub = (await submit(queue, 1, 1)).submission
    with pytest.raises(NotFoundError):
        await queue.withdraw(GUILD, 2, sub.public_id)
    assert (await queue.withdraw(GUILD, 1, sub.public_id)).line is Line.REMOVED
    with pytest.raises(InvalidTransitionError):
        await queue.withdraw(GUILD, 1, sub.public_id)


async def test_clear_free_is_soft(queue: QueueService, db: Database) -> None:
    for n in range(3):
        await submit(queue, n, n)
    skip = await to_line(queue, 9, 9, Line.SKIP)
    assert await queue.clear_free(GUILD) == 3
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [skip.id]
    history = await db.user_history(GUILD, 0)
    assert history[0].line is Line.REMOVED and history[0].removed_at is not None


async def test_resubmit_from_history_creates_a_new_row(queue: QueueService) -> None:
    old = (await submit(queue, 1, 1, note="first time")).submission
    await queue.next(GUILD)
    again = await queue.resubmit(GUILD, 1, "user1", old.public_id, skip=True)
    assert again.submission.id != old.id and again.submission.line is Line.PENDING
    assert (again.submission.artist, again.submission.title, again.submission.note) == (
        old.artist,
        old.title,
        old.note,
    )
    with pytest.raises(NotFoundError):
        await queue.resubmit(GUILD, 2, "user2", old.public_id, skip=False)


async def test_resubmit_keeps_a_stored_file(queue: QueueService) -> None:
    audio = AudioFile("1000/song.mp3", "song.mp3", 12.5)
    d = queue.draft(artist="A", title="File", note=None, audio=audio)
    old = (await queue.submit(GUILD, 1, "u", d, skip=False)).submission
    await queue.next(GUILD)
    again = (await queue.resubmit(GUILD, 1, "u", old.public_id, skip=False)).submission
    assert again.file_path == "1000/song.mp3" and again.link is None and again.duration == 12.5


async def test_user_history_is_paged_newest_first(queue: QueueService) -> None:
    ids = []
    for n in range(7):
        ids.append((await to_line(queue, 1, n, Line.SKIP)).id)
    page0, total = await queue.user_history(GUILD, 1, page=0, per_page=5)
    page1, _ = await queue.user_history(GUILD, 1, page=1, per_page=5)
    assert total == 7
    assert [p.submission.id for p in page0 + page1] == list(reversed(ids))
    assert page0[0].position == 7


async def test_rating_only_played(queue: QueueService) -> None:
    sub = (await submit(queue, 1, 1)).submission
    with pytest.raises(InvalidTransitionError):
        await queue.rate(GUILD, sub.public_id, 8)
    await queue.next(GUILD)
    with pytest.raises(ValidationError):
        await queue.rate(GUILD, sub.public_id, 11)
    assert (await queue.rate(GUILD, sub.public_id, 8)).rating == 8


async def test_eta_from_recent_pace(queue: QueueService, clock: FakeClock) -> None:
    for n in range(4):
        await submit(queue, n, n)
    for _ in range(3):
        clock.advance(240)
        await queue.next(GUILD)
    last = (await queue.ordered_queue(GUILD))[0].submission
    placement = await queue.placement(last)
    assert placement.position == 1 and placement.eta_seconds == pytest.approx(240, rel=0.01)


def test_estimate_ignores_breaks_between_streams() -> None:
    assert estimate_seconds([10_000.0, 9_700.0, 9_400.0, 100.0], 2) == pytest.approx(600)


def test_estimate_uses_the_configured_average_until_the_live_has_a_pace() -> None:
    # Issue 16 point 5: a wait from the very first song, never "unknown".
    assert estimate_seconds([], 3) == pytest.approx(720)  # 3 x the default 4 minutes
    assert estimate_seconds([5.0], 1, 300) == pytest.approx(300)
    assert estimate_seconds([10_000.0, 9_700.0], 2, 240) == pytest.approx(480)  # one gap is not a pace yet
    # Yesterday's pace is not tonight's: plays older than the gap limit fall back to the average.
    assert estimate_seconds([10_000.0, 9_900.0, 9_800.0], 2, 240, now=50_000.0) == pytest.approx(480)
    assert estimate_seconds([10_000.0, 9_900.0, 9_800.0], 2, 240, now=10_100.0) == pytest.approx(200)


async def test_eta_from_the_configured_average_before_any_play(queue: QueueService, db) -> None:
    for n in range(3):
        await submit(queue, n, n)
    third = (await queue.ordered_queue(GUILD))[2].submission
    assert (await queue.placement(third)).eta_seconds == pytest.approx(720)
    await db.update_settings(GUILD, avg_review_seconds=180)
    assert (await queue.placement(third)).eta_seconds == pytest.approx(540)


def test_play_order_key_refuses_unplayable_lines(queue: QueueService) -> None:
    from models import Submission

    sub = Submission(1, GUILD, "AAAAA", 1, "u", "a", "t", Line.PENDING, 0.0, 0.0, link="https://x.test")
    with pytest.raises(ValueError):
        play_order_key(sub, 0)


async def test_many_simultaneous_submits_leave_one_active_free(queue: QueueService, db: Database) -> None:
    results = await asyncio.gather(*(submit(queue, 1, n) for n in range(25)), return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert all(isinstance(r, ActiveFreeExistsError) for r in results if isinstance(r, Exception))
    assert len(await db.user_active(GUILD, 1)) == 1


async def test_simultaneous_next_never_plays_twice(queue: QueueService) -> None:
    for n in range(10):
        await to_line(queue, n, n, Line.SKIP if n % 2 else Line.FREE)
    results = await asyncio.gather(*(queue.next(GUILD) for _ in range(15)))
    played = [r.submission.id for r in results if r is not None]
    assert len(played) == 10 and len(set(played)) == 10
    assert sum(r is None for r in results) == 5


async def test_two_services_on_one_database_still_never_play_twice(db: Database, clock: FakeClock) -> None:
    """Even without the shared lock, the expected-line guard in the UPDATE refuses a second play."""
    first, second = QueueService(db, clock=clock), QueueService(db, clock=clock)
    await first.submit(GUILD, 1, "u", draft(first, 1), skip=False)
    await second.ordered_queue(GUILD)  # both caches see the song
    await first.next(GUILD)
    with pytest.raises(InvalidTransitionError):
        await second.next(GUILD)


async def test_the_feed_hears_every_change(queue: QueueService) -> None:
    heard: list[int] = []
    queue.feed.subscribe(lambda event: heard.append(event.guild_id), QueueChanged)
    sub = (await submit(queue, 1, 1, skip=True)).submission
    await queue.approve(GUILD, sub.public_id, Line.SKIP)
    await queue.next(GUILD)
    assert heard == [GUILD, GUILD, GUILD]


async def test_submit_writes_the_row_and_its_handle_in_one_transaction(
    queue: QueueService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 B13: no second transaction after the insert that a crash could cut off."""

    async def crash(*_args, **_kwargs) -> None:
        raise RuntimeError("process killed here")

    monkeypatch.setattr(db, "ensure_handle", crash)
    placed = await submit(queue, 1, 1, handle="@New.Handle")
    assert placed.submission.tiktok_handle == "new.handle"
    assert await db.get_handle(GUILD, "new.handle") is not None


async def test_a_refused_insert_leaves_no_handle_behind(db: Database) -> None:
    from database import ConstraintError, NewSubmission

    def row(handle: str) -> NewSubmission:
        return NewSubmission(GUILD, 1, "u", "a", "t", Line.FREE, "a\x1ft", link="https://x.test/1",
                             link_key="x.test/1", tiktok_handle=handle)  # fmt: skip

    await db.insert_submission(row("first"), 1.0)
    with pytest.raises(ConstraintError):
        await db.insert_submission(row("second"), 2.0)
    assert await db.get_handle(GUILD, "first") is not None
    assert await db.get_handle(GUILD, "second") is None

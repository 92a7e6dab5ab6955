"""The points ledger (SPEC 6): handles, links, weights, resets and the Free score read from it."""

from __future__ import annotations

import asyncio

import pytest

from database import Database, EngagementDelta
from errors import HandleOwnedError, NotFoundError, ValidationError
from models import EngagementCounts, GiftTiers, Line, PointsWeights
from services.points import PointsService
from services.queue import QueueService
from tests.conftest import GUILD


async def add(db: Database, handle: str, **counts: int) -> None:
    await db.apply_engagement(GUILD, None, [EngagementDelta(handle, EngagementCounts(**counts))])


def test_default_weights_match_the_spec() -> None:
    counts = EngagementCounts(likes=3, comments=1, shares=1, follows=1, subscribes=1, coins=10)
    assert counts.points(PointsWeights()) == 3 + 2 + 5 + 10 + 25 + 20


async def test_link_normalises_and_issues_a_code(points: PointsService, db: Database) -> None:
    result = await points.link(GUILD, 1, "  @@Some.User_1 ")
    assert result.handle.handle == "some.user_1" and result.handle.user_id == 1 and not result.handle.verified
    assert result.code and result.code.startswith("LINK-")
    assert (await db.pending_link_codes(GUILD))["some.user_1"] == [(1, result.code)]


@pytest.mark.parametrize("bad", ["", "@", "a", "x" * 25, "bad handle", "emoji😀", "semi;colon", "ümlaut"])
async def test_invalid_handles_are_refused(points: PointsService, bad: str) -> None:
    with pytest.raises(ValidationError):
        await points.link(GUILD, 1, bad)


async def test_one_owner_per_handle_and_admin_reassign(points: PointsService, db: Database) -> None:
    await points.link(GUILD, 1, "shared")
    claim = await points.link(GUILD, 2, "@SHARED")  # unproven first link: the second member gets a claim code
    assert claim.claim and claim.code and claim.handle.user_id == 1
    assert (await db.get_handle(GUILD, "shared")).user_id == 1
    result = await points.admin_link(GUILD, 2, "shared")
    assert result.previous_owner == 1 and result.handle.user_id == 2 and result.handle.verified
    assert [h.handle for h in await points.handles_of(GUILD, 1)] == []
    assert "shared" not in await db.pending_link_codes(GUILD)  # an admin's link voids open claims
    with pytest.raises(HandleOwnedError, match="ask an admin to move it to you with /link-handle"):
        await points.link(GUILD, 1, "shared")  # proven handles are never claimed by a code


async def test_racing_links_give_the_handle_to_exactly_one_user(points: PointsService, db: Database) -> None:
    results = await asyncio.gather(*(points.link(GUILD, u, "contested") for u in range(1, 11)))
    owners = [r for r in results if not r.claim]
    assert len(owners) == 1
    assert (await db.get_handle(GUILD, "contested")).user_id == owners[0].handle.user_id
    codes = await db.pending_link_codes(GUILD)
    assert len(codes["contested"]) == 10  # everyone may still prove it; the first proof wins


async def test_a_proof_takes_over_an_unproven_link_and_the_old_owner_is_named(
    points: PointsService, db: Database
) -> None:
    await points.link(GUILD, 1, "squatted")  # member 1 links someone else's handle first, without proof
    claim = await points.link(GUILD, 2, "squatted")
    handle, previous = await db.verify_link(GUILD, "squatted", 2)  # member 2 typed the code in the live chat
    assert claim.claim and handle.user_id == 2 and handle.verified and previous == 1
    assert await db.pending_link_codes(GUILD) == {}


async def test_unlink_only_own(points: PointsService) -> None:
    await points.link(GUILD, 1, "mine")
    with pytest.raises(NotFoundError):
        await points.unlink(GUILD, 2, "mine")
    await points.unlink(GUILD, 1, "@Mine")
    assert await points.handles_of(GUILD, 1) == []


async def test_points_earned_whether_or_not_linked_and_keep_through_linking(points, db) -> None:
    await add(db, "viewer", likes=4, coins=10)
    result = await points.link(GUILD, 5, "viewer")
    assert result.handle.counts == EngagementCounts(likes=4, coins=10)


async def test_resets_user_handle_all(points: PointsService, db: Database) -> None:
    await points.link(GUILD, 1, "a1")
    await points.link(GUILD, 1, "a2")
    for handle in ("a1", "a2", "bb", "cc"):
        await add(db, handle, likes=5)
    assert await points.reset_user(GUILD, 1) == 2
    assert (await db.get_handle(GUILD, "a1")).counts.likes == 0
    assert (await db.get_handle(GUILD, "bb")).counts.likes == 5
    await points.reset_handle(GUILD, "@BB")
    assert (await db.get_handle(GUILD, "bb")).counts.likes == 0
    with pytest.raises(NotFoundError):
        await points.reset_handle(GUILD, "neverseen")
    await points.reset_all(GUILD)
    assert (await db.get_handle(GUILD, "cc")).counts.likes == 0


async def test_weights_change_the_free_order_at_once(points: PointsService, queue: QueueService, db: Database) -> None:
    await db.update_settings(GUILD, verified_handles_only=False)  # named, unlinked handles count in this mode
    d1 = queue.draft(artist="a", title="1", note=None, link="https://x.test/1", handle="liker")
    d2 = queue.draft(artist="a", title="2", note=None, link="https://x.test/2", handle="commenter")
    first = (await queue.submit(GUILD, 1, "u1", d1, skip=False)).submission
    second = (await queue.submit(GUILD, 2, "u2", d2, skip=False)).submission
    await add(db, "liker", likes=10)
    await add(db, "commenter", comments=3)
    queue.invalidate(GUILD)
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [first.id, second.id]
    weights = await points.set_weights(GUILD, comment=50)
    assert weights.comment == 50
    assert [e.submission.id for e in await queue.ordered_queue(GUILD)] == [second.id, first.id]
    with pytest.raises(ValidationError):
        await points.set_weights(GUILD, like=-1)
    with pytest.raises(ValidationError):
        await points.set_weights(GUILD, bogus=1)


async def test_gift_tiers_must_rise(points: PointsService, db: Database) -> None:
    tiers = await points.set_gift_tiers(GUILD, skip=500, double_skip=1500, back_to_back=3000)
    assert (await db.get_settings(GUILD)).gift_tiers == tiers
    with pytest.raises(ValidationError):
        await points.set_gift_tiers(GUILD, skip=2000, double_skip=1000, back_to_back=3000)
    assert GiftTiers().line_for(999) is None
    assert GiftTiers().line_for(2500) is Line.DOUBLE_SKIP
    assert GiftTiers(skip=0).line_for(10) is None


async def test_autocomplete_own_handles_first_then_known(points: PointsService, db: Database) -> None:
    for handle in ("alpha", "alps", "beta", "alto"):
        await add(db, handle, likes=1)
    await points.link(GUILD, 1, "alto")
    assert await points.autocomplete(GUILD, 1, "@Al") == ["alto", "alpha", "alps"]
    assert await points.autocomplete(GUILD, 2, "") == ["alpha", "alps", "alto", "beta"]


async def test_verified_link_wins(db: Database, points: PointsService) -> None:
    await points.link(GUILD, 1, "claimed")
    handle, previous = await db.verify_link(GUILD, "claimed", 2)
    assert handle.user_id == 2 and handle.verified and previous == 1
    with pytest.raises(HandleOwnedError):
        await points.link(GUILD, 1, "claimed")


async def test_handle_standing_says_which_named_handles_carry_no_points(points: PointsService, db: Database) -> None:
    """Issue 12.4: with proven handles only (the default), only the submitter's proven handle counts."""
    own = await points.link(GUILD, 1, "mine.unproven")  # linked without proof: an open code
    await points.admin_link(GUILD, 1, "mine.proven")
    await points.admin_link(GUILD, 2, "theirs.proven")
    await points.link(GUILD, 2, "theirs.unproven")
    claim = await points.link(GUILD, 1, "theirs.unproven")  # a claim: user 1 gets a code, the link stays 2's

    standing = await points.handle_standing(GUILD, 1, "mine.unproven")
    assert not standing.counts and standing.code == own.code and not standing.other_owner
    assert (await points.handle_standing(GUILD, 1, "mine.proven")).counts
    other = await points.handle_standing(GUILD, 1, "theirs.proven")
    assert not other.counts and other.other_owner and other.code is None
    claimed = await points.handle_standing(GUILD, 1, "theirs.unproven")
    assert not claimed.counts and claimed.code == claim.code and not claimed.other_owner
    never_seen = await points.handle_standing(GUILD, 1, "nobody.knows")
    assert not never_seen.counts and never_seen.code is None and not never_seen.other_owner
    # Someone else's code is never shown to the submitter.
    assert (await points.handle_standing(GUILD, 3, "mine.unproven")).code is None

    await db.update_settings(GUILD, verified_handles_only=False)
    assert (await points.handle_standing(GUILD, 1, "mine.unproven")).counts

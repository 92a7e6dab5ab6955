"""The points ledger per TikTok handle (SPEC section 6): links, resets, weights, gift tiers, link codes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from database import Database
from errors import HandleOwnedError, NotFoundError, ValidationError
from models import GiftTiers, Handle, LeaderboardRow, LiveSession, PointsWeights
from services import validation
from services.queue import QueueService

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_PREFIX = "LINK-"


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """One page of a leaderboard: this live's (``session`` set) or all time's, and the caller's own rows."""

    session: LiveSession | None
    all_time: bool
    rows: list[LeaderboardRow]
    total: int
    page: int
    pages: int
    mine: list[LeaderboardRow]


@dataclass(frozen=True, slots=True)
class LinkResult:
    """The outcome of linking a handle."""

    handle: Handle
    previous_owner: int | None
    code: str | None = None
    # The handle stays with its first (unproven) owner until the caller proves it with ``code``.
    claim: bool = False


@dataclass(frozen=True, slots=True)
class HandleStanding:
    """Whether the handle named on a submission carries its points for the submitter, and if not, why.

    ``counts`` False means the song gets nothing from ``handle`` until it is proven: it is unlinked or linked
    without proof (``code`` is the submitter's open chat code for it, if they asked for one), or it is
    proven as another member's (``other_owner``).
    """

    handle: str
    counts: bool
    other_owner: bool = False
    code: str | None = None


class PointsService:
    """Everything that changes who owns a handle or how many points it has.

    A points reset tells the queue which handles changed (``QueueService.scores_changed``) and a change of
    who owns a handle which handle moved between whom (``QueueService.handle_moved``): the queue re-keys only
    the songs they count for. New weights are a settings write, which the queue notices on its next read.
    Either way the Free line and the displays reorder at once.
    """

    def __init__(self, db: Database, queue: QueueService, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.queue = queue
        self.clock = clock

    async def link(self, guild_id: int, user_id: int, raw_handle: str) -> LinkResult:
        """Link a handle to the caller and issue the chat code that proves it.

        A handle someone else linked without proof is not taken from them yet: the caller gets a claim
        code, and typing it in the live chat from that account moves the handle to the caller (a proof
        always beats an unproven link). A handle someone else proved is refused; only an admin reassigns it.
        """
        handle = validation.normalize_handle(raw_handle)
        linked, previous = await self.db.link_handle(guild_id, handle, user_id, verified=False, force=False)
        claim = previous is not None and previous != user_id
        if claim and linked.verified:
            raise HandleOwnedError(
                f"@{handle} is already proven as another member's. If it is really yours, ask an admin to "
                "move it to you with /link-handle."
            )
        code = None
        if claim or not linked.verified:
            code = await self.issue_code(guild_id, user_id, handle)
        if not claim:
            await self.queue.handle_moved(guild_id, handle, (previous, user_id))
        return LinkResult(linked, previous, code, claim=claim)

    async def issue_code(self, guild_id: int, user_id: int, handle: str) -> str:
        """A fresh chat code for ``user_id`` to prove ``handle`` (replaces their earlier code for it)."""
        code = CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        await self.db.set_link_code(guild_id, handle, user_id, code, self.clock())
        return code

    async def admin_link(self, guild_id: int, user_id: int, raw_handle: str) -> LinkResult:
        """An admin links (or reassigns) a handle directly; the link counts as verified."""
        handle = validation.normalize_handle(raw_handle)
        linked, previous = await self.db.link_handle(guild_id, handle, user_id, verified=True, force=True)
        await self.queue.handle_moved(guild_id, handle, (previous, user_id))
        return LinkResult(linked, previous)

    async def unlink(self, guild_id: int, user_id: int | None, raw_handle: str) -> None:
        """Remove a link: the owner's own, or any with ``user_id=None`` (admin)."""
        handle = validation.normalize_handle(raw_handle)
        if not await self.db.unlink_handle(guild_id, handle, user_id):
            raise NotFoundError(f"@{handle} is not linked to {'your account' if user_id else 'anyone'}.")
        # The old owner's songs are the ones it counts for, which the order knows; nobody owns it now.
        await self.queue.handle_moved(guild_id, handle, (user_id,))

    async def handles_of(self, guild_id: int, user_id: int) -> list[Handle]:
        """A user's linked handles with their counters."""
        return await self.db.user_handles(guild_id, user_id)

    async def autocomplete(self, guild_id: int, user_id: int, typed: str, limit: int = 25) -> list[str]:
        """Handles for an autocomplete: the caller's linked ones first, then known ones, by prefix."""
        prefix = typed.strip().lstrip("@").lower()
        own = [h.handle for h in await self.db.user_handles(guild_id, user_id) if h.handle.startswith(prefix)]
        known = await self.db.search_handles(guild_id, prefix, limit)
        seen = set(own)
        return (own + [h for h in known if h not in seen])[:limit]

    async def reset_user(self, guild_id: int, user_id: int) -> int:
        """Zero every handle linked to a user."""
        handles = [h.handle for h in await self.db.user_handles(guild_id, user_id)]
        count = await self.db.reset_handles(guild_id, handles)
        await self.queue.scores_changed(guild_id, handles)
        return count

    async def reset_handle(self, guild_id: int, raw_handle: str) -> None:
        """Zero one handle."""
        handle = validation.normalize_handle(raw_handle)
        if not await self.db.reset_handles(guild_id, [handle]):
            raise NotFoundError(f"@{handle} has never been seen in this server.")
        await self.queue.scores_changed(guild_id, [handle])

    async def reset_all(self, guild_id: int) -> int:
        """Zero every handle of a guild."""
        count = await self.db.reset_all_points(guild_id)
        self.queue.invalidate(guild_id)
        return count

    async def set_weights(self, guild_id: int, **changes: int) -> PointsWeights:
        """Change some point weights (each 0..10,000)."""
        for name, value in changes.items():
            if name not in PointsWeights.names():
                raise ValidationError(f"Unknown weight {name!r}.")
            if not 0 <= value <= 10_000:
                raise ValidationError(f"The {name} weight must be between 0 and 10000.")
        settings = await self.db.get_settings(guild_id)
        # The settings write tells the queue (SettingsChanged); its next read re-scores the Free line.
        updated = await self.db.update_settings(guild_id, weights=settings.weights.with_changes(**changes))
        return updated.weights

    async def set_gift_tiers(self, guild_id: int, *, skip: int, double_skip: int, back_to_back: int) -> GiftTiers:
        """Set the coin thresholds; each paid line must cost at least as much as the one below it."""
        if min(skip, double_skip, back_to_back) < 0:
            raise ValidationError("Thresholds can't be negative (0 switches a tier off).")
        active = [v for v in (skip, double_skip, back_to_back) if v > 0]
        if active != sorted(active):
            raise ValidationError("Thresholds must rise: Skip ≤ DoubleSkip ≤ BackToBack.")
        tiers = GiftTiers(skip=skip, double_skip=double_skip, back_to_back=back_to_back)
        await self.db.update_settings(guild_id, gift_tiers=tiers)
        return tiers

    # ------------------------------------------------------------------ leaderboard

    async def leaderboard(
        self, guild_id: int, user_id: int, *, all_time: bool, page: int, per_page: int = 10
    ) -> Leaderboard:
        """Who gave most: this live (the open one, else the last) or every live; plus the caller's own ranks.

        Simulated sessions never count: they test a set-up, they are not anyone's engagement.
        """
        weights = (await self.db.get_settings(guild_id)).weights
        session = None if all_time else await self.db.latest_session(guild_id)
        if not all_time and session is None:
            return Leaderboard(None, False, [], 0, 0, 1, [])
        session_id = session.id if session else None
        page = max(page, 0)
        rows, total = await self.db.leaderboard(
            guild_id, weights, session_id=session_id, limit=per_page, offset=page * per_page
        )
        pages = max(1, -(-total // per_page))
        if page >= pages:  # the board shrank since the button was drawn: show its last page
            page = pages - 1
            rows, total = await self.db.leaderboard(
                guild_id, weights, session_id=session_id, limit=per_page, offset=page * per_page
            )
        own = [h.handle for h in await self.db.user_handles(guild_id, user_id)]
        mine = await self.db.leaderboard_ranks(guild_id, weights, own, session_id=session_id)
        return Leaderboard(session, all_time, rows, total, page, pages, mine)

    # ------------------------------------------------------------------ handle standing (issue 12 point 4)

    async def handle_standing(self, guild_id: int, user_id: int, handle: str) -> HandleStanding:
        """Whether ``handle``, named on a submission by ``user_id``, carries points for it under the guild's rules.

        With proven handles only (the setting, on by default) only a handle the submitter proved counts; any
        other is accepted on the song but adds nothing until it is proven. With the setting off the named
        handle is taken as it is (the queue's own rule decides what it adds).
        """
        if not (await self.db.get_settings(guild_id)).verified_handles_only:
            return HandleStanding(handle, counts=True)
        known = await self.db.get_handle(guild_id, handle)
        if known is not None and known.verified and known.user_id is not None:
            if known.user_id == user_id:
                return HandleStanding(handle, counts=True)
            return HandleStanding(handle, counts=False, other_owner=True)
        return HandleStanding(handle, counts=False, code=await self.db.link_code_of(guild_id, handle, user_id))

"""Who may see a guild's web pages: one secret token per guild and page kind, stored only as a hash.

A token is ``secrets.token_urlsafe(24)`` (192 random bits). The database keeps its SHA-256, so neither a
copy of the database nor a log line can open a page; a presented token is hashed, looked up and compared
in constant time. Replacing a token publishes ``WebAccessChanged`` on the feed, and the web server ends
every open page that used the old one (it never needs to be called from here). The public page's on/off
switch is the guild's ``public_queue_enabled`` setting, which ``set_public`` writes like ``/settings`` does.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from database import Database
from models import WebSettings
from services.feed import ChangeFeed, WebAccessChanged

OVERLAY = "overlay"
PUBLIC = "public"
KINDS = (OVERLAY, PUBLIC)
TOKEN_BYTES = 24


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class WebAccess:
    """Issues, rotates and checks the per-guild tokens of the overlay and the public queue page."""

    def __init__(self, db: Database, feed: ChangeFeed, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.feed = feed
        self.clock = clock

    async def issued_at(self, guild_id: int, kind: str) -> float | None:
        """When the guild's current ``kind`` token was issued (None: it has none yet)."""
        return await self.db.web_token_created(guild_id, kind)

    async def rotate(self, guild_id: int, kind: str) -> str:
        """A new token for ``kind``; the previous one stops working at once (open pages are told)."""
        if kind not in KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        await self.db.set_web_token(guild_id, kind, token_hash(token), self.clock())
        self.feed.publish(WebAccessChanged(guild_id, kind))
        return token

    async def guild_for(self, kind: str, token: str) -> int | None:
        """The guild a presented token opens, or None (wrong, old or malformed)."""
        if kind not in KINDS or not 16 <= len(token) <= 128:
            return None
        return await self.db.web_token_guild(kind, token_hash(token))

    async def guild_for_hash(self, kind: str, hashed: str) -> int | None:
        """Same as ``guild_for`` for a token already hashed (re-checking an open page)."""
        return await self.db.web_token_guild(kind, hashed)

    async def page_options(self, guild_id: int) -> WebSettings:
        """How the public page looks (whether it shows submitted links)."""
        return await self.db.get_web_settings(guild_id)

    async def set_public(self, guild_id: int, *, enabled: bool, links: bool | None = None) -> WebSettings:
        """Switch the public page on or off (and whether it shows submitted links); ``/overlay public``.

        On/off is the ``public_queue_enabled`` setting, the same one ``/settings`` changes: it is written
        through the settings' one write path (which refreshes the cache and publishes ``SettingsChanged``),
        so the page and the panel can never disagree. The links option is written first, so a page switched
        on "without links" never shows them for a moment.
        """
        options = (
            await self.db.update_web_settings(guild_id, public_links=links)
            if links is not None
            else await self.db.get_web_settings(guild_id)
        )
        await self.db.update_settings(guild_id, public_queue_enabled=enabled)
        return options

"""One palette and one vocabulary for everything the bot shows (issue 16, points 7, 8 and 11).

Every embed takes its colour from ``COLOURS`` by meaning, never a colour of its own, so the same kind of
message always looks the same:

=========  ========================================================================================
meaning    used by
=========  ========================================================================================
queue      what members read about the queue: the public live queue, ``/queue``, the portal,
           "Your submissions", ``/help``
reviewer   what reviewers work with: the reviewer queue, pending skips, the "Now playing" answer,
           bookmarks
success    a finished action: the "Submitted" receipt
warning    something needs attention but nothing is lost: an unexpected TikTok drop
error      something failed
live       the TikTok LIVE itself: connected, the status while live, the recap
info       neutral reference: settings, a connection that is still being set up
idle       nothing running: not connected, a live that ended
=========  ========================================================================================

One emoji and one word per meaning (``EMOJI``): the play action and the "Now playing" heading share 🎶,
paging is arrows only (⬅️ ➡️), and each line has a badge of its own (``LINE_EMOJI``) that no button uses.
A badge is the emoji and the line's full name joined by a no-break space, so a phone never wraps it
between the two (inline code would, and it also breaks "Pending Skips" in two).
"""

from __future__ import annotations

import discord

from models import Line

COLOURS: dict[str, discord.Colour] = {
    "queue": discord.Colour(0x7E57C2),
    "reviewer": discord.Colour(0xE67E22),
    "success": discord.Colour(0x2ECC71),
    "warning": discord.Colour(0xF1C40F),
    "error": discord.Colour(0xE74C3C),
    "live": discord.Colour(0xFE2C55),
    "info": discord.Colour(0x5865F2),
    "idle": discord.Colour(0x95A5A6),
}
QUEUE = COLOURS["queue"]
REVIEWER = COLOURS["reviewer"]
SUCCESS = COLOURS["success"]
WARNING = COLOURS["warning"]
ERROR = COLOURS["error"]
LIVE = COLOURS["live"]
INFO = COLOURS["info"]
IDLE = COLOURS["idle"]

# One emoji per meaning; headings, buttons and texts take them from here.
EMOJI = {
    "queue": "🎵",  # the public live queue (heading)
    "reviewer": "🎧",  # the reviewer queue (heading)
    "pending": "⏳",  # pending skips
    "playing": "🎶",  # a song playing now, and the button that plays the next one
    "up_next": "🔜",  # the song that plays after the current one
    "mine": "📍",  # the member's own songs
    "history": "🗂️",  # "Your submissions"
    "portal": "📮",  # the submission portal
    "help": "❔",
    "bookmark": "🔖",
    "again": "♻️",  # submit an old song again
    "withdraw": "🗑️",
    "refresh": "🔄",
    "browse": "📄",
    "previous": "⬅️",
    "next_page": "➡️",
    "success": "✅",
    "error": "❌",
    "warning": "⚠️",
    "settings": "⚙️",
    "recap": "📊",
    "moved": "↕️",  # a position that changed since the member last looked
}

LINE_EMOJI = {
    Line.BACK_TO_BACK: "💎",
    Line.DOUBLE_SKIP: "⚡",
    Line.SKIP: "🎟️",
    Line.FREE: "🆓",
    Line.PENDING: "⏳",
    Line.PLAYED: "🎶",
    Line.REMOVED: "🗑️",
}
NBSP = "\u00a0"


def badge(line: Line) -> str:
    """``⚡ DoubleSkip``: the line's emoji and full name, glued with no-break spaces (never wraps)."""
    return f"{LINE_EMOJI[line]}{NBSP}{line.value.replace(' ', NBSP)}"


def embed(title: str, meaning: str, **kwargs: object) -> discord.Embed:
    """A new embed in the colour of ``meaning`` (a key of ``COLOURS``; a typo fails loudly)."""
    return discord.Embed(title=title, colour=COLOURS[meaning], **kwargs)  # type: ignore[arg-type]

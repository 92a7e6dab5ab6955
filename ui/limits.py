"""Discord's size limits and helpers that keep every embed inside them (SPEC 8 rule 7)."""

from __future__ import annotations

import discord

TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
EMBED_TOTAL = 6000
CONTENT = 2000
SELECT_OPTIONS = 25
OPTION_TEXT = 100
BUTTON_LABEL = 80
MODAL_TITLE = 45


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def safe(text: str | None, limit: int | None = None) -> str:
    """User text for an embed: markdown escaped (no formatting or mention tricks), then clipped."""
    escaped = discord.utils.escape_markdown(text or "", as_needed=False)
    escaped = escaped.replace("@", "@\u200b")  # belt and braces: allowed_mentions is off as well
    return clip(escaped, limit) if limit else escaped


def chunk_lines(lines: list[str], limit: int = FIELD_VALUE) -> list[str]:
    """Join lines into blocks of at most ``limit`` characters (a line longer than that is clipped)."""
    blocks: list[str] = []
    current = ""
    for line in lines:
        line = clip(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            blocks.append(current)
            current = line
        else:
            current = candidate
    if current:
        blocks.append(current)
    return blocks


def fit(embed: discord.Embed) -> discord.Embed:
    """Drop trailing fields until the embed is within the total and field-count limits."""
    while len(embed.fields) > FIELDS or (len(embed) > EMBED_TOTAL and embed.fields):
        embed.remove_field(len(embed.fields) - 1)
    if len(embed) > EMBED_TOTAL and embed.description:
        over = len(embed) - EMBED_TOTAL
        embed.description = clip(embed.description, max(0, len(embed.description) - over))
    return embed

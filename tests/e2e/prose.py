"""Checks that what the bot says reads well: no doubled or missing words, no leaked placeholders.

Used by the admin-answer sweep and the night walk (issue 16): each finding is a short string naming the
problem and the text around it, so a failing assertion says exactly what a member would have read.
"""

from __future__ import annotations

import re

# Discord markup that is not prose: mentions, channel links, timestamps, custom emoji, URLs, inline code.
_MARKUP = re.compile(r"<[@#&!:a-zA-Z0-9_]+(?::[a-zA-Z])?>|https?://\S+|`[^`]*`")
_DOUBLED = re.compile(r"\b([A-Za-z]{2,})\b[ \t*_]+\b\1\b", re.IGNORECASE)
# A sentence that stops right after a word that needs something after it: "set to .", "in the ."
_DANGLING = re.compile(r"\b(to|in|of|for|the|a|an|with|by|from|at|and|or)\s*[.!?,;:](?=\s|$)", re.IGNORECASE)
_LEAKS = re.compile(r"\bNone\b|\bnull\b|\bundefined\b|\{[a-z_]*\}|\bunknown yet\b|\(s\)")


def prose_problems(text: str) -> list[str]:
    """What reads wrong in ``text`` (empty when it reads well)."""
    problems: list[str] = []
    plain = _MARKUP.sub(" X ", text)
    for match in _DOUBLED.finditer(plain):
        problems.append(f"doubled word {match.group(1)!r} in {_around(plain, match)!r}")
    for match in _DANGLING.finditer(plain):
        problems.append(f"missing word after {match.group(1)!r} in {_around(plain, match)!r}")
    for match in _LEAKS.finditer(text):
        problems.append(f"placeholder {match.group(0)!r} in {_around(text, match)!r}")
    for line in text.splitlines():
        if re.search(r"\S {2,}\S", line):
            problems.append(f"double space in {line!r}")
        if re.search(r"\s[.,;:!?](?:\s|$)", line):
            problems.append(f"space before punctuation in {line!r}")
        if "****" in line or "()" in line:
            problems.append(f"empty markup in {line!r}")
    return problems


def _around(text: str, match: re.Match[str], width: int = 30) -> str:
    return text[max(0, match.start() - width) : match.end() + width]

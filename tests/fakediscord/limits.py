"""Discord's size limits on messages, components and modals, checked the way Discord answers them.

A problem is a ``(path, message)`` pair where ``path`` is the JSON path of the offending field, so the 400
response can carry Discord's nested ``errors`` body (code 50035, "Invalid Form Body").
"""

from __future__ import annotations

from typing import Any

Problem = tuple[tuple[str | int, ...], str]

BUTTON, STRING_SELECT, TEXT_INPUT, LABEL = 2, 3, 4, 18


def _too_long(problems: list[Problem], path: tuple[str | int, ...], value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        problems.append((path, f"Must be {limit} or fewer in length (got {len(value)})."))


def _embed_problems(embeds: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    if len(embeds) > 10:
        problems.append((("embeds",), "Must be 10 or fewer in length."))
    total = 0
    for i, embed in enumerate(embeds):
        at: tuple[str | int, ...] = ("embeds", i)
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        _too_long(problems, (*at, "title"), embed.get("title"), 256)
        _too_long(problems, (*at, "description"), embed.get("description"), 4096)
        _too_long(problems, (*at, "footer", "text"), footer, 2048)
        _too_long(problems, (*at, "author", "name"), author, 256)
        total += len(embed.get("title") or "") + len(embed.get("description") or "") + len(footer) + len(author)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(((*at, "fields"), "Must be 25 or fewer in length."))
        for j, f in enumerate(fields):
            _too_long(problems, (*at, "fields", j, "name"), f.get("name"), 256)
            _too_long(problems, (*at, "fields", j, "value"), f.get("value"), 1024)
            if not f.get("name") or not f.get("value"):
                problems.append(((*at, "fields", j), "This field is required"))
            total += len(f.get("name") or "") + len(f.get("value") or "")
    if total > 6000:
        problems.append((("embeds",), f"Embed size exceeds maximum size of 6000 (got {total})"))
    return problems


def _item_problems(item: dict[str, Any], at: tuple[str | int, ...]) -> list[Problem]:
    problems: list[Problem] = []
    _too_long(problems, (*at, "custom_id"), item.get("custom_id"), 100)
    if item.get("type") == BUTTON:
        _too_long(problems, (*at, "label"), item.get("label"), 80)
    elif item.get("type") == TEXT_INPUT:
        _too_long(problems, (*at, "label"), item.get("label"), 45)
    options = item.get("options") or []
    if len(options) > 25:
        problems.append(((*at, "options"), "Must be 25 or fewer in length."))
    for k, option in enumerate(options):
        for key in ("label", "value", "description"):
            _too_long(problems, (*at, "options", k, key), option.get(key), 100)
    return problems


def component_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    """Problems of a message's or modal's top-level ``components`` (action rows and labels)."""
    problems: list[Problem] = []
    if len(rows) > 5:
        problems.append((("components",), "Must be 5 or fewer in length."))
    for i, row in enumerate(rows):
        at: tuple[str | int, ...] = ("components", i)
        if row.get("type") == LABEL:
            _too_long(problems, (*at, "label"), row.get("label"), 45)
            problems += _item_problems(row.get("component") or {}, (*at, "component"))
            continue
        items = row.get("components") or []
        if len([c for c in items if c.get("type") == BUTTON]) > 5:
            problems.append(((*at, "components"), "Must be 5 or fewer in length."))
        for j, item in enumerate(items):
            problems += _item_problems(item, (*at, "components", j))
    return problems


def message_problems(payload: dict[str, Any]) -> list[Problem]:
    """Problems of a message create/edit body (content, embeds, components)."""
    problems: list[Problem] = []
    _too_long(problems, ("content",), payload.get("content"), 2000)
    problems += _embed_problems(payload.get("embeds") or [])
    problems += component_problems(payload.get("components") or [])
    return problems


def modal_problems(data: dict[str, Any]) -> list[Problem]:
    """Problems of a modal (callback type 9 ``data``)."""
    problems: list[Problem] = []
    _too_long(problems, ("title",), data.get("title"), 45)
    _too_long(problems, ("custom_id",), data.get("custom_id"), 100)
    return problems + component_problems(data.get("components") or [])


def form_errors(problems: list[Problem]) -> dict[str, Any]:
    """Discord's nested ``errors`` object for a 50035 response."""
    errors: dict[str, Any] = {}
    for path, message in problems:
        node = errors
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_BAD_LENGTH", "message": message})
    return errors


def describe(problems: list[Problem]) -> list[str]:
    """One line per problem, for the violation log."""
    return [f"{'.'.join(map(str, path))}: {message}" for path, message in problems]

"""Issue 16: one whole night, walked the way people use the bot, then every message read and every control tried.

Set-up by an admin, five submissions through the form, a live with gifts (``/tiktok simulate``), two plays
(the panel's button and ``/next``), a rating and a bookmark, ``/queue`` and ``/mysubmissions``, the recap.
Then: no message says "unknown yet" or reads wrong (doubled or missing words), every embed is in the
palette, and every control still enabled on any message answers when pressed (no "This interaction
failed").
"""

from __future__ import annotations

from typing import Any

from tests.conftest import BotEnv
from tests.e2e.prose import prose_problems
from tests.e2e.test_reviewer_flow import display_message
from tests.e2e.test_submission_flow import submit_link
from tests.fakediscord import Actor, InteractionRecord
from tests.fakediscord.actors import walk_components
from ui import palette
from ui.respond import GENERIC_FAILURE


def message_text(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        for f in embed.get("fields") or []:
            parts += [f.get("name", ""), f.get("value", "")]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(p for p in parts if p)


def enabled_controls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Buttons and selects a member can press (link buttons have no custom id)."""
    return [c for c in walk_components(message.get("components") or [])
            if c.get("type") in (2, 3, 5, 6, 7, 8) and c.get("custom_id") and not c.get("disabled")]  # fmt: skip


async def test_a_whole_night(bot_env: BotEnv) -> None:
    env, fake = bot_env, bot_env.fake
    general = env.channels["general"]
    records: list[tuple[Actor, InteractionRecord]] = []

    async def run(who: Actor, *args: Any, sub: str | None = None, **options: Any) -> InteractionRecord:
        record = await who.slash(general, *args, sub, **options) if sub else await who.slash(general, *args, **options)
        await fake.wait_for(lambda: record.text() or record.modal, 5, f"an answer to {record.label}")
        records.append((who, record))
        return record

    # ---------------------------------------------------------------- set-up
    admin, reviewer = env.admin, env.reviewer
    for command, channel in (("setup-live-queue", "queue"), ("setup-reviewer-channel", "reviewers"),
                             ("setnowplayingchannel", "now"), ("setbookmarkchannel", "bookmarks"),
                             ("setup-post-live-metrics", "metrics"),
                             ("setup-submission-portal", "submit")):  # fmt: skip
        await run(admin, command, channel=env.channels[channel])
    await run(admin, "show-settings")

    # ---------------------------------------------------------------- five submissions
    fans = [env.member, *(fake.member(name) for name in ("zoe", "liam", "mia", "noah"))]
    for n, fan in enumerate(fans):
        handle = f"fan.{n}"
        await run(admin, "link-handle", member=fan.user_id, handle=handle)
        done = await submit_link(env, fan, f"Artist {n}", f"Song {n}", f"https://youtu.be/night{n}", skip=n == 4)
        records.append((fan, done))
    await env.settle()
    pending = display_message(env, "reviewers", "Pending skips")
    approve = next(c["custom_id"] for c in enabled_controls(pending) if c["custom_id"].endswith(":skip"))
    records.append((reviewer, await reviewer.click(pending, approve)))

    # ---------------------------------------------------------------- the live, with gifts
    for kind, handle, amount in (("like", "fan.1", 30), ("comment", "fan.2", 1), ("gift", "fan.3", 100),
                                 ("share", "fan.0", 1), ("gift", "fan.0", 5)):  # fmt: skip
        await run(admin, "tiktok", sub="simulate", kind=kind, handle=handle, amount=amount)
    await env.settle()
    await run(admin, "tiktok", sub="status")
    await run(env.member, "queue")

    # ---------------------------------------------------------------- two plays, a rating, a bookmark
    panel = display_message(env, "reviewers", "Reviewer queue")
    first = await reviewer.click(panel, "mq:rv:next")
    await first.wait_text("Now playing")
    records.append((reviewer, first))
    second = await run(reviewer, "next")
    await second.wait_text("Now playing")
    answer = second.messages()[-1]
    rate = next(c for c in enabled_controls(answer) if c["type"] == 3)
    rated = await reviewer.click(answer, rate["custom_id"], values=["8"])
    await rated.wait_text("8/10")
    records.append((reviewer, rated))
    bookmark = next(c["custom_id"] for c in enabled_controls(answer) if ":bm:" in c["custom_id"])
    marked = await reviewer.click(answer, bookmark)
    await fake.wait_for(lambda: fake.channel_messages(env.channels["bookmarks"]), 5, "the bookmark")
    records.append((reviewer, marked))
    await env.settle()
    for fan in fans[:2]:
        await run(fan, "queue")
        await run(fan, "mysubmissions")

    # ---------------------------------------------------------------- the recap
    ended = await run(admin, "tiktok", sub="disconnect")
    await ended.wait_text("recap is in")
    await fake.wait_for(lambda: fake.channel_messages(env.channels["metrics"]), 5, "the recap")
    await env.settle()

    # ---------------------------------------------------------------- what everyone saw
    seen: list[tuple[Actor, dict[str, Any]]] = [(who, m) for who, r in records for m in r.messages()]
    for name in ("queue", "reviewers", "now", "bookmarks", "metrics", "submit", "general"):
        owner = reviewer if name == "reviewers" else env.member
        seen += [(owner, m) for m in fake.channel_messages(env.channels[name]) if m["author"]["id"] == fake.app_id]
    colours = {c.value for c in palette.COLOURS.values()}
    problems = []
    for _who, message in seen:
        text = message_text(message)
        problems += [f"{text[:60]!r}: {p}" for p in prose_problems(text)]
        problems += [f"{e.get('title')!r} has colour {e.get('color')}" for e in message.get("embeds") or []
                     if e.get("color") not in colours]  # fmt: skip
    assert problems == []

    # ---------------------------------------------------------------- every enabled control answers
    unanswered = []
    pressed = 0
    for who, message in seen:
        current = fake.messages.get(message["id"])
        if current is None:
            continue
        for control in enabled_controls(current):
            if control["custom_id"].startswith("mq:rv:next") or control["custom_id"].startswith("mq:rv:ap:"):
                continue  # pressing these changes the night; they were pressed above and answered
            values = [control["options"][0]["value"]] if control["type"] == 3 else None
            clicked = await who.click(current, control["custom_id"], values=values, wait=False)
            pressed += 1
            try:
                await clicked.acked()
            except AssertionError:
                unanswered.append(
                    f"{control.get('label') or control.get('placeholder')} on {message_text(current)[:50]!r}"
                )
                continue
            if GENERIC_FAILURE in clicked.text():
                unanswered.append(f"{control.get('label')} failed on {message_text(current)[:50]!r}")
    assert unanswered == []
    assert pressed >= 10, pressed  # the displays, the portal, the pagers and the answers all had controls

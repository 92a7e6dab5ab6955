"""Menus that end visibly, stale clicks that still get an answer, refusals that stay (issue 11 B9-B11)."""

from __future__ import annotations

import asyncio
import copy

import pytest

from models import Line
from tests.conftest import BotEnv
from tests.e2e.test_admin_and_user_commands import _sub, post_portal
from tests.e2e.test_displays_flow import next_page_id
from tests.e2e.test_submission_flow import submit_link
from tests.fakediscord import InteractionRecord
from tests.fakediscord.actors import walk_components
from ui import submission_ui

SHORT = 0.4  # seconds: a menu's timeout in these tests


def components_of(message: dict) -> list[dict]:
    return [c for c in walk_components(message.get("components") or []) if c.get("custom_id")]


async def wait_expired(env: BotEnv, record: InteractionRecord, needle: str) -> dict:
    """Wait until the menu's message says it expired and has no component left; returns the message."""

    def expired() -> bool:
        message = record.messages()[0]
        return needle in (message.get("content") or "") and not components_of(message)

    await env.fake.wait_for(expired, 5, "the menu to say it expired")
    return record.messages()[0]


async def _history(env: BotEnv) -> tuple[InteractionRecord, dict]:
    await submit_link(env, env.member, "Artist", "Song", "https://x.test/song")
    mine = await env.member.slash(env.channels["general"], "mysubmissions")
    return mine, copy.deepcopy(mine.messages()[0])


async def test_history_menu_says_it_expired_and_drops_its_components(
    bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission_ui, "HISTORY_TIMEOUT", SHORT)
    mine, before = await _history(bot_env)
    assert components_of(before), "the menu starts with its controls"
    after = await wait_expired(bot_env, mine, "Run /mysubmissions again")
    assert after["embeds"], "the list itself stays readable"
    # A click that was on its way (the member still saw the old buttons) gets an answer, not a failure.
    late = await bot_env.member.click(before, components_of(before)[0]["custom_id"])
    assert late.ephemeral and "expired" in late.text() and "/mysubmissions" in late.text()


async def test_paging_the_history_keeps_the_new_page_alive(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(7):
        await bot_env.bot.queue.move(bot_env.guild_id, await _sub(bot_env, bot_env.member.id, 100 + n), Line.SKIP)
    monkeypatch.setattr(submission_ui, "HISTORY_TIMEOUT", 1.5)
    mine = await bot_env.member.slash(bot_env.channels["general"], "mysubmissions")
    page = mine.messages()[0]
    second = await bot_env.member.click(page, next_page_id(page))
    assert "Page 2/2" in second.text()
    # The first page's view was replaced, not left to expire over the second page; the second expires on time.
    await wait_expired(bot_env, mine, "Run /mysubmissions again")
    assert "Page 2/2" in mine.text()


async def test_resubmit_picker_expires_visibly(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission_ui, "PICKER_TIMEOUT", SHORT)
    await submit_link(bot_env, bot_env.member, "Artist", "Song", "https://x.test/song")
    portal = await post_portal(bot_env)
    picker = await bot_env.member.click(portal, "mq:portal:history")
    await picker.wait_text("Choose a song to submit again")
    before = copy.deepcopy(picker.messages()[0])
    await wait_expired(bot_env, picker, "expired")
    late = await bot_env.member.click(before, components_of(before)[0]["custom_id"], values=["AAAAA"])
    assert late.ephemeral and "expired" in late.text()


async def test_clicks_and_forms_from_before_a_restart_are_answered(bot_env: BotEnv) -> None:
    _, history = await _history(bot_env)
    opened = await bot_env.member.slash(bot_env.channels["general"], "submit")
    ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
    asked = await bot_env.member.submit_modal(opened, dict(zip(ids, ["A", "B", "https://x.test/b", ""], strict=True)))
    question = copy.deepcopy(asked.messages()[0])
    form = await bot_env.member.slash(bot_env.channels["general"], "submit")
    await bot_env.restart()
    # Every in-memory view is gone: each click is still acknowledged within Discord's 3 seconds.
    paged = await bot_env.member.click(history, components_of(history)[0]["custom_id"])
    assert paged.ephemeral and "Run /mysubmissions again" in paged.text()
    skip = await bot_env.member.click(question, bot_env.member.find_custom_id(question, "No"))
    assert skip.ephemeral and "question is closed" in skip.text() and "/submit" in skip.text()
    sent = await bot_env.member.submit_modal(form, dict(zip(ids, ["A", "B", "https://x.test/c", ""], strict=True)))
    assert sent.ephemeral and "form expired" in sent.text()
    assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 1


async def test_live_components_are_not_answered_twice(bot_env: BotEnv) -> None:
    # The catch-all must stay silent where a handler answers (the fake flags a second initial response).
    _, history = await _history(bot_env)
    second = await bot_env.member.click(history, components_of(history)[0]["custom_id"])
    assert "expired" not in second.text()
    portal = await post_portal(bot_env)
    howto = await bot_env.member.click(portal, "mq:portal:file")
    assert "/submitfile" in howto.text() and "expired" not in howto.text()


async def test_a_refusal_is_not_overwritten_by_the_timeout(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission_ui, "SKIP_TIMEOUT", SHORT)
    await bot_env.bot.queue.set_free_open(bot_env.guild_id, False)
    refused = await submit_link(bot_env, bot_env.member, "A", "B", "https://x.test/closed")
    assert "Free line is closed" in refused.text()
    # Free closed, a duplicate, a cooldown: each refusal is the question's last word.
    await bot_env.bot.queue.set_free_open(bot_env.guild_id, True)
    await submit_link(bot_env, bot_env.fake.member("first"), "C", "D", "https://x.test/dup")
    duplicate = await submit_link(bot_env, bot_env.member, "E", "F", "https://x.test/dup")
    assert "already in the queue" in duplicate.text()
    await asyncio.sleep(SHORT * 4)  # well past the questions' timeout
    assert "Free line is closed" in refused.text() and "expired" not in refused.text()
    assert "already in the queue" in duplicate.text() and "expired" not in duplicate.text()


async def test_a_bad_handle_is_refused_before_the_form_opens(bot_env: BotEnv) -> None:
    general = bot_env.channels["general"]
    refused = await bot_env.member.slash(general, "submit", tiktok_handle="not a handle!")
    assert refused.modal is None, "the member must not fill in the form first"
    assert refused.ephemeral and "not a valid TikTok handle" in refused.text()
    fine = await bot_env.member.slash(general, "submit", tiktok_handle="@Good.Handle")
    assert fine.modal is not None
    upload = await bot_env.member.upload(general, "submitfile", ("demo.mp3", b"ID3" + b"\0" * 64), artist="A",
                                         song="B", tiktok_handle="x")  # fmt: skip
    await upload.wait_text("not a valid TikTok handle")
    assert not list((bot_env.config.data_dir / "audio").rglob("*.*"))


async def test_an_unanswered_skip_question_expires_visibly(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission_ui, "SKIP_TIMEOUT", SHORT)
    opened = await bot_env.member.slash(bot_env.channels["general"], "submit")
    ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
    asked = await bot_env.member.submit_modal(opened, dict(zip(ids, ["A", "B", "https://x.test/b", ""], strict=True)))
    await wait_expired(bot_env, asked, "nothing was submitted")
    assert await bot_env.bot.db.count_user_history(bot_env.guild_id, bot_env.member.id) == 0

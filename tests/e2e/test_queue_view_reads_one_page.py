"""Issue 15: what people look at reads only what it shows, never the whole play order.

With 2,000 songs waiting, ``/queue``, its pager, "My position", the pinned displays, the reviewer's
browse pages, ``/next``'s "up next" DM and the overlay/web pages must not build the full order: reading
it is made to fail here (``PlayOrder.entries`` and ``QueueService.ordered_queue`` raise), and every
answer must still be the right one. Nor do they read the whole of Pending Skips to show its oldest few
and count it (``Database.line_submissions``, the whole-line read, raises).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.queue_scale import fill
from database import Database
from models import DisplayKind, Line
from services.play_order import PlayOrder
from services.queue import QueueService
from tests.conftest import BotEnv
from tests.e2e.test_displays_flow import next_page_id
from tests.e2e.test_reviewer_flow import add, display_message, setup_displays
from web.snapshot import Snapshots

SONGS = 2_000


async def waiting(env: BotEnv) -> int:
    return len(await env.bot.queue.order_view(env.guild_id))


async def test_queue_views_never_materialize_the_order(bot_env: BotEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    env = bot_env
    await setup_displays(env)
    await fill(env.bot.db, 0, active=SONGS, guild=env.guild_id)
    env.bot.queue.invalidate(env.guild_id)  # the seeded rows bypassed the service
    mine = await add(env, env.member.id, 1, Line.SKIP)
    await env.settle()
    assert await waiting(env) > SONGS - 200  # the seeded playable songs (Pending Skips aside) and the member's

    calls: list[str] = []

    def refuse(name: str) -> Callable[..., object]:
        def refused(*_args: object, **_kwargs: object) -> object:
            calls.append(name)
            raise AssertionError(f"{name} built the whole play order")

        return refused

    monkeypatch.setattr(PlayOrder, "entries", refuse("PlayOrder.entries"))
    monkeypatch.setattr(QueueService, "ordered_queue", refuse("QueueService.ordered_queue"))
    monkeypatch.setattr(Database, "line_submissions", refuse("Database.line_submissions"))
    pending = (await env.bot.queue.pending_head(env.guild_id, 0))[1]
    assert pending > 25  # more than the pending display shows

    general = env.channels["general"]
    first = await env.member.slash(general, "queue")
    assert f"{await waiting(env)} songs" in first.text() and f"`#{mine}`" in first.text()
    # A paid song goes ahead of the member's: the next look explains it (from counters, not from the order).
    await add(env, 77, 2, Line.BACK_TO_BACK)
    moved = await env.member.slash(general, "queue")
    assert f"`#{mine}` moved down from" in moved.text() and "1 paid song went ahead." in moved.text()

    total = await waiting(env)
    pages = -(-total // 10)
    live = display_message(env, "queue", "Live Music Queue")
    second = await env.member.click(live, "mq:lq:next")
    assert second.ephemeral and f"Page 2/{pages} · {total} songs" in second.text()
    page_two = second.messages()[0]
    third = await env.member.click(page_two, next_page_id(page_two))
    assert f"Page 3/{pages}" in third.text()
    last = await env.member.click(live, "mq:lq:prev")
    assert f"Page {pages}/{pages}" in last.text()
    position = await env.member.click(live, "mq:lq:mine")
    assert "Your songs" in position.text() and f"`#{mine}`" in position.text()

    panel = display_message(env, "reviewers", "Reviewer queue")
    browse = await env.reviewer.click(panel, "mq:rv:browse")
    assert f"{total} songs" in browse.text()
    for kind in (DisplayKind.LIVE_QUEUE, DisplayKind.REVIEWER_MAIN):
        embed, _view = await env.bot.displays.render(env.guild_id, kind)
        assert f"Page 1/{pages} · {total} songs" in (embed.footer.text or "")
        if kind is DisplayKind.REVIEWER_MAIN:
            assert (embed.footer.text or "").endswith(f"{pending} pending")
    embed, view = await env.bot.displays.render(env.guild_id, DisplayKind.REVIEWER_PENDING)
    assert (embed.footer.text or "").startswith(f"{pending} pending")
    assert f"…and {pending - 20} more" in (embed.description or "") and len(view.children) == 4 * 4 + 1
    played = await env.reviewer.click(panel, "mq:rv:next")  # and its "you are up next" DM reads one entry
    await played.wait_text("Now playing")
    assert await waiting(env) == total - 1

    snapshots = Snapshots(env.bot.db, env.bot.queue, lambda _guild: None)
    overlay = await snapshots.overlay(env.guild_id)
    assert overlay["total"] == total - 1 and len(overlay["next"]) == 20  # type: ignore[arg-type]
    page = await snapshots.public_page(env.guild_id, 3, links=False)
    assert page.page == 3 and page.total == total - 1 and len(page.rows) == 25 and page.pending == pending
    assert calls == []

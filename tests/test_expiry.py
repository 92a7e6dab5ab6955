"""ui.expiry: the view-store internals it reads, the menu tags, the texts (issue 11 B9)."""

from __future__ import annotations

import discord

from ui import expiry
from ui.submission_ui import HistoryView, ResubmitPicker


async def test_discord_py_view_store_still_has_what_the_stale_check_reads() -> None:
    # If a discord.py upgrade renames these, the exact check falls back to a timer: this test says so first.
    client = discord.Client(intents=discord.Intents.none())
    store = client._connection._view_store
    assert isinstance(store._dynamic_items, dict)
    assert isinstance(store._views, dict)
    assert isinstance(store._modals, dict)
    await client.close()


async def test_menus_tag_every_component_with_their_kind() -> None:
    history = HistoryView(1, 0, 100, [])  # page 1 of several: its arrow to the next page is shown
    picker = ResubmitPicker(1, [])
    ids = [item.custom_id for view in (history, picker) for item in view.children]  # type: ignore[attr-defined]
    assert ids and all(i.startswith("mq:x:") for i in ids) and len(set(ids)) == len(ids)
    assert expiry.expired_text(history.children[0].custom_id) == expiry.EXPIRED["history"]  # type: ignore[attr-defined]
    assert expiry.expired_text(picker.children[0].custom_id) == expiry.EXPIRED["picker"]  # type: ignore[attr-defined]
    # Library-random ids (any view from before this change) get the general note.
    assert expiry.expired_text("0123abcd" * 4) == expiry.EXPIRED_MENU


def test_every_note_is_short_and_names_a_command() -> None:
    for text in (*expiry.EXPIRED.values(), expiry.EXPIRED_MENU, expiry.EXPIRED_FORM):
        assert len(text) < 120 and "/" in text

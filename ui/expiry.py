"""Menus that end visibly, and an answer for every click on a menu that no longer exists (issue 11 B9).

A non-persistent view (the skip question, ``/mysubmissions``, the resubmit picker) lives in memory for a
few minutes. Two things used to leave a member with Discord's "This interaction failed":

* its timeout passed silently, so the message kept buttons that nothing listened to any more;
* a click on such a component (after the timeout, after the view was stopped, or after a restart, when
  every in-memory view is gone) reached no handler, so nothing answered within Discord's 3 seconds.

``ExpiringView`` fixes the first: when its timeout passes it edits its message, removing the components
and saying the menu expired. Its components carry custom ids tagged with the kind of menu
(``mq:x:<menu>:<random>``), so that even after a restart the bot knows which command opens a fresh one.

``answer_if_stale`` fixes the second. discord.py dispatches a component interaction synchronously
(``ConnectionState.parse_interaction_create`` → ``ViewStore.dispatch_view``), then dispatches the
``interaction`` event. ``MusicQueueBot.dispatch`` calls ``answer_if_stale`` at that very moment, before any
handler task has run, and asks the view store the same question ``dispatch_view`` just asked: does a
dynamic item match this custom id, or a live, unfinished view own it (or, for a modal submit, is the
modal still open)? If not, the interaction is answered at once with a short ephemeral "expired" note.

Why this and not the alternatives: a catch-all ``DynamicItem`` on the ``mq:`` prefix would run *besides*
the real handler (discord.py calls every matching dynamic item and the view), and would miss the
library-random ids of ordinary views; a timer that answers when nothing has answered after a second or
two guesses, and answers a slow but live handler wrongly; checking later, in an ``on_interaction``
listener, races with a handler that stops its view before its first await. Deciding in ``dispatch`` is
exact. It reads three private attributes of discord.py's ``ViewStore`` (the version is pinned;
``tests/test_expiry.py`` fails if they change); if they are ever missing it falls back to answering only
when nothing answered within ``FALLBACK_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any, ClassVar

import discord

from ui.respond import BaseView, respond

if TYPE_CHECKING:
    from bot import MusicQueueBot

    Interaction = discord.Interaction[MusicQueueBot]

log = logging.getLogger(__name__)

STALE_PREFIX = "mq:x:"
# What a member reads on a menu that expired, by the kind of menu (the middle part of its custom ids). A
# stale click on the skip question cannot tell whether it was answered before, so its note fits both.
EXPIRED: dict[str, str] = {
    "skip": "⌛ This question is closed. /mysubmissions shows what you sent; /submit sends a song.",
    "history": "⌛ This menu expired. Run /mysubmissions again for a fresh one.",
    "picker": "⌛ This menu expired. Run /mysubmissions again (or use the portal's button) for a fresh one.",
}
EXPIRED_MENU = "⌛ This menu expired. Run /mysubmissions (or the command that opened it) again for a fresh one."
EXPIRED_FORM = "⌛ This form expired before it was sent, so nothing was saved. Run /submit again."
FALLBACK_SECONDS = 2.0
_answering: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def expired_text(custom_id: str | None) -> str:
    """The note for a stale component, naming the command that opens a fresh menu when the id says which."""
    if custom_id and custom_id.startswith(STALE_PREFIX):
        return EXPIRED.get(custom_id[len(STALE_PREFIX) :].split(":", 1)[0], EXPIRED_MENU)
    return EXPIRED_MENU


class ExpiringView(BaseView):
    """A member's ephemeral menu that says so, and drops its components, when its timeout passes.

    ``origin`` is the interaction whose original response carries the menu (the one that sent it, or the
    click that redrew it in place); call ``shown_by`` whenever that changes. Its token lives 15 minutes,
    well beyond every timeout here.
    """

    menu: ClassVar[str] = "menu"
    # What the message says once the timeout passed (default: the note for a stale click on this menu).
    timeout_note: ClassVar[str | None] = None

    def __init__(self, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.origin: Interaction | None = None
        for item in self.children:
            self._tag(item)

    def add_item(self, item: discord.ui.Item[Any]) -> ExpiringView:
        """Add a component, tagging its custom id with this menu's kind."""
        self._tag(item)
        super().add_item(item)
        return self

    def _tag(self, item: object) -> None:
        # Unique per view (two members' menus never share an id), and names the menu after a restart.
        if isinstance(item, discord.ui.Button) and item.url:
            return  # a link button has no custom id
        if hasattr(item, "custom_id"):
            item.custom_id = f"{STALE_PREFIX}{self.menu}:{secrets.token_hex(8)}"

    def shown_by(self, interaction: Interaction) -> None:
        """Record the interaction whose original response now shows this menu."""
        self.origin = interaction

    @property
    def expired_text(self) -> str:
        """What the message says once the menu expired."""
        return self.timeout_note or EXPIRED.get(self.menu, EXPIRED_MENU)

    async def on_timeout(self) -> None:
        """Replace the menu by the expired note: no component is left that nothing would answer."""
        if self.origin is None:
            return
        try:
            await self.origin.edit_original_response(content=self.expired_text, view=None)
        except discord.HTTPException as exc:
            log.info("could not mark an expired %s menu: %s", self.menu, exc)


# ---------------------------------------------------------------------- clicks nothing handles


def _unhandled(client: discord.Client, interaction: Interaction) -> bool | None:
    """Whether no live handler owns this component click or modal submit (None: the store is unreadable).

    Mirrors ``ViewStore.dispatch_view`` / ``dispatch_modal`` of discord.py 2.7.
    """
    try:
        store = client._connection._view_store
        dynamic = store._dynamic_items
        views = store._views
        modals = store._modals
    except AttributeError:
        return None
    data: dict[str, object] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str):
        return False  # malformed: not ours to answer
    if interaction.type is discord.InteractionType.modal_submit:
        return custom_id not in modals
    if any(pattern.fullmatch(custom_id) for pattern in dynamic):
        return False
    kind = data.get("component_type")
    key = (kind if isinstance(kind, int) else 0, custom_id)
    item = None
    if interaction.message is not None:
        item = views.get(interaction.message.id, {}).get(key)
    if item is None:
        item = views.get(None, {}).get(key)
    return item is None or item.view is None or item.view.is_finished()


def answer_if_stale(client: discord.Client, interaction: Interaction) -> asyncio.Task[None] | None:
    """Called synchronously as the interaction is dispatched: answer it when nothing else will."""
    if interaction.type not in (discord.InteractionType.component, discord.InteractionType.modal_submit):
        return None
    unhandled = _unhandled(client, interaction)
    if unhandled is False:
        return None
    delay = FALLBACK_SECONDS if unhandled is None else 0.0
    task = asyncio.create_task(_answer(interaction, delay), name="stale-interaction")
    _answering.add(task)
    task.add_done_callback(_answering.discard)
    return task


async def _answer(interaction: Interaction, delay: float) -> None:
    if delay:
        await asyncio.sleep(delay)
    if interaction.response.is_done():
        return
    raw_id = dict(interaction.data or {}).get("custom_id")
    custom_id = raw_id if isinstance(raw_id, str) else None
    form = interaction.type is discord.InteractionType.modal_submit
    text = EXPIRED_FORM if form else expired_text(custom_id)
    log.info("answered a stale %s (%s) in guild %s", "form" if form else "component", custom_id,
             interaction.guild_id)  # fmt: skip
    try:
        await respond(interaction, text)
    except discord.HTTPException as exc:
        log.info("could not answer a stale interaction: %s", exc)

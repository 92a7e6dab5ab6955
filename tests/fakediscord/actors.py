"""The test-facing side: members who use the bot (:class:`Actor`) and what came of it (:class:`InteractionRecord`).

Actors build INTERACTION_CREATE payloads the way Discord does: option types come from the commands the bot
registered, ``data.resolved`` is filled for users, channels, roles and attachments, component clicks carry the
whole message, and modal submissions mirror the modal the bot sent (action rows or type-18 labels).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakediscord.state import (
    ACK_WINDOW,
    ALL_PERMISSIONS,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    EPHEMERAL,
    Message,
)

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11
FileSpec = tuple[str, bytes] | tuple[str, bytes, str]


class CommandHidden(AssertionError):
    """Discord would not show this command to this member here, so they cannot run it.

    Raised instead of delivering the interaction: the member lacks the command's default permission (and no
    override in Server Settings → Integrations lets them see it), or the command is not allowed in this
    context (a guild-only command in DMs).
    """


@dataclass
class InteractionRecord:
    """One interaction a test injected, and everything the bot answered to it."""

    id: str
    token: str
    kind: int
    user_id: str
    created: float
    fake: FakeDiscord
    channel_id: str = ""
    message_id: str | None = None
    label: str = ""
    response_type: int | None = None
    response: dict[str, Any] | None = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    acked_event: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, kind: int, response: dict[str, Any] | None) -> None:
        """Record the initial response (called by the REST layer)."""
        self.response_type = kind
        self.response = response
        self.acked_event.set()
        self.changed()

    def changed(self) -> None:
        """Wake waiters after a followup or an edit."""
        self._changed.set()

    async def acked(self, timeout: float = ACK_WINDOW) -> InteractionRecord:
        """Wait for the initial response; fails with a readable message when it does not come."""
        try:
            await asyncio.wait_for(self.acked_event.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the bot did not acknowledge {self.label} within {timeout:.1f} s") from None
        return self

    @property
    def ephemeral(self) -> bool:
        """Whether the answer is visible to the user only."""
        message = self.fake.messages.get(self.original_id or "") or self.response or {}
        return bool((message.get("flags") or 0) & EPHEMERAL)

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9)."""
        return self.response if self.response_type == 9 else None

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete answers (callback type 8)."""
        return (self.response or {}).get("choices", []) if self.response_type == 8 else []

    @property
    def followups(self) -> list[Message]:
        """Followup messages still existing, in their current state."""
        return [self.fake.messages[i] for i in self.followup_ids if i in self.fake.messages]

    def messages(self) -> list[Message]:
        """Everything the user sees from this interaction, in order: the original answer, then followups."""
        ids = ([self.original_id] if self.original_id else []) + self.followup_ids
        return [self.fake.messages[i] for i in ids if i in self.fake.messages]

    def text(self) -> str:
        """All visible text of the answer (content, embed title/description/fields/footer), for assertions."""
        parts: list[str] = []
        for message in self.messages():
            parts.append(message.get("content") or "")
            for embed in message.get("embeds") or []:
                parts += [embed.get("title") or "", embed.get("description") or ""]
                for f in embed.get("fields") or []:
                    parts += [f.get("name", ""), f.get("value", "")]
                parts.append((embed.get("footer") or {}).get("text", ""))
        return "\n".join(p for p in parts if p)

    async def wait_text(self, needle: str, timeout: float = 5.0) -> str:
        """Wait until ``needle`` appears in the answer; returns the whole text."""
        await self.fake.wait_for(lambda: needle in self.text(), timeout, f"{needle!r} in the answer")
        return self.text()

    async def wait_for_followup(self, n: int = 1, timeout: float = 5.0) -> Message:
        """Wait for the ``n``-th followup (1-based); a followup that filled a deferred original counts as 1."""

        def have() -> list[Message]:
            filled = self.response_type == 5 and self.original_id in self.fake.messages
            original = self.fake.messages.get(self.original_id or "") if filled else None
            seen = [original] if original is not None and original.get("edited_timestamp") else []
            return seen + self.followups

        await self.fake.wait_for(lambda: len(have()) >= n, timeout, f"followup #{n} to {self.label}")
        return have()[n - 1]


@dataclass
class Actor:
    """A guild member who uses the bot the way people do."""

    fake: FakeDiscord
    user_id: str

    @property
    def id(self) -> int:
        """The member's id as the bot sees it."""
        return int(self.user_id)

    @property
    def name(self) -> str:
        """The member's username."""
        return self.fake.members[self.user_id]["user"]["username"]

    @property
    def dm(self) -> str:
        """The id of this member's DM channel with the bot (commands run there have no guild)."""
        return self.fake.dm_channel_of(self.user_id)

    # ------------------------------------------------------------------ payloads

    def _interaction(self, kind: int, channel_id: str, data: dict[str, Any], label: str,
                     message: Message | None = None) -> tuple[dict[str, Any], InteractionRecord]:  # fmt: skip
        fake = self.fake
        interaction_id = fake.snowflake()
        token = f"tok-{interaction_id}"
        channel = fake.channels[channel_id]
        payload = {
            "id": interaction_id, "application_id": fake.app_id, "type": kind, "token": token, "version": 1,
            "channel_id": channel_id, "channel": channel, "locale": "en-US", "entitlements": [],
            "attachment_size_limit": fake.upload_limit_for(channel_id), "data": data,
        }  # fmt: skip
        if channel.get("type") == 1:  # the member's DM with the bot: no guild, no member, context BOT_DM
            payload |= {"user": fake.members[self.user_id]["user"], "context": CONTEXT_BOT_DM,
                        "app_permissions": str(fake.permissions_of(fake.app_id)),
                        "authorizing_integration_owners": {"0": fake.guild_id}}  # fmt: skip
        else:
            payload |= {
                "guild_id": fake.guild_id, "guild": {"id": fake.guild_id, "locale": "en-US", "features": []},
                "member": fake.members[self.user_id] | {"permissions": str(fake.permissions_of(self.user_id))},
                "app_permissions": str(fake.channel_permissions(fake.app_id, channel_id)), "guild_locale": "en-US",
                "authorizing_integration_owners": {"0": fake.guild_id}, "context": CONTEXT_GUILD,
            }  # fmt: skip
        if message is not None:
            payload["message"] = fake.public(message)
        record = InteractionRecord(interaction_id, token, kind, self.user_id, fake.now(), fake, channel_id,
                                   message["id"] if message else None, label)  # fmt: skip
        fake.interactions[interaction_id] = record
        return payload, record

    def commands_in(self, channel_id: str) -> dict[str, dict[str, Any]]:
        """The commands that exist where this member types: in a DM only global ones, in the guild both."""
        return self.fake.global_commands if self.fake.channels[channel_id].get("type") == 1 else self.fake.commands

    def can_see(self, name: str, channel_id: str) -> bool:
        """Whether Discord shows ``/name`` to this member in this channel (default permission, overrides, context)."""
        fake = self.fake
        command = self.commands_in(channel_id).get(name)
        if command is None:
            return False
        if fake.channels[channel_id].get("type") == 1:
            contexts = command.get("contexts")
            return CONTEXT_BOT_DM in contexts if contexts is not None else command.get("dm_permission") is not False
        contexts = command.get("contexts")
        if contexts is not None and CONTEXT_GUILD not in contexts:
            return False
        return fake.command_visible(self.user_id, command, channel_id)

    def _require_visible(self, name: str, channel_id: str) -> None:
        command = self.fake.commands.get(name) or self.fake.global_commands.get(name)
        if command is not None and not self.can_see(name, channel_id):
            raise CommandHidden(
                f"Discord hides /{name} from {self.name} here (default_member_permissions="
                f"{command.get('default_member_permissions')}, contexts={command.get('contexts')}); a test that "
                "means to reach the runtime check grants it with fake.allow_command()"
            )

    def _envelope(self, kind: int, channel_id: str, data: dict[str, Any], message: Message | None = None
                  ) -> tuple[dict[str, Any], InteractionRecord]:  # fmt: skip
        # Kept for tests/e2e that build raw interactions to probe the fake's rules directly.
        return self._interaction(kind, channel_id, data, f"{data.get('name') or data.get('custom_id')}", message)

    async def _inject(self, payload: dict[str, Any], record: InteractionRecord, wait: bool) -> InteractionRecord:
        self.fake.record_created(record)
        self.fake.dispatch("INTERACTION_CREATE", payload)
        return await record.acked(ACK_WINDOW + 0.5) if wait else record

    def _resolve(self, kind: int, value: Any, resolved: dict[str, Any]) -> Any:
        fake = self.fake
        if kind in (STRING, INTEGER, BOOLEAN, NUMBER):
            return {STRING: str, INTEGER: int, BOOLEAN: bool, NUMBER: float}[kind](value)
        if kind == ATTACHMENT and isinstance(value, tuple):
            stored = fake.store_attachment(*value)
            resolved.setdefault("attachments", {})[stored["id"]] = stored
            return stored["id"]
        ref = value.user_id if isinstance(value, Actor) else str(value)
        if ref in fake.members and kind in (USER, MENTIONABLE):
            resolved.setdefault("users", {})[ref] = fake.members[ref]["user"]
            resolved.setdefault("members", {})[ref] = fake.member_without_user(ref, with_permissions=True)
        elif ref in fake.roles and kind in (ROLE, MENTIONABLE):
            resolved.setdefault("roles", {})[ref] = fake.roles[ref]
        elif ref in fake.channels and kind == CHANNEL:
            resolved.setdefault("channels", {})[ref] = fake.channels[ref] | {"permissions": ALL_PERMISSIONS}
        return ref

    def _command_data(self, name: str, subcommand: str | None, options: dict[str, Any],
                      focused: str | None = None, channel_id: str = "") -> dict[str, Any]:  # fmt: skip
        known = self.commands_in(channel_id) if channel_id else self.fake.commands
        command = known.get(name)
        if command is None:
            raise AssertionError(f"/{name} is not registered (registered: {sorted(self.fake.commands)})")
        path = subcommand.split() if subcommand else []
        specs = command.get("options") or []
        for part in path:
            found = next(
                (o for o in specs if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None
            )
            if found is None:
                raise AssertionError(f"/{name} has no subcommand {subcommand!r}")
            specs = found.get("options") or []
        by_name = {o["name"]: o for o in specs}
        resolved: dict[str, Any] = {}
        leaf = []
        for key, value in options.items():
            if key not in by_name:
                raise AssertionError(f"/{name} {subcommand or ''} has no option {key!r} (has {sorted(by_name)})")
            kind = by_name[key]["type"]
            if key == focused:  # what the user is typing is always a string
                leaf.append({"name": key, "type": kind, "value": str(value), "focused": True})
            else:
                leaf.append({"name": key, "type": kind, "value": self._resolve(kind, value, resolved)})
        out: list[dict[str, Any]] = leaf
        for depth in range(len(path) - 1, -1, -1):
            out = [{"name": path[depth], "type": SUB_COMMAND if depth == len(path) - 1 else SUB_COMMAND_GROUP,
                    "options": out}]  # fmt: skip
        data = {"id": command["id"], "name": name, "type": command.get("type", 1), "options": out}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    # ------------------------------------------------------------------ what people do

    async def slash(self, channel_id: str, name: str, subcommand: str | None = None, *, wait: bool = True,
                    **options: Any) -> InteractionRecord:  # fmt: skip
        """Run ``/name [group] [subcommand] option:value…``; waits for the acknowledgement unless ``wait=False``.

        ``subcommand`` is ``"sub"`` or ``"group sub"``. Values: str/int/bool/float, an :class:`Actor` or id for
        user options, ids for channels and roles, and ``(filename, bytes[, content_type])`` for attachments.
        """
        self._require_visible(name, channel_id)
        data = self._command_data(name, subcommand, options, channel_id=channel_id)
        label = f"/{name}" + (f" {subcommand}" if subcommand else "")
        payload, record = self._interaction(2, channel_id, data, label)
        return await self._inject(payload, record, wait)

    async def slash_sub(self, channel_id: str, name: str, sub: str, **options: Any) -> InteractionRecord:
        """Run a subcommand (same as ``slash(channel, name, sub, ...)``)."""
        return await self.slash(channel_id, name, sub, **options)

    async def upload(self, channel_id: str, name: str, file: FileSpec, subcommand: str | None = None, *,
                     wait: bool = True, **options: Any) -> InteractionRecord:  # fmt: skip
        """Run a slash command whose attachment option gets ``file`` = ``(filename, bytes[, content_type])``."""
        command = self.fake.commands.get(name) or {}
        specs = command.get("options") or []
        for part in (subcommand or "").split():
            specs = next((o.get("options") or [] for o in specs if o["name"] == part), [])
        slots = [o["name"] for o in specs if o["type"] == ATTACHMENT and o["name"] not in options]
        if not slots:
            raise AssertionError(f"/{name} has no free attachment option")
        if len(file) == 2:
            file = (*file, "application/octet-stream")
        return await self.slash(channel_id, name, subcommand, wait=wait, **{slots[0]: file}, **options)

    async def autocomplete(self, channel_id: str, name: str, focused: str, typed: str | None = None,
                           subcommand: str | None = None, **options: Any) -> InteractionRecord:  # fmt: skip
        """Type into an autocompleted option; ``.choices`` of the result holds the answer."""
        if typed is not None:
            options[focused] = typed
        options.setdefault(focused, "")
        self._require_visible(name, channel_id)
        data = self._command_data(name, subcommand, options, focused, channel_id)
        payload, record = self._interaction(4, channel_id, data, f"autocomplete /{name} {focused}")
        return await self._inject(payload, record, True)

    async def click(self, message: Message, custom_id: str, values: list[str] | None = None, *,
                    wait: bool = True) -> InteractionRecord:  # fmt: skip
        """Press a button on a message (or, with ``values``, choose options in a select)."""
        if values is not None:
            return await self.select(message, custom_id, values, wait=wait)
        data = {"custom_id": custom_id, "component_type": 2}
        payload, record = self._interaction(3, message["channel_id"], data, f"button {custom_id}", message)
        return await self._inject(payload, record, wait)

    async def select(self, message: Message, custom_id: str, values: list[str], *, wait: bool = True
                     ) -> InteractionRecord:  # fmt: skip
        """Choose ``values`` in a select menu (string, user, role, mentionable or channel select)."""
        component = find_component(message.get("components") or [], custom_id) or {}
        kind = component.get("type", 3)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind, "values": list(values)}
        if kind in (5, 6, 7, 8):  # entity selects carry resolved objects like options do
            resolved: dict[str, Any] = {}
            option_kind = {5: USER, 6: ROLE, 7: MENTIONABLE, 8: CHANNEL}[kind]
            data["values"] = [self._resolve(option_kind, v, resolved) for v in values]
            data["resolved"] = resolved
        payload, record = self._interaction(3, message["channel_id"], data, f"select {custom_id}", message)
        return await self._inject(payload, record, wait)

    async def submit_modal(self, opened: InteractionRecord, values: dict[str, str | list[str]], *,
                           wait: bool = True) -> InteractionRecord:  # fmt: skip
        """Fill in and submit the modal the bot opened; text inputs get strings, selects get lists."""
        modal = opened.modal
        if modal is None:
            raise AssertionError(f"the bot did not open a modal for {opened.label} (answered {opened.response_type})")

        def filled(item: dict[str, Any]) -> dict[str, Any] | None:
            if item.get("type") == 4:
                return {"type": 4, "custom_id": item["custom_id"], "value": str(values.get(item["custom_id"], ""))}
            if item.get("type") == 3:
                return {"type": 3, "custom_id": item["custom_id"], "values": list(values.get(item["custom_id"], []))}
            return None

        components: list[dict[str, Any]] = []
        for top in modal.get("components") or []:
            if top.get("type") == 18:  # discord.py 2.7 Label: one component inside ``component``
                inner = filled(top.get("component") or {})
                if inner is not None:
                    components.append({"type": 18, "component": inner})
            elif top.get("type") == 1:
                row = [c for c in map(filled, top.get("components") or []) if c is not None]
                if row:
                    components.append({"type": 1, "components": row})
        data = {"custom_id": modal["custom_id"], "components": components}
        payload, record = self._interaction(5, opened.channel_id, data, f"modal {modal['custom_id']}")
        return await self._inject(payload, record, wait)

    async def send(self, channel_id: str, content: str) -> Message:
        """Type a message in a channel (MESSAGE_CREATE with this member as author)."""
        fake = self.fake
        message = fake.new_message(channel_id, {"content": content}, [], author=fake.members[self.user_id]["user"])
        data = fake.public(message)
        if "guild_id" in message:
            data["member"] = fake.member_without_user(self.user_id)
        fake.dispatch("MESSAGE_CREATE", data)
        return message

    def find_custom_id(self, message: Message, label: str) -> str:
        """The custom id of the component whose label (or placeholder) contains ``label``."""
        for item in walk_components(message.get("components") or []):
            if label in (item.get("label") or "") or label in (item.get("placeholder") or ""):
                return item["custom_id"]
        raise AssertionError(f"no component labelled {label!r}")


def walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component, depth first (rows, labels, containers and sections included)."""
    found: list[dict[str, Any]] = []
    for item in components:
        found.append(item)
        found += walk_components(item.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(item.get(key), dict):
                found += walk_components([item[key]])
    return found


def find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    """The component with ``custom_id``, anywhere in the tree."""
    return next((c for c in walk_components(components) if c.get("custom_id") == custom_id), None)

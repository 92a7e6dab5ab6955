"""The settings registry: every per-server setting an admin can change, defined once (issue 14 point 4).

Each ``SettingSpec`` names the ``GuildSettings`` field (the ``guild_settings`` column has the same name),
its type, range, default, label and help. ``/settings`` lists and edits exactly these, ``/show-settings``
prints them, and ``migrations/0003_settings.sql`` gives the new columns the same defaults (a test compares
the two). ``parse`` turns what an admin typed into a stored value or raises ``ValidationError`` with a
short reason; ``describe`` renders a value for people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from errors import ValidationError

Kind = Literal["int", "float", "bool"]
Value = int | float | bool | None

_TRUE = {"yes", "y", "on", "true", "1", "enable", "enabled"}
_FALSE = {"no", "n", "off", "false", "0", "disable", "disabled"}
_DEFAULT_WORDS = {"default", "reset", ""}
_OFF_WORDS = {"off", "none", "no limit", "disabled"}


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting: where it is stored, what values it accepts, and how it is explained."""

    key: str
    label: str
    help: str
    kind: Kind
    default: Value
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    # A value outside the range that is still accepted and means "switched off" (e.g. 0 = no cap).
    off: Value = None
    # None is a valid stored value (the column is nullable): "use the bot's default" or "no limit".
    nullable: bool = False
    null_means: str = ""

    def range_text(self) -> str:
        """The accepted values, as the refusal and the modal's placeholder say them."""
        if self.kind == "bool":
            return "on or off"
        unit = f" {self.unit}" if self.unit else ""
        text = f"{_num(self.minimum)} to {_num(self.maximum)}{unit}"
        if self.off is not None:
            text += f", or {_num(self.off)} for {self.null_means if self.nullable else 'off'}"
        elif self.nullable:
            text += f", or 'default' for {self.null_means}"
        return text

    def parse(self, raw: str) -> Value:
        """The value to store for what an admin typed; ``ValidationError`` with the reason otherwise."""
        text = raw.strip().lower().removesuffix(self.unit).strip() if self.unit else raw.strip().lower()
        if self.nullable and text in _DEFAULT_WORDS:
            return None
        if not self.nullable and text in {"default", "reset"}:
            return self.default
        if self.off is not None and text in _OFF_WORDS:
            return None if self.nullable else self.off
        if self.kind == "bool":
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValidationError(f"{self.label} is on or off; got {limit_text(raw)!r}.")
        try:
            number = float(text)
        except ValueError:
            raise ValidationError(f"{self.label} must be a number: {self.range_text()}.") from None
        if not math.isfinite(number):
            raise ValidationError(f"{self.label} must be a number: {self.range_text()}.")
        if self.kind == "int":
            if number != int(number):
                raise ValidationError(f"{self.label} must be a whole number: {self.range_text()}.")
            number = int(number)
        if self.off is not None and number == self.off:
            return None if self.nullable else self._cast(number)  # a nullable limit stores "off" as NULL
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise ValidationError(f"{self.label} must be {self.range_text()}; got {_num(number)}.")
        return self._cast(number)

    def _cast(self, number: float) -> Value:
        return int(number) if self.kind == "int" else float(number)

    def check(self, value: Value) -> Value:
        """Validate a value that did not come from text (a select, a test, a stored default)."""
        if value is None:
            if not self.nullable:
                raise ValidationError(f"{self.label} needs a value: {self.range_text()}.")
            return None
        if self.kind == "bool":
            return self.parse("on" if value else "off")
        return self.parse(str(value))

    def describe(self, value: Value) -> str:
        """A value as people read it."""
        if value is None:
            return self.null_means or "not set"
        if self.kind == "bool":
            return "on" if value else "off"
        if self.off is not None and value == self.off:
            return "off"
        unit = f" {self.unit}" if self.unit else ""
        return f"{_num(value)}{unit}"


def _num(value: float | int | bool | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def limit_text(text: str, size: int = 30) -> str:
    """User text clipped for a refusal."""
    return text if len(text) <= size else text[: size - 1] + "…"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "display_refresh_seconds",
        "Display refresh window",
        "At most one edit per pinned display per window (Discord allows 5 edits per 5 s per channel).",
        "float",
        None,
        2,
        60,
        "s",
        nullable=True,
        null_means="the bot's DISPLAY_REFRESH_SECONDS",
    ),
    SettingSpec(
        "submit_cooldown_seconds",
        "Submit cooldown",
        "How long a member waits between two submissions.",
        "int",
        30,
        1,
        3600,
        "s",
        off=0,
    ),
    SettingSpec(
        "max_pending_per_user",
        "Pending skips cap",
        "How many unapproved Pending Skips one member may have waiting.",
        "int",
        3,
        1,
        100,
        off=0,
    ),
    SettingSpec(
        "like_cap_per_minute",
        "Like cap",
        "Likes counted per TikTok handle per minute (against tap farming).",
        "int",
        60,
        1,
        100_000,
        "per min",
        off=0,
    ),
    SettingSpec(
        "share_cap_per_minute",
        "Share cap",
        "Shares counted per TikTok handle per minute.",
        "int",
        5,
        1,
        1000,
        "per min",
        off=0,
    ),
    SettingSpec(
        "max_track_seconds",
        "Maximum track length",
        "Uploaded files longer than this are refused.",
        "int",
        None,
        10,
        4 * 3600,
        "s",
        off=0,
        nullable=True,
        null_means="no limit",
    ),
    SettingSpec(
        "verified_handles_only",
        "Verified handles only",
        "Only handles proven with the chat code count toward a member's Free score.",
        "bool",
        True,
    ),
    SettingSpec(
        "reconnect_grace_seconds",
        "Reconnect grace window",
        "A TikTok LIVE that comes back within this time continues the same session (one recap).",
        "int",
        300,
        0,
        3600,
        "s",
    ),
    SettingSpec(
        "free_every_nth",
        "Every Nth from Free",
        "Fairness: after N-1 paid songs in a row, the top Free song plays next (off: paid lines always first).",
        "int",
        0,
        2,
        50,
        off=0,
    ),
    SettingSpec(
        "public_queue_enabled",
        "Public queue page",
        "A read-only web page of the queue for the streamer's TikTok bio (/overlay public gives its link).",
        "bool",
        False,
    ),
    SettingSpec(
        "file_link_expiry_hours",
        "File-link expiry",
        "How long a signed download link for an uploaded file works (counted from when it is given).",
        "int",
        24,
        1,
        720,
        "h",
    ),
)
BY_KEY: dict[str, SettingSpec] = {spec.key: spec for spec in SETTINGS}


def spec(key: str) -> SettingSpec:
    """The spec of a setting; ``ValidationError`` for an unknown key (a forged select value)."""
    found = BY_KEY.get(key)
    if found is None:
        raise ValidationError("That setting does not exist.")
    return found

"""What ``/setup`` builds and what the permission doctor checks, as plain data (no discord imports).

``LAYOUT`` is the bot's channel layout: for each channel setting, its default name, who may see and write
there, and the bot permissions it needs. ``overwrite_needs`` and ``merged_overwrite`` turn that into the
permission overwrites ``/setup`` applies, without undoing an admin's own tweaks, and answer "nothing to
do" when a channel is already right (a second run changes nothing). ``Checklist`` collects what a run did,
step by step. ``diagnose`` is the doctor: from the bot's effective permission bits per channel (read by
the cog from discord.py's cache) it lists every problem with its fix in one line.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services import permissions as perms
from services.permissions import BotPermission

CATEGORY_NAME = "Music Queue"
REVIEWER_ROLE_NAME = "Queue Reviewer"

# Raw bits for overwrites of other targets (members, roles); the bot's own come from services.permissions.
VIEW = perms.VIEW_CHANNEL.bit
SEND = perms.SEND_MESSAGES.bit
HISTORY = perms.READ_MESSAGE_HISTORY.bit
APP_COMMANDS = perms.USE_APPLICATION_COMMANDS.bit
ADMINISTRATOR = 1 << 3


class Access(enum.Enum):
    """Who may see and write in a channel /setup manages."""

    OPEN = "open"  # members see it and use slash commands there (the submission channel)
    READ_ONLY = "read_only"  # members read, only the bot posts
    PRIVATE = "private"  # reviewers and admins only


class Target(enum.Enum):
    """Whom an overwrite is for."""

    EVERYONE = "@everyone"
    REVIEWER = "reviewer role"
    ADMIN = "admin role"
    BOT = "the bot"


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One channel of the layout."""

    key: str  # the GuildSettings field that stores its id
    label: str
    name: str
    access: Access
    needs: tuple[BotPermission, ...]


_POST = (perms.VIEW_CHANNEL, perms.SEND_MESSAGES, perms.EMBED_LINKS)
_DISPLAY = (*_POST, perms.READ_MESSAGE_HISTORY, perms.PIN_MESSAGES)

LAYOUT: tuple[ChannelPlan, ...] = (
    ChannelPlan("submission_channel_id", "Submissions", "submissions", Access.OPEN, (*_DISPLAY, perms.MANAGE_MESSAGES)),
    ChannelPlan("live_queue_channel_id", "Live queue", "live-queue", Access.READ_ONLY, _DISPLAY),
    ChannelPlan("reviewer_channel_id", "Reviewer panel", "reviewer-panel", Access.PRIVATE, _DISPLAY),
    ChannelPlan("now_playing_channel_id", "Now playing", "now-playing", Access.READ_ONLY, _POST),
    ChannelPlan("bookmark_channel_id", "Bookmarks", "bookmarks", Access.READ_ONLY, (*_POST, perms.ATTACH_FILES)),
    ChannelPlan(
        "metrics_channel_id", "Post-live metrics", "post-live-metrics", Access.READ_ONLY, (*_POST, perms.ATTACH_FILES)
    ),
    ChannelPlan("debug_channel_id", "Bot debug", "bot-debug", Access.PRIVATE, _POST),
)
BY_KEY: dict[str, ChannelPlan] = {plan.key: plan for plan in LAYOUT}


@dataclass(frozen=True, slots=True)
class OverwriteNeed:
    """Bits an overwrite for ``target`` must allow and deny."""

    target: Target
    allow: int
    deny: int


def overwrite_needs(plan: ChannelPlan, *, has_admin_role: bool) -> list[OverwriteNeed]:
    """The overwrites a channel of the layout needs.

    The bot always gets its own member overwrite allowing what it needs there, first: a private channel
    denies @everyone View Channel, which would otherwise hide the channel from the bot too.
    """
    member_rw = VIEW | SEND | HISTORY
    # The bot's own first: once @everyone is denied, Discord only lets the bot write overwrites with the
    # permissions it still holds in the channel.
    needs = [OverwriteNeed(Target.BOT, sum(p.bit for p in plan.needs), 0)]
    if plan.access is Access.OPEN:
        needs.append(OverwriteNeed(Target.EVERYONE, VIEW | HISTORY | APP_COMMANDS, 0))
    elif plan.access is Access.READ_ONLY:
        needs.append(OverwriteNeed(Target.EVERYONE, 0, SEND))
    else:
        needs.append(OverwriteNeed(Target.EVERYONE, 0, VIEW))
        needs.append(OverwriteNeed(Target.REVIEWER, member_rw, 0))
        if has_admin_role:
            needs.append(OverwriteNeed(Target.ADMIN, member_rw, 0))
    return needs


def grantable(need: OverwriteNeed, bot_bits: int) -> tuple[OverwriteNeed, int]:
    """The part of ``need`` the bot may set, and the bits it may not.

    Discord lets a bot allow or deny in an overwrite only permissions it holds itself (Administrator
    holds all); asking for more fails the whole request, so those bits are left out and reported.
    """
    if bot_bits & ADMINISTRATOR:
        return need, 0
    refused = (need.allow | need.deny) & ~bot_bits
    return OverwriteNeed(need.target, need.allow & bot_bits, need.deny & bot_bits), refused


def merged_overwrite(existing: tuple[int, int] | None, need: OverwriteNeed) -> tuple[int, int] | None:
    """The (allow, deny) pair to write, or None when the existing overwrite already satisfies ``need``.

    Bits the layout does not mention stay as the admin set them.
    """
    allow, deny = existing or (0, 0)
    new_allow = (allow | need.allow) & ~need.deny
    new_deny = (deny | need.deny) & ~need.allow
    if existing is None and not (need.allow or need.deny):
        return None
    if existing is not None and (new_allow, new_deny) == (allow, deny):
        return None
    return new_allow, new_deny


def names(bits: int, catalogue: Iterable[BotPermission] = perms.BOT_PERMISSIONS) -> str:
    """Permission bits as their Discord labels."""
    return ", ".join(p.label for p in catalogue if bits & p.bit) or "none"


# ---------------------------------------------------------------------- the checklist of a run


class Mark(enum.StrEnum):
    """How one step of a run ended."""

    DONE = "✅"  # did it now
    KEPT = "☑️"  # it was already right
    FAILED = "❌"  # Discord refused; the reason follows
    WARN = "⚠️"


@dataclass(slots=True)
class Checklist:
    """What a ``/setup`` run did, in order."""

    steps: list[tuple[Mark, str]] = field(default_factory=list)

    def add(self, mark: Mark, text: str) -> None:
        """Record a step."""
        self.steps.append((mark, text))

    def count(self, mark: Mark) -> int:
        """How many steps ended this way."""
        return sum(1 for m, _ in self.steps if m is mark)

    @property
    def changed(self) -> bool:
        """Whether the run changed anything."""
        return self.count(Mark.DONE) > 0

    def lines(self) -> list[str]:
        """The steps as lines."""
        return [f"{mark.value} {text}" for mark, text in self.steps]


# ---------------------------------------------------------------------- the doctor


@dataclass(frozen=True, slots=True)
class ChannelState:
    """One configured channel as the doctor sees it."""

    plan: ChannelPlan
    channel_id: int | None  # None: not set
    exists: bool
    bits: int = 0  # the bot's effective permissions there (when it exists)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong, and the one-line fix."""

    subject: str
    what: str
    fix: str

    def line(self) -> str:
        """``❌ subject: what. Fix: fix``."""
        return f"❌ **{self.subject}**: {self.what}. Fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class Report:
    """The doctor's findings: per-channel lines (good and bad) and the problems among them."""

    lines: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def fingerprint(self) -> str:
        """A hash of the problems, so the same findings are not posted again after a restart."""
        raw = "\n".join(sorted(p.line() for p in self.problems))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Environment:
    """What the doctor checks besides channels: server-wide permissions, roles, TikTok and the web server."""

    guild_bits: int
    bot_role: str
    bot_role_position: int
    reviewer_role: str | None = None  # a mention; None when not set
    reviewer_role_exists: bool = True
    reviewer_role_position: int = 0
    admin_role_exists: bool = True
    sign_api_key: bool = False
    web_enabled: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8765
    public_base_url: str | None = None
    public_page_wanted: bool = False


def diagnose(channels: Sequence[ChannelState], env: Environment, mentions: Mapping[int, str]) -> Report:
    """Every problem of a guild's setup, with its fix; ``mentions`` maps channel ids to how to show them."""
    lines: list[str] = []
    problems: list[Problem] = []

    def problem(subject: str, what: str, fix: str) -> None:
        item = Problem(subject, what, fix)
        problems.append(item)
        lines.append(item.line())

    for state in channels:
        plan = state.plan
        if state.channel_id is None:
            lines.append(f"❓ **{plan.label}**: not set. Run `/setup run` to create it.")
            continue
        where = mentions.get(state.channel_id, f"<#{state.channel_id}>")
        if not state.exists:
            problem(plan.label, f"the channel ({state.channel_id}) was deleted", "run `/setup run` to recreate it")
            continue
        lacking = [p for p in plan.needs if not (state.bits & ADMINISTRATOR or state.bits & p.bit)]
        if not lacking:
            lines.append(f"✅ **{plan.label}** {where}: {', '.join(p.label for p in plan.needs)}")
            continue
        labels = ", ".join(p.label for p in lacking)
        why = "; ".join(f"{p.label} to {p.why}" for p in lacking)
        problem(
            f"{plan.label} {where}",
            f"I lack {labels} (I need {why})",
            f"Edit Channel → Permissions → {env.bot_role}: allow {labels} (or run `/setup run`)",
        )
    server_wide = [p for p in (perms.MANAGE_CHANNELS, perms.MANAGE_ROLES) if not env.guild_bits & p.bit]
    if server_wide and not env.guild_bits & ADMINISTRATOR:
        labels = ", ".join(p.label for p in server_wide)
        problem(
            "Server",
            f"I lack {labels}, so `/setup run` cannot create channels, the role or overwrites",
            f"Server Settings → Roles → {env.bot_role}: allow {labels} (or re-invite with `python bot.py --invite`)",
        )
    if env.reviewer_role is not None and not env.reviewer_role_exists:
        problem("Reviewer role", "the role was deleted", "run `/setup run` to create one, or `/set-reviewer-role`")
    elif env.reviewer_role is not None and env.reviewer_role_position >= env.bot_role_position:
        problem(
            "Role order",
            f"{env.reviewer_role} is not below my highest role {env.bot_role}, so I can't manage it",
            f"Server Settings → Roles: drag {env.bot_role} above {env.reviewer_role}",
        )
    elif env.reviewer_role is not None:
        lines.append(f"✅ **Role order**: {env.bot_role} is above {env.reviewer_role}")
    if not env.admin_role_exists:
        problem("Admin role", "the role was deleted", "`/set-admin-role` with an existing role")
    if env.sign_api_key:
        lines.append("✅ **TikTok**: a sign API key is set")
    else:
        problem(
            "TikTok",
            "no SIGN_API_KEY, so TikTok may refuse or rate-limit the LIVE connection",
            "put SIGN_API_KEY=<your key> in .env and restart",
        )
    if not env.web_enabled:
        if env.public_page_wanted:
            problem("Web server", "the public queue page is on but the web server is off", "set WEB_ENABLED=true")
        else:
            lines.append("➖ **Web server**: off (overlay and file links unavailable)")
    elif env.public_base_url is None and env.web_host in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            f"✅ **Web server**: http://{env.web_host}:{env.web_port} (this machine only; set PUBLIC_BASE_URL "
            "for links that leave it)"
        )
    else:
        lines.append(f"✅ **Web server**: {env.public_base_url or f'http://{env.web_host}:{env.web_port}'}")
    return Report(tuple(lines), tuple(problems))

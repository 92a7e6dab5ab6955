"""The plan, the registry and the permission list behind /setup, /settings and --invite (no Discord)."""

from __future__ import annotations

import asyncio
import gc

import discord
import pytest

from database import Database
from errors import ValidationError
from services import permissions as perms
from services import settings as registry
from services.refresh import Coalescer
from services.setup import (
    LAYOUT,
    Access,
    ChannelState,
    Environment,
    OverwriteNeed,
    Target,
    diagnose,
    grantable,
    merged_overwrite,
    overwrite_needs,
)


def test_every_bot_permission_is_discord_pys_flag_of_that_name() -> None:
    for permission in perms.BOT_PERMISSIONS:
        assert discord.Permissions(**{permission.name: True}).value == permission.bit, permission.name
    assert perms.PIN_MESSAGES.bit == 1 << 51
    assert sum(p.bit for p in perms.BOT_PERMISSIONS) == perms.INVITE_PERMISSIONS


def test_client_id_comes_from_the_tokens_first_segment() -> None:
    assert perms.client_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabc.def") == 123456789012345678
    assert perms.client_id_from_token("not-a-token") is None
    assert perms.client_id_from_token("") is None


async def test_migration_defaults_equal_the_registry(tmp_path) -> None:
    db = Database(tmp_path / "x.db")
    await db.connect()
    try:
        stored = await db.update_settings(77)  # a row with every column at its SQL default
        for spec in registry.SETTINGS:
            assert getattr(stored, spec.key) == spec.default, spec.key
        for spec in registry.SETTINGS:
            value = spec.parse(str(spec.maximum)) if spec.kind != "bool" else (not spec.default)
            again = await db.update_settings(77, **{spec.key: value})
            assert getattr(again, spec.key) == value, spec.key
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("submit_cooldown_seconds", "45", 45),
        ("submit_cooldown_seconds", "0", 0),
        ("submit_cooldown_seconds", "off", 0),
        ("submit_cooldown_seconds", "90 s", 90),
        ("max_track_seconds", "0", None),
        ("max_track_seconds", "600", 600),
        ("max_track_seconds", "default", None),
        ("display_refresh_seconds", "2.5", 2.5),
        ("display_refresh_seconds", "", None),
        ("verified_handles_only", "off", False),
        ("public_queue_enabled", "yes", True),
        ("free_every_nth", "3", 3),
        ("like_cap_per_minute", "default", 60),
    ],
)
def test_values_parse(key: str, raw: str, value: object) -> None:
    assert registry.spec(key).parse(raw) == value


@pytest.mark.parametrize(
    ("key", "raw", "reason"),
    [
        ("submit_cooldown_seconds", "3601", "1 to 3600 s, or 0 for off; got 3601"),
        ("submit_cooldown_seconds", "-5", "got -5"),
        ("submit_cooldown_seconds", "1.5", "whole number"),
        ("submit_cooldown_seconds", "soon", "must be a number"),
        ("submit_cooldown_seconds", "nan", "must be a number"),
        ("display_refresh_seconds", "1", "2 to 60 s"),
        ("free_every_nth", "1", "2 to 50"),
        ("max_track_seconds", "5", "10 to 14400 s"),
        ("verified_handles_only", "maybe", "on or off"),
        ("file_link_expiry_hours", "0", "1 to 720 h"),
    ],
)
def test_bad_values_are_refused_with_the_range(key: str, raw: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.spec(key).parse(raw)
    assert reason in caught.value.message
    assert registry.spec(key).label in caught.value.message


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError):
        registry.spec("guild_id")


def test_overwrites_keep_an_admins_own_bits_and_are_idempotent() -> None:
    need = OverwriteNeed(Target.EVERYONE, 0, 1 << 11)
    assert merged_overwrite(None, need) == (0, 1 << 11)
    assert merged_overwrite((0, 1 << 11), need) is None  # already right: nothing to send
    custom = (1 << 6, 1 << 12)  # the admin allowed reactions and denied TTS
    assert merged_overwrite(custom, need) == (1 << 6, (1 << 12) | (1 << 11))
    assert merged_overwrite((1 << 11, 0), need) == (0, 1 << 11)  # an allow of the denied bit is flipped
    assert merged_overwrite(None, OverwriteNeed(Target.BOT, 0, 0)) is None


def test_the_bot_overwrite_comes_first_and_private_channels_let_reviewers_in() -> None:
    reviewer = next(p for p in LAYOUT if p.access is Access.PRIVATE)
    needs = overwrite_needs(reviewer, has_admin_role=True)
    assert [n.target for n in needs] == [Target.BOT, Target.EVERYONE, Target.REVIEWER, Target.ADMIN]
    assert needs[1].deny == perms.VIEW_CHANNEL.bit
    assert needs[0].allow == sum(p.bit for p in reviewer.needs)


def test_grantable_leaves_out_what_the_bot_lacks() -> None:
    need = OverwriteNeed(Target.BOT, perms.VIEW_CHANNEL.bit | perms.PIN_MESSAGES.bit, 0)
    settable, refused = grantable(need, perms.VIEW_CHANNEL.bit)
    assert settable.allow == perms.VIEW_CHANNEL.bit and refused == perms.PIN_MESSAGES.bit
    assert grantable(need, 1 << 3) == (need, 0)  # Administrator


def _env(**changes: object) -> Environment:
    values = {"guild_bits": perms.INVITE_PERMISSIONS, "bot_role": "@Bot", "bot_role_position": 5,
              "sign_api_key": True}  # fmt: skip
    values.update(changes)
    return Environment(**values)  # type: ignore[arg-type]


def test_doctor_names_missing_permissions_deleted_channels_and_the_role_order() -> None:
    live = next(p for p in LAYOUT if p.key == "live_queue_channel_id")
    now = next(p for p in LAYOUT if p.key == "now_playing_channel_id")
    states = [
        ChannelState(live, 1, True, perms.VIEW_CHANNEL.bit | perms.SEND_MESSAGES.bit),
        ChannelState(now, 2, False),
    ]
    report = diagnose(states, _env(reviewer_role="@Rev", reviewer_role_position=9), {1: "#live"})
    text = "\n".join(report.lines)
    assert "#live" in text and "Embed Links, Read Message History, Pin Messages" in text
    assert "was deleted" in text
    assert "drag @Bot above @Rev" in text
    assert len(report.problems) == 3 and all("Fix:" in p.line() for p in report.problems)
    assert diagnose(states, _env(), {}).fingerprint != report.fingerprint
    good = diagnose([ChannelState(live, 1, True, perms.INVITE_PERMISSIONS)], _env(), {})
    assert not good.problems


def test_doctor_checks_tiktok_and_the_web_server() -> None:
    report = diagnose([], _env(sign_api_key=False, web_enabled=False, public_page_wanted=True), {})
    subjects = {p.subject for p in report.problems}
    assert subjects == {"TikTok", "Web server"}
    fine = diagnose([], _env(web_enabled=True, public_base_url="https://q.example"), {})
    assert "https://q.example" in "\n".join(fine.lines) and not fine.problems


async def test_coalescer_uses_a_per_key_window() -> None:
    runs: list[str] = []

    async def action(key: str) -> None:
        runs.append(key)

    now = [0.0]
    coalescer: Coalescer[str] = Coalescer(action, 100.0, clock=lambda: now[0], window_of={"fast": 0.0}.get)
    coalescer.request("fast")
    coalescer.request("slow")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    coalescer.request("fast")
    coalescer.request("slow")
    await asyncio.sleep(0.05)
    assert runs.count("fast") == 2 and runs.count("slow") == 1  # "slow" waits its 100 s window
    await coalescer.close()


async def test_a_run_waiting_for_its_window_is_a_timer_not_a_sleeping_task() -> None:
    """Every live's guild asks for its displays each second; what waits must cost the collector little."""
    runs: list[int] = []

    async def action(key: int) -> None:
        runs.append(key)

    coalescer: Coalescer[int] = Coalescer(action, 100.0)
    keys = range(300)
    for key in keys:
        coalescer.request(key)
    await asyncio.sleep(0)
    assert sorted(runs) == list(keys)  # the first run of each key goes at once
    tasks, tracked = len(asyncio.all_tasks()), len(gc.get_objects())
    for key in keys:
        coalescer.request(key)  # within the window: each waits its 100 s
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks  # was one sleeping task per key
    # A timer, its callback, arguments and context (a sleeping task was 7: its coroutine, sleep, future...).
    assert (len(gc.get_objects()) - tracked) / len(keys) <= 4
    assert len(runs) == len(keys)
    await coalescer.close()


async def test_the_owner_is_notified_once(tmp_path) -> None:
    db = Database(tmp_path / "y.db")
    await db.connect()
    try:
        assert await db.owner_notified(5) is False
        assert await db.claim_owner_notice(5, 1.0) is True
        assert await db.claim_owner_notice(5, 2.0) is False
        assert await db.owner_notified(5) is True
        assert await db.owner_notified(6) is False
        assert await db.doctor_fingerprint(5) is None
        await db.set_doctor_fingerprint(5, "abc")
        assert await db.doctor_fingerprint(5) == "abc"
    finally:
        await db.close()


def test_the_fakes_permission_computation_follows_discord() -> None:
    from tests.fakediscord.guildadmin import ALL, channel_permissions
    from tests.fakediscord.state import BASIC_PERMISSIONS, State

    state = State()
    channel = state.new_channel("private")
    role = state.new_role("rev")
    member = state.new_member("m", [])
    reviewer = state.new_member("r", [role])
    admin = state.new_member("a", [state.new_role("admin", 1 << 3)])
    view = perms.VIEW_CHANNEL.bit
    state.channels[channel]["permission_overwrites"] = [
        {"id": state.guild_id, "type": 0, "allow": "0", "deny": str(view)},
        {"id": role, "type": 0, "allow": str(view), "deny": "0"},
        {"id": member, "type": 1, "allow": "0", "deny": str(perms.SEND_MESSAGES.bit)},
    ]
    assert channel_permissions(state, member, channel) == BASIC_PERMISSIONS & ~view & ~perms.SEND_MESSAGES.bit
    assert channel_permissions(state, reviewer, channel) == BASIC_PERMISSIONS
    assert channel_permissions(state, admin, channel) == ALL
    state.members[state.owner_id] = state.member_payload(state.user_payload(state.owner_id, "owner"), [])
    assert channel_permissions(state, state.owner_id, channel) == ALL  # the owner holds everything

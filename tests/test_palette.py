"""Issue 16 points 7, 8, 11: one colour per meaning, one heading emoji per meaning, badges that never wrap."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import discord

from cogs.admin import settings_embed
from models import GuildSettings, Line, LiveSession, PointsWeights, SessionSummary
from services.live_sessions import LiveFigures
from services.queue import Placement
from tests.test_queue_ui import entries, page_of, sub
from ui import metrics_ui, palette, queue_ui, submission_ui, tiktok_ui

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def built() -> dict[str, tuple[str, discord.Embed]]:
    """Every embed builder, with the meaning its colour must have."""
    queue = entries(8)
    played = dataclasses.replace(sub(90, Line.PLAYED), played_at=NOW.timestamp() - 60, played_from=Line.SKIP)
    placement = Placement(queue[2].submission, 3, 720.0)
    session = LiveSession(7, 1, "host", NOW.timestamp() - 3600, 55, NOW.timestamp(), 120)
    summary = SessionSummary(session, queue[0].counts, 2, 3, [])
    figures = LiveFigures(started_at=NOW.timestamp() - 3600, viewers_now=80, likes=300, coins=50, songs_played=6)
    return {
        "live queue": ("queue", queue_ui.live_queue_embed(page_of(queue), now_playing=played, now=NOW)),
        "history": ("queue", submission_ui.history_embed([placement], 0, 1)),
        "portal": ("queue", submission_ui.portal_embed()),
        "reviewer queue": (
            "reviewer",
            queue_ui.reviewer_main_embed(page_of(queue), PointsWeights(), now_playing=played),
        ),
        "pending": ("reviewer", queue_ui.pending_embed([sub(5, Line.PENDING)])),
        "now playing": ("reviewer", queue_ui.now_playing_embed(played, Line.SKIP, 0)),
        "bookmark": ("reviewer", queue_ui.bookmark_embed(played, "rita")),
        "submitted": ("success", submission_ui.confirmation_embed(placement)),
        "settings": ("info", settings_embed(GuildSettings(1), None)),
        "recap": ("live", metrics_ui.metrics_embed(summary)),
        "connected": ("live", tiktok_ui.connected_embed("host", 55, 7)),
        "active": ("live", tiktok_ui.status_embed(state="connected", username="host", figures=figures)),
        "connecting": ("info", tiktok_ui.status_embed(state="connecting", username="host")),
        "dropped": ("warning", tiktok_ui.disconnected_embed("host", 60, 7, "boom")),
        "not connected": ("idle", tiktok_ui.status_embed(state="idle", username="host")),
        "ended": ("idle", tiktok_ui.ended_embed("host", figures, "📊 The recap is in <#1>.", 7)),
    }


def test_every_embed_takes_its_colour_from_the_palette_by_meaning() -> None:
    for name, (meaning, embed) in built().items():
        assert embed.colour == palette.COLOURS[meaning], name


def test_one_heading_emoji_per_meaning() -> None:
    headings: dict[str, str] = {}
    for name, (_meaning, embed) in built().items():
        first = (embed.title or "").split(" ")[0]
        headings.setdefault(first, name)
        # 🎵 heads the public queue only (it used to head four different embeds).
        if first == "🎵":
            assert name == "live queue", name
    assert headings["🎶"] == "now playing"


def test_badges_are_one_unbreakable_token_each_and_distinct() -> None:
    emoji = [palette.LINE_EMOJI[line] for line in (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE)]
    assert len(set(emoji)) == 4
    for line in (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE, Line.PENDING):
        badge = queue_ui.LINE_TAGS[line]
        assert " " not in badge and line.value.replace(" ", palette.NBSP) in badge
    public = queue_ui.live_queue_embed(page_of(entries(8)), now=NOW).description or ""
    assert not [c for c in re.findall(r"`([^`]*)`", public) if "Skip" in c or "Free" in c or "Back" in c]


def test_waits_read_as_people_say_them() -> None:
    assert queue_ui.eta_text(720.0, 4) == "about 12 min (3 songs ahead)"
    assert queue_ui.eta_text(240.0, 1) == "about 4 min (next up)"
    assert queue_ui.eta_text(480.0, 2) == "about 8 min (1 song ahead)"
    assert queue_ui.eta_text(3900.0, 10) == "about 1 h 05 min (9 songs ahead)"
    placement = Placement(sub(3), 3, 720.0)
    assert "plays in about 12 min (2 songs ahead)" in queue_ui.positions_text([placement])
    assert "unknown" not in submission_ui.status_text(placement)


def test_one_emoji_and_one_word_per_meaning_on_every_control() -> None:
    """Point 7: no button wears a line's badge emoji, "Next" only plays, pages are arrows only."""
    pending = [sub(n, Line.PENDING) for n in range(1, 4)]
    views = [
        queue_ui.LiveQueueView(3),
        queue_ui.ReviewerMainView(),
        queue_ui.PendingView(pending),
        queue_ui.queue_pager(1, 30),
        queue_ui.reviewer_pager(1, 30),
        queue_ui.now_playing_view("A0001", bookmark_channel="bookmarks"),
        queue_ui.pending_action_view("A0001"),
    ]
    badges = {palette.LINE_EMOJI[line] for line in (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE)}
    buttons = [c for view in views for row in view.to_components() for c in row["components"] if c["type"] == 2]
    assert buttons
    for button in buttons:
        label = button.get("label") or ""
        assert (button.get("emoji") or {}).get("name") not in badges, button
        if "next" in label.lower():
            assert label == "Play next", label
        if button["custom_id"].endswith((":p", ":n")) or button["custom_id"] in ("mq:lq:prev", "mq:lq:next"):
            assert not label and button["emoji"]["name"] in ("⬅️", "➡️"), button
    approve = [b["label"] for b in buttons if b["custom_id"].startswith("mq:rv:ap:") and ":free" not in b["custom_id"]]
    for name in ("BackToBack", "DoubleSkip", "Skip"):
        assert any(label.endswith(name) for label in approve), (name, approve)
    assert not any("2×" in label or "B2B" in label for label in approve)

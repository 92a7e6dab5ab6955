"""Pure tests of the queue display builders: Discord's limits, escaping, breakdowns, component layout."""

from __future__ import annotations

import re

import discord
from hypothesis import given
from hypothesis import strategies as st

from models import EngagementCounts, Line, PointsWeights, QueueEntry, Submission
from services.queue import QueuePage
from ui import limits, queue_ui

HUGE = "x" * 10_000
LINES = (Line.BACK_TO_BACK, Line.DOUBLE_SKIP, Line.SKIP, Line.FREE)


def sub(n: int, line: Line = Line.FREE, **changes: object) -> Submission:
    values: dict[str, object] = {
        "id": n,
        "guild_id": 1,
        "public_id": f"A{n:04d}",
        "user_id": 1000 + n,
        "user_name": f"user{n}",
        "artist": f"Artist {n}",
        "title": f"Song {n}",
        "line": line,
        "submitted_at": 1_800_000_000.0 + n,
        "entered_line_at": 1_800_000_000.0 + n,
        "link": f"https://youtu.be/{n}",
        "platform": "YouTube",
        "tiktok_handle": f"fan.{n}",
        **changes,
    }
    return Submission(**values)  # type: ignore[arg-type]


def entries(n: int, **changes: object) -> list[QueueEntry]:
    counts = EngagementCounts(likes=3, comments=2, shares=1, follows=1, subscribes=1, coins=7)
    score = counts.points(PointsWeights())
    return [
        QueueEntry(i + 1, sub(i + 1, LINES[i % 4], **changes), score if LINES[i % 4] is Line.FREE else 0, counts)
        for i in range(n)
    ]


def page_of(queue: list[QueueEntry], page: int = 0) -> QueuePage:
    """The page the queue service would hand the builders for ``queue`` (clamped, as it clamps)."""
    page = queue_ui.clamp_page(page, len(queue))
    size = queue_ui.PAGE_SIZE
    totals: dict[Line, int] = {}
    for entry in queue:
        totals[entry.submission.line] = totals.get(entry.submission.line, 0) + 1
    first = queue[0] if queue else None
    pages = queue_ui.page_count(len(queue))
    return QueuePage(queue[page * size : (page + 1) * size], len(queue), totals, page, first, pages)


def within_limits(embed: discord.Embed) -> None:
    data = embed.to_dict()
    assert len(data.get("title", "")) <= limits.TITLE
    assert len(data.get("description", "")) <= limits.DESCRIPTION
    assert len(data.get("fields", [])) <= limits.FIELDS
    for field in data.get("fields", []):
        assert 0 < len(field["name"]) <= limits.FIELD_NAME and 0 < len(field["value"]) <= limits.FIELD_VALUE
    assert len(data.get("footer", {}).get("text", "")) <= limits.FOOTER
    assert len(embed) <= limits.EMBED_TOTAL


def components_within_limits(view: discord.ui.View) -> None:
    rows = view.to_components()
    assert len(rows) <= 5
    ids = []
    for row in rows:
        items = row["components"]
        assert len(items) <= 5
        for item in items:
            ids.append(item["custom_id"])
            assert len(item["custom_id"]) <= 100
            assert len(item.get("label", "")) <= limits.BUTTON_LABEL
            for option in item.get("options", []):
                assert len(option["label"]) <= 100 and len(option.get("description", "")) <= 100
            assert len(item.get("options", [])) <= limits.SELECT_OPTIONS
    assert len(ids) == len(set(ids)), "custom ids must be unique within a message"


def test_every_embed_stays_within_limits_with_200_entries_and_10000_char_text() -> None:
    big = entries(200, artist=HUGE, title=HUGE, user_name=HUGE, note=HUGE, tiktok_handle="h" * 24, link=HUGE)
    weights = PointsWeights()
    for page in (0, 7, 19, 99):
        within_limits(queue_ui.live_queue_embed(page_of(big, page)))
        within_limits(queue_ui.reviewer_main_embed(page_of(big, page), weights, pending_count=200))
    within_limits(queue_ui.pending_embed([e.submission for e in big]))
    for entry in big[:4]:
        within_limits(
            queue_ui.now_playing_embed(entry.submission, entry.submission.line, entry.score, entry.counts, weights)
        )
        within_limits(queue_ui.bookmark_embed(entry.submission, HUGE))
    assert len(queue_ui.announcement(big[0].submission)) <= limits.CONTENT


def test_live_queue_pages_footer_and_empty_state() -> None:
    queue = entries(25)
    first = queue_ui.live_queue_embed(page_of(queue, 0))
    rows = [line for line in first.description.splitlines() if line.startswith("**")]
    assert len(rows) == 10 and rows[0].startswith("**1.**") and rows[-1].startswith("**10.**")
    assert "Page 1/3 · 25 songs" in first.footer.text
    assert first.timestamp is not None  # "last update"
    last = queue_ui.live_queue_embed(page_of(queue, 99))  # clamped
    last_rows = [line for line in last.description.splitlines() if line.startswith("**2")]
    assert "Page 3/3" in last.footer.text and len(last_rows) == 5
    free_rows = [r for r in rows if "Free" in r]
    assert free_rows and all(r.endswith(" pts") for r in free_rows)
    assert not any(r.endswith(" pts") for r in rows if "Free" not in r)
    empty = queue_ui.live_queue_embed(page_of([]), free_open=False)
    assert "empty" in empty.description and "Free line closed" in empty.footer.text


def test_user_text_is_escaped_and_cannot_ping() -> None:
    evil = sub(1, artist="**bold** @everyone", title="`code` <@&123> __u__", user_name="@here ~~x~~")
    embed = queue_ui.live_queue_embed(page_of([QueueEntry(1, evil)]))
    text = embed.description
    assert "**bold**" not in text and "\\*\\*bold\\*\\*" in text
    assert "@everyone" not in text and "@here" not in text
    assert "\\`code\\`" in text and "\\_\\_u\\_\\_" in text
    assert "@everyone" not in queue_ui.announcement(evil)


@given(
    st.builds(
        EngagementCounts,
        likes=st.integers(0, 10**6),
        comments=st.integers(0, 10**5),
        shares=st.integers(0, 10**5),
        follows=st.integers(0, 100),
        subscribes=st.integers(0, 100),
        coins=st.integers(0, 10**6),
    ),
    st.builds(
        PointsWeights,
        like=st.integers(0, 5),
        comment=st.integers(0, 5),
        share=st.integers(0, 50),
        follow=st.integers(0, 50),
        subscribe=st.integers(0, 50),
        gift_coin=st.integers(0, 10),
    ),
)
def test_breakdown_numbers_add_up_to_the_score(counts: EngagementCounts, weights: PointsWeights) -> None:
    text = queue_ui.breakdown(counts, weights)
    shown = [int(n) for n in re.findall(r"\(\+(\d+)\)", text)]
    total = int(re.search(r"→ (\d+) pts", text).group(1))  # type: ignore[union-attr]
    assert total == counts.points(weights) == sum(shown)
    assert sum(points for _, _, points in queue_ui.breakdown_parts(counts, weights)) == total


def test_reviewer_panel_shows_ids_handles_and_breakdown_for_free_only() -> None:
    queue = entries(4)
    embed = queue_ui.reviewer_main_embed(page_of(queue), PointsWeights(), pending_count=3)
    assert all(f"`#{e.submission.public_id}`" in embed.description for e in queue)
    assert "@fan\\.1" in embed.description or "@fan.1" in embed.description
    assert embed.description.count("→") == 1  # one Free entry of four
    assert "👍 3 (+3)" in embed.description and "➕ 2 (+35)" in embed.description
    assert "3 pending" in embed.footer.text


def test_now_playing_has_every_detail_and_says_file_attached() -> None:
    played = sub(7, Line.PLAYED, link=None, platform=None, file_path="1/x.mp3", file_name="demo.mp3", duration=95.0,
                 note="play loud")  # fmt: skip
    embed = queue_ui.now_playing_embed(played, Line.FREE, 12, EngagementCounts(likes=12), PointsWeights())
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Id"] == "#A0007" and "<@1007>" in fields["Submitted by"]
    assert "Free" in fields["From line"] and "12 pts" in fields["Score"]
    assert fields["File"].startswith("attached") and fields["Duration"] == "1m 35s"
    assert fields["TikTok"] == "@fan.7" or fields["TikTok"] == "@fan\\.7"
    assert fields["Note"] == "play loud" and fields["Artist"] == "Artist 7"
    linked = queue_ui.now_playing_embed(sub(8, Line.PLAYED), Line.SKIP, 0)
    assert any(f.name == "YouTube" and f.value == "https://youtu.be/8" for f in linked.fields)
    assert not any(f.name == "Score" for f in linked.fields)


async def test_views_stay_within_component_limits_and_ids_are_stable() -> None:
    pending = [sub(i, Line.PENDING, artist=HUGE, title=HUGE, user_name=HUGE) for i in range(1, 41)]
    view = queue_ui.PendingView(pending)
    components_within_limits(view)
    rows = view.to_components()
    assert len(rows) == 5 and rows[-1]["components"][0]["custom_id"] == "mq:rv:pending"
    assert len(rows[-1]["components"][0]["options"]) == 25
    assert rows[0]["components"][0]["custom_id"] == "mq:rv:ap:A0001:b2b"
    assert [c["custom_id"].rsplit(":", 1)[1] for c in rows[0]["components"]] == ["b2b", "ds", "skip", "free"]
    empty = queue_ui.PendingView([]).to_components()
    assert len(empty) == 1 and empty[0]["components"][0]["disabled"]
    for built in (
        queue_ui.LiveQueueView(),
        queue_ui.ReviewerMainView(),
        queue_ui.now_playing_view("A0001", rating=7, bookmarked=True),
        queue_ui.queue_pager(0, 1),
        queue_ui.queue_pager(2, 25),
        queue_ui.reviewer_pager(0, 0),
        queue_ui.pending_action_view("A0001"),
    ):
        components_within_limits(built)
    ids = [c["custom_id"] for row in queue_ui.LiveQueueView().to_components() for c in row["components"]]
    assert ids == ["mq:lq:prev", "mq:lq:next", "mq:lq:refresh", "mq:lq:mine"]
    single = [c for row in queue_ui.queue_pager(0, 3).to_components() for c in row["components"]]
    assert all(c["disabled"] for c in single)


def test_dynamic_templates_match_only_their_own_ids() -> None:
    def matches(item: type[discord.ui.DynamicItem], custom_id: str) -> bool:  # type: ignore[type-arg]
        return item.__discord_ui_compiled_template__.fullmatch(custom_id) is not None  # type: ignore[attr-defined]

    assert matches(queue_ui.ApproveButton, "mq:rv:ap:AB12C:ds")
    assert not matches(queue_ui.ApproveButton, "mq:rv:ap:AB12C:played")
    assert matches(queue_ui.RateButton, "mq:rv:rate:AB12C:10") and not matches(queue_ui.RateButton, "mq:rv:rate:X:11")
    assert matches(queue_ui.QueuePageButton, "mq:lq:page:3:n") and not matches(queue_ui.QueuePageButton, "mq:lq:next")
    static_ids = ["mq:lq:prev", "mq:lq:next", "mq:lq:refresh", "mq:lq:mine", "mq:rv:next", "mq:rv:refresh",
                  "mq:rv:browse", "mq:rv:pending"]  # fmt: skip
    # A static id never also fires a dynamic item (that would acknowledge one click twice).
    assert not any(matches(item, cid) for item in queue_ui.DYNAMIC_ITEMS for cid in static_ids)

"""The fuller recap (issue 12.7): songs per line, waits, top ratings, new members, the play-history CSV."""

from __future__ import annotations

import csv
import io

from pytest import approx

from database import Database, EngagementDelta
from models import EngagementCounts, Line
from services.analytics import PLAYS_CSV_COLUMNS, play_report, plays_csv, summarize
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock
from ui import limits
from ui.metrics_ui import recap_messages


async def _submit(queue: QueueService, user: int, title: str, *, skip: bool = False) -> str:
    draft = queue.draft(
        artist=f"Artist {user}", title=title, note=None, link=f"https://x.test/{user}/{title.replace(' ', '-')}"
    )
    placed = await queue.submit(GUILD, user, f"user{user}", draft, skip=skip)
    return placed.submission.public_id


async def _live(db: Database, queue: QueueService, clock: FakeClock) -> int:
    await _submit(queue, 1, "before the live")  # user 1 is not new: submitted before the live
    clock.advance(60)
    assert (await queue.next(GUILD)).submission.title == "before the live"  # played before: not in this recap
    clock.advance(600)
    session = await db.start_session(GUILD, "the.host", 1, clock())
    skip_a = await _submit(queue, 2, "paid a", skip=True)
    await queue.approve(GUILD, skip_a, Line.SKIP)  # enters Skip now
    clock.advance(40)
    await _submit(queue, 1, "free old-timer")
    clock.advance(40)
    skip_b = await _submit(queue, 3, "paid b", skip=True)
    await queue.approve(GUILD, skip_b, Line.SKIP)
    clock.advance(40)
    await _submit(queue, 4, "free newcomer")
    clock.advance(100)  # t = 220 since the start
    played = []
    for _ in range(4):
        played.append((await queue.next(GUILD)).submission)
        clock.advance(100)
    await queue.rate(GUILD, played[0].public_id, 6)
    await queue.rate(GUILD, played[2].public_id, 9)
    await queue.rate(GUILD, played[3].public_id, 9)
    await db.end_session(session.id, clock())
    return session.id


async def test_songs_per_line_waits_top_rated_and_new_members(db: Database, queue, clock: FakeClock) -> None:
    session = await db.get_session(await _live(db, queue, clock))
    report = await play_report(db, session)
    assert [p.title for p in report.plays] == ["paid a", "paid b", "free old-timer", "free newcomer"]
    by_line = {s.line: s for s in report.lines}
    assert set(by_line) == {Line.SKIP, Line.FREE}
    # Skip: "paid a" entered at 0 and played at 220, "paid b" entered at 80 and played at 320.
    skip = by_line[Line.SKIP]
    assert (skip.played, skip.median_wait, skip.longest_wait) == (2, approx(230.0, abs=0.1), approx(240.0, abs=0.1))
    # Free: entered at 40 and 120, played at 420 and 520: waits 380 and 400.
    free = by_line[Line.FREE]
    assert (free.median_wait, free.longest_wait) == (approx(390.0, abs=0.1), approx(400.0, abs=0.1))
    assert [(p.title, p.rating) for p in report.top_rated] == [("free old-timer", 9), ("free newcomer", 9),
                                                              ("paid a", 6)]  # fmt: skip
    assert report.new_submitters == 3  # users 2, 3 and 4; user 1 submitted before the live
    rows = list(csv.DictReader(io.StringIO(plays_csv(report).decode())))
    assert tuple(rows[0]) == PLAYS_CSV_COLUMNS
    assert [(r["line"], r["wait"], r["score"]) for r in rows] == [
        ("Skip", "220", "6"), ("Skip", "240", ""), ("Free", "380", "9"), ("Free", "400", "9"),
    ]  # fmt: skip
    assert rows[0]["id"].startswith("#") and rows[0]["played"].endswith("Z") and "T" in rows[0]["entered"]
    assert rows[0]["submitter"] == "user2" and rows[0]["link"] == "https://x.test/2/paid-a"


async def test_recap_messages_stay_within_discords_limits(db: Database, queue, clock: FakeClock) -> None:
    session_id = await _live(db, queue, clock)
    summary = await summarize(db, session_id)
    report = await play_report(db, summary.session)
    messages = recap_messages(summary, report, b"png")
    assert len(messages) == 1 and [f.filename.split("-")[0] for f in messages[0][1]] == ["live", "plays", "live"]
    assert messages[0][0][0].image.url == "attachment://live-chart.png"
    # A crowded live: 400 contributors with long nicknames and long song titles.
    deltas = [EngagementDelta(f"fan{i:03d}", EngagementCounts(likes=i, coins=i % 7), nickname="N" * 300,
                              first_seen=clock() - 500, last_seen=clock() - i) for i in range(400)]  # fmt: skip
    await db.apply_engagement(GUILD, session_id, deltas)
    big = await summarize(db, session_id)
    long = [p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "title": "T" * 200, "artist": "A" * 200})
            for p in report.plays]  # fmt: skip
    crowded = report.__class__(report.session, long * 20, report.lines, long[:5] * 12, report.new_submitters)
    messages = recap_messages(big, crowded, b"png")
    sizes = []
    for embeds, _files in messages:
        sizes.append(sum(len(e) for e in embeds))
        assert sum(len(e) for e in embeds) <= limits.EMBED_TOTAL
        for embed in embeds:
            assert len(embed.fields) <= limits.FIELDS and len(embed.title or "") <= limits.TITLE
            assert all(len(f.value) <= limits.FIELD_VALUE and len(f.name) <= limits.FIELD_NAME for f in embed.fields)
            assert len(embed.description or "") <= limits.DESCRIPTION
    assert messages[0][1][0].filename.startswith("live-")
    assert len(messages) == 2 and sum(sizes) > limits.EMBED_TOTAL, sizes  # too big for one message: split


def test_an_upload_is_zipped_when_over_the_limit_and_refused_when_even_that_is_too_big() -> None:
    import zipfile

    from services.analytics import fit_upload

    data = b"id,line\n" + b"#ABCDE,Free\n" * 10_000
    assert fit_upload(data, "history.csv", len(data)) == (data, "history.csv")
    zipped, name = fit_upload(data, "history.csv", 10_000)
    assert name == "history.zip" and len(zipped) <= 10_000
    assert zipfile.ZipFile(io.BytesIO(zipped)).read("history.csv") == data
    assert fit_upload(data, "history.csv", 100) is None

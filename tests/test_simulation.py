"""/tiktok simulate is honest (issue 12 point 5): its own session, marked, promoting only when asked."""

from __future__ import annotations

import csv
import io

from database import Database
from models import EngagementEvent, EventKind, Line
from services.analytics import to_csv
from services.engagement import EngagementWriter
from services.feed import GiftPromoted, LiveEnded
from services.live_sessions import LiveSessionService
from services.points import PointsService
from services.queue import QueueService
from tests.conftest import GUILD, FakeClock
from ui.metrics_ui import metrics_embed


def sim(kind: EventKind, handle: str, at: float, **kw) -> EngagementEvent:
    return EngagementEvent(kind=kind, handle=handle, at=at, simulated=True, **kw)


async def test_simulating_during_a_real_live_never_writes_into_its_session(
    db: Database, queue: QueueService, clock: FakeClock
) -> None:
    writer = EngagementWriter(db, queue, clock=clock)
    sessions = LiveSessionService(db, writer, clock=clock)
    live = await sessions.start(GUILD, "host", 42)
    sessions.record(GUILD, [EngagementEvent(EventKind.LIKE, "real.fan", clock(), count=3)])
    simulation = await sessions.simulate(GUILD, [sim(EventKind.GIFT, "tester", clock(), coins=500)])
    await sessions.simulate(GUILD, [sim(EventKind.LIKE, "tester", clock(), count=4)])
    assert simulation.id != live.id and simulation.simulated and not live.simulated
    assert sessions.current(GUILD) == live and sessions.simulation(GUILD) == simulation
    assert writer.session_of(GUILD) == live.id  # live events still go to the live
    summary = await sessions.end(GUILD)
    assert [r.handle for r in summary.rows] == ["real.fan"] and summary.totals.coins == 0
    assert sessions.simulation(GUILD) == simulation, "ending the live leaves the simulation open"
    ended: list[LiveEnded] = []
    sessions.feed.subscribe(ended.append, LiveEnded)
    recap = await sessions.end_simulation(GUILD)
    assert ended and ended[0].session_id == simulation.id  # the notifier posts its recap from this
    assert [r.handle for r in recap.rows] == ["tester"] and recap.totals.coins == 500 and recap.totals.likes == 4
    assert (await db.get_handle(GUILD, "tester")).counts.coins == 500  # points still move: that is the test
    assert await sessions.end_simulation(GUILD) is None


async def test_a_simulated_gift_promotes_only_when_asked(
    db: Database, queue: QueueService, points: PointsService, clock: FakeClock
) -> None:
    writer = EngagementWriter(db, queue, feed=queue.feed, clock=clock)
    sessions = LiveSessionService(db, writer, feed=queue.feed, clock=clock)
    promoted: list[GiftPromoted] = []
    queue.feed.subscribe(promoted.append, GiftPromoted)
    await points.admin_link(GUILD, 3, "gifter")
    placed = await queue.submit(
        GUILD, 3, "u3", queue.draft(artist="a", title="g", note=None, link="https://x.test/g"), skip=False
    )
    public_id = placed.submission.public_id
    await sessions.simulate(GUILD, [sim(EventKind.GIFT, "gifter", clock(), coins=1500)])  # over the Skip tier
    assert (await queue.get(GUILD, public_id)).line is Line.FREE and not promoted
    await sessions.simulate(GUILD, [sim(EventKind.GIFT, "gifter", clock(), coins=1)], promote=True)
    assert (await queue.get(GUILD, public_id)).line is Line.SKIP
    assert [(p.public_id, p.line) for p in promoted] == [(public_id, Line.SKIP.value)]


async def test_the_recap_and_the_csv_say_simulated(db: Database, queue: QueueService, clock: FakeClock) -> None:
    sessions = LiveSessionService(db, EngagementWriter(db, queue, clock=clock), clock=clock)
    await sessions.simulate(GUILD, [sim(EventKind.LIKE, "tester", clock(), count=2)])
    recap = await sessions.end_simulation(GUILD)
    embed = metrics_embed(recap)
    assert embed.title == "🧪 Simulation recap" and "Simulated engagement only" in (embed.description or "")
    rows = list(csv.DictReader(io.StringIO(to_csv(recap).decode())))
    assert [(r["handle"], r["simulated"]) for r in rows] == [("tester", "yes")]
    live = await sessions.start(GUILD, "host", 1)
    sessions.record(GUILD, [EngagementEvent(EventKind.LIKE, "fan", clock(), count=1)])
    real = await sessions.end(GUILD)
    assert real.session.id == live.id and "Simulat" not in (metrics_embed(real).title or "")
    assert [r["simulated"] for r in csv.DictReader(io.StringIO(to_csv(real).decode()))] == ["no"]

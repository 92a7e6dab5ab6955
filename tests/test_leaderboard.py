"""/leaderboard: ranks by weighted points of one live or of every real live, with the caller's own rank."""

from __future__ import annotations

from database import Database, EngagementDelta
from models import EngagementCounts
from services.points import PointsService
from tests.conftest import GUILD, BotEnv, FakeClock

OTHER_GUILD = 2000


async def _live(
    db: Database,
    guild: int,
    clock: FakeClock,
    rows: dict[str, EngagementCounts],
    *,
    simulated: bool = False,
    end: bool = True,
) -> int:
    session = await db.start_session(guild, "host", 1, clock(), simulated=simulated)
    await db.apply_engagement(guild, session.id, [EngagementDelta(h, c, nickname=f"Nick {h}") for h, c in rows.items()])
    if end:
        await db.end_session(session.id, clock())
    return session.id


async def test_this_live_ranks_by_weighted_points_and_shows_the_callers_rank(
    db: Database, points: PointsService, clock: FakeClock
) -> None:
    await _live(db, GUILD, clock, {"old": EngagementCounts(coins=1000)})
    clock.advance(3600)
    # Default weights: like 1, comment 2, share 5, gift coin 2.
    await _live(db, GUILD, clock, {
        "alice": EngagementCounts(likes=10),  # 10
        "bob": EngagementCounts(comments=3, shares=1),  # 11
        "carol": EngagementCounts(coins=50),  # 100
        "dave": EngagementCounts(likes=10),  # 10, ties alice
        "idle": EngagementCounts(),  # no points: not on the board
    }, end=False)  # fmt: skip
    await points.admin_link(GUILD, 42, "bob")
    board = await points.leaderboard(GUILD, 42, all_time=False, page=0, per_page=10)
    assert board.session is not None and board.session.ended_at is None
    assert [(r.rank, r.handle, r.points) for r in board.rows] == [
        (1, "carol", 100), (2, "bob", 11), (3, "alice", 10), (3, "dave", 10)
    ]  # fmt: skip
    assert board.total == 4 and board.pages == 1
    assert [(r.rank, r.handle, r.user_id) for r in board.mine] == [(2, "bob", 42)]
    assert board.rows[0].nickname == "Nick carol" and board.rows[0].user_id is None


async def test_all_time_adds_up_real_lives_and_ignores_simulations_and_other_guilds(
    db: Database, points: PointsService, clock: FakeClock
) -> None:
    await _live(db, GUILD, clock, {"alice": EngagementCounts(likes=5), "bob": EngagementCounts(likes=8)})
    await _live(db, GUILD, clock, {"alice": EngagementCounts(likes=5)})
    await _live(db, GUILD, clock, {"bob": EngagementCounts(coins=10_000)}, simulated=True)
    await _live(db, OTHER_GUILD, clock, {"alice": EngagementCounts(coins=10_000)})
    board = await points.leaderboard(GUILD, 1, all_time=True, page=0)
    assert [(r.handle, r.points) for r in board.rows] == [("alice", 10), ("bob", 8)]
    assert board.mine == []
    latest = await points.leaderboard(GUILD, 1, all_time=False, page=0)
    assert [(r.handle, r.points) for r in latest.rows] == [("alice", 5)]  # the simulation is not "the last live"


async def test_pages_are_clamped_and_an_unknown_guild_has_no_live(
    db: Database, points: PointsService, clock: FakeClock
) -> None:
    await _live(db, GUILD, clock, {f"h{n:02}": EngagementCounts(likes=100 - n) for n in range(25)})
    first = await points.leaderboard(GUILD, 1, all_time=True, page=0, per_page=10)
    last = await points.leaderboard(GUILD, 1, all_time=True, page=99, per_page=10)
    assert first.pages == 3 and [r.handle for r in first.rows][:2] == ["h00", "h01"]
    assert last.page == 2 and [r.handle for r in last.rows] == ["h20", "h21", "h22", "h23", "h24"]
    none = await points.leaderboard(OTHER_GUILD, 1, all_time=False, page=0)
    assert none.session is None and none.rows == [] and none.pages == 1


async def test_all_time_board_uses_the_guild_index(db: Database) -> None:
    sql = "SELECT handle FROM session_stats WHERE guild_id = ? GROUP BY handle"
    assert any("ix_session_stats_guild" in d for d in await db.explain(sql, (GUILD,)))


async def test_leaderboard_command_pages_and_switches_scope(bot_env: BotEnv) -> None:
    db, clock = bot_env.bot.db, FakeClock()
    await _live(db, bot_env.guild_id, clock, {f"fan{n:02}": EngagementCounts(likes=200 - n) for n in range(12)})
    await bot_env.bot.points.admin_link(bot_env.guild_id, bot_env.member.id, "fan11")
    answer = await bot_env.member.slash(bot_env.channels["general"], "leaderboard")
    text = answer.text()
    assert answer.ephemeral and "last live" in text and "Page 1/2" in text
    assert "🥇 **@fan00**" in text and "#12 of 12 · @fan11 · 189 pts" in text
    page = answer.messages()[0]
    # The page buttons belong to the bot, not to the cog: unloading the cog leaves them answering.
    await bot_env.bot.unload_extension("cogs.leaderboard")
    second = await bot_env.member.click(page, "mq:lb:live:1")
    assert second.response_type == 7 and "Page 2/2" in second.text() and f"<@{bot_env.member.id}>" in second.text()
    overall = await bot_env.member.click(bot_env.fake.messages[page["id"]], "mq:lb:all:0")
    assert "all lives" in overall.text() and "Page 1/2" in overall.text()

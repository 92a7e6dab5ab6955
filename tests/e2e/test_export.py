"""``/export history`` through the fake Discord: admins only, the play history as a CSV attachment."""

from __future__ import annotations

import csv
import io

from tests.conftest import BotEnv


async def test_export_history_is_a_csv_for_admins_only(bot_env: BotEnv) -> None:
    env = bot_env
    queue = env.bot.queue
    for n in (1, 2):
        draft = queue.draft(artist="=cmd()", title=f"Song {n}", note=None, link=f"https://x.test/{n}")
        await queue.submit(env.guild_id, n, f"user{n}", draft, skip=False)
        await queue.next(env.guild_id)
    env.fake.allow_command("export")  # shown to members (Server Settings → Integrations): still refused
    refused = await env.member.slash_sub(env.channels["general"], "export", "history")
    assert refused.ephemeral and "Only admins" in refused.text()
    done = await env.admin.slash_sub(env.channels["general"], "export", "history", period="last 7 days")
    await done.wait_text("2 plays")
    message = done.messages()[-1]
    attachment = message["attachments"][0]
    assert attachment["filename"].startswith("history-") and attachment["filename"].endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(env.fake.attachments[attachment["id"]].decode())))
    assert [r["title"] for r in rows] == ["Song 1", "Song 2"]
    assert rows[0]["artist"] == "'=cmd()"  # spreadsheet formulas defused

"""Crash safety: SIGKILL during a burst of submissions and engagement, then a restart on the same database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]
FLOW_ERRORS: list[str] = []


async def _start_bot(fake: FakeDiscord, data: Path) -> asyncio.subprocess.Process:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "SIGN_", "TIKTOK_"))},
        "DISCORD_TOKEN": "fake-token-for-tests",
        "DATA_DIR": str(data),
        "GUILD_ID": fake.guild_id,
        "DISCORD_API_BASE_URL": fake.api_base_url,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISPLAY_REFRESH_SECONDS": "0.3",
        "ENGAGEMENT_FLUSH_SECONDS": "0.2",
        "WEB_PORT": "0",  # a free port: the test never collides with a bot on the default 8765
    }
    identifies = fake.identifies
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), env=env, cwd=data.parent,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await fake.wait_for(lambda: fake.identifies > identifies and "submit" in fake.commands, 30, "the bot")
    except AssertionError:
        if process.returncode is None:
            process.kill()
        _, err = await process.communicate()
        raise AssertionError(f"the bot did not come up; its last words: {err.decode()[-1500:]}") from None
    await asyncio.sleep(0.3)  # READY reached the bot (the fake saw IDENTIFY); let it settle
    return process


async def _submit(fake: FakeDiscord, who, channel: str, n: int) -> str | None:
    """Run the whole /submit flow; the public id when the confirmation arrived."""
    try:
        opened = await who.slash(channel, "submit")
        ids = [row["components"][0]["custom_id"] for row in opened.modal["components"]]
        answered = await who.submit_modal(opened, dict(zip(ids, ["A", f"Song {n}", f"https://x.test/{n}", ""],
                                                             strict=True)))  # fmt: skip
        question = answered.messages()[0]
        done = await who.click(question, who.find_custom_id(question, "No"))
        text = done.text()
    except (AssertionError, TimeoutError, KeyError, IndexError) as exc:
        FLOW_ERRORS.append(repr(exc))
        return None  # the bot died mid-flow: no confirmation was shown
    if "Submitted" not in text:
        return None
    match = re.search(r"#([2-9A-HJ-NP-Z]{5})(?![A-Z0-9])", text)
    return match.group(1) if match else None


async def test_sigkill_mid_burst_loses_nothing_confirmed(tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    general = fake.ensure_channel("general")
    queue_channel = fake.ensure_channel("queue")
    members = [fake.member(f"fan{i}") for i in range(40)]
    admin = fake.admin
    data = tmp_path / "data"
    bot = await _start_bot(fake, data)
    try:
        setup = await admin.slash(general, "setup-live-queue", channel=queue_channel)
        await setup.wait_text("pinned")
        confirmed: list[str] = []
        simulated: list[float] = []

        async def submitter(i: int) -> None:
            public_id = await _submit(fake, members[i], general, i)
            if public_id:
                confirmed.append(public_id)

        async def engagement() -> None:
            for _ in range(30):
                try:
                    rec = await admin.slash_sub(general, "tiktok", "simulate", kind="like", handle="crowd", amount=1)
                    await rec.wait_text("Simulated")  # deferred: the answer is the followup
                    simulated.append(time.monotonic())
                except (AssertionError, TimeoutError):
                    return
                await asyncio.sleep(0.02)

        tasks = [asyncio.create_task(submitter(i)) for i in range(40)] + [asyncio.create_task(engagement())]
        try:
            await fake.wait_for(lambda: len(confirmed) >= 10, 30, "some confirmations")
        except AssertionError:
            raise AssertionError(f"{FLOW_ERRORS[:3]} {fake.violations[:3]}") from None
        bot.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await bot.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        fake.interactions.clear()
        bot = await _start_bot(fake, data)
        con = sqlite3.connect(data / "music_queue.db")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(con.execute("SELECT public_id, line FROM submissions").fetchall())
        likes = con.execute("SELECT likes FROM handles WHERE handle = 'crowd'").fetchone()
        con.close()
        assert set(confirmed) <= set(rows), set(confirmed) - set(rows)
        assert all(rows[p] == "Free" for p in confirmed)
        # Engagement lost is at most the last flush window (0.2 s) before the kill.
        settled = sum(1 for t in simulated if t < killed_at - 0.5)
        assert (likes[0] if likes else 0) >= settled
        # Displays and buttons work after the restart, and nothing is pinned twice.
        await fake.wait_for(lambda: len(fake.pins(queue_channel)) == 1, 10, "one pinned live queue")
        record = await admin.slash(general, "next")
        await record.wait_text("Now playing")
        assert len(fake.pins(queue_channel)) == 1
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGTERM)
            await asyncio.wait_for(bot.wait(), 20)
        await fake.stop()

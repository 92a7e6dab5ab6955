"""Past one machine, simulated: several bot processes, each with its ``SHARD_IDS``, against one fake Discord.

300 guilds, 4 shards, three bot processes (``bench.bot_process``) running shards ``0,1``, ``2`` and ``3``,
each with a database of its own (each guild's data is owned by the one process that serves it). Shown:

* every guild is served by exactly one process (each process reports the guilds discord.py gave it; the
  fake routes a guild's events only to its shard, ``(guild_id >> 22) % 4``);
* killing one process (SIGKILL) and starting it again does not disturb the others: their shards keep their
  gateway sessions (no new IDENTIFY), their guild lists stay the same, and ``/queue`` in a guild of another
  process is answered within Discord's 3 s throughout; the restarted process serves its own guilds again.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Result
from bench.guild_scale import start_bot, stop_bot

GUILDS = 300
SHARDS = 4
SPLIT = ("0,1", "2", "3")


async def run(quick: bool = False) -> list[Result]:
    """Start the processes, check the split, restart one, check the others were left alone."""
    from tests.fakediscord.gateway import shard_of
    from tests.fakediscord.server import FakeDiscord

    guilds = 100 if quick else GUILDS
    fake = await FakeDiscord().start()
    processes: dict[int, Any] = {}
    try:
        for n in range(guilds):
            fake.add_guild(f"server {n}")
        everyone = {int(g) for g in fake.guild_ids()}
        with tempfile.TemporaryDirectory() as tmp:
            served: dict[int, set[int]] = {}
            for index, ids in enumerate(SPLIT):
                processes[index], ready = await start_bot(fake, Path(tmp) / f"p{index}", SHARD_COUNT=str(SHARDS),
                                                          SHARD_IDS=ids)  # fmt: skip
                served[index] = set(ready["guilds"])
            owners = {g: [i for i in served if g in served[i]] for g in everyone}
            not_once = sum(1 for found in owners.values() if len(found) != 1)
            wrong_shard = sum(1 for i, ids in enumerate(SPLIT) for g in served[i]
                              if str(shard_of(g, SHARDS)) not in ids.split(","))  # fmt: skip
            main = int(fake.guild_id)
            keeper = owners[main][0]
            victim = next(i for i in served if i != keeper)
            victim_shards = {int(s) for s in SPLIT[victim].split(",")}
            sessions = {s: fake.gateway.sessions[s].session_id for s in range(SHARDS)}
            identified = len(fake.gateway.identified)
            answered = missed = 0
            stop = asyncio.Event()

            async def ask() -> None:  # /queue in a guild of a process that is not restarted
                nonlocal answered, missed
                general = fake.channel_id("general")
                while not stop.is_set():
                    try:
                        await fake.admin.slash(general, "queue")
                        answered += 1
                    except AssertionError:
                        missed += 1
                    await asyncio.sleep(0.1)

            asker = asyncio.create_task(ask())
            await asyncio.sleep(1.0)
            started = time.monotonic()
            processes[victim].send_signal(signal.SIGKILL)  # a crash: nothing is closed cleanly
            await processes[victim].wait()
            processes[victim], ready = await start_bot(fake, Path(tmp) / f"p{victim}", SHARD_COUNT=str(SHARDS),
                                                       SHARD_IDS=SPLIT[victim])  # fmt: skip
            restart_s = time.monotonic() - started
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(asker, 30)
            again = set(ready["guilds"]) == served[victim]
            new_identifies = [shard for shard, _ in fake.gateway.identified[identified:]]
            others = [s for s in range(SHARDS) if s not in victim_shards]
            kept = all(fake.gateway.sessions[s].session_id == sessions[s] for s in others)
            disturbed = missed + sum(1 for s in new_identifies if s not in victim_shards) + (0 if kept else 1)
            for index in list(processes):
                await stop_bot(processes.pop(index))
    finally:
        for process in processes.values():
            process.kill()
            await process.wait()
        await fake.stop()
    split = {f"process {i} (shards {ids})": len(served[i]) for i, ids in enumerate(SPLIT)}
    return [
        Result(f"shards: guilds not served by exactly one process ({len(everyone)} guilds, {SHARDS} shards, "
               f"{len(SPLIT)} processes)", not_once + wrong_shard, "guilds", "0", not_once + wrong_shard == 0,
               {"guilds_per_process": split, "not_exactly_once": not_once, "on_a_wrong_shard": wrong_shard}),
        Result("shards: disturbances of the other processes by a kill and restart of one", disturbed, "", "0",
               disturbed == 0 and again,
               {"restarted": f"process {victim} (shards {SPLIT[victim]})", "restart_s": round(restart_s, 2),
                "interactions_answered_meanwhile": answered, "interactions_missed": missed,
                "reidentified_shards": new_identifies, "other_sessions_kept": kept,
                "restarted_serves_the_same_guilds": again}),
    ]  # fmt: skip

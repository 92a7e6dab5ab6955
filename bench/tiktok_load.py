"""A TikTok LIVE in a process of its own: the fake TikTok, sending engagement at a fixed rate.

In production TikTok is another machine; running the load generator inside the measured process would
charge its work (framing, websocket writes) to the bot. ``bench.discord_load`` starts this module as a child:

    python -m bench.tiktok_load --rate 2000 --per-frame 20 --seconds 60 [--lives 100]

It builds every frame first, then writes ``url <base url>`` on stdout, waits for ``--lives`` clients to
enter the room, writes ``burst`` and sends frames at the rate, each frame to every client (so every live
gets ``--rate`` events per second; ``bench.live_pool`` runs 100 lives at 20 each, ``--background``). The
lines ``pause`` and ``resume`` on stdin hold and restart the sending; ``stop`` (or the end of stdin, or the
last frame) ends it with ``sent <events>``; the live stays open until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _background() -> None:
    """Only the CPU nobody on this machine wants: in production TikTok's servers are elsewhere.

    ``bench.live_pool`` puts 100 lives on a 2-core machine; the fake's bursts (all lives' frames at once,
    ~11% of a core) then competed with the bot and its pool at the same priority, a cost that no
    deployment has.
    """
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


async def _commands(stdin: asyncio.StreamReader, sending: asyncio.Event, stop: asyncio.Event) -> None:
    """``pause``, ``resume`` and ``stop`` lines from the benchmark; end of input means stop."""
    while line := (await stdin.readline()).strip():
        if line == b"pause":
            sending.clear()
        elif line == b"resume":
            sending.set()
        else:
            break
    stop.set()
    sending.set()  # wake the sender so that it sees the stop


async def main(argv: list[str]) -> None:
    """Serve one live and send the burst."""
    from bench.queue_scale import free_fans
    from bench.tiktok_events import push_frames, send_frames
    from tests.faketiktok.server import FakeTikTok

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--per-frame", type=int, default=20, help="events in one push frame")
    parser.add_argument("--seconds", type=float, default=60.0, help="the most seconds of sending")
    parser.add_argument("--lives", type=int, default=1, help="clients to wait for before sending")
    parser.add_argument(
        "--background",
        action="store_true",
        help="the lowest CPU class (Linux SCHED_IDLE, else nice 19): TikTok stands in for another machine",
    )
    parser.add_argument(
        "--queued-handles",
        action="store_true",
        help="500 fans whose handles count for Free songs of bench.queue_scale's 10,000-song database",
    )
    args = parser.parse_args(argv)
    if args.background:
        _background()
    names = free_fans(10_000, 500) if args.queued_handles else None
    frames = push_frames(int(args.rate * args.seconds), args.per_frame, names)
    fake = FakeTikTok()
    await fake.start()
    fake.host("host", live=True)
    _say(f"url {fake.base_url}")
    stdin = await _stdin()
    sending, stop = asyncio.Event(), asyncio.Event()
    sending.set()
    commands = asyncio.create_task(_commands(stdin, sending, stop))
    await fake.wait_connected(args.lives, timeout=600)
    _say("burst")
    interval = args.per_frame / args.rate
    sent = 0
    start, paced = time.perf_counter(), 0
    for frame in frames:
        if not sending.is_set():
            await sending.wait()
            start, paced = time.perf_counter(), 0  # resume at the rate, without catching up on the pause
        if stop.is_set():
            break
        await send_frames(fake, [frame])
        sent += args.per_frame
        paced += 1
        delay = start + paced * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    _say(f"sent {sent}")
    await stop.wait()
    await commands
    await stdin.read()  # keep the live open until the bench has disconnected and closed our stdin
    await fake.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

"""Overlay pages in a process of their own (OBS and LIVE Studio are other programs): ``N`` SSE connections.

Driven over stdin/stdout by ``bench.overlay``: ``open`` connects every client and answers ``open <n>`` once
each has its first snapshot; ``close`` drops them all (``closed``); ``stop`` ends the process. Each client
reads frames as a browser's EventSource would, so the bot really writes every push to every connection.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp


async def client(http: aiohttp.ClientSession, url: str, ready: asyncio.Event, counter: list[int]) -> None:
    """One page: connect, count snapshots, keep reading until cancelled."""
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
        async for raw in response.content:
            if raw.startswith(b"event: snapshot"):
                counter[0] += 1
                ready.set()


async def main(argv: list[str]) -> int:
    """Serve the commands until ``stop``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args(argv)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: list[asyncio.Task[None]] = []
    counter = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        while True:
            command = (await reader.readline()).decode().strip()
            if command == "open":
                events = [asyncio.Event() for _ in range(args.clients)]
                tasks = [asyncio.create_task(client(http, args.url, e, counter)) for e in events]
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
                sys.stdout.write(f"open {len(tasks)}\n")
            elif command == "close":
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                tasks = []
                sys.stdout.write(f"closed {counter[0]}\n")
            else:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                sys.stdout.write(f"stopped {counter[0]}\n")
                sys.stdout.flush()
                return 0
            sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

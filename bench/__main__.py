"""Run every benchmark: ``python -m bench`` (``--quick`` for a short run, ``--only NAME`` for one).

Each section runs in a fresh interpreter, so that what one section leaves in memory (imports, caches, a
bigger heap for the garbage collector to walk) cannot slow the next one down; this process collects the
figures, prints the whole table and writes ``bench/results/latest.json``.

``--profile`` samples each section's event loop with pyinstrument and writes the call trees to
``bench/results/profile-<section>.txt`` and ``.html``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import sys
import tempfile
from pathlib import Path

from bench.common import Result, profiled, render_table, write_json

SECTIONS = (
    "ingest",
    "live_throughput",
    "queue_scale",
    "queue_burst",
    "discord_load",
    "overlay",
    "live_chart",
    "live_pool",
    "guild_scale",
    "shard_sim",
)


async def run_section(name: str, quick: bool, profile: bool, out: Path) -> None:
    """Inside the section's own interpreter: run it, print its table, write its figures to ``out``."""
    module = importlib.import_module(f"bench.{name}")
    with profiled(name) if profile else contextlib.nullcontext():
        section: list[Result] = await module.run(quick=quick)
    print(render_table(section), flush=True)
    print(flush=True)
    write_json(section, out)


async def spawn_section(name: str, quick: bool, profile: bool) -> list[Result]:
    """Run one section in a fresh interpreter and read its figures back."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        argv = ["-m", "bench", "--section", name, "--section-out", str(out)]
        argv += ["--quick"] if quick else []
        argv += ["--profile"] if profile else []
        process = await asyncio.create_subprocess_exec(sys.executable, *argv)
        code = await process.wait()
        if code != 0 or not out.exists():
            raise RuntimeError(f"benchmark section {name} failed (exit code {code})")
        return [Result(**row) for row in json.loads(out.read_text())["results"]]


async def main(argv: list[str]) -> int:
    """Run the sections, print the table, write the JSON; exit 1 if any target failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    parser.add_argument("--profile", action="store_true", help="profile each section with pyinstrument")
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--section-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.section:
        await run_section(args.section, args.quick, args.profile, args.section_out)
        return 0
    results: list[Result] = []
    for name in args.only or SECTIONS:
        results.extend(await spawn_section(name, args.quick, args.profile))
    print("== all results ==")
    print(render_table(results))
    path = write_json(results)
    print(f"\nJSON written to {path}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

"""Run every benchmark: ``python -m bench`` (``--quick`` for a short run, ``--only NAME`` for one).

``--profile`` samples each section's event loop with pyinstrument and writes the call trees to
``bench/results/profile-<section>.txt`` and ``.html``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import sys

from bench.common import Result, profiled, render_table, write_json

SECTIONS = ("ingest", "live_throughput", "queue_scale", "discord_load")


async def main(argv: list[str]) -> int:
    """Run the sections, print the table, write the JSON; exit 1 if any target failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    parser.add_argument("--profile", action="store_true", help="profile each section with pyinstrument")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results: list[Result] = []
    for name in args.only or SECTIONS:
        module = importlib.import_module(f"bench.{name}")
        with profiled(name) if args.profile else contextlib.nullcontext():
            section = await module.run(quick=args.quick)
        results.extend(section)
        print(render_table(section), flush=True)
        print(flush=True)
    print("== all results ==")
    print(render_table(results))
    path = write_json(results)
    print(f"\nJSON written to {path}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

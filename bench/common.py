"""Shared pieces of the benchmarks: results, timing, the printed table and the JSON file."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models import DisplayKind

RESULTS_DIR = Path(__file__).parent / "results"

DISPLAY_LAYOUT: tuple[tuple[DisplayKind, str], ...] = (
    (DisplayKind.LIVE_QUEUE, "queue"),
    (DisplayKind.REVIEWER_MAIN, "reviewers"),
    (DisplayKind.REVIEWER_PENDING, "reviewers"),
)
"""The three displays a bench bot has, each with the fake Discord channel it is posted in."""


@dataclass
class Result:
    """One benchmark figure with its target and verdict."""

    name: str
    value: float
    unit: str
    target: str
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)


def import_bot() -> None:
    """Import the bot and its cogs: what a bot process holds before its loop runs."""
    import bot

    for extension in bot.EXTENSIONS:
        importlib.import_module(extension)


def freeze_the_fake() -> None:
    """Import the fake Discord and parse its OpenAPI spec, then freeze that heap (before any loop runs).

    A bench process that plays Discord for a bot in another process times the bot's answers; its own
    full collections would walk the spec, which is bigger than the bot's whole start-up heap (58-113 ms
    pauses when it was left unfrozen), and count those pauses as the bot's. Frozen, they skip it.
    """
    from tests.fakediscord.openapi import ContractChecker

    importlib.import_module("tests.fakediscord.server")
    ContractChecker()  # the parsed spec is cached per process: this keeps it in the frozen heap
    gc.collect()
    gc.freeze()


async def until(predicate: Callable[[], bool], what: str, timeout: float) -> None:
    """Wait until ``predicate()`` holds, checking every 50 ms; RuntimeError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def median_seconds(action: Callable[[], Awaitable[object]], reps: int) -> float:
    """Median wall time of ``reps`` runs of an async action."""
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def percentile(samples: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of samples."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: keep platform's answer
    import os

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def render_table(results: list[Result]) -> str:
    """A plain text table of every result."""
    rows = [("benchmark", "value", "target", "verdict")]
    for r in results:
        rows.append((r.name, f"{r.value:,.2f} {r.unit}".strip(), r.target, "PASS" if r.passed else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(results: list[Result], path: Path | None = None) -> Path:
    """Write the figures (and the machine) as JSON; returns the path."""
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(payload, indent=2))
    return path


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """Sample the main thread (the event loop and everything it runs) with pyinstrument while inside.

    Writes ``bench/results/profile-<name>.txt`` (call tree) and ``.html`` (flame view). Child processes,
    like the TikTok connection's, are not in it: profile them on their own with ``py-spy`` or pyinstrument.
    """
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"profile-{name}.txt").write_text(profiler.output_text(unicode=False, color=False))
        (RESULTS_DIR / f"profile-{name}.html").write_text(profiler.output_html())

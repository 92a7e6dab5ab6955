"""The recap's picture of a live: engagement per minute and when each song played, as a PNG.

Rendered with matplotlib's Agg canvas on a ``Figure`` of its own (no pyplot: no global state, safe in a
worker thread), off the event loop with ``asyncio.to_thread``. The per-minute figures come from the
database (``session_minutes``, written by the engagement flush), the songs from the archive (``played_at``
within the live). No discord import: the UI attaches the bytes.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from database import Database, MinuteDelta
from models import PLAYABLE_LINES, Line, LiveSession

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 1200, 675, 100
EMPTY_TEXT = "No engagement recorded"
SERIES = (("Likes", "likes", "#e0457b"), ("Comments", "comments", "#5b6ee1"), ("Coins", "coins", "#e8a200"))
LINE_COLOURS = {
    Line.BACK_TO_BACK: "#c62828",
    Line.DOUBLE_SKIP: "#ef6c00",
    Line.SKIP: "#1565c0",
    Line.FREE: "#2e7d32",
}


@dataclass(frozen=True, slots=True)
class ChartData:
    """What the chart shows: the live's span, its per-minute engagement and its plays ``(at, line)``."""

    host: str
    started_at: float
    ended_at: float
    minutes: list[MinuteDelta] = field(default_factory=list)
    plays: list[tuple[float, Line]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing was liked, said or gifted during the live."""
        return not any(m.likes or m.comments or m.coins for m in self.minutes)


async def load_chart_data(db: Database, session: LiveSession) -> ChartData:
    """Read a session's per-minute engagement and its plays from the database."""
    ended = session.ended_at or session.started_at
    plays = await db.played_between(session.guild_id, session.started_at, ended)
    return ChartData(
        host=session.host,
        started_at=session.started_at,
        ended_at=ended,
        minutes=await db.session_minutes(session.id),
        plays=[(s.played_at, s.played_from or Line.FREE) for s in plays if s.played_at is not None],
    )


async def session_chart(db: Database, session: LiveSession) -> bytes:
    """The PNG of a session (the rendering runs in a worker thread, never on the event loop)."""
    data = await load_chart_data(db, session)
    return await asyncio.to_thread(render_png, data)


def render_png(data: ChartData) -> bytes:
    """Render the chart to PNG bytes (CPU-bound: call it off the event loop)."""
    figure = build_figure(data)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _text(value: str) -> str:
    # matplotlib reads "$...$" as mathtext; user text must stay literal.
    return value.replace("$", r"\$")


def _clock(minutes: float, _pos: object = None) -> str:
    return f"{int(minutes // 60)}:{int(minutes % 60):02d}"


def build_figure(data: ChartData) -> Figure:
    """The figure: one panel per series (likes, comments, coins) over minutes since the start.

    Each song played is a vertical mark, coloured by the line it was played from.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    # Fixed margins for the fixed size: a layout engine would draw the figure twice (40% of the time).
    figure.subplots_adjust(left=0.07, right=0.985, top=0.93, bottom=0.09, hspace=0.12)
    start_minute = int(data.started_at // 60)
    span = max(1.0, (data.ended_at - data.started_at) / 60)
    plays = [((at - data.started_at) / 60, line) for at, line in data.plays]
    figure.suptitle(_text(f"@{data.host}: engagement per minute and songs played"), fontsize=13)
    if data.empty:
        axes = [figure.add_subplot(1, 1, 1)]
        axes[0].text(0.5, 0.5, EMPTY_TEXT, transform=axes[0].transAxes, ha="center", va="center",
                     fontsize=20, color="#555555")  # fmt: skip
        axes[0].set_yticks([])
    else:
        axes = list(figure.subplots(len(SERIES), 1, sharex=True))
        # One step outline per series over every minute of the live (a minute without engagement is 0):
        # a single artist each, where bars would be one rectangle per minute (10x slower for a long live).
        minutes = max(int(span) + 1, max(m.minute for m in data.minutes) - start_minute + 1)
        for ax, (label, attr, colour) in zip(axes, SERIES, strict=True):
            values = [0] * minutes
            for m in data.minutes:
                index = m.minute - start_minute
                if 0 <= index < minutes:
                    values[index] += getattr(m, attr)
            ax.stairs(values, range(minutes + 1), fill=True, color=colour, alpha=0.9)
            ax.set_ylabel(label)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            ax.grid(axis="y", alpha=0.3)
    for ax in axes:
        for line, colour in LINE_COLOURS.items():
            at = [minute for minute, played in plays if played is line]
            if at:  # one collection per line, not one artist per song
                ax.vlines(at, 0, 1, transform=ax.get_xaxis_transform(), colors=colour, linewidth=1.2, alpha=0.85)
        ax.set_xlim(0, span)
    step = next((s for s in (5, 10, 15, 30, 60) if span / s <= 10), 120)
    axes[-1].xaxis.set_major_locator(MultipleLocator(step))
    axes[-1].xaxis.set_major_formatter(FuncFormatter(_clock))
    axes[-1].set_xlabel("time since the live started (h:mm)")
    used = [line for line in PLAYABLE_LINES if any(line is played for _, played in plays)]
    if used:
        handles = [Line2D([0], [0], color=LINE_COLOURS[line], linewidth=2) for line in used]
        counts = {line: sum(1 for _, played in plays if played is line) for line in used}
        axes[0].legend(handles, [f"{line.value} ({counts[line]})" for line in used], title="Songs played",
                       loc="upper right", fontsize=8, title_fontsize=8)  # fmt: skip
    return figure

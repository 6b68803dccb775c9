"""Score trajectories as SVG, drawn server-side by matplotlib (its SVG backend: no browser, no
display, no CDN). No Django import: the views and the PDF summary pass plain points in.

Three panels share the date axis: POSAS 2.0 totals (patient and observer, 6-60, lower is
better), Vancouver Scar Scale total (0-13, lower is better) and GAIS (surgeon and patient,
1 = very much improved ... 5 = worse, drawn with "improved" at the top). A panel without any
score says so instead of drawing an empty grid; no scores at all gives a small "no scores yet"
picture, still a valid SVG.

The output is deterministic (no timestamp, fixed element ids) and text is drawn as paths, so
it looks the same in every browser and in WeasyPrint without any font being installed. The
SVG carries ``style`` attributes, so pages show it through ``<img src=...>`` (the page's CSP
forbids inline styles) and the PDF embeds it as a ``data:`` URI.
"""

from __future__ import annotations

import datetime
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("svg")  # never a GUI backend, whatever the environment says

import matplotlib.dates as mdates
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

GAIS_TICKS = {
    1: "Very much improved",
    2: "Much improved",
    3: "Improved",
    4: "No change",
    5: "Worse",
}

# Colour is never the only cue: each series has its own marker and line style too.
SERIES_STYLE = {
    "posas_patient": {"color": "#1f5f8b", "marker": "o", "linestyle": "-"},
    "posas_observer": {"color": "#8a5a00", "marker": "s", "linestyle": "--"},
    "vss": {"color": "#2d6a4f", "marker": "D", "linestyle": "-"},
    "gais_surgeon": {"color": "#1f5f8b", "marker": "^", "linestyle": "-"},
    "gais_patient": {"color": "#a4161a", "marker": "v", "linestyle": "--"},
}
SERIES_LABEL = {
    "posas_patient": "POSAS patient total",
    "posas_observer": "POSAS observer total",
    "vss": "VSS total",
    "gais_surgeon": "GAIS surgeon",
    "gais_patient": "GAIS patient",
}

_RC = {
    "svg.fonttype": "path",  # glyphs as paths: no font needed where the SVG is shown
    "svg.hashsalt": "nanofat-planner",  # stable element ids, so equal input gives equal bytes
    "font.family": "DejaVu Sans",  # bundled with matplotlib
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# matplotlib's rc settings are process-global: one render at a time.
_lock = threading.Lock()


@dataclass(frozen=True)
class Point:
    on: datetime.date
    label: str = ""  # e.g. "3 months"
    posas_patient: int | None = None
    posas_observer: int | None = None
    vss: int | None = None
    gais_surgeon: int | None = None
    gais_patient: int | None = None


@dataclass(frozen=True)
class Session:
    """A performed session, drawn as a vertical line the trajectories start from."""

    on: datetime.date
    label: str


def trajectory_svg(
    points: Sequence[Point], *, sessions: Sequence[Session] = (), title: str = ""
) -> bytes:
    """The chart as SVG bytes (UTF-8)."""
    points = sorted(points, key=lambda p: p.on)
    with _lock, matplotlib.rc_context(_RC):
        if not any(_has_scores(p) for p in points):
            figure = _empty_figure(title)
        else:
            figure = _figure(points, sessions, title)
        buffer = io.BytesIO()
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _has_scores(point: Point) -> bool:
    return any(getattr(point, key) is not None for key in SERIES_STYLE)


def _empty_figure(title: str) -> Figure:
    figure = Figure(figsize=(7.5, 1.6))
    figure.text(
        0.5,
        0.55,
        "No scores recorded yet",
        ha="center",
        va="center",
        fontsize=12,
        color="#5b6472",
    )
    if title:
        figure.text(0.5, 0.85, title, ha="center", va="center", fontsize=10, weight="bold")
    return figure


def _figure(points: Sequence[Point], sessions: Sequence[Session], title: str) -> Figure:
    figure = Figure(figsize=(8.2, 7.2), layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    posas, vss, gais = axes
    _series(posas, points, ("posas_patient", "posas_observer"))
    posas.set_ylim(4, 62)
    posas.set_ylabel("POSAS 2.0 total\n(6-60, lower is better)")
    _series(vss, points, ("vss",))
    vss.set_ylim(-0.5, 13.5)
    vss.yaxis.set_major_locator(MaxNLocator(integer=True))
    vss.set_ylabel("Vancouver Scar Scale\n(0-13, lower is better)")
    _series(gais, points, ("gais_surgeon", "gais_patient"))
    gais.set_ylim(5.4, 0.6)  # inverted: "very much improved" at the top
    gais.set_yticks(list(GAIS_TICKS), list(GAIS_TICKS.values()))
    gais.set_ylabel("GAIS")

    dates = [p.on for p in points] + [s.on for s in sessions]
    start, end = min(dates), max(dates)
    margin = max(datetime.timedelta(days=7), (end - start) * 0.05)
    for ax in axes:
        ax.grid(True, axis="y", color="#d7dce3", linewidth=0.6)
        for session in sessions:
            ax.axvline(session.on, color="#5b6472", linestyle=":", linewidth=1)
        ax.set_xlim(start - margin, end + margin)
    for session in sessions:
        posas.annotate(
            session.label,
            xy=(session.on, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color="#5b6472",
        )
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    gais.xaxis.set_major_locator(locator)
    gais.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if title:
        figure.suptitle(title, fontsize=11, weight="bold")
    return figure


def _series(ax, points: Sequence[Point], keys: tuple[str, ...]) -> None:
    drawn = False
    for key in keys:
        pairs = [(p.on, getattr(p, key)) for p in points if getattr(p, key) is not None]
        if not pairs:
            continue
        drawn = True
        xs, ys = zip(*pairs, strict=True)
        ax.plot(xs, ys, label=SERIES_LABEL[key], markersize=6, linewidth=1.6, **SERIES_STYLE[key])
    if drawn:
        # Beside the panel, never over a point.
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    else:
        ax.text(
            0.5,
            0.5,
            "not scored",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#5b6472",
        )

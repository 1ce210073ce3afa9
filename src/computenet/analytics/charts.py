"""PNG charts of the reports: utilization over time per cluster, revenue by product line
(stacked), margin per cluster. Figures are floats only here, for drawing.

Drawn to be read by people who did not make them: money axes name their currency, numbers have
thousands separators, a long daily axis shows a readable number of dates, one cluster far below
the others is cut at the axis with its value written on the bar (instead of squashing every
other bar), and series that coincide are named together instead of one hiding the other.
"""

from __future__ import annotations

import io
import math
import textwrap
from functools import lru_cache
from pathlib import Path

# a Figure of its own, never pyplot: pyplot's global figure registry is not safe in the API's
# request threads, and no display is needed to draw a PNG
from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..messages import N_, msg
from .chart_scale import cut_range, far_out, named_once
from .periods import ReportError
from .report_model import Report

CHARTS = {"utilization": "utilization", "revenue": "revenue", "margin": "margin", "efficiency": "efficiency"}  # chart -> report it draws
MAX_TICK_LABELS = 12  # more dates than this on one axis run into each other
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LEGEND_WIDTH = 40  # characters on one line of a legend entry
# matplotlib falls back glyph by glyph (3.6+): Latin from DejaVu, Chinese labels from Noto CJK where installed
FONTS = ("DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei")


@lru_cache(maxsize=1)
def _style() -> dict:
    """The installed FONTS by name, not "sans-serif": matplotlib falls back only within a named list
    (and warns for every glyph of a name it does not know)."""
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    return {"font.family": [f for f in FONTS if f in known] or ["DejaVu Sans"]}


# words said through msg(a variable): marked here for the catalogues
WORDS = (N_("owned"), N_("leased"), N_("utilization"), N_("revenue"), N_("margin"), N_("efficiency"), N_("day"),
         N_("month"), N_("quarter"), N_("year"))


def _english(text) -> str:
    return str(text)


def _buckets(report: Report) -> list[str]:
    return [b.label for b in report.period.buckets()]


def _thousands(decimals: int = 0) -> FuncFormatter:
    return FuncFormatter(lambda value, _: f"{value:,.{decimals}f}")


def _date_axis(ax, labels: list[str], offset: float = 0.0) -> None:
    """At most MAX_TICK_LABELS dates, evenly spaced, always including the first."""
    step = max(1, math.ceil(len(labels) / MAX_TICK_LABELS))
    shown = list(range(0, len(labels), step))
    ax.set_xticks([i + offset for i in shown], [labels[i] for i in shown])
    if len(shown) > 6:
        for label in ax.get_xticklabels():
            label.set_rotation(45)
            label.set_horizontalalignment("right")


def _utilization(report: Report, ax, say) -> list[str]:
    labels = _buckets(report)
    series = []
    for name in sorted({r["name"] for r in report.rows if r["level"] == "cluster"}):
        rows = {r["bucket"]: r for r in report.rows if r["level"] == "cluster" and r["name"] == name}
        ownership = next(iter(rows.values()))["ownership"]
        series.append((say(msg("%(name)s (%(ownership)s) cores", name=name, ownership=say(msg(ownership)))), [
            float(rows[b]["core_utilization"]) * 100 if b in rows and rows[b]["core_utilization"] is not None
            else float("nan") for b in labels]))
        cards = [float(rows[b]["card_utilization"]) * 100 if b in rows and rows[b]["card_utilization"] is not None
                 else float("nan") for b in labels]
        if any(v == v for v in cards):  # has GPUs
            series.append((say(msg("%(name)s cards", name=name)), cards))
    xs = list(range(len(labels)))
    for i, (name, values) in enumerate(named_once(series)):
        ax.plot(xs, values, linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                marker=MARKERS[i % len(MARKERS)] if len(labels) <= 60 else None, label=_wrapped(name))
    _date_axis(ax, labels)
    ax.set_ylabel(say(msg("allocated / capacity (%)")))
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_ylim(bottom=0)
    return []


def _wrapped(name: str) -> str:
    """Series named together ("a = b = c", clusters idle alike) over lines, so the legend stays narrow."""
    return "\n".join(textwrap.wrap(name, LEGEND_WIDTH, break_long_words=False)) if len(name) > LEGEND_WIDTH else name


def _revenue(report: Report, ax, say) -> list[str]:
    labels = _buckets(report)
    rows = [r for r in report.rows if r["dimension"] == "product_line"]
    xs = list(range(len(labels)))
    bottom = [0.0] * len(labels)
    for line in sorted({r["key"] for r in rows}):
        values = [sum(float(r["revenue"]) for r in rows if r["key"] == line and r["bucket"] == b) for b in labels]
        ax.bar(xs, values, bottom=bottom, label=say(msg(line)))  # a product line's name where it has one
        bottom = [a + b for a, b in zip(bottom, values)]
    _date_axis(ax, labels)
    ax.set_ylabel(say(msg("revenue (%(currency)s)", currency=report.currency) if report.currency else msg("revenue")))
    ax.yaxis.set_major_formatter(_thousands())
    return []


def _margin(report: Report, ax, say) -> list[str]:
    labels = _buckets(report)
    rows = [r for r in report.rows if r["level"] == "cluster"]
    names = sorted({r["name"] for r in rows})
    width = 0.8 / max(1, len(names))
    drawn: dict[str, list[tuple[object, float]]] = {}
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(labels))]
        by_bucket = {r["bucket"]: r["margin"] for r in rows if r["name"] == name}
        values = [float(by_bucket[b]) * 100 if by_bucket.get(b) is not None else 0.0 for b in labels]
        bars = ax.bar(xs, values, width=width, label=name)
        drawn[name] = []
        for bar, b, value in zip(bars, labels, values):
            if by_bucket.get(b) is None:  # undefined: said, not drawn as zero
                ax.annotate(say(msg("n/a")), (bar.get_x() + bar.get_width() / 2, 0), ha="center", va="bottom",
                            fontsize=7)
            else:
                drawn[name].append((bar, value))
    _date_axis(ax, labels, offset=width * (len(names) - 1) / 2)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel(say(msg("gross margin (%)")))
    ax.yaxis.set_major_formatter(_thousands())
    values_of = {name: [v for _, v in bars] for name, bars in drawn.items()}
    cut = far_out(values_of)
    limits = cut_range(values_of, cut)
    if limits is None:
        return []
    low, high = limits
    ax.set_ylim(low, high)
    for name in cut:
        for bar, value in drawn[name]:
            if not low <= value <= high:  # its true value, written at the edge it crosses
                ax.annotate(f"{value:,.0f} %", (bar.get_x() + bar.get_width() / 2, low if value < 0 else high),
                            ha="center", va="bottom" if value < 0 else "top", fontsize=7, fontweight="bold",
                            rotation=90 if len(labels) > 4 else 0,
                            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.5"})
    return [say(msg("%(names)s: cut at the axis (far outside the others); the values are written on the bars",
                    names=", ".join(sorted(cut))))]


def _efficiency(report: Report, ax, say) -> list[str]:
    """The money wasted per tenant (or app, or cluster), stacked: a bar's height is the bucket's total."""
    labels = _buckets(report)
    rows = [r for r in report.rows if r["key"] != "(all)"]
    xs = list(range(len(labels)))
    bottom = [0.0] * len(labels)
    for key in sorted({r["key"] for r in rows}):
        values = [sum(float(r["wasted"]) for r in rows if r["key"] == key and r["bucket"] == b) for b in labels]
        ax.bar(xs, values, bottom=bottom, label=key)
        bottom = [a + b for a, b in zip(bottom, values)]
    _date_axis(ax, labels)
    ax.set_ylabel(say(msg("wasted (%(currency)s)", currency=report.currency) if report.currency else msg("wasted")))
    ax.yaxis.set_major_formatter(_thousands())
    return []


def figure(chart: str, report: Report, say=_english) -> Figure:
    """``say`` puts the chart's words (msg texts) into a reader's language; English by default."""
    if chart not in CHARTS:
        raise ReportError(f"unknown chart {chart!r}: use one of {', '.join(CHARTS)}")
    if report.empty:
        raise ReportError(f"nothing to draw: {report.empty}")
    with rc_context(_style()):
        fig = Figure(figsize=(10, 5))
        ax = fig.subplots()
        notes = {"utilization": _utilization, "revenue": _revenue, "margin": _margin,
                 "efficiency": _efficiency}[chart](report, ax, say)
        ax.set_title(say(msg("%(chart)s, %(first)s to %(last)s by %(by)s", chart=say(msg(chart)),
                             first=report.period.first.isoformat(), last=report.period.last.isoformat(),
                             by=say(msg(report.period.by)))))
        _finish(fig, ax, notes)
    return fig


def _finish(fig: Figure, ax, notes: list[str]) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: it never hides a bar
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    for i, note in enumerate(notes):
        fig.text(0.01, 0.01 + 0.03 * i, note, fontsize=8, style="italic")
    fig.tight_layout(rect=(0, 0.03 * len(notes), 1, 1))


def draw(chart: str, report: Report, out: str | Path) -> Path:
    fig = figure(chart, report)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rc_context(_style()):
        fig.savefig(path, dpi=100)
    return path


def png(chart: str, report: Report, say=_english, dpi: int = 200) -> bytes:
    """The chart as PNG bytes (sharp when printed: 200 dpi), for the monthly report."""
    buffer = io.BytesIO()
    with rc_context(_style()):
        # tight: the whole legend, however long its names (a month by day may have many clusters' series)
        figure(chart, report, say).savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1,
                                           metadata={"Software": None})
    return buffer.getvalue()

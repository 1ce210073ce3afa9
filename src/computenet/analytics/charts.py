"""PNG charts of the reports: utilization over time per cluster, revenue by product line
(stacked), margin per cluster. Figures are floats only here, for drawing."""

from __future__ import annotations

from pathlib import Path

# a Figure of its own, never pyplot: pyplot's global figure registry is not safe in the API's
# request threads, and no display is needed to draw a PNG
from matplotlib.figure import Figure

from .periods import ReportError
from .report_model import Report

CHARTS = {"utilization": "utilization", "revenue": "revenue", "margin": "margin"}  # chart -> report it draws


def _buckets(report: Report) -> list[str]:
    return [b.label for b in report.period.buckets()]


def _utilization(report: Report, ax) -> None:
    labels = _buckets(report)
    for name in sorted({r["name"] for r in report.rows if r["level"] == "cluster"}):
        rows = {r["bucket"]: r for r in report.rows if r["level"] == "cluster" and r["name"] == name}
        values = [float(rows[b]["core_utilization"]) * 100 if b in rows and rows[b]["core_utilization"] is not None
                  else float("nan") for b in labels]
        ax.plot(labels, values, marker="o", label=f"{name} ({next(iter(rows.values()))['ownership']}) cores")
        cards = [float(rows[b]["card_utilization"]) * 100 if b in rows and rows[b]["card_utilization"] is not None
                 else float("nan") for b in labels]
        if any(v == v for v in cards):  # has GPUs
            ax.plot(labels, cards, marker="s", linestyle="--", label=f"{name} cards")
    ax.set_ylabel("allocated / capacity (%)")
    ax.set_ylim(bottom=0)


def _revenue(report: Report, ax) -> None:
    labels = _buckets(report)
    rows = [r for r in report.rows if r["dimension"] == "product_line"]
    bottom = [0.0] * len(labels)
    for line in sorted({r["key"] for r in rows}):
        values = [sum(float(r["revenue"]) for r in rows if r["key"] == line and r["bucket"] == b) for b in labels]
        ax.bar(labels, values, bottom=bottom, label=line)
        bottom = [a + b for a, b in zip(bottom, values)]
    ax.set_ylabel("revenue")


def _margin(report: Report, ax) -> None:
    labels = _buckets(report)
    rows = [r for r in report.rows if r["level"] == "cluster"]
    names = sorted({r["name"] for r in rows})
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(labels))]
        by_bucket = {r["bucket"]: r["margin"] for r in rows if r["name"] == name}
        values = [float(by_bucket[b]) * 100 if by_bucket.get(b) is not None else 0.0 for b in labels]
        bars = ax.bar(xs, values, width=width, label=name)
        for bar, b in zip(bars, labels):
            if by_bucket.get(b) is None:  # undefined: said, not drawn as zero
                ax.annotate("n/a", (bar.get_x() + bar.get_width() / 2, 0), ha="center", va="bottom", fontsize=7)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(labels))], labels)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("gross margin (%)")


def draw(chart: str, report: Report, out: str | Path) -> Path:
    if chart not in CHARTS:
        raise ReportError(f"unknown chart {chart!r}: use one of {', '.join(CHARTS)}")
    if report.empty:
        raise ReportError(f"nothing to draw: {report.empty}")
    fig = Figure(figsize=(10, 5))
    ax = fig.subplots()
    {"utilization": _utilization, "revenue": _revenue, "margin": _margin}[chart](report, ax)
    ax.set_title(f"{chart}, {report.period.describe()}")
    ax.legend(fontsize=8)
    if len(_buckets(report)) > 8:
        for label in ax.get_xticklabels():
            label.set_rotation(45)
            label.set_horizontalalignment("right")
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path

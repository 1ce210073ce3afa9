"""What the PNG charts (charts.py) and the portal's ECharts charts decide alike, so both look the
same: which series are far outside the others (drawn to scale they would squash every other bar
into a line), the axis range that keeps the rest readable, and series that coincide (drawn once,
under all their names, instead of one hiding the other). Plain floats; no drawing library."""

from __future__ import annotations

import statistics

OUTLIER_FACTOR = 4.0  # a series whose typical size is this many times the others' is cut at the axis
HEADROOM = 1.3  # the axis reaches this far beyond the largest bar it keeps
STUB = 0.3  # a cut bar keeps this share of the axis' span, for its value to be written on


def far_out(series: dict[str, list[float]]) -> set[str]:
    """The series whose median |value| is OUTLIER_FACTOR times the median of the other series'."""
    typical = {name: statistics.median(abs(v) for v in values) for name, values in series.items() if values}
    out = set()
    for name, size in typical.items():
        others = [s for other, s in typical.items() if other != name]
        if others and size > OUTLIER_FACTOR * max(statistics.median(others), 1.0):
            out.add(name)
    return out


def cut_range(series: dict[str, list[float]], cut: set[str]) -> tuple[float, float] | None:
    """(low, high) that shows every series but those cut; None when nothing is cut."""
    kept = [v for name, values in series.items() if name not in cut for v in values]
    if not cut or not kept:
        return None
    low, high = min(0.0, min(kept)) * HEADROOM, max(0.0, max(kept)) * HEADROOM
    span = max(high - low, 1.0)
    everything = [v for values in series.values() for v in values]
    if min(everything) < low:
        low = min(low, -STUB * span)
    if max(everything) > high:
        high = max(high, STUB * span)
    return low, high


def named_once(series: list[tuple[str, list]]) -> list[tuple[str, list]]:
    """Series with exactly the same values are kept once, named "a = b"."""
    merged: list[tuple[list[str], list]] = []
    for name, values in series:
        for names, known in merged:
            if len(known) == len(values) and all(a == b or (_missing(a) and _missing(b)) for a, b in zip(known, values)):
                names.append(name)
                break
        else:
            merged.append(([name], values))
    return [(" = ".join(names), values) for names, values in merged]


def _missing(value) -> bool:
    return value is None or value != value  # None (JSON) or NaN (matplotlib)

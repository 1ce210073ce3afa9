"""A job's CPU, memory and GPU over time as a PNG (what people would rather look at than read)."""

from __future__ import annotations

import io
import math


def job_chart(stats: dict) -> bytes:
    """``stats`` is services.monitoring.analyse()'s result; gaps show as breaks in the lines."""
    from matplotlib.figure import Figure  # not pyplot: its global state is unsafe in request threads

    series = stats["series"]
    t0 = series["t"][0] if series["t"] else 0.0
    gaps = [tuple(g) for g in stats["gaps"]]

    def with_breaks(values):
        xs, ys = [], []
        for i, (t, v) in enumerate(zip(series["t"], values)):
            if i and any(a == series["t"][i - 1] and b == t for a, b in gaps):
                xs.append(math.nan)
                ys.append(math.nan)  # matplotlib leaves a hole here
            xs.append((t - t0) / 60)
            ys.append(math.nan if v is None else v)
        return xs, ys

    has_gpu = any(v is not None for v in series["gpu_util"])
    rows = 3 if has_gpu else 2
    fig = Figure(figsize=(8, 2.2 * rows))
    axes = fig.subplots(rows, 1, sharex=True)
    eff = stats["efficiency"]
    cpu = axes[0]
    cpu.plot(*with_breaks(series["cores"]), color="tab:blue")
    cpu.axhline(stats["cores"], color="grey", linestyle="--", linewidth=1, label=f"{stats['cores']} allocated")
    cpu.set_ylabel("cores in use")
    cpu.set_ylim(bottom=0)
    cpu.legend(loc="upper right", fontsize=8)
    title = f"job {stats['job']}"
    if eff.get("cpu_efficiency") is not None:
        title += f": CPU efficiency {100 * eff['cpu_efficiency']:.0f}%"
    if stats.get("wasted") and stats["wasted"] not in ("0", "0.00"):
        title += f", waste {stats['wasted']} of {stats['price']} paid"
    cpu.set_title(title, fontsize=10)
    mem = axes[1]
    mem.plot(*with_breaks([r / 1024 ** 3 for r in series["rss"]]), color="tab:green")
    mem.set_ylabel("memory, GiB")
    mem.set_ylim(bottom=0)
    if has_gpu:
        gpu = axes[2]
        gpu.plot(*with_breaks(series["gpu_util"]), color="tab:red")
        gpu.set_ylabel("GPU util, %")
        gpu.set_ylim(0, 105)
    axes[-1].set_xlabel("minutes since the first sample")
    for ax in axes:
        for a, b in gaps:
            ax.axvspan((a - t0) / 60, (b - t0) / 60, color="orange", alpha=0.2, linewidth=0)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    return out.getvalue()

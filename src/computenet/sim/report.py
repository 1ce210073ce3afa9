"""What a simulation says: waits, bounded slowdown, utilization, money; and plots."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np

from .engine import SimResult

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Summary:
    policy: str
    jobs: int
    mean_wait_s: float
    p50_wait_s: float
    p95_wait_s: float
    mean_bsld: float  # bounded slowdown, tau = 10 s
    utilization: dict[str, float]  # per cluster: busy core-seconds / (cores x span)
    owned_utilization: float
    core_seconds: int  # conserved across policies for the same trace
    revenue: Decimal
    cost: Decimal
    jobs_per_cluster: dict[str, int]

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_pct(self) -> float | None:
        return None if not self.revenue else float(self.margin / self.revenue * 100)


def summarize(result: SimResult) -> Summary:
    waits = np.array([r.wait for r in result.results], dtype=float)
    bsld = np.array([r.bounded_slowdown for r in result.results], dtype=float)
    span_hours = Decimal(int(result.span)) / 3600
    util, revenue, cost = {}, Decimal(0), Decimal(0)
    owned_busy = owned_capacity = 0.0
    per_cluster = {c.name: 0 for c in result.clusters}
    for r in result.results:
        per_cluster[result.clusters[r.cluster].name] += 1
    for c, busy, gpu_busy in zip(result.clusters, result.busy_core_seconds, result.busy_gpu_seconds):
        capacity = c.cores * result.span
        util[c.name] = busy / capacity if capacity else 0.0
        if c.ownership == "owned":
            owned_busy, owned_capacity = owned_busy + busy, owned_capacity + capacity
        used_hours, gpu_hours = Decimal(busy) / 3600, Decimal(gpu_busy) / 3600
        revenue += used_hours * c.price_core_hour + gpu_hours * c.price_gpu_hour
        if c.ownership == "owned":  # capacity costs whether used or not
            cost += c.cores * span_hours * c.cost_core_hour + c.gpus * span_hours * c.cost_gpu_hour
        else:  # leased or partner capacity is paid per use
            cost += used_hours * c.cost_core_hour + gpu_hours * c.cost_gpu_hour
    return Summary(
        policy=result.policy, jobs=len(result.results),
        mean_wait_s=float(waits.mean()) if len(waits) else 0.0,
        p50_wait_s=float(np.percentile(waits, 50)) if len(waits) else 0.0,
        p95_wait_s=float(np.percentile(waits, 95)) if len(waits) else 0.0,
        mean_bsld=float(bsld.mean()) if len(bsld) else 0.0,
        utilization=util, owned_utilization=owned_busy / owned_capacity if owned_capacity else 0.0,
        core_seconds=sum(result.busy_core_seconds),
        revenue=revenue.quantize(CENT, ROUND_HALF_UP), cost=cost.quantize(CENT, ROUND_HALF_UP),
        jobs_per_cluster=per_cluster)


def plot(results: list[SimResult], out_dir: str | Path, stem: str) -> list[Path]:
    """Utilization over time per cluster (one panel per policy) and the wait distribution per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 2.2 * len(results)), sharex=True, squeeze=False)
    for ax, result in zip(axes[:, 0], results):
        if result.timeline:
            days = np.array([t for t, _ in result.timeline]) / 86400
            busy = np.array([b for _, b in result.timeline], dtype=float)
            for i, c in enumerate(result.clusters):
                ax.plot(days, busy[:, i] / c.cores * 100, lw=0.7, label=f"{c.name} ({c.ownership})")
        ax.set_ylabel("% busy")
        ax.set_ylim(0, 105)
        ax.set_title(result.policy, fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("days into the trace")
    fig.tight_layout()
    path = out / f"{stem}-utilization.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    fig, ax = plt.subplots(figsize=(8, 4))
    for result in results:
        waits = np.sort(np.array([r.wait for r in result.results], dtype=float)) / 3600
        if len(waits):
            ax.plot(waits, np.linspace(0, 1, len(waits)), label=result.policy)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("wait (hours)")
    ax.set_ylabel("share of jobs waiting at most this long")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / f"{stem}-waits.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths

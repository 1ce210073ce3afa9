"""`cnet sim`: replay a workload trace over a simulated network, policies side by side."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .lazy import lazy

# numpy and matplotlib load when a simulation runs, not when `cnet` starts
sim_compare = lazy("computenet.sim.compare")
sim_report = lazy("computenet.sim.report")
sim_trace = lazy("computenet.sim.trace")

console = Console(emoji=False)
# the first four of sim.compare.POLICY_NAMES and owned_first (written out: that module imports numpy)
DEFAULT_POLICIES = "static,round_robin,least_loaded,earliest_start,owned_first"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def sim(trace: Path = typer.Argument(..., help="an SWF log (.swf or .swf.gz) or an Alibaba openb pod list (.csv)"),
        clusters: str = typer.Option("own-a:owned:0.5,own-b:owned:0.3,lease-c:leased:0.2",
                                     help="name:ownership:share[:price:cost], comma-separated; shares add up to 1"),
        policies: str = typer.Option(DEFAULT_POLICIES, help="policies to compare"),
        jobs: Optional[int] = typer.Option(None, help="only the first N jobs"),
        cores: Optional[int] = typer.Option(None, help="size of the whole network in cores (default: the trace's)"),
        gpus: Optional[int] = typer.Option(None, help="GPUs in the whole network (Alibaba: from --nodes)"),
        nodes: Optional[Path] = typer.Option(None, help="Alibaba node list, to size the network"),
        plots: Optional[Path] = typer.Option(None, help="write PNG plots to this directory")) -> None:
    """Simulate the network on a trace: waits, slowdown, utilization and margin per policy, and pooled."""
    try:
        if trace.suffix == ".csv":
            data = sim_trace.read_alibaba(trace, limit=jobs)
            total_cores, total_gpus = data.max_cores, 0
            if nodes is not None:
                with open(nodes, newline="") as handle:
                    rows = list(csv.DictReader(handle))
                total_cores = sum(int(r["cpu_milli"]) for r in rows) // 1000
                total_gpus = sum(int(r["gpu"]) for r in rows)
        else:
            data = sim_trace.read_swf(trace, limit=jobs)
            total_cores, total_gpus = data.max_cores, 0
        network = sim_compare.parse_clusters(clusters, cores or total_cores, gpus if gpus is not None else total_gpus)
        names = [p.strip() for p in policies.split(",") if p.strip()]
        results = sim_compare.compare(data, network, names)
    except (sim_trace.TraceError, sim_compare.SpecError, OSError) as exc:
        Console(stderr=True, emoji=False).print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1)
    table = Table(title=escape(f"{data.name}: {len(data.jobs)} jobs on "
                               f"{', '.join(f'{c.name} {c.cores}' for c in network)}"
                               + (f" ({data.estimated_limits} without a time limit: run time used)"
                                  if data.estimated_limits else "")), title_justify="left")
    for column in ("policy", "mean wait", "p95 wait", "mean bsld", "utilization", "owned util", "revenue", "cost",
                   "margin"):
        table.add_column(column, justify="right" if column != "policy" else "left")
    for result, s in results:
        util = " ".join(f"{name} {u * 100:.0f}%" for name, u in s.utilization.items())
        table.add_row(s.policy, _hours(s.mean_wait_s), _hours(s.p95_wait_s), f"{s.mean_bsld:.2f}", util,
                      f"{s.owned_utilization * 100:.1f}%", str(s.revenue), str(s.cost),
                      "-" if s.margin_pct is None else f"{s.margin_pct:.1f}%")
    console.print(table)
    if plots is not None:
        for path in sim_report.plot([r for r, _ in results], plots, data.name):
            console.print(f"wrote {escape(str(path))}")

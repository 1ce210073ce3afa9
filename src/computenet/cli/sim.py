"""`cnet sim`: replay a workload trace over a simulated network, policies side by side."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .lazy import lazy

# numpy and matplotlib load when a simulation runs, not when `cnet` starts
sim_report = lazy("computenet.sim.report")
sim_service = lazy("computenet.services.network.simulations")
sim_errors = lazy("computenet.services.errors")
sim_gpu = lazy("computenet.sim.gpu_replay")
sim_trace = lazy("computenet.sim.trace")

console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)
# as services/network/simulations.py DEFAULT_POLICIES (written out: `cnet` starts without importing it)
DEFAULT_POLICIES = "static,round_robin,least_loaded,earliest_start,owned_first"
COLUMNS = ("policy", "mean wait", "p95 wait", "mean bsld", "utilization", "owned util", "revenue", "cost", "margin")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _fail(message: str) -> None:
    errors.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _check_plots(path: Path) -> None:
    """Before hours of simulation: can the plots be written there?"""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"--plots {path}: cannot create the folder ({exc.strerror or exc})")
    if not os.access(path, os.W_OK | os.X_OK):
        _fail(f"--plots {path}: the folder is not writable")


def _row(s: "sim_report.Summary") -> list[str]:
    util = " ".join(f"{name} {u * 100:.0f}%" for name, u in s.utilization.items())
    return [s.policy, _hours(s.mean_wait_s), _hours(s.p95_wait_s), f"{s.mean_bsld:.2f}", util,
            f"{s.owned_utilization * 100:.1f}%", str(s.revenue), str(s.cost),
            "-" if s.margin_pct is None else f"{s.margin_pct:.1f}%"]


def _plain(title: str, rows: list[list[str]]) -> str:
    """The table as aligned plain text: for pipes and files, where a boxed table wraps."""
    widths = [max(len(r[i]) for r in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) if i in (0, 4) else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip()
              for r in rows]
    return "\n".join(lines)


def sim(trace: Path = typer.Argument(..., help="an SWF log (.swf or .swf.gz) or an Alibaba openb pod list (.csv)"),
        clusters: str = typer.Option("own-a:owned:0.5,own-b:owned:0.3,lease-c:leased:0.2",
                                     help="name:ownership:share[:price:cost], comma-separated; shares add up to 1"),
        policies: str = typer.Option(DEFAULT_POLICIES,
                                     help="policies to compare (pooled, one cluster of the same size, always runs)"),
        jobs: Optional[int] = typer.Option(None, help="only the first N jobs"),
        cores: Optional[int] = typer.Option(None, help="size of the whole network in cores (default: the trace's)"),
        gpus: Optional[int] = typer.Option(None, help="GPUs in the whole network (Alibaba: from --nodes)"),
        nodes: Optional[Path] = typer.Option(None, help="Alibaba node list, to size the network"),
        plots: Optional[Path] = typer.Option(None, help="write PNG plots to this directory"),
        kill_at_limit: bool = typer.Option(False, "--kill-at-limit",
                                           help="end jobs that ran past their time limits at the limit, as Slurm "
                                                "does (default: replay them whole, the limit taken as the run time)"),
        as_json: bool = typer.Option(False, "--json", help="print the results as JSON"),
        as_csv: bool = typer.Option(False, "--csv", help="print the results as CSV"),
        gpu_replay: bool = typer.Option(False, "--gpu-replay",
                                        help="place an openb pod list back to back on --nodes until the GPUs are "
                                             "full: allocation and fragmentation per placement policy"),
        load: float = typer.Option(1.3, help="--gpu-replay: stop when the GPU demand arrived reaches this many "
                                             "times the GPU capacity"),
        shuffle: Optional[int] = typer.Option(None, help="--gpu-replay: pods in a random order from this seed "
                                                         "(default: file order)")) -> None:
    """Simulate the network on a trace: waits, slowdown, utilization and margin per policy, and pooled."""
    if as_json and as_csv:
        _fail("--json and --csv: choose one")
    if gpu_replay:
        _gpu_replay(trace, nodes, policies, jobs, load, shuffle, as_json, as_csv)
        return
    spec = sim_service.Spec(trace=trace, clusters=clusters, jobs=jobs, cores=cores, gpus=gpus, nodes=nodes,
                            policies=[p.strip() for p in policies.split(",") if p.strip()],
                            kill_at_limit=kill_at_limit)
    try:
        sim_service.check(spec)
    except sim_errors.ServiceError as exc:
        _fail(str(exc))
    if plots is not None:
        _check_plots(plots)
    quiet = as_json or as_csv or not console.is_terminal
    try:  # the portal's simulator runs the same function (services/network/simulations.py)
        outcome = sim_service.run(spec, show_progress=not quiet)
    except sim_errors.ServiceError as exc:
        _fail(str(exc))
    data, network, results = outcome.data, outcome.network, outcome.results
    title = outcome.title()
    summaries = outcome.summaries
    if as_json:
        print(json.dumps(outcome.as_json(), indent=2))
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["policy", "jobs", "mean_wait_s", "p95_wait_s", "mean_bounded_slowdown",
                         *(f"utilization_{c.name}" for c in network), "owned_utilization", "revenue", "cost",
                         "margin_pct"])
        for s in summaries:
            util = [f"{s.utilization.get(c.name, 0.0):.4f}" for c in network]
            writer.writerow([s.policy, s.jobs, f"{s.mean_wait_s:.1f}", f"{s.p95_wait_s:.1f}", f"{s.mean_bsld:.4f}",
                             *util, f"{s.owned_utilization:.4f}", s.revenue, s.cost,
                             "" if s.margin_pct is None else f"{s.margin_pct:.2f}"])
        sys.stdout.write(out.getvalue())
    elif console.is_terminal:
        table = Table(title=title, title_justify="left")
        for column in COLUMNS:
            table.add_column(column, justify="right" if column != "policy" else "left")
        for s in summaries:
            table.add_row(*_row(s))
        console.print(table)
    else:
        print(_plain(title, [_row(s) for s in summaries]))
    if plots is not None:
        try:
            paths = sim_report.plot([r for r, _ in results], plots, data.name)
        except OSError as exc:
            _fail(f"--plots {plots}: {exc.strerror or exc}")
        for path in paths:
            errors.print(f"wrote {path}", highlight=False)


GPU_COLUMNS = ("policy", "placed", "failed", "first failure at", "allocated", "fragmentation", "CPU allocated")


def _gpu_replay(pods_path: Path, nodes: Optional[Path], policies: str, jobs: Optional[int], load: float,
                shuffle: Optional[int], as_json: bool, as_csv: bool) -> None:
    if nodes is None:
        _fail("--gpu-replay needs --nodes (an openb node list)")
    if not 0 < load <= 100:
        _fail("--load must be above 0 and at most 100")
    if jobs is not None and jobs < 1:
        _fail("--jobs must be at least 1")
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if policies == DEFAULT_POLICIES:
        names = list(sim_gpu.POLICIES)
    unknown = [n for n in names if n not in sim_gpu.POLICIES]
    if unknown or not names:
        _fail(f"--policies for --gpu-replay: {', '.join(unknown) or 'none given'}; use {', '.join(sim_gpu.POLICIES)}")
    try:
        node_list = sim_gpu.read_nodes(nodes)
        pods = sim_gpu.read_pods(pods_path, limit=jobs)
        results = [sim_gpu.replay(node_list, pods, name, load=load, shuffle_seed=shuffle) for name in names]
    except (sim_trace.TraceError, OSError, UnicodeDecodeError) as exc:
        _fail(str(exc))

    def pct(x: Optional[float]) -> str:
        return "-" if x is None else f"{x * 100:.1f}%"

    rows = []
    for r in results:
        first = r.first_failure
        rows.append([r.policy, str(r.placed_pods), f"{r.failed_gpu_pods} GPU, {r.failed_cpu_pods} CPU",
                     "-" if first is None else f"{pct(first.allocated)} (frag. {pct(first.fragmentation)})",
                     pct(r.final.allocated), pct(r.final.fragmentation), pct(r.cpu_allocated)])
    gpus = sum(n.gpus for n in node_list)
    title = (f"GPU replay: {len(pods)} pods ({'file order' if shuffle is None else f'shuffled, seed {shuffle}'}) "
             f"arriving until {load:g}x the GPU capacity, on {len(node_list)} nodes with {gpus} GPUs")
    if as_json:
        def point(p):
            return None if p is None else {"arrived": round(p.arrived, 4), "allocated": round(p.allocated, 4),
                                           "fragmentation": round(p.fragmentation, 4)}
        print(json.dumps({"pods": len(pods), "nodes": len(node_list), "gpus": gpus, "load": load, "shuffle": shuffle,
                          "results": [{"policy": r.policy, "arrived_pods": r.arrived_pods, "placed_pods": r.placed_pods,
                                       "failed_gpu_pods": r.failed_gpu_pods, "failed_cpu_pods": r.failed_cpu_pods,
                                       "first_failure": point(r.first_failure), "final": point(r.final),
                                       "cpu_allocated": round(r.cpu_allocated, 4),
                                       "curve": [point(p) for p in r.curve]} for r in results]}, indent=2))
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["policy", "arrived_pods", "placed_pods", "failed_gpu_pods", "failed_cpu_pods",
                         "allocated_at_first_failure", "allocated", "fragmentation", "cpu_allocated"])
        for r in results:
            writer.writerow([r.policy, r.arrived_pods, r.placed_pods, r.failed_gpu_pods, r.failed_cpu_pods,
                             "" if r.first_failure is None else f"{r.first_failure.allocated:.4f}",
                             f"{r.final.allocated:.4f}", f"{r.final.fragmentation:.4f}", f"{r.cpu_allocated:.4f}"])
        sys.stdout.write(out.getvalue())
    elif console.is_terminal:
        table = Table(title=title, title_justify="left")
        for column in GPU_COLUMNS:
            table.add_column(column, justify="left" if column == "policy" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        widths = [max(len(r[i]) for r in [list(GPU_COLUMNS), *rows]) for i in range(len(GPU_COLUMNS))]
        lines = [title, "  ".join(c.ljust(w) for c, w in zip(GPU_COLUMNS, widths)).rstrip()]
        lines += ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip()
                  for r in rows]
        print("\n".join(lines))

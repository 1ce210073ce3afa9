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
sim_service = lazy("computenet.services.simulations")
sim_errors = lazy("computenet.services.errors")

console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)
# as services/simulations.py DEFAULT_POLICIES (written out: `cnet` starts without importing it)
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
        as_csv: bool = typer.Option(False, "--csv", help="print the results as CSV")) -> None:
    """Simulate the network on a trace: waits, slowdown, utilization and margin per policy, and pooled."""
    if as_json and as_csv:
        _fail("--json and --csv: choose one")
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
    try:  # the portal's simulator runs the same function (services/simulations.py)
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

#!/usr/bin/env python3
"""The simulator on the shared traces: speed, and policies side by side.

1. Speed: jobs simulated per second with EASY on HPC2N (one 240-core cluster), next to
   the tests' independent reference on the same jobs (and whether they agree).
2. Quality: each trace split over 3 clusters (50 % owned, 30 % owned, 20 %
   leased, by cores); mean wait, mean bounded slowdown (tau = 10 s) and
   utilization for static (users stay on their home cluster), round-robin,
   least-loaded, earliest-start and owned-first (both the live router), and
   earliest-start with waiting jobs re-routed (once each) as the live
   re-router does, next to one pooled cluster of the same size. Jobs larger than the largest of
   the 3 clusters are left out of every run, pooled included.

    .venv/bin/python bench/sim.py [--traces DIR] [--jobs N] [--plots DIR] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import csv
import platform as host
import sys
import time
from datetime import date
from pathlib import Path

from rich.console import Console

from computenet.sim.compare import compare, parse_clusters
from computenet.sim.engine import SimCluster, simulate
from computenet.sim.policies import RoundRobin
from computenet.sim.report import plot
from computenet.sim.trace import read_alibaba, read_swf

console = Console()
SPLIT = "own-a:owned:0.5,own-b:owned:0.3,lease-c:leased:0.2"
POLICIES = ["static", "round_robin", "least_loaded", "earliest_start", "owned_first", "earliest_start+reroute",
            "earliest_start+sized", "earliest_start+sized+reroute"]
SWF = ["SDSC-SP2-1998-4.2-cln.swf.gz", "HPC2N-2002-2.2-cln.swf.gz", "KTH-SP2-1996-2.1-cln.swf.gz", "lublin_256.swf"]


SPEED = "HPC2N-2002-2.2-cln.swf.gz"
ALIBABA_PODS = "alibaba-gpu-v2023-openb_pod_list_default.csv"
ALIBABA_NODES = "alibaba-gpu-v2023-openb_node_list_all_node.csv"


def speed(path: Path, jobs: int | None, repeats: int = 3) -> list[str]:
    """One-cluster EASY: the engine (inside the whole simulator) and the independent
    reference of the tests (tests/easy_reference.py) on the same jobs, in this process;
    best of ``repeats``, and whether every job starts at the same time in both."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from easy_reference import easy_starts

    trace = read_swf(path, limit=jobs)
    rows = [(j.id, j.submit, j.run, j.estimate, j.cores) for j in trace.jobs]
    engine_s, reference_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = simulate(trace, [SimCluster("one", trace.max_cores)], RoundRobin())
        engine_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = easy_starts(rows, trace.max_cores)
        reference_s.append(time.perf_counter() - start)
    n = len(result.results)
    same = {r.job.id: r.start for r in result.results} == reference
    out = [f"EASY on {trace.name} ({n:,} jobs, {trace.max_cores} cores, {trace.overran:,} ran past their limits: "
           f"replayed whole), best of {repeats}: engine {min(engine_s):.2f} s, {n / min(engine_s):,.0f} jobs/s; "
           f"reference {min(reference_s):.2f} s, {n / min(reference_s):,.0f} jobs/s; "
           f"same start for every job: {'yes' if same else 'NO'}"]
    console.print(out[0])
    return out + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "traces")
    parser.add_argument("--jobs", type=int, default=None, help="only the first N jobs of each trace")
    parser.add_argument("--plots", type=Path, default=Path("bench/results"))
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    parser.add_argument("--only", default=None, help="only traces whose name contains this")
    parser.add_argument("--no-speed", action="store_true", help="skip the EASY speed run")
    args = parser.parse_args()
    lines = [f"Machine: {host.node()} ({host.machine()}, {host.python_implementation()} {host.python_version()}), "
             f"{date.today()}", ""]

    if not args.traces.is_dir():
        parser.error(f"--traces {args.traces}: not a folder")
    # the shared traces in their usual order, then any other SWF log in the folder
    found = sorted(p.name for p in args.traces.iterdir() if p.name.endswith((".swf", ".swf.gz")))
    swf = [name for name in SWF if name in found] + [name for name in found if name not in SWF]
    if not swf and not (args.traces / ALIBABA_PODS).exists():
        parser.error(f"--traces {args.traces}: no SWF log (.swf, .swf.gz) nor {ALIBABA_PODS} there")

    if not args.no_speed and swf:
        lines += speed(args.traces / (SPEED if SPEED in swf else swf[0]), args.jobs)

    traces = [(read_swf(args.traces / name, limit=args.jobs), None) for name in swf]
    if (args.traces / ALIBABA_PODS).exists() and (args.traces / ALIBABA_NODES).exists():
        # the GPU trace's machine is its node list: 1,523 nodes, 6,212 GPUs
        with open(args.traces / ALIBABA_NODES, newline="") as handle:
            nodes = list(csv.DictReader(handle))
        size = (sum(int(n["cpu_milli"]) for n in nodes) // 1000, sum(int(n["gpu"]) for n in nodes))
        traces.append((read_alibaba(args.traces / ALIBABA_PODS, limit=args.jobs), size))
    if args.only:
        traces = [(t, s) for t, s in traces if args.only.lower() in t.name.lower()]
    for trace, size in traces:
        network = parse_clusters(SPLIT, *(size or (trace.max_cores,)))
        started = time.perf_counter()
        runs = compare(trace, network, POLICIES)
        took = time.perf_counter() - started
        header = (f"{trace.name}: {runs[0][1].jobs:,} jobs on {', '.join(f'{c.name} {c.cores}' for c in network)} "
                  f"cores ({took:.0f} s for all runs)")
        if trace.estimated_limits:
            header += f"; {trace.estimated_limits:,} jobs have no time limit in the trace: their run time stands in"
        rows = ["| policy | mean wait (h) | mean bounded slowdown | utilization a / b / c | owned util. | margin |",
                "|---|---:|---:|---|---:|---:|"]
        for sim_result, s in runs:
            util = " / ".join(f"{u * 100:.0f} %" for u in s.utilization.values())
            margin = "-" if s.margin_pct is None else f"{s.margin_pct:.1f} %"
            rows.append(f"| {s.policy} | {s.mean_wait_s / 3600:.2f} | {s.mean_bsld:.2f} | {util} | "
                        f"{s.owned_utilization * 100:.1f} % | {margin} |")
        by = {s.policy: s for _, s in runs}
        verdict = (f"earliest-start vs pooled bounded slowdown: {by['earliest_start'].mean_bsld / by['pooled'].mean_bsld:.2f}x; "
                   f"vs static: {(1 - by['earliest_start'].mean_bsld / by['static'].mean_bsld) * 100:.0f} % lower")
        console.print(header)
        for row in rows:
            console.print(row, highlight=False)
        console.print(verdict)
        lines += [header, "", *rows, "", verdict, ""]
        plot([r for r, _ in runs], args.plots, trace.name)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

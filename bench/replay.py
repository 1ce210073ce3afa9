#!/usr/bin/env python3
"""A short trace replayed on the real Slurm test bed, time-compressed, against the simulator.

The first N jobs of a trace (default: the SDSC-SP2 slice in the test fixtures)
are compressed (times / C, cores scaled to alpha's 64), submitted to alpha's
cpu partition at their compressed submit times as jobs that sleep, and the
simulator (EASY, the same engine as the router's prediction) schedules the
same compressed jobs. Printed: per job the simulated and the actual start,
and the mean / median / max absolute difference.

    scripts/slurm-testbed start; source /tmp/computenet-testbed/env.sh
    .venv/bin/python bench/replay.py [--trace FILE] [--jobs 25] [--compression 600] [--max-run 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from computenet.clusters.slurm.adapter import SlurmCluster
from computenet.clusters.slurm.transport import LocalTransport
from computenet.sim.replay import compress, replay
from computenet.sim.trace import read_swf

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path,
                        default=Path(__file__).parents[1] / "tests" / "fixtures" / "traces" / "sdsc-sp2-first-500.swf")
    parser.add_argument("--jobs", type=int, default=25)
    parser.add_argument("--compression", type=float, default=600.0, help="trace seconds per replay second")
    parser.add_argument("--max-run", type=float, default=40.0, help="cap on a replayed job's sleep (s)")
    args = parser.parse_args()
    conf = os.environ.get("SLURM_CONF_ALPHA")
    if not conf:
        raise SystemExit("start the test bed and source its env.sh first (SLURM_CONF_ALPHA)")
    trace = read_swf(args.trace)
    jobs = compress(trace, args.jobs, args.compression, 64, args.max_run)
    adapter = SlurmCluster("alpha", LocalTransport(conf))
    with tempfile.TemporaryDirectory() as work:
        report = replay(adapter, jobs, 64, "cpu", work, args.compression)
    table = Table(title=f"{trace.name}: {len(jobs)} jobs replayed on alpha/cpu, 1 s = {args.compression:g} trace s")
    for column in ("trace job", "cores", "limit", "run", "submit", "simulated start", "Slurm start", "difference"):
        table.add_column(column, justify="right")
    for r in report.rows:
        table.add_row(str(r.job.trace_id), str(r.job.cores), f"{r.job.limit_minutes} min", f"{r.job.run_s:.0f} s",
                      f"{r.job.submit_s:.1f}", f"{r.simulated_start_s:.1f}",
                      "-" if r.actual_start_s is None else f"{r.actual_start_s:.1f}",
                      "-" if r.error_s is None else f"{r.error_s:+.1f}")
    console.print(table)
    console.print(report.summary())


if __name__ == "__main__":
    main()

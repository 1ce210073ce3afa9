#!/usr/bin/env python3
"""Live wait prediction on the Slurm test bed: predicted start vs actual start, with the
overdue handling of issue 16 and with the one before it, from the same squeue snapshots.

Each round fills a partition with blocker jobs that ask for --limit minutes; the history
says jobs there run for --ratio of their limits, so a blocker that sleeps longer than that
is overdue while it runs. A probe job (the whole partition, or half of it) is queued
behind them. Every --every seconds until the probe starts, the partition's queue is read
(squeue, as `cnet estimate` reads it), the probe left out, and its start predicted as a
new job's: by routing.estimate as it is now (an overdue job runs on as long again as it
is overdue by, at least a minute) and by the old handling (an overdue job ends within a
minute, at every look). The error of an observation is predicted minus actual start.

    scripts/slurm-testbed start; source /tmp/computenet-testbed/env.sh
    .venv/bin/python bench/prediction_error.py [--scenario short|long] [--cluster beta] [--partition cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone

from computenet.clusters.slurm.adapter import SlurmCluster
from computenet.clusters.slurm.transport import LocalTransport
from computenet.clusters.base import SubmitRequest
from computenet.domain.resources import JobOptions, JobSpec, ResourceRequest
from computenet.routing import estimate
from computenet.routing.model import Target

# (blocker sleeps in s, probe share of the partition): blockers take a quarter each.
# short: limits of 4 min, the overdue blockers end soon after they are overdue;
# long: limits of 8 min, two blockers run on far past what the history expects (a heavy tail)
SCENARIOS = {
    "short": (4, [([30, 45, 110, 150], 1.0), ([20, 40, 120, 170], 0.5), ([25, 90, 100, 140], 1.0)]),
    "long": (8, [([40, 90, 300, 420], 1.0), ([50, 100, 240, 400], 0.5)]),
}


def _old_remaining(limit: float, expected_run: float, elapsed: float) -> tuple[float, float]:
    """The overdue handling before issue 16 (git bf09a93^): an overdue job ends within a minute."""
    left = max(0.0, limit - elapsed)
    return max(expected_run - elapsed, min(left, 60.0)), left


@contextmanager
def old_handling():
    new = estimate._remaining
    estimate._remaining = _old_remaining
    try:
        yield
    finally:
        estimate._remaining = new


def _submit(adapter, partition: str, cores: int, minutes: int, sleep_s: float, name: str, work: str) -> str:
    spec = JobSpec(resources=ResourceRequest(cpus_per_task=cores, time_limit_minutes=minutes, partition=partition),
                   options=JobOptions(job_name=name))
    return adapter.submit(SubmitRequest(script=f"#!/bin/bash\nsleep {sleep_s:.0f}\n", spec=spec, job_name=name,
                                        workdir=work, output="/dev/null", error="/dev/null", comment=f"bench:{name}"))


def run_round(adapter, target: Target, sleeps: list[float], share: float, limit_min: int, ratio: float,
              every_s: float, work: str) -> list[tuple[float, float, float]]:
    """[(seconds before the actual start, new error, old error)] for one round."""
    cores = target.nodes * target.cores_per_node
    quarter = max(1, cores // len(sleeps))
    blockers = [_submit(adapter, target.partition, quarter, limit_min, s, f"blocker{i}", work)
                for i, s in enumerate(sleeps)]
    probe_cores = max(1, round(cores * share))
    probe = _submit(adapter, target.partition, probe_cores, 1, 5, "probe", work)
    history = estimate.History(runtime_ratio=ratio)
    observations: list[tuple[datetime, float | None, float | None]] = []
    start = None
    deadline = time.monotonic() + limit_min * 60 + 120
    while start is None and time.monotonic() < deadline:
        queue = [e for e in adapter.queue() if e.native_id != probe and e.partition == target.partition]
        seen = datetime.now(timezone.utc)
        new = estimate.predict_wait(target, queue, probe_cores, 0, 60.0, history)
        with old_handling():
            old = estimate.predict_wait(target, queue, probe_cores, 0, 60.0, history)
        status = adapter.status([probe]).get(probe)
        if status is not None and status.start is not None:
            start = status.start
            break
        observations.append((seen, new, old))
        time.sleep(every_s)
    for native in blockers + [probe]:
        try:
            adapter.cancel(native)
        except Exception:  # already ended: nothing to cancel
            pass
    if start is None:
        raise SystemExit(f"the probe {probe} did not start before the deadline")
    rows = []
    for seen, new, old in observations:
        actual = (start - seen).total_seconds()
        rows.append((actual, (new if new is not None else float("inf")) - actual,
                     (old if old is not None else float("inf")) - actual))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster", default="beta")
    ap.add_argument("--partition", default="cpu")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="short")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ratio", type=float, default=0.25, help="history: run time / limit on the cluster")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between observations")
    args = ap.parse_args()
    conf = os.environ.get(f"SLURM_CONF_{args.cluster.upper()}")
    if not conf:
        raise SystemExit(f"start the test bed and source its env.sh first (SLURM_CONF_{args.cluster.upper()})")
    adapter = SlurmCluster(args.cluster, LocalTransport(conf))
    part = next((p for p in adapter.partitions() if p.name == args.partition), None)
    if part is None:
        raise SystemExit(f"cluster {args.cluster} has no partition {args.partition}")
    target = Target(args.cluster, part.name, part.nodes, part.cores_per_node, part.mem_per_node_mb,
                    max_time_minutes=part.max_time_minutes, default_time_minutes=part.default_time_minutes)
    limit, rounds = SCENARIOS[args.scenario]
    everything: list[tuple[float, float, float]] = []
    print(f"{args.cluster}/{args.partition}: {part.nodes * part.cores_per_node} cores; blockers ask "
          f"{limit} min, history ratio {args.ratio} (expected run {limit * 60 * args.ratio:.0f} s)\n")
    print("| round | blocker sleeps (s) | probe | observations | mean abs error now | mean abs error before | "
          "mean error now / before |")
    print("|---|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for n, (sleeps, share) in enumerate(rounds[:args.rounds], start=1):
            rows = run_round(adapter, target, sleeps, share, limit, args.ratio, args.every, work)
            everything += rows
            new, old = [r[1] for r in rows], [r[2] for r in rows]
            print(f"| {n} | {', '.join(map(str, sleeps))} | {share:.0%} | {len(rows)} | "
                  f"{statistics.mean(map(abs, new)):.1f} s | {statistics.mean(map(abs, old)):.1f} s | "
                  f"{statistics.mean(new):+.1f} / {statistics.mean(old):+.1f} s |", flush=True)
            time.sleep(5)  # let the cancelled jobs clear
    new, old = [r[1] for r in everything], [r[2] for r in everything]
    print(f"\nall {len(everything)} observations: mean abs error {statistics.mean(map(abs, new)):.1f} s now, "
          f"{statistics.mean(map(abs, old)):.1f} s before; median abs {statistics.median(map(abs, new)):.1f} / "
          f"{statistics.median(map(abs, old)):.1f} s; mean signed {statistics.mean(new):+.1f} / "
          f"{statistics.mean(old):+.1f} s")
    late = [r for r in everything if r[0] > 60]
    if late:
        print(f"observations more than a minute before the start ({len(late)}): mean abs "
              f"{statistics.mean(abs(r[1]) for r in late):.1f} s now, {statistics.mean(abs(r[2]) for r in late):.1f} s "
              "before")


if __name__ == "__main__":
    main()

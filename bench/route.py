#!/usr/bin/env python3
"""Routing decisions per second over a network of 50 clusters.

Synthetic network (seeded): 50 Slurm clusters, each with a CPU and a GPU
partition, each with a live-looking queue (running jobs with time used,
pending jobs with priorities). A decision is what a submission costs the
router: feasibility of 100 partitions, a price for each feasible one, an EASY
wait prediction on each one's queue, and a policy's ranking. The baseline in
the same process is feasibility alone (what pinning with -M/-p costs).

    .venv/bin/python bench/route.py [--clusters 50] [--decisions 2000] [--queue 40]
"""

from __future__ import annotations

import argparse
import platform as host
import random
import time
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from computenet.clusters.base import QueueEntry
from computenet.domain.resources import ResourceRequest
from computenet.domain.states import JobState
from computenet.routing import feasibility
from computenet.routing.estimate import plan, predict_wait, wait_on
from computenet.routing.model import Constraints, Target
from computenet.routing.router import Router

console = Console()


def network(n: int, queue: int, rng: random.Random):
    targets, queues = [], {}
    for i in range(n):
        name = f"c{i:02d}"
        nodes = rng.choice([(16, 32), (64, 64), (128, 48)])
        cpu = Target(name, "cpu", nodes=nodes[0], cores_per_node=nodes[1], mem_per_node_mb=256_000, is_default=True,
                     max_time_minutes=2880, ownership=rng.choice(["owned", "owned", "leased", "partner"]))
        gpu = Target(name, "gpu", nodes=8, cores_per_node=64, mem_per_node_mb=512_000, gpus_per_node=8,
                     gpu_type="a100", max_time_minutes=2880, ownership=cpu.ownership)
        targets += [cpu, gpu]
        entries = []
        for j in range(queue):
            part = "gpu" if rng.random() < 0.3 else "cpu"
            limit = rng.choice([600, 3600, 4 * 3600, 24 * 3600])
            running = j < queue // 2
            entries.append(QueueEntry(str(j), part, JobState.RUNNING if running else JobState.PENDING,
                                      rng.choice([1, 4, 16, 64, 256]), 1, rng.choice([0, 1, 8]) if part == "gpu" else 0,
                                      limit, rng.randrange(limit) if running else 0, rng.randrange(10_000)))
        queues[name] = entries
        prices = {name: Decimal(rng.choice(["0.04", "0.05", "0.06"]))}
        queues[name + ":price"] = prices[name]
    return targets, queues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--queue", type=int, default=40, help="jobs per cluster (half running)")
    args = parser.parse_args()
    rng = random.Random(7)
    targets, queues = network(args.clusters, args.queue, rng)
    jobs = [ResourceRequest(cpus_per_task=rng.choice([1, 4, 16, 32]), gpus_per_node=rng.choice([0, 0, 0, 1, 4]),
                            time_limit_minutes=rng.choice([10, 60, 240])) for _ in range(args.decisions)]
    router = Router("earliest_start")

    def price(t, minutes):
        return queues[t.cluster + ":price"] * minutes

    def wait(t, minutes):  # simulating each queue with the job in it, per decision
        return predict_wait(t, queues[t.cluster], res.total_cores, res.total_gpus, minutes * 60)

    plans = {}

    def planned_wait(t, minutes):  # what the service does: one plan per queue snapshot, reused
        if t.name not in plans:
            plans[t.name] = plan(t, queues[t.cluster])
        return wait_on(plans[t.name], res.total_cores, res.total_gpus, minutes * 60)

    start = time.perf_counter()
    for res in jobs:
        for t in targets:
            feasibility.check(res, t, Constraints())
    base = (time.perf_counter() - start) / len(jobs)
    start = time.perf_counter()
    direct = []
    for res in jobs:
        decision = router.route(res, targets, Constraints(), price, wait)
        direct.append(decision.chosen.target.name if decision.chosen else None)
    per = (time.perf_counter() - start) / len(jobs)
    start = time.perf_counter()
    for t in targets:
        plans[t.name] = plan(t, queues[t.cluster])
    build = time.perf_counter() - start
    start = time.perf_counter()
    via_plans = []
    for res in jobs:
        decision = router.route(res, targets, Constraints(), price, planned_wait)
        via_plans.append(decision.chosen.target.name if decision.chosen else None)
    per_planned = (time.perf_counter() - start) / len(jobs)
    assert via_plans == direct, "plans and direct simulation chose differently"
    chosen = sum(1 for name in direct if name)
    table = Table(title=f"routing over {args.clusters} clusters ({len(targets)} partitions, {args.queue} jobs each), "
                        f"{host.python_implementation()} {host.python_version()}, {host.machine()}")
    for column in ("what", "per decision", "decisions/s"):
        table.add_column(column, justify="right")
    table.add_row("feasibility only (baseline)", f"{base * 1000:.3f} ms", f"{1 / base:,.0f}")
    table.add_row("decision, each queue simulated with the job", f"{per * 1000:.3f} ms", f"{1 / per:,.0f}")
    table.add_row("decision on plans (one per queue snapshot)", f"{per_planned * 1000:.3f} ms",
                  f"{1 / per_planned:,.0f}")
    table.add_row(f"making the {len(targets)} plans (once per snapshot)", f"{build * 1000:.1f} ms", "")
    table.add_row("planned decision / feasibility alone", f"{per_planned / base:.1f}x", "")
    console.print(table)
    console.print(f"{chosen} of {len(jobs)} jobs found a place; both ways chose the same partition for every job")


if __name__ == "__main__":
    main()

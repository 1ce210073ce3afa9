#!/usr/bin/env python3
"""What a poll cycle costs the platform: CPU per cycle with N active jobs over C clusters (issue 19:
30,000 jobs over 3 clusters, aim <= 1 s).

A database (SQLite in a temp folder, or --database-url) holds N RUNNING jobs spread over C clusters.
Each cluster's adapter is the real Slurm adapter (argv builders, squeue/sacct parsers) over a transport
that answers squeue with every job RUNNING and sacct with nothing: so the cost measured is the
platform's own (reading the active jobs, parsing squeue's answer, comparing and writing), not
slurmctld's. The baseline in the same process is parsing that squeue answer alone.

    .venv/bin/python bench/poll.py [--jobs 30000] [--clusters 3] [--cycles 3] [--database-url URL] [--starting]

--starting: every job waits (PENDING) and the one cycle measured sees them all start (a state change
each: ORM objects, timeline events and their outbox rows), with no warm-up cycle.
"""

from __future__ import annotations

import argparse
import platform as host
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table
from sqlalchemy import insert, select, update

from computenet.clusters.slurm.adapter import SlurmCluster
from computenet.clusters.slurm.commands import SEP
from computenet.clusters.slurm.parsers import parse_squeue
from computenet.clusters.slurm.transport import CommandResult
from computenet.config import ClusterConfig, Price, Settings
from computenet.services.tenancy import accounts
from computenet.services.platform import Platform
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.db import Database
from computenet.store.models import Cluster, Job

console = Console()
START = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)


class CannedSlurm:
    """squeue: every job asked for is RUNNING; sacct, scontrol: nothing to say."""

    account = "computenet"

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}  # slurmctld's work, not the platform's: made once per question

    def run(self, argv, stdin=None, timeout=60, as_user=None, env=None) -> CommandResult:
        if argv[0] == "squeue" and any(a.startswith("--jobs=") for a in argv):
            asked = next(a for a in argv if a.startswith("--jobs="))
            if asked not in self.answers:
                self.answers[asked] = "\n".join(squeue_line(i) for i in asked[len("--jobs="):].split(",")) + "\n"
            return CommandResult(tuple(argv), 0, self.answers[asked], "", 0.0)
        return CommandResult(tuple(argv), 0, "", "", 0.0)

    def job_environment(self, login, home):
        return {}

    def ensure_dir(self, path, as_user=None, owner=None):
        pass


def squeue_line(native: str) -> str:
    return SEP.join([native, native, "RUNNING", "None", "2026-12-07T08:00:00", "2026-12-07T08:01:00",
                     "2026-12-08T08:01:00", "cpu", "1", "4", "N/A", "n1", "1-00:00:00", f"job{native}"])


def build(url: str, data: Path, jobs: int, clusters: int) -> Platform:
    names = [f"p{i}" for i in range(clusters)]
    configs = [ClusterConfig(name=n, kind="local", slots=64, mem_mb=64000, poll_interval_s=60,
                             prices={"*": Price(core_hour=Decimal("0.10"))}) for n in names]
    settings = Settings(_env_prefix="COMPUTENET_BENCH_IGNORED_", data_dir=data, database_url=url, clusters=configs,
                        interim_charge_seconds=10 ** 7)
    db = Database(url)
    db.migrate()
    platform = Platform(settings, db=db)
    platform.start()
    with db.session() as session:
        user = accounts.create_user(session, f"bench{int(time.time())}")
        account = accounts.create_account(session, f"{user.name}-lab", owner=user)
        ids = {c.name: c.id for c in session.scalars(select(Cluster).where(Cluster.name.in_(names)))}
        owner_id, account_id = user.id, account.id
    rows = []
    for i in track(range(jobs), description=f"{jobs:,} running jobs", console=console, transient=True):
        cluster = names[i % clusters]
        rows.append(dict(owner_id=owner_id, account_id=account_id, cluster_id=ids[cluster], partition="cpu",
                         name=f"job{i}", native_id=str(100000 + i), state="RUNNING", spec={}, script="#!/bin/sh\n",
                         script_args=[], workdir="/w", stdout_path="/w/o", stderr_path="/w/e", cores=4, gpus=0,
                         time_limit_minutes=1440, max_cost=Decimal("10.00"), submitted_at=START,
                         start_time=START + timedelta(minutes=1)))
        if len(rows) == 5000:
            with db.session() as session:
                session.execute(insert(Job), rows)
            rows = []
    if rows:
        with db.session() as session:
            session.execute(insert(Job), rows)
    for name in names:
        platform.adapters[name] = SlurmCluster(name, CannedSlurm(), tz=timezone.utc)
    return platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--starting", action="store_true", help="one cycle in which every job starts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        platform = build(url, Path(folder) / "data", args.jobs, args.clusters)
        pollers = [ClusterPoller(platform, name) for name in platform.adapters]
        if args.starting:
            with platform.db.session() as session:
                session.execute(update(Job).values(state="PENDING", start_time=None))
            args.cycles = 1
        for poller in pollers if not args.starting else ():  # warm: the first pass may write (states,
            poller.run_once()  # start times) that later ones do not
        cycles, walls = [], []
        for _ in range(args.cycles):
            cpu, wall = time.process_time(), time.perf_counter()
            polled = sum(p.run_once().polled for p in pollers)
            cycles.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        assert polled == args.jobs, f"polled {polled} of {args.jobs}"
        answer = CannedSlurm().run(["squeue", "--jobs=" + ",".join(str(100000 + i) for i in range(args.jobs))]).stdout
        cpu = time.process_time()
        parsed = parse_squeue(answer, timezone.utc)
        parse_s = time.process_time() - cpu
        assert len(parsed) == args.jobs
        platform.stop() if hasattr(platform, "stop") else None
    table = Table(title=f"poll cycle: {args.jobs:,} {'starting' if args.starting else 'running'} jobs over "
                        f"{args.clusters} clusters "
                        f"({'PostgreSQL' if args.database_url else 'SQLite'})")
    for column in ("what", "CPU s (median)", "wall s (median)", "× parse alone"):
        table.add_column(column, justify="right" if column != "what" else "left")
    table.add_row("whole cycle (all clusters)", f"{statistics.median(cycles):.3f}", f"{statistics.median(walls):.3f}",
                  f"{statistics.median(cycles) / parse_s:.1f}")
    table.add_row("parse squeue alone (baseline)", f"{parse_s:.3f}", "", "1.0")
    console.print(table)
    console.print(f"machine: {host.node()} {host.machine()}, Python {sys.version.split()[0]}, "
                  f"{time.strftime('%Y-%m-%d')}", markup=False)


if __name__ == "__main__":
    main()

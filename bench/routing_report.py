#!/usr/bin/env python3
"""What the routing report costs: the jobs' routing decisions are left out of the warehouse copy every
report makes (the API's snapshot, ``cnet report``) and read once, as the database's JSON text, when the
routing report first runs; this times that read against the copy, and against decoding and re-encoding
the decisions as other JSON columns are copied; then the routing report itself.

Makes an SQLite database of --jobs jobs over a year, each with a decision as the router stores it
(routing.model Decision.to_json: three candidates with reasons and explanations in both forms).

    .venv/bin/python bench/routing_report.py [--jobs 50000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert

from computenet.analytics import reports, warehouse
from computenet.routing.model import Candidate, Decision, Target
from computenet.routing.policies import earliest_start
from computenet.store.db import Database, make_engine
from computenet.store.models import Account, Base, Cluster, Job, Tenant, User

START = datetime(2023, 1, 1, tzinfo=timezone.utc)


def decision(i: int) -> dict:
    targets = [Target(name, "cpu", 10, 64, 256000, ownership=own) for name, own in
               (("own", "owned"), ("lease", "leased"), ("partner", "partner"))]
    cands = [Candidate(t, price=Decimal(100 + (i + k) % 7 * 10), wait_s=float((i * 37 + k * 600) % 7200))
             for k, t in enumerate(targets)]
    rejected = Candidate(Target("gpu", "a100", 2, 64, 512000, 8), feasible=False)
    rejected.refuse("needs 0 GPUs; the partition has only GPU nodes")
    return Decision("earliest_start", earliest_start(cands), [rejected], START).to_json() | {
        "constraints": {"cluster": None, "partition": None, "region": None, "max_price": None}}


def build(url: str, jobs: int) -> None:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for name in ("own", "lease", "partner", "gpu"):
            conn.execute(insert(Cluster).values(name=name, kind="slurm", ownership="owned"))
        conn.execute(insert(Tenant).values(name="uni", segment="university"))
        conn.execute(insert(Account).values(name="lab", tenant_id=1))
        conn.execute(insert(User).values(name="u", created_at=START))
        rows = []
        for i in range(jobs):
            at = START + timedelta(minutes=10 * i % (365 * 24 * 60))
            rows.append(dict(owner_id=1, account_id=1, cluster_id=1 + i % 3, partition="cpu", name=f"j{i}",
                             native_id=str(i), state="COMPLETED", spec={}, script="#!/bin/sh\n", workdir="/w",
                             stdout_path="/w/o", stderr_path="/w/e", cores=4, gpus=0, submitted_at=at,
                             start_time=at + timedelta(minutes=i % 90), end_time=at + timedelta(hours=2),
                             predicted_start=at + timedelta(minutes=i % 60), routing=decision(i)))
            if len(rows) == 10_000:
                conn.execute(insert(Job), rows)
                rows = []
        if rows:
            conn.execute(insert(Job), rows)
    engine.dispose()


def seconds(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        build(url, args.jobs)
        database = Database(url)
        copy = min(seconds(lambda: warehouse.Warehouse.from_database(database, reports_only=True).close())
                   for _ in range(3))
        as_text = min(seconds(lambda: warehouse.read_decisions(database.engine)) for _ in range(3))
        decoded = min(seconds(lambda: warehouse.read_table(database.engine, "jobs", ("id", "routing")))
                      for _ in range(3))
        with warehouse.Warehouse.from_database(database, reports_only=True) as wh:
            began = time.perf_counter()
            report = reports.run("routing", wh, "2023-01-01", "2023-12-31", "month")
            first = time.perf_counter() - began
            again = seconds(lambda: reports.run("routing", wh, "2023-01-01", "2023-12-31", "month"))
        database.dispose()
    print(f"{args.jobs:,} jobs with a stored routing decision (best of 3, SQLite)")
    print(f"  copy of the tables for reports (no decisions):   {copy:7.2f} s")
    print(f"  decisions read as the database's JSON text:      {as_text:7.2f} s  ({as_text / copy:.2f}x the copy)")
    print(f"  decisions decoded and re-encoded (JSON columns): {decoded:7.2f} s  ({decoded / as_text:.1f}x as text)")
    print(f"  routing report over the year by month, first:    {first:7.2f} s  (reads the decisions)")
    print(f"  routing report again on the same warehouse:      {again:7.2f} s  "
          f"({sum(r['jobs'] for r in report.rows if r['key'] == '(all)'):,} jobs)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Monitoring costs: the sampling agent's own CPU per hour of job, and how many samples per second
the control plane stores.

Agent: runs the real agent (a subprocess, as in a job) against a tree of --procs sleeping processes
for --seconds at a 1 s interval and reads its CPU time from /proc; per hour at the production 10 s
interval that is cpu / samples x 360. Baseline in the same run: sampling the same tree with `ps`
(what a shell-script collector would do), also per sample.

Ingest: --samples samples (a day of a job at 10 s is 8,640) stored through the platform's ingest()
in batches of --batch on SQLite (and PostgreSQL with --pg URL), next to a plain executemany INSERT of
the same rows in the same database (the baseline); then the same POSTed to `cnet server` in its own
process, as agents send them.

    .venv/bin/python bench/agent.py [--seconds 60] [--procs 20] [--samples 100000] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import platform as host
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()
AGENT = Path(__file__).parents[1] / "src" / "computenet" / "monitoring" / "agent.py"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agent_cost(seconds: float, procs: int) -> dict:
    tree = subprocess.Popen(["bash", "-c", f"for i in $(seq {procs}); do sleep 3600 & done; wait"])
    work = Path(tempfile.mkdtemp(prefix="cnet-bench-agent-"))
    try:
        time.sleep(0.5)
        out = work / "samples.jsonl"
        agent = subprocess.Popen(["python3", str(AGENT), "--pid", str(tree.pid), "--interval", "1",
                                  "--out", str(out), "--max-seconds", str(seconds)])
        time.sleep(seconds - 0.5)
        agent_cpu = _cpu_seconds(agent.pid)
        agent.wait(30)
        samples = len(out.read_text().splitlines())
        # baseline: one `ps` per sample over the same tree
        started = time.process_time()
        ps_cpu = 0.0
        for _ in range(10):
            before = os.times()
            subprocess.run(["ps", "-o", "pid,ppid,rss,time,nlwp", "--ppid", str(tree.pid)], capture_output=True)
            after = os.times()
            ps_cpu += (after.children_user - before.children_user) + (after.children_system - before.children_system)
        del started
    finally:
        tree.kill()
        subprocess.run(["pkill", "-P", str(tree.pid)], capture_output=True)
        tree.wait()
    per_sample = agent_cpu / max(samples, 1)
    return {"samples": samples, "agent_cpu_s": agent_cpu, "per_sample_ms": per_sample * 1000,
            "cpu_s_per_job_hour_at_10s": per_sample * 360, "share_of_a_core_at_10s": per_sample / 10,
            "ps_per_sample_ms": ps_cpu / 10 * 1000}


def ingest_rate(url: str, n: int, batch: int) -> dict:
    from sqlalchemy import insert

    from computenet.monitoring.series import Sample
    from computenet.services.tenancy import accounts
    from computenet.services.monitoring.monitoring import ingest
    from computenet.store.db import Database
    from computenet.store.models import Cluster, Job, JobSample

    db = Database(url)
    db.migrate()
    with db.session() as session:
        user = accounts.create_user(session, f"bench{int(time.time() * 1000) % 10**9}")
        acc = accounts.create_account(session, f"{user.name}-lab", owner=user)
        cluster = session.query(Cluster).first() or Cluster(name=f"bench-{user.name}", kind="local")
        session.add(cluster)
        session.flush()
        jobs = []
        for _ in range(2):
            job = Job(owner_id=user.id, account_id=acc.id, cluster_id=cluster.id, partition="p", name="bench",
                      state="RUNNING", spec={}, script="", workdir="", stdout_path="", stderr_path="", cores=1)
            session.add(job)
            session.flush()
            jobs.append(job.id)
    t0 = 1.8e9
    samples = [Sample.from_json({"t": t0 + i * 10, "seq": i, "cpu_s": i * 9.5, "cores": 0.95, "rss": 10**9,
                                 "read": i * 4096, "write": i * 8192, "nproc": 3, "nthreads": 5, "gpus": []})
               for i in range(n)]
    started = time.perf_counter()
    for start in range(0, n, batch):
        with db.session() as session:
            ingest(session, jobs[0], samples[start:start + batch])
    platform_s = time.perf_counter() - started
    rows = [{"job_id": jobs[1], "t": s.t, "seq": s.seq, "cpu_s": s.cpu_s, "cores": s.cores, "rss": s.rss,
             "read_bytes": s.read, "write_bytes": s.write, "nproc": s.nproc, "nthreads": s.nthreads, "gpus": None}
            for s in samples]
    started = time.perf_counter()
    for start in range(0, n, batch):
        with db.session() as session:
            session.execute(insert(JobSample), rows[start:start + batch])
    raw_s = time.perf_counter() - started
    db.dispose()
    return {"samples": n, "batch": batch, "platform_per_s": n / platform_s, "raw_insert_per_s": n / raw_s,
            "ratio": raw_s / platform_s}


def http_ingest_rate(n: int, batch: int) -> dict:
    """POST /monitoring/samples to `cnet server` in its own process (SQLite), as agents do."""
    import httpx

    import server_process

    from computenet.config import Settings
    from computenet.services.tenancy import accounts
    from computenet.monitoring.agent_key import agent_token
    from computenet.services.platform import Platform
    from computenet.store.models import Cluster, Job

    work = Path(tempfile.mkdtemp(prefix="cnet-bench-ingest-"))
    settings = Settings(_env_prefix="COMPUTENET_BENCH_UNUSED_", data_dir=work, monitoring={"agent_secret": "bench"})
    platform = Platform(settings)
    platform.start()
    with platform.db.session() as session:
        user = accounts.create_user(session, "bench")
        acc = accounts.create_account(session, "bench-lab", owner=user)
        cluster = session.query(Cluster).first()
        job = Job(owner_id=user.id, account_id=acc.id, cluster_id=cluster.id, partition="local", name="bench",
                  state="RUNNING", spec={}, script="", workdir="", stdout_path="", stderr_path="", cores=1,
                  monitor_state="on")
        session.add(job)
        session.flush()
        job_id = job.id
    token = agent_token(platform.settings, job_id)
    platform.db.dispose()
    server, url = server_process.start(work, {"COMPUTENET_MONITORING__AGENT_SECRET": "bench"})
    try:
        batches = [[{"t": 1.8e9 + i * 10, "seq": i, "cpu_s": i * 9.5, "cores": 0.95, "rss": 10**9, "read": 0,
                     "write": 0, "nproc": 3, "nthreads": 5, "gpus": []} for i in range(start, min(n, start + batch))]
                   for start in range(0, n, batch)]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as client:
            started = time.perf_counter()
            stored = 0
            for samples in batches:
                answer = client.post("/monitoring/samples", json={"job": str(job_id), "samples": samples})
                answer.raise_for_status()
                stored += answer.json()["stored"]
            seconds = time.perf_counter() - started
    finally:
        server_process.stop(server)
    assert stored == n, f"stored {stored} of {n}"
    return {"samples": n, "batch": batch, "http_per_s": n / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--procs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=360)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP ingest through cnet server")
    parser.add_argument("--pg", default=None, help="also PostgreSQL at this URL (e.g. postgresql://postgres@127.0.0.1/test)")
    args = parser.parse_args()
    console.print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {host.node()}, {os.cpu_count()} cores, "
                  f"Python {host.python_version()}")
    cost = agent_cost(args.seconds, args.procs)
    table = Table(title=f"agent against {args.procs} sleeping processes for {args.seconds:g} s at 1 s")
    for column in ("samples", "CPU per sample", "CPU s per job-hour at 10 s", "share of one core at 10 s",
                   "ps per sample (baseline)"):
        table.add_column(column, justify="right")
    table.add_row(str(cost["samples"]), f"{cost['per_sample_ms']:.2f} ms", f"{cost['cpu_s_per_job_hour_at_10s']:.2f}",
                  f"{100 * cost['share_of_a_core_at_10s']:.3f} %", f"{cost['ps_per_sample_ms']:.2f} ms")
    console.print(table)
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db")]
        if args.pg:
            targets.append(("PostgreSQL", args.pg))
        table = Table(title=f"ingest of {args.samples} samples in batches of {args.batch}")
        for column in ("database", "platform ingest/s", "plain INSERT/s", "platform / plain"):
            table.add_column(column, justify="right")
        for name, url in targets:
            r = ingest_rate(url, args.samples, args.batch)
            table.add_row(name, f"{r['platform_per_s']:,.0f}", f"{r['raw_insert_per_s']:,.0f}", f"{r['ratio']:.2f}")
        console.print(table)
    if not args.no_http:
        r = http_ingest_rate(args.samples, args.batch)
        console.print(f"HTTP: POST /monitoring/samples to `cnet server` (own process, SQLite), batches of "
                      f"{args.batch}: {r['http_per_s']:,.0f} samples/s "
                      f"(= {r['http_per_s'] * 10:,.0f} jobs sampled every 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

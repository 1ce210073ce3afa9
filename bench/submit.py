#!/usr/bin/env python3
"""Submission throughput: N jobs through the ComputeNet API vs N raw `sbatch` calls.

Needs the Slurm test bed (scripts/slurm-testbed start; COMPUTENET_TESTBED set,
or pass --slurm-conf). Both sides submit the same script, held (-H) so that
nothing runs, to the same cluster, in the same process; raw sbatch runs
before and after the API round, so drift on the machine shows. Held jobs are
cancelled at the end.

    .venv/bin/python bench/submit.py [--n 200] [--database-url URL]

--mode accept measures the accept-then-submit path instead (POST /jobs returns once the job and its
hold are written; a worker's submitter task sends it): `cnet server` processes of their own (one
--role all on SQLite; --apis N --role api replicas and one --role worker on PostgreSQL), --clients
concurrent HTTP clients spread over the replicas; accept latency p50/p95 as the clients see it, and
end-to-end throughput: jobs on Slurm (native id recorded) per second from the first POST to the last
id, against raw sequential sbatch before and after in the same run.

    .venv/bin/python bench/submit.py --mode accept --n 300 --clients 8 [--apis 2 --database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import ClusterConfig, Price, Settings
from computenet.services.tenancy import accounts
from computenet.services.platform import Platform

SCRIPT = "#!/bin/bash\n#SBATCH -t 1 -c 1\necho benchmark\n"
console = Console()


def raw_round(n: int, slurm_conf: str, workdir: str, progress: Progress, label: str) -> tuple[list[float], list[str]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURM_CONF": slurm_conf, "LANG": "C.UTF-8"}
    argv = ["sbatch", "--parsable", "--hold", "--job-name=bench-raw", f"--chdir={workdir}",
            f"--output={workdir}/raw-%j.out", "--time=1", "--cpus-per-task=1"]
    times, ids = [], []
    task = progress.add_task(label, total=n)
    for _ in range(n):
        started = time.perf_counter()
        proc = subprocess.run(argv, input=SCRIPT, capture_output=True, text=True, env=env, check=True)
        times.append(time.perf_counter() - started)
        ids.append(proc.stdout.strip().split(";")[0])
        progress.advance(task)
    return times, ids


def api_round(n: int, client: ComputeNetClient, progress: Progress) -> tuple[list[float], list[str]]:
    times, ids = [], []
    task = progress.add_task("ComputeNet API", total=n)
    for _ in range(n):
        started = time.perf_counter()
        job = client.submit(SCRIPT, ["--hold"], "bench.sh")
        times.append(time.perf_counter() - started)
        ids.append(job.native_id)
        progress.advance(task)
    return times, ids


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "jobs_per_s": len(times) / sum(times),
        "mean_ms": statistics.mean(times) * 1000,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "total_s": sum(times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--slurm-conf", default=None)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument("--mode", choices=("sync", "accept"), default="sync")
    parser.add_argument("--apis", type=int, default=1, help="accept mode: API processes (PostgreSQL for 2+)")
    parser.add_argument("--clients", type=int, default=8, help="accept mode: concurrent HTTP clients")
    args = parser.parse_args()
    if args.mode == "accept":
        from submit_accept import main as accept_main

        return accept_main(args)
    base = os.environ.get("COMPUTENET_TESTBED", "/tmp/computenet-testbed")
    slurm_conf = args.slurm_conf or os.environ.get("SLURM_CONF_ALPHA") or f"{base}/alpha/etc/slurm.conf"
    if not Path(slurm_conf).exists():
        console.print(f"[red]no Slurm config at {slurm_conf}: start the test bed first (scripts/slurm-testbed start)")
        return 2
    data = Path(tempfile.mkdtemp(prefix="cnet-bench-"))
    work = data / "work"
    work.mkdir()
    settings = Settings(
        _env_prefix="COMPUTENET_BENCH_IGNORED_", data_dir=data, database_url=args.database_url,
        clusters=[ClusterConfig(name="alpha", kind="slurm", slurm_conf=slurm_conf, workdir_root=str(work),
                                prices={"*": Price(core_hour=Decimal("0.05"))})],
    )
    platform = Platform(settings)
    platform.start()
    with platform.db.session() as session:
        run = uuid.uuid4().hex[:8]  # a shared database may hold earlier runs
        user = accounts.create_user(session, f"bench-{run}")
        account = accounts.create_account(session, f"bench-{run}", owner=user)
        accounts.top_up(session, account, "1000000", key=f"bench:{run}")
        token = accounts.issue_token(session, user)
    all_ids: list[str] = []
    try:
        with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
            client.submit(SCRIPT, ["--hold"])  # warm up connections and caches; not counted
            with Progress(console=console) as progress:
                raw1, ids = raw_round(args.n, slurm_conf, str(work), progress, "raw sbatch (before)")
                all_ids += ids
                api, ids = api_round(args.n, client, progress)
                all_ids += ids
                raw2, ids = raw_round(args.n, slurm_conf, str(work), progress, "raw sbatch (after)")
                all_ids += ids
    finally:
        env = {"PATH": os.environ.get("PATH", ""), "SLURM_CONF": slurm_conf}
        subprocess.run(["scancel", "--name=bench-raw"], env=env, check=False)
        for chunk in range(0, len(all_ids), 500):
            subprocess.run(["scancel", *all_ids[chunk:chunk + 500]], env=env, check=False)
        subprocess.run(["scancel", "--name=bench"], env=env, check=False)
        platform.db.dispose()
    raw = raw1 + raw2
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
        "database": platform.db.engine.url.render_as_string(hide_password=True).split("?")[0],
        "n": args.n,
        "raw_sbatch_before": summary(raw1),
        "raw_sbatch_after": summary(raw2),
        "raw_sbatch": summary(raw),
        "api": summary(api),
    }
    results["api_vs_raw_throughput"] = results["api"]["jobs_per_s"] / results["raw_sbatch"]["jobs_per_s"]
    results["api_overhead_ms_per_job"] = results["api"]["mean_ms"] - results["raw_sbatch"]["mean_ms"]
    table = Table(title=f"{args.n} submissions each ({results['database'].split(':')[0]})")
    for column in ("path", "jobs/s", "mean ms", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for label, key in (("raw sbatch, before", "raw_sbatch_before"), ("ComputeNet API", "api"),
                       ("raw sbatch, after", "raw_sbatch_after")):
        s = results[key]
        table.add_row(label, f"{s['jobs_per_s']:.1f}", f"{s['mean_ms']:.1f}", f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}")
    console.print(table)
    console.print(f"API throughput / raw sbatch throughput = {results['api_vs_raw_throughput']:.2f} "
                  f"(overhead {results['api_overhead_ms_per_job']:.1f} ms per job)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"submit-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

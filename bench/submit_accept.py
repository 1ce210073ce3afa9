"""bench/submit.py --mode accept: the accept-then-submit path against raw sbatch (see submit.py's docstring)."""

from __future__ import annotations

import itertools
import json
import os
import platform as host
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

import server_process
from submit import SCRIPT, raw_round, summary
from computenet.config import load_settings
from computenet.services.tenancy import accounts
from computenet.services.platform import Platform
from computenet.store.models import Job

console = Console()


def _config(data: Path, slurm_conf: str, work: Path) -> Path:
    path = data / "config.toml"
    path.write_text(f'''[server]
rate_limit = ""

[[clusters]]
name = "alpha"
kind = "slurm"
slurm_conf = "{slurm_conf}"
workdir_root = "{work}"
poll_interval_s = 2.0
prices = {{ "*" = {{ core_hour = "0.05" }} }}
''')
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def drive(urls: list[str], token: str, n: int, clients: int) -> tuple[list[float], list[int], float]:
    """n POST /jobs from ``clients`` threads over the replicas; latencies, job ids, seconds for all n."""
    counter = itertools.count()
    latencies: list[float] = []
    ids: list[int] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(k: int) -> None:
        with httpx.Client(base_url=urls[k % len(urls)], headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as http:
            while (i := next(counter)) < n:
                started = time.perf_counter()
                response = http.post("/jobs", json={"script": SCRIPT, "args": ["--hold"], "script_name": "bench.sh"})
                took = time.perf_counter() - started
                with lock:
                    if response.status_code != 202:
                        errors.append(response.text[:200])
                        continue
                    latencies.append(took)
                    ids.append(response.json()["id"])

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} submissions refused, e.g. {errors[0]}")
    return latencies, ids, time.perf_counter() - started


def wait_submitted(platform: Platform, ids: list[int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with platform.db.session() as session:
            left = session.scalar(select(func.count(Job.id)).where(Job.id.in_(ids), Job.native_id.is_(None)))
        if not left:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{left} accepted jobs still without a Slurm id after {timeout} s")
        time.sleep(0.05)


def main(args) -> int:
    base = os.environ.get("COMPUTENET_TESTBED", "/tmp/computenet-testbed")
    slurm_conf = args.slurm_conf or os.environ.get("SLURM_CONF_ALPHA") or f"{base}/alpha/etc/slurm.conf"
    if not Path(slurm_conf).exists():
        console.print(f"[red]no Slurm config at {slurm_conf}: start the test bed first")
        return 2
    if args.apis > 1 and not args.database_url:
        console.print("[red]several API processes need PostgreSQL (--database-url)")
        return 2
    data = Path(tempfile.mkdtemp(prefix="cnet-bench-accept-"))
    work = data / "work"
    work.mkdir()
    os.chmod(data, 0o755)
    config = _config(data, slurm_conf, work)
    env = {"COMPUTENET_CONFIG": str(config)}
    if args.database_url:
        env["COMPUTENET_DATABASE_URL"] = args.database_url
    settings = load_settings(config, data_dir=data, database_url=args.database_url)
    platform = Platform(settings)
    platform.start()
    run = uuid.uuid4().hex[:8]
    with platform.db.session() as session:
        user = accounts.create_user(session, f"bench-{run}")
        account = accounts.create_account(session, f"bench-{run}", owner=user)
        accounts.top_up(session, account, "1000000", key=f"bench:{run}")
        token = accounts.issue_token(session, user)
    procs, urls, ids, raw_ids = [], [], [], []
    try:
        if args.database_url:
            for _ in range(args.apis):
                proc, url = server_process.start(data, env, args=("--role", "api"))
                procs.append(proc)
                urls.append(url)
            procs.append(server_process.start(data, env, args=("--role", "worker"))[0])
        else:
            proc, url = server_process.start(data, env)  # --role all: the embedded default
            procs.append(proc)
            urls.append(url)
        warm, warm_ids, _ = drive(urls, token, 4 * args.clients, args.clients)  # connections, caches; not counted
        wait_submitted(platform, warm_ids)
        ids += warm_ids
        with Progress(console=console) as progress:
            raw1, got = raw_round(args.n, slurm_conf, str(work), progress, "raw sbatch (before)")
            raw_ids += got
        started = time.perf_counter()
        latencies, got, accept_s = drive(urls, token, args.n, args.clients)
        ids += got
        wait_submitted(platform, got)
        end_to_end_s = time.perf_counter() - started
        with Progress(console=console) as progress:
            raw2, got = raw_round(args.n, slurm_conf, str(work), progress, "raw sbatch (after)")
            raw_ids += got
        # one client alone: the latency a single user sees
        single, got, _ = drive(urls, token, min(args.n, 100), 1)
        ids += got
        wait_submitted(platform, got)
    finally:
        for proc in procs:
            server_process.stop(proc)
        slurm_env = {"PATH": os.environ.get("PATH", ""), "SLURM_CONF": slurm_conf}
        with platform.db.session() as session:
            natives = [n for n in session.scalars(select(Job.native_id).where(Job.id.in_(ids))) if n]
        for chunk in range(0, len(natives + raw_ids), 500):
            subprocess.run(["scancel", *(natives + raw_ids)[chunk:chunk + 500]], env=slurm_env, check=False)
        platform.db.dispose()
    raw = summary(raw1 + raw2)
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
        "database": "postgresql" if args.database_url else "sqlite",
        "api_processes": args.apis, "clients": args.clients, "n": args.n,
        "raw_sbatch_jobs_per_s": raw["jobs_per_s"],
        "raw_sbatch_before_jobs_per_s": summary(raw1)["jobs_per_s"],
        "raw_sbatch_after_jobs_per_s": summary(raw2)["jobs_per_s"],
        "accept_p50_ms": _percentile(latencies, 0.50), "accept_p95_ms": _percentile(latencies, 0.95),
        "accepted_per_s": args.n / accept_s,
        "single_client_accept_p50_ms": _percentile(single, 0.50),
        "single_client_accept_p95_ms": _percentile(single, 0.95),
        "submitted_on_slurm_per_s": args.n / end_to_end_s,
    }
    results["end_to_end_vs_raw"] = results["submitted_on_slurm_per_s"] / raw["jobs_per_s"]
    table = Table(title=f"accept path, {args.n} jobs, {results['database']}, {args.apis} API process(es), "
                        f"{args.clients} clients")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in results.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.2f}")
    console.print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"submit-accept-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"results in {path}")
    return 0

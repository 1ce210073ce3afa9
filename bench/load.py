#!/usr/bin/env python3
"""A bounded loopback load run: two API replicas on PostgreSQL with a large job table, driven by locust.

Why locust: a maintained load tool (installable from the package index: `pip install -e ".[bench]"`)
that paces users at a set throughput and reports percentiles per route, so this script only sets
the stage. It runs headless in a process of its own (it patches the standard library with gevent).

The stage: a database of its own (``--database-url``, created if missing), ``--users`` platform users
owning ``--rows`` jobs between them (bulk SQL insert: ended, settled jobs on one cluster), two
``cnet server --role api`` replicas, no worker (accepted jobs stay SUBMITTING: this measures the
front door, and the holds stay on a well-funded account). The mix, each request to a random replica as
a random user: job list 40 %, job page 25 %, submit (held: -H, accept path) 10 %, estimate 10 %,
balance 15 %. Each rate in ``--rates`` runs ``--seconds`` (all of them together at most 3 minutes);
p50/p95/p99 per route, and the highest rate whose p99 over all routes is at most 200 ms.

    .venv/bin/python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/cnet_load \\
        --rows 1000000 --rates 25,50,100,200 --seconds 40
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform as host
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
import server_process  # noqa: E402

from computenet.config import load_settings  # noqa: E402
from computenet.services.tenancy import accounts  # noqa: E402
from computenet.services.platform import Platform  # noqa: E402

MAX_TOTAL_S = 180
P99_BOUND_MS = 200.0


def ensure_database(url: str, fresh: bool) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def fill(platform: Platform, users: int, rows: int) -> tuple[list[str], list[list[int]]]:
    """Users with tokens and funded accounts, and ``rows`` ended jobs among them (one SQL statement)."""
    run = uuid.uuid4().hex[:6]
    tokens, owners = [], []
    with platform.db.session() as session:
        for i in range(users):
            user = accounts.create_user(session, f"load-{run}-{i}")
            account = accounts.create_account(session, f"load-{run}-{i}", owner=user)
            accounts.top_up(session, account, "100000000", key=f"load:{run}:{i}")
            tokens.append(accounts.issue_token(session, user, "load"))
            owners.append((user.id, account.id))
        cluster_id = session.execute(text("SELECT id FROM clusters WHERE name = 'local'")).scalar_one()
    started = time.perf_counter()
    with platform.db.engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE load_owners (n int, owner_id int, account_id int)"))
        conn.execute(text("INSERT INTO load_owners VALUES (:n, :o, :a)"),
                     [{"n": n, "o": o, "a": a} for n, (o, a) in enumerate(owners)])
        conn.execute(text("""
            INSERT INTO jobs (owner_id, account_id, cluster_id, partition, name, native_id, state, spec, script,
                              script_args, workdir, stdout_path, stderr_path, cores, gpus, time_limit_minutes,
                              max_cost, interim_charged, submitted_at, start_time, end_time, exit_code, origin,
                              settled_at, needs_reconcile, updated_at, reroutes)
            SELECT o.owner_id, o.account_id, :cluster, 'local', 'bulk-' || g, (1000000 + g)::text, 'COMPLETED',
                   '{"resources": {}, "options": {}}', '#!/bin/bash\ntrue\n', '[]', '/w', '/w/o', '/w/o', 1, 0, 5,
                   6000, 0, now() - make_interval(secs => g), now() - make_interval(secs => g),
                   now() - make_interval(secs => g - 60), 0, 'platform', now(), false, now(), 0
            FROM generate_series(1, :rows) AS g JOIN load_owners o ON o.n = g % :users
        """), {"cluster": cluster_id, "rows": rows, "users": users})
        conn.execute(text("ANALYZE jobs"))
        ids = conn.execute(text("""SELECT owner_id, (array_agg(id ORDER BY id DESC))[1:50] FROM jobs
                                   WHERE owner_id = ANY(:owners) GROUP BY owner_id"""),
                           {"owners": [o for o, _ in owners]}).all()
    print(f"inserted {rows} jobs for {users} users in {time.perf_counter() - started:.1f} s", flush=True)
    by_owner = dict(ids)
    return tokens, [by_owner.get(o, []) for o, _ in owners]


def run_rate(urls: list[str], tokens: list[str], job_ids: list[list[int]], rate: int, seconds: int,
             out: Path) -> dict:
    """One locust run at ``rate`` requests/s; {route: {p50, p95, p99, count, failures}}."""
    users = max(5, min(rate // 2, 200))
    env = {**os.environ, "LOAD_URLS": json.dumps(urls), "LOAD_TOKENS": json.dumps(tokens),
           "LOAD_JOBS": json.dumps(job_ids), "LOAD_PER_USER_RATE": str(rate / users)}
    prefix = out / f"rate{rate}"
    subprocess.run([str(Path(sys.executable).with_name("locust")), "-f", str(Path(__file__).parent / "load_locustfile.py"),
                    "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", urls[0],
                    "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"], env=env, check=False,
                   stdout=subprocess.DEVNULL)
    routes = {}
    with open(f"{prefix}_stats.csv") as handle:
        for row in csv.DictReader(handle):
            routes[row["Name"]] = {"count": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                                   "rps": float(row["Requests/s"]), "p50_ms": float(row["50%"] or 0),
                                   "p95_ms": float(row["95%"] or 0), "p99_ms": float(row["99%"] or 0)}
    return routes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="PostgreSQL; the database is created if missing")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rates", default="25,50,100,200", help="requests/s, one run each")
    parser.add_argument("--seconds", type=int, default=40, help="per rate")
    parser.add_argument("--fresh", action="store_true", help="drop the database first (a bench database only!)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if len(rates) * args.seconds > MAX_TOTAL_S:
        parser.error(f"{len(rates)} rates x {args.seconds} s is more than {MAX_TOTAL_S} s")
    ensure_database(args.database_url, args.fresh)
    data = Path(tempfile.mkdtemp(prefix="cnet-load-"))
    config = data / "config.toml"
    # no rate limit: the load is the platform's to carry, not the limiter's to refuse
    config.write_text('[server]\nrate_limit = ""\n\n[[clusters]]\nname = "local"\nkind = "local"\nslots = 8\n'
                      'prices = { "*" = { core_hour = "0.04" } }\n')
    settings = load_settings(config, data_dir=data, database_url=args.database_url)
    platform = Platform(settings)
    platform.start()
    tokens, job_ids = fill(platform, args.users, args.rows)
    with platform.db.engine.connect() as conn:
        table_rows = conn.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'jobs'"))
    platform.db.dispose()
    env = {"COMPUTENET_CONFIG": str(config), "COMPUTENET_DATABASE_URL": args.database_url}
    procs, urls = [], []
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": f"{host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
                     "load_before": os.getloadavg(), "jobs_in_table": table_rows, "replicas": 2, "rates": {}}
    try:
        for _ in range(2):
            proc, url = server_process.start(data, env, args=("--role", "api"))
            procs.append(proc)
            urls.append(url)
        for rate in rates:
            results["rates"][rate] = run_rate(urls, tokens, job_ids, rate, args.seconds, data)
            agg = results["rates"][rate].get("Aggregated", {})
            print(f"{rate:>4} req/s asked: {agg.get('rps', 0):.1f} req/s served, p50 {agg.get('p50_ms')} ms, "
                  f"p95 {agg.get('p95_ms')} ms, p99 {agg.get('p99_ms')} ms, failures {agg.get('failures')}", flush=True)
    finally:
        for proc in procs:
            server_process.stop(proc)
    held = [r for r, routes in results["rates"].items()
            if routes.get("Aggregated", {}).get("p99_ms", 1e9) <= P99_BOUND_MS
            and routes["Aggregated"]["rps"] >= 0.9 * r and not routes["Aggregated"]["failures"]]
    results["highest_rate_with_p99_under_200ms"] = max(held) if held else None
    results["load_after"] = os.getloadavg()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"load-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    for rate, routes in results["rates"].items():
        for name, s in sorted(routes.items()):
            print(f"{rate:>4} {name:<22} n={s['count']:<6} p50 {s['p50_ms']:>6.0f}  p95 {s['p95_ms']:>6.0f}  "
                  f"p99 {s['p99_ms']:>6.0f} ms  failures {s['failures']}")
    print(f"highest rate held with p99 <= {P99_BOUND_MS:.0f} ms: {results['highest_rate_with_p99_under_200ms']}")
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

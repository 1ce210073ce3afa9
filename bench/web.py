#!/usr/bin/env python3
"""The portal's speed on a large database: server-side time of the dashboard, the job list and a job
page with (by default) 100,000 jobs and about 10,000 users in PostgreSQL, against the API's GET
/accounts/me in the same process as the baseline; then the first load of the dashboard in Chromium
(Playwright, Debian's chromium) over loopback.

Server-side time is the in-process time of one request through the whole app (FastAPI's TestClient:
routing, session check, queries, template), so network and browser play no part; p50 and p95 over
--requests requests per page, each after --warm requests.

    .venv/bin/python bench/web.py [--jobs 100000] [--tenants 2000] [--requests 200]
        [--db postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import platform as host
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from computenet.analytics import seed_db
from computenet.analytics.seed_data import SeedSpec, generate
from computenet.api.app import create_app
from computenet.cli.embedded import EmbeddedServer
from computenet.config import Settings
from computenet.services import audit
from computenet.services.platform import Platform
from computenet.services.signin import passwords
from computenet.store.db import Database
from computenet.store.models import Job, User

SCHEMA = "bench_web"
PASSWORD = "Bench-Portal-77"


def schema_url(url: str) -> str:
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{SCHEMA}"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def timed_gets(client: TestClient, url: str, warm: int, n: int) -> list[float]:
    for _ in range(warm):
        assert client.get(url).status_code == 200, url
    took = []
    for _ in range(n):
        start = time.perf_counter()
        answer = client.get(url)
        took.append(time.perf_counter() - start)
        assert answer.status_code == 200, (url, answer.status_code)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--db", default=os.environ.get("COMPUTENET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    print(f"machine: {host.node()}, {os.cpu_count()} cores, Python {host.python_version()}")
    url = schema_url(args.db)
    database = Database(url)
    database.migrate()
    start = time.perf_counter()
    data = generate(SeedSpec(year=2026, jobs=args.jobs, tenants=args.tenants, seed=1))
    written = seed_db.write(database, data)
    print(f"seeded in {time.perf_counter() - start:.0f} s: " + ", ".join(f"{n:,} {t}" for t, n in written.items()))

    data_dir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    settings = Settings(_env_prefix="COMPUTENET_BENCH_UNUSED_", data_dir=data_dir, database_url=url)
    platform = Platform(settings, db=database)
    platform.start()
    try:
        with database.session() as session:
            users = session.scalar(select(func.count(User.id)))
            # the heaviest user: their job list and dashboard have the most to look through
            owner_id, owned = session.execute(select(Job.owner_id, func.count(Job.id)).group_by(Job.owner_id)
                                              .order_by(func.count(Job.id).desc()).limit(1)).one()
            user = session.get(User, owner_id)
            passwords.set_password(session, audit.SYSTEM, user, PASSWORD, settings.auth)
            name = user.name
            job_id = session.scalar(select(func.max(Job.id)).where(Job.owner_id == owner_id))
        print(f"{users:,} users; timing as {name}, who has {owned:,} of the jobs")
        client = TestClient(create_app(platform), follow_redirects=False)
        assert client.post("/login", data={"login": name, "password": PASSWORD, "next": "/"}).status_code == 303
        pages = {"API GET /accounts/me (baseline)": "/accounts/me", "dashboard /": "/",
                 "job list /portal/jobs": "/portal/jobs", f"job page /portal/jobs/{job_id}": f"/portal/jobs/{job_id}"}
        results = {what: percentiles(timed_gets(client, path, args.warm, args.requests)) for what, path in pages.items()}
        base_p50 = results["API GET /accounts/me (baseline)"][0]
        print(f"\n{'page':<40} {'p50 ms':>8} {'p95 ms':>8} {'p50 / baseline':>15}")
        for what, (p50, p95) in results.items():
            print(f"{what:<40} {p50 * 1000:>8.1f} {p95 * 1000:>8.1f} {p50 / base_p50:>15.2f}")
        worst = max(p95 for what, (_, p95) in results.items() if "baseline" not in what)
        print(f"worst portal p95: {worst * 1000:.1f} ms (target under 100 ms)")
        browser_load(platform, name)
        return 0 if worst < 0.1 else 1
    finally:
        database.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def browser_load(platform: Platform, name: str, loads: int = 5) -> None:
    """The dashboard's first load in Chromium: navigation start to the load event, over loopback."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from browser import FLAGS, chromium_path
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        print("no chromium: the browser load is not measured")
        return
    with EmbeddedServer(platform, run_services=False) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=FLAGS)
        took = []
        for _ in range(loads):
            context = browser.new_context(base_url=server.url)
            page = context.new_page()
            page.goto("/login")
            page.fill("#login", name)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit].primary")
            page.wait_for_url(lambda u: "/login" not in u)
            page.goto("/", wait_until="load")  # with a warm session: what a person opening the portal waits for
            took.append(page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0]; "
                                      "return n.loadEventEnd - n.startTime; }") / 1000)
            context.close()
        browser.close()
    p50, p95 = percentiles(took)
    print(f"dashboard load in Chromium: p50 {p50 * 1000:.0f} ms, worst {max(took) * 1000:.0f} ms over {loads} "
          f"(target under 1 s)")


if __name__ == "__main__":
    raise SystemExit(main())

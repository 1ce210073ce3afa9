#!/usr/bin/env python3
"""Operator reports on DuckDB against a plain SQL GROUP BY, on the same synthetic year.

Generates a year of a large network (default 10 million jobs) as Parquet with
``cnet seed-data``'s fast path, times the reports (analytics/reports.py) on a
Warehouse over those files, then loads the rows the figures need into SQLite
and times plain GROUP BY queries for the same figures: core-hours per cluster,
segments' shares of core-hours and card-hours, revenue per product line, the
top five customers. Both must give the same numbers. Loading 10 M jobs into
SQLite takes long, so the comparison runs at --compare-jobs (default 1 M) on a
year of its own; the DuckDB times at --jobs are printed as well.

    .venv/bin/python bench/report.py [--jobs 10000000] [--compare-jobs 1000000] [--tenants 2000]
"""

from __future__ import annotations

import argparse
import os
import platform as host
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from computenet.analytics import reports, seed_parquet
from computenet.analytics.seed_data import SeedSpec, generate
from computenet.analytics.warehouse import Warehouse

YEAR = 2022
PERIOD = (f"{YEAR}-01-01", f"{YEAR}-12-31")
# what the plain-SQL side needs, as the warehouse keeps it
LOAD = {"usage_records": ("job_id", "cluster_id", "start_time", "end_time", "cpus", "gpus"),
        "jobs": ("id", "account_id"), "accounts": ("id", "tenant_id"), "tenants": ("id", "name", "segment"),
        "ledger_accounts": ("id", "code", "account_id", "product_line"),
        "transfers": ("debit_id", "credit_id", "amount", "pending", "created_at")}
SQL = {
    "core-hours per cluster": "SELECT cluster_id, sum(cpus * (end_time - start_time)) FROM usage_records "
                              "GROUP BY cluster_id ORDER BY cluster_id",
    "segments": "SELECT t.segment, sum(u.cpus * (u.end_time - u.start_time)), sum(u.gpus * (u.end_time - u.start_time)) "
                "FROM usage_records u JOIN jobs j ON j.id = u.job_id JOIN accounts a ON a.id = j.account_id "
                "JOIN tenants t ON t.id = a.tenant_id GROUP BY t.segment ORDER BY t.segment",
    "revenue per product line": "SELECT r.product_line, sum(x.amount) FROM transfers x JOIN ledger_accounts r "
                                "ON r.id = x.credit_id AND r.code = 'revenue' WHERE x.pending = 0 "
                                "GROUP BY r.product_line ORDER BY r.product_line",
    "top five customers": "SELECT t.name, sum(x.amount) AS cents FROM transfers x JOIN ledger_accounts r "
                          "ON r.id = x.credit_id AND r.code = 'revenue' JOIN ledger_accounts c ON c.id = x.debit_id "
                          "JOIN accounts a ON a.id = c.account_id JOIN tenants t ON t.id = a.tenant_id "
                          "WHERE x.pending = 0 GROUP BY t.name ORDER BY cents DESC, t.name LIMIT 5",
}


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def make_year(jobs: int, tenants: int, seed: int, folder: Path) -> dict:
    data, t_gen = timed(lambda: generate(SeedSpec(year=YEAR, jobs=jobs, tenants=tenants, seed=seed)))
    _, t_write = timed(lambda: seed_parquet.write(data, folder))
    return {"generate_s": t_gen, "parquet_s": t_write}


def duck_reports(folder: Path) -> tuple[dict, dict]:
    warehouse = Warehouse.from_parquet(folder)
    times, out = {}, {}
    for name, options in (("utilization", {"by": "month"}), ("segments", {"by": "year"}),
                          ("revenue", {"by": "year"}), ("customers", {"by": "year", "top": 5})):
        out[name], times[name] = timed(lambda: reports.run(name, warehouse, *PERIOD, **options))
    warehouse.close()
    return out, times


def sqlite_load(folder: Path, path: str) -> float:
    con = sqlite3.connect(path)
    start = time.perf_counter()
    for table, columns in LOAD.items():
        con.execute(f"CREATE TABLE {table} ({', '.join(columns)})")  # names are this script's constants
        data = pq.read_table(folder / f"{table}.parquet", columns=list(columns))
        for batch in data.to_batches(500_000):
            arrays = []
            for name in columns:
                column = batch.column(name)
                if str(column.type).startswith("timestamp"):  # as epoch seconds: plain SQL arithmetic
                    column = column.cast("int64").to_numpy(zero_copy_only=False) // 1_000_000
                    arrays.append(column.tolist())
                else:
                    arrays.append(column.to_pylist())
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", zip(*arrays))
    con.execute("CREATE INDEX ix_jobs ON jobs (id)")
    con.execute("CREATE INDEX ix_ledger ON ledger_accounts (id)")
    con.commit()
    con.close()
    return time.perf_counter() - start


def sqlite_figures(path: str) -> tuple[dict, dict]:
    con = sqlite3.connect(path)
    out, times = {}, {}
    for name, sql in SQL.items():
        out[name], times[name] = timed(lambda: con.execute(sql).fetchall())
    con.close()
    return out, times


def same_numbers(duck: dict, plain: dict, cluster_names: dict[int, str]) -> list[str]:
    """Where the two disagree ([] when every figure is the same)."""
    problems = []
    # the report is by month (clipped to each month): its months add up to the year
    yearly: dict[str, Decimal] = {}
    for r in duck["utilization"].rows:
        if r["level"] == "cluster":
            yearly[r["name"]] = yearly.get(r["name"], Decimal(0)) + r["core_hours"]
    for cluster_id, seconds in plain["core-hours per cluster"]:
        want = (Decimal(seconds) / 3600)
        if abs(yearly[cluster_names[cluster_id]] - want) > Decimal("0.01") * 12:
            problems.append(f"core-hours of {cluster_names[cluster_id]}: {yearly[cluster_names[cluster_id]]} vs {want}")
    segments = {r["segment"]: r for r in duck["segments"].rows}
    cpu_total = sum(c for _, c, _ in plain["segments"])
    gpu_total = sum(g for _, _, g in plain["segments"])
    for segment, cpu, gpu in plain["segments"]:
        for key, value, total in (("cpu_share", cpu, cpu_total), ("gpu_share", gpu, gpu_total)):
            want = (Decimal(value) / Decimal(total)).quantize(Decimal("0.000001"))
            if abs(segments[segment][key] - want) > Decimal("0.000001"):
                problems.append(f"{segment} {key}: {segments[segment][key]} vs {want}")
    lines = {r["key"]: r["revenue"] for r in duck["revenue"].rows if r["dimension"] == "product_line"}
    for line, cents in plain["revenue per product line"]:
        if lines.get(line) != Decimal(cents) / 100:
            problems.append(f"revenue of {line}: {lines.get(line)} vs {Decimal(cents) / 100}")
    top = [(r["customer"].removeprefix("tenant "), r["revenue"]) for r in duck["customers"].rows]
    if top != [(name, Decimal(cents) / 100) for name, cents in plain["top five customers"]]:
        problems.append(f"top five: {top} vs {plain['top five customers']}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--compare-jobs", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {host.platform()}, {os.cpu_count()} CPUs, Python {host.python_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        big = make_year(args.jobs, args.tenants, args.seed, root / "big")
        _, big_times = duck_reports(root / "big")
        print(f"{args.jobs:,} jobs: generated in {big['generate_s']:.1f} s, Parquet written in {big['parquet_s']:.1f} s")
        for name, seconds in big_times.items():
            print(f"  DuckDB report {name:<12} {seconds:7.2f} s")
        folder = root / "big"
        if args.compare_jobs != args.jobs:
            folder = root / "compare"
            make_year(args.compare_jobs, args.tenants, args.seed, folder)
        duck, duck_times = duck_reports(folder)
        load_s = sqlite_load(folder, str(root / "plain.db"))
        plain, plain_times = sqlite_figures(str(root / "plain.db"))
        names = dict(zip(*pq.read_table(folder / "clusters.parquet", columns=["id", "name"]).to_pydict().values()))
        problems = same_numbers(duck, plain, names)
        print(f"\n{args.compare_jobs:,} jobs, same data both ways (SQLite load: {load_s:.1f} s, not counted):")
        pairs = (("utilization", "core-hours per cluster"), ("segments", "segments"),
                 ("revenue", "revenue per product line"), ("customers", "top five customers"))
        for duck_name, plain_name in pairs:
            ratio = plain_times[plain_name] / duck_times[duck_name] if duck_times[duck_name] else float("inf")
            print(f"  {plain_name:<26} DuckDB report {duck_times[duck_name]:6.2f} s   SQLite GROUP BY "
                  f"{plain_times[plain_name]:6.2f} s   SQLite/DuckDB {ratio:5.1f}x")
        print("same numbers both ways" if not problems else "DIFFERENT:\n  " + "\n  ".join(problems))
        if problems:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Where job samples should live: the operational database (job_samples on SQLite, or PostgreSQL
with --pg) against an embedded columnar store (DuckDB's own file, and Parquet), on the same rows in
the same run.

Data: --jobs jobs x --per-job samples at 10 s (the columns of job_samples; one GPU-less busy job
each). Measured per store: bulk ingest (samples/s), reading one job's series by id (the stats page
and the analysis: median over --reads random jobs), one aggregate over every job (peak RSS and CPU
seconds per job: what cross-job analytics would ask) and bytes on disk. Then the same after
downsampling to 300 s (what old jobs keep).

    .venv/bin/python bench/sample_store.py [--jobs 1000] [--per-job 2000] [--reads 200] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import platform as host
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

console = Console()
COLUMNS = ["job_id", "t", "seq", "cpu_s", "cores", "rss", "read_bytes", "write_bytes", "nproc", "nthreads"]
SQL_TABLE = """CREATE TABLE job_samples (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, t DOUBLE PRECISION NOT NULL,
  seq INTEGER NOT NULL, cpu_s DOUBLE PRECISION NOT NULL, cores DOUBLE PRECISION NOT NULL, rss BIGINT NOT NULL,
  read_bytes BIGINT NOT NULL, write_bytes BIGINT NOT NULL, nproc INTEGER NOT NULL, nthreads INTEGER NOT NULL,
  UNIQUE (job_id, t))"""
AGGREGATE = "SELECT job_id, max(rss), max(cpu_s) FROM job_samples GROUP BY job_id"


def make_rows(jobs: int, per_job: int, step: float) -> list[tuple]:
    rng = random.Random(7)
    rows = []
    for job in range(1, jobs + 1):
        t0, cpu, peak = 1.7e9 + job * 977.0, 0.0, rng.randint(1, 64) * 2**28
        for i in range(per_job):
            cores = rng.uniform(0.5, 4.0)
            cpu += cores * step
            rows.append((job, t0 + i * step, i, cpu, cores, int(peak * (0.5 + 0.5 * i / per_job)),
                         i * 65536, i * 4096, 3, 9))
    return rows


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_read(read, jobs: int, reads: int) -> float:
    rng = random.Random(11)
    return statistics.median(timed(lambda: read(rng.randint(1, jobs))) for _ in range(reads))


def bench_sqlite(rows, jobs, reads, where: Path) -> dict:
    path = where / "samples.sqlite"
    con = sqlite3.connect(path)
    con.execute(SQL_TABLE)
    con.execute("CREATE INDEX ix_job ON job_samples (job_id)")
    insert = f"INSERT INTO job_samples ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    ingest = timed(lambda: (con.executemany(insert, rows), con.commit()))
    con.execute("CREATE TABLE trickle AS SELECT * FROM job_samples LIMIT 0")
    trickle = timed(lambda: [(con.executemany(insert.replace("job_samples", "trickle"), b), con.commit())
                             for b in _batches(rows)])
    read = median_read(lambda j: con.execute("SELECT * FROM job_samples WHERE job_id = ? ORDER BY t", (j,)).fetchall(),
                       jobs, reads)
    agg = timed(lambda: con.execute(AGGREGATE).fetchall())
    con.close()
    return {"ingest": ingest, "trickle": trickle, "read": read, "aggregate": agg,
            "bytes": path.stat().st_size - _size_of(path, "trickle")}


def _size_of(path: Path, table: str) -> int:
    """Bytes SQLite's trickle table takes (left out of the store's size)."""
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (table,)).fetchone()[0] or 0
    except sqlite3.OperationalError:  # no dbstat in this build: count the whole file
        return 0
    finally:
        con.close()


def _batches(rows, size: int = 30, limit: int = 30_000) -> list[list[tuple]]:
    """The first `limit` rows in batches of `size` (5 minutes of one job at 10 s)."""
    head = rows[:limit]
    return [head[i:i + size] for i in range(0, len(head), size)]


def bench_postgres(rows, jobs, reads, url: str) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS bench_job_samples")
        con.execute(SQL_TABLE.replace("job_samples", "bench_job_samples").replace("id INTEGER PRIMARY KEY",
                                                                                  "id BIGSERIAL PRIMARY KEY"))
        con.execute("CREATE INDEX ix_bench_job ON bench_job_samples (job_id)")

        def ingest():
            with con.cursor() as cur, cur.copy(f"COPY bench_job_samples ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        took = timed(ingest)
        con.execute("VACUUM ANALYZE bench_job_samples")
        read = median_read(lambda j: con.execute("SELECT * FROM bench_job_samples WHERE job_id = %s ORDER BY t",
                                                 (j,)).fetchall(), jobs, reads)
        agg = timed(lambda: con.execute(AGGREGATE.replace("job_samples", "bench_job_samples")).fetchall())
        size = con.execute("SELECT pg_total_relation_size('bench_job_samples')").fetchone()[0]
        con.execute("DROP TABLE bench_job_samples")
    return {"ingest": took, "read": read, "aggregate": agg, "bytes": size}


def arrow_table(rows) -> pa.Table:
    return pa.table({name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)})


def bench_duckdb(rows, jobs, reads, where: Path) -> dict:
    path = where / "samples.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SQL_TABLE.replace("id INTEGER PRIMARY KEY, ", ""))
    con.register("incoming", arrow_table(rows))  # DuckDB's fast path is columnar, not executemany
    ingest = timed(lambda: con.execute("INSERT INTO job_samples SELECT * FROM incoming"))
    con.unregister("incoming")
    small = _batches(rows)  # as samples arrive: one job's few minutes, one transaction each
    con.execute("CREATE TABLE trickle AS SELECT * FROM job_samples LIMIT 0")

    def trickle_in():
        for batch in small:
            con.register("batch", arrow_table(batch))
            con.execute("INSERT INTO trickle SELECT * FROM batch")
            con.unregister("batch")
    trickle = timed(trickle_in)
    con.execute("DROP TABLE trickle")
    con.execute("CHECKPOINT")
    read = median_read(lambda j: con.execute("SELECT * FROM job_samples WHERE job_id = ? ORDER BY t", [j]).fetchall(),
                       jobs, reads)
    agg = timed(lambda: con.execute(AGGREGATE).fetchall())
    con.close()
    return {"ingest": ingest, "trickle": trickle, "read": read, "aggregate": agg, "bytes": path.stat().st_size}


def bench_parquet(rows, jobs, reads, where: Path) -> dict:
    path = where / "samples.parquet"
    table = arrow_table(rows)
    ingest = timed(lambda: pq.write_table(table, path, row_group_size=64 * 1024))
    con = duckdb.connect()
    scan = f"read_parquet('{path}')"
    read = median_read(lambda j: con.execute(f"SELECT * FROM {scan} WHERE job_id = ? ORDER BY t", [j]).fetchall(),
                       jobs, reads)
    agg = timed(lambda: con.execute(AGGREGATE.replace("job_samples", scan)).fetchall())
    con.close()
    return {"ingest": ingest, "read": read, "aggregate": agg, "bytes": path.stat().st_size}


def report(title: str, results: dict[str, dict], n: int) -> None:
    base = results["SQLite"]
    table = Table(title=title)
    for column in ("store", "bulk ingest samples/s", "x SQLite", "in batches of 30 samples/s", "x SQLite",
                   "one job's series (ms)", "x SQLite",
                   "aggregate all jobs (ms)", "x SQLite", "MiB on disk", "bytes/sample"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for name, r in results.items():
        trickled = min(n, 30_000)
        trickle = (f"{trickled / r['trickle']:,.0f}", f"{base['trickle'] / r['trickle']:.2f}") if "trickle" in r \
            else ("-", "-")
        table.add_row(name, f"{n / r['ingest']:,.0f}", f"{base['ingest'] / r['ingest']:.2f}", *trickle,
                      f"{r['read'] * 1000:.2f}", f"{base['read'] / r['read']:.2f}",
                      f"{r['aggregate'] * 1000:.0f}", f"{base['aggregate'] / r['aggregate']:.2f}",
                      f"{r['bytes'] / 2**20:.1f}", f"{r['bytes'] / n:.1f}")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--per-job", type=int, default=2000)
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--pg", help="PostgreSQL URL, e.g. postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    console.print(f"{host.node()} ({os.cpu_count()} CPUs, Python {host.python_version()}, DuckDB {duckdb.__version__}),"
                  f" {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    for label, per_job, step in (("every 10 s", args.per_job, 10.0), ("downsampled to 300 s", args.per_job // 30, 300.0)):
        rows = make_rows(args.jobs, per_job, step)
        results = {}
        with tempfile.TemporaryDirectory() as where:
            results["SQLite"] = bench_sqlite(rows, args.jobs, args.reads, Path(where))
            if args.pg:
                results["PostgreSQL"] = bench_postgres(rows, args.jobs, args.reads, args.pg)
            results["DuckDB file"] = bench_duckdb(rows, args.jobs, args.reads, Path(where))
            results["Parquet (DuckDB reads)"] = bench_parquet(rows, args.jobs, args.reads, Path(where))
        report(f"{args.jobs} jobs x {per_job} samples ({label}) = {len(rows):,} samples", results, len(rows))


if __name__ == "__main__":
    main()

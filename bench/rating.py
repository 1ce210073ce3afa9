#!/usr/bin/env python3
"""Rating and posting 1,000,000 usage records, and monthly statements for 10,000 accounts.

Synthetic records (seeded): 10,000 accounts, 6 partitions with their prices,
20 % GPU jobs. The baseline, in the same process, is the per-record Decimal
rating (billing.rating.rate_usage) on a sample, extrapolated. The vectorised
path is checked against it on that sample, record by record, and the
ledger's invariant is checked after posting.

    .venv/bin/python bench/rating.py [--records 1000000] [--accounts 10000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import insert, select

from computenet.billing import batch, ledger
from computenet.billing.rating import Prices, Usage, rate_usage
from computenet.billing.statements import statements_for_month
from computenet.store.db import Database
from computenet.store.models import Account, LedgerAccount

console = Console()
CORE = [Decimal("0.05"), Decimal("0.045"), Decimal("0.08"), Decimal("0.06"), Decimal("0.06"), Decimal("0.04")]
GPU = [Decimal("0"), Decimal("0"), Decimal("0"), Decimal("8.00"), Decimal("9.50"), Decimal("0")]
LINES = ["hpc", "hpc", "industry", "ai", "ai", "hpc"]


def synthetic(n: int, accounts: int, seed: int = 20261122):
    rng = np.random.default_rng(seed)
    partition = rng.integers(0, len(CORE), n)
    gpu_job = np.isin(partition, [3, 4]) & (rng.random(n) < 0.9)
    return {
        "account": rng.integers(0, accounts, n),
        "partition": partition,
        "elapsed": np.minimum(rng.lognormal(7.5, 1.6, n).astype(np.int64), 14 * 86400),
        "cpus": np.where(gpu_job, rng.integers(4, 33, n), rng.choice([1, 2, 4, 8, 16, 32, 64, 128], n)),
        "gpus": np.where(gpu_job, rng.choice([1, 2, 4, 8], n), 0),
    }


def setup(db: Database, accounts: int) -> tuple[list[int], dict[str, int], int]:
    """Accounts, their customer ledger accounts, revenue per product line, cash."""
    with db.session() as session:
        session.execute(insert(Account), [{"name": f"acct{i:05d}", "currency": "CNY",
                                           "created_at": datetime.now(timezone.utc)} for i in range(accounts)])
        ids = list(session.scalars(select(Account.id).order_by(Account.id)))
        session.execute(insert(LedgerAccount), [{"code": "customer", "account_id": a, "owner_key": str(a),
                                                 "product_line": "", "currency": "CNY"} for a in ids])
        customer = dict(session.execute(select(LedgerAccount.account_id, LedgerAccount.id)
                                        .where(LedgerAccount.code == "customer")).all())
        revenue = {line: ledger.ledger_account(session, "revenue", product_line=line).id for line in set(LINES)}
        cash = ledger.ledger_account(session, "cash").id
    return [customer[a] for a in ids], revenue, cash


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='cnet-bench-')}/bench.db"
    db = Database(url)
    if url.startswith("postgresql"):  # a fresh schema, so earlier runs do not count
        from sqlalchemy import text
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS cnet_bench CASCADE"))
            conn.execute(text("CREATE SCHEMA cnet_bench"))
        db.dispose()
        db = Database(url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dcnet_bench")
    db.migrate()
    data = synthetic(args.records, args.accounts)
    customers, revenue, cash = setup(db, args.accounts)
    core_micro, gpu_micro = batch.to_micro(CORE), batch.to_micro(GPU)
    results: dict[str, object] = {}

    # baseline: the per-record Decimal path on a sample
    k = min(args.baseline_sample, args.records)
    started = time.perf_counter()
    sample = [rate_usage(Usage(int(data["elapsed"][i]), int(data["cpus"][i]), int(data["gpus"][i])),
                         Prices(CORE[data["partition"][i]], GPU[data["partition"][i]])).amount for i in range(k)]
    baseline_rate = k / (time.perf_counter() - started)

    started = time.perf_counter()
    cents = batch.rate_cents(data["elapsed"], data["cpus"], data["gpus"], core_micro[data["partition"]],
                             gpu_micro[data["partition"]])
    rating_s = time.perf_counter() - started
    mismatches = sum(Decimal(int(cents[i])) / 100 != sample[i] for i in range(k))

    # postings: top-ups, then one charge per record, in chunks of one transaction each
    line_ids = np.array([revenue[LINES[p]] for p in range(len(LINES))])[data["partition"]]
    debit_ids = np.array(customers)[data["account"]]
    per_txn = 100_000
    started = time.perf_counter()
    with db.session() as session:
        batch.post_many(session, [batch.Posting(f"topup:{c}", cash, c, 100_000_000, "topup") for c in customers])
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("posting", total=args.records)
        for lo in range(0, args.records, per_txn):
            hi = min(lo + per_txn, args.records)
            with db.session() as session:
                batch.post_rows(session, zip((f"usage:{i}" for i in range(lo, hi)), debit_ids[lo:hi].tolist(),
                                             line_ids[lo:hi].tolist(), cents[lo:hi].tolist(),
                                             ["charge"] * (hi - lo), [None] * (hi - lo), [""] * (hi - lo)))
            progress.update(task, completed=hi)
    posting_s = time.perf_counter() - started

    started = time.perf_counter()
    with db.session() as session:
        problems = ledger.invariant(session)
    invariant_s = time.perf_counter() - started

    month = datetime.now(timezone.utc).strftime("%Y-%m")
    started = time.perf_counter()
    with db.session() as session:
        statements = statements_for_month(session, month)
    statements_s = time.perf_counter() - started
    total_charged = sum(s.charges for s in statements.values())

    results.update(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
        database=db.engine.url.render_as_string(hide_password=True).split("?")[0].split("://")[0],
        records=args.records, accounts=args.accounts,
        baseline_records_per_s=round(baseline_rate), rating_s=round(rating_s, 3),
        rating_records_per_s=round(args.records / rating_s), rating_vs_baseline=round(args.records / rating_s / baseline_rate, 1),
        sample_mismatches=mismatches, posting_s=round(posting_s, 2),
        posting_records_per_s=round(args.records / posting_s),
        rate_and_post_s=round(rating_s + posting_s, 2), invariant_s=round(invariant_s, 2),
        invariant_violations=len(problems), statements=len(statements), statements_s=round(statements_s, 2),
        charged_total=str(total_charged), rated_total=str(Decimal(int(cents.sum())) / 100),
    )
    table = Table(title=f"{args.records:,} records, {args.accounts:,} accounts ({results['database']})")
    table.add_column("step")
    table.add_column("figure", justify="right")
    for label, value in (
        ("per-record Decimal rating (baseline)", f"{baseline_rate:,.0f} records/s"),
        ("vectorised rating", f"{args.records / rating_s:,.0f} records/s ({results['rating_vs_baseline']}x)"),
        ("sample checked against the baseline", f"{k:,} records, {mismatches} differ"),
        ("posting (bulk, 100k per transaction)", f"{posting_s:.2f} s, {args.records / posting_s:,.0f} records/s"),
        ("rate + post", f"{rating_s + posting_s:.2f} s"),
        ("ledger invariant check", f"{invariant_s:.2f} s, {len(problems)} violations"),
        (f"statements for {len(statements):,} accounts", f"{statements_s:.2f} s"),
        ("charged (statements) = rated", f"{total_charged} = {results['rated_total']}"),
    ):
        table.add_row(label, value)
    console.print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"rating-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"results in {path}")
    ok = mismatches == 0 and not problems and str(total_charged) == results["rated_total"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

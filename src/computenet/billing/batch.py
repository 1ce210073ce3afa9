"""Rating and posting in bulk: the same money as the per-record path, a thousand times faster.

Rating is exact integer arithmetic on arrays. Prices are in millionths and
amounts in cents, and round-half-up is done with integer division, so every
amount equals what ``rating.rate_usage`` gives for the cores strategy.
Postings go in as bulk inserts plus one balance update per ledger account,
in one transaction: debits equal credits when it commits, as always.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..store.models import Transfer
from ..store.types import utcnow

MICRO = 1_000_000
# cents = round_half_up(unit-seconds x price-millionths / (3600 x 10^4))
DENOMINATOR = 3600 * MICRO // 100
INT64_SAFE = 2**62


def to_micro(prices) -> np.ndarray:
    return np.asarray([int(p * MICRO) for p in prices], dtype=np.int64)


def rate_cents(elapsed: np.ndarray, cpus: np.ndarray, gpus: np.ndarray, core_micro: np.ndarray,
               gpu_micro: np.ndarray) -> np.ndarray:
    """Cents per record for the cores strategy: (cores x core price + GPUs x GPU price) x time."""
    elapsed, cpus, gpus = (np.asarray(a, dtype=np.int64) for a in (elapsed, cpus, gpus))
    if (elapsed < 0).any() or (cpus < 0).any() or (gpus < 0).any():
        raise ValueError("usage cannot be negative")
    core = elapsed * cpus
    gpu = elapsed * gpus
    # refuse rather than wrap around: these bounds are far beyond any real job
    biggest = int(core.max(initial=0)) * int(core_micro.max(initial=0)) + \
        int(gpu.max(initial=0)) * int(gpu_micro.max(initial=0))  # Python ints: no wrap-around here
    if biggest >= INT64_SAFE:
        raise OverflowError("usage x price too large for exact int64 rating; use rating.rate_usage")
    numerator = core * core_micro + gpu * gpu_micro
    return (numerator + DENOMINATOR // 2) // DENOMINATOR


@dataclass(frozen=True)
class Posting:
    key: str
    debit_id: int
    credit_id: int
    amount: int  # cents
    kind: str = "charge"
    job_id: int | None = None
    memo: str = ""


def post_many(session: Session, postings: list[Posting], chunk: int = 20_000, actor: str = "batch") -> int:
    """Post many transfers at once; all or nothing (a reused key fails the whole batch)."""
    return post_rows(session, ((p.key, p.debit_id, p.credit_id, p.amount, p.kind, p.job_id, p.memo) for p in postings),
                     chunk, actor)


def post_rows(session: Session, rows: Iterable[tuple], chunk: int = 50_000, actor: str = "batch") -> int:
    """``post_many`` on plain tuples (key, debit id, credit id, cents, kind, job id, memo).

    The rows go to the driver's executemany as they are: no per-row object or
    type processing, which is what makes a million postings take seconds.
    """
    connection = session.connection()
    qmark = connection.dialect.paramstyle == "qmark"
    marks = ", ".join(["?" if qmark else "%s"] * 10)
    sql = ('INSERT INTO transfers ("key", debit_id, credit_id, amount, kind, pending, job_id, memo, actor, created_at) '
           f"VALUES ({marks})")
    now = utcnow().replace(tzinfo=None)  # stored as naive UTC, as UTCDateTime does
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") if connection.dialect.name == "sqlite" else now
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    count = 0
    buffer: list[tuple] = []

    copy_in = connection.dialect.name == "postgresql"

    def flush() -> None:
        if not buffer:
            return
        if copy_in:  # COPY is PostgreSQL's bulk path, far ahead of executemany
            cursor = connection.connection.dbapi_connection.cursor()
            try:
                with cursor.copy('COPY transfers ("key", debit_id, credit_id, amount, kind, pending, job_id, memo, '
                                 "actor, created_at) FROM STDIN") as copy:
                    for row in buffer:
                        copy.write_row(row)
            except connection.dialect.dbapi.IntegrityError as exc:  # same error as the other path
                raise IntegrityError("COPY transfers", None, exc) from None
            finally:
                cursor.close()
        else:
            connection.exec_driver_sql(sql, buffer)
        buffer.clear()

    for key, debit_id, credit_id, amount, kind, job_id, memo in rows:
        if amount < 0:
            raise ValueError("a transfer amount cannot be negative")
        debits[debit_id] += amount
        credits[credit_id] += amount
        buffer.append((key, debit_id, credit_id, amount, kind, False, job_id, memo, actor, stamp))
        count += 1
        if len(buffer) >= chunk:
            flush()
    flush()
    # one balance update per ledger account touched, sent as one executemany
    mark = "?" if qmark else "%s"
    for column, sums in (("debits_posted", debits), ("credits_posted", credits)):
        if sums:
            connection.exec_driver_sql(
                f"UPDATE ledger_accounts SET {column} = {column} + {mark} WHERE id = {mark}",
                [(amount, account_id) for account_id, amount in sums.items()])
    session.expire_all()  # balances changed under the ORM's feet
    if connection.dialect.name == "sqlite" and count >= 50_000:
        # without fresh statistics SQLite's planner walks a million transfers by
        # account for a query that wants a time range (measured: 1.5 s vs 0.01 s)
        connection.exec_driver_sql("ANALYZE transfers")
    return count


def existing_keys(session: Session, keys: list[str], chunk: int = 5_000) -> set[str]:
    """Which of these keys are already posted (to skip them and stay idempotent)."""
    found: set[str] = set()
    for start in range(0, len(keys), chunk):
        found.update(session.scalars(select(Transfer.key).where(Transfer.key.in_(keys[start:start + chunk]))))
    return found

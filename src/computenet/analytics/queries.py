"""The warehouse queries behind the reports: usage clipped to buckets, revenue from the ledger, users.

Each query returns small grouped rows (buckets x clusters x partitions x
segments ...); the reports add them up in Python with Decimal. Amounts stay
integers (cents; core- and card-microseconds) until then.
"""

from __future__ import annotations

from collections import namedtuple
from decimal import Decimal

import pyarrow as pa

from .periods import Period
from .warehouse import Warehouse

US_PER_HOUR = Decimal(3_600_000_000)

UsageRow = namedtuple("UsageRow", "label cluster_id partition product_line segment core_us card_us")
RevenueRow = namedtuple("RevenueRow", "label product_line cluster_id customer segment postpaid cents")

# a record's allocation in a bucket is its run clipped to the bucket: a job that straddles
# the period's (or a month's) edge counts only its hours inside
_USAGE = """
WITH used AS (
    SELECT u.cluster_id, coalesce(u.partition, j.partition) AS partition, u.cpus, u.gpus, u.start_time,
           u.end_time, coalesce(t.segment, 'unassigned') AS segment
    FROM usage_records u
    LEFT JOIN jobs j ON j.id = u.job_id
    LEFT JOIN accounts a ON a.id = j.account_id
    LEFT JOIN tenants t ON t.id = a.tenant_id
    WHERE u.start_time IS NOT NULL AND u.end_time IS NOT NULL AND u.start_time < $end AND u.end_time > $start
), clipped AS (
    SELECT b.label, used.*, epoch_us(least(used.end_time, b.end_ts)) - epoch_us(greatest(used.start_time, b.start_ts))
           AS overlap_us
    FROM used JOIN _buckets b ON used.start_time < b.end_ts AND used.end_time > b.start_ts
)
SELECT c.label, c.cluster_id, c.partition, coalesce(p.product_line, 'unknown'), c.segment,
       sum(c.cpus::HUGEINT * c.overlap_us), sum(c.gpus::HUGEINT * c.overlap_us)
FROM clipped c LEFT JOIN partitions p ON p.cluster_id = c.cluster_id AND p.name = c.partition
GROUP BY ALL ORDER BY ALL
"""

# Revenue is read from the ledger, not from charges: the ledger is the truth for money. It
# holds what charges do not: interim charges of running jobs, overruns, refunds, re-pricing
# adjustments and storage; each revenue transfer names its product line (the revenue
# account), its customer (the other side) and, for compute, its job (so its cluster).
# Pending holds are not revenue; a posted hold is (as a "post" transfer).
_REVENUE = """
WITH revenue_accounts AS (SELECT id, product_line FROM ledger_accounts WHERE code = 'revenue'),
moves AS (
    SELECT t.created_at, t.job_id, r.product_line, t.debit_id AS other_id, t.amount::HUGEINT AS cents
    FROM transfers t JOIN revenue_accounts r ON r.id = t.credit_id WHERE NOT t.pending
    UNION ALL
    SELECT t.created_at, t.job_id, r.product_line, t.credit_id AS other_id, -t.amount::HUGEINT AS cents
    FROM transfers t JOIN revenue_accounts r ON r.id = t.debit_id WHERE NOT t.pending
), dated AS (
    SELECT * FROM moves WHERE created_at >= $start AND created_at < $end
)
SELECT b.label, m.product_line, j.cluster_id,
       coalesce('tenant ' || tn.name, 'account ' || a.name, 'ledger account ' || m.other_id::VARCHAR),
       coalesce(tn.segment, 'unassigned'), coalesce(la.credit_limit, 0) > 0, sum(m.cents)
FROM dated m
JOIN _buckets b ON m.created_at >= b.start_ts AND m.created_at < b.end_ts
LEFT JOIN ledger_accounts la ON la.id = m.other_id
LEFT JOIN jobs j ON j.id = m.job_id
LEFT JOIN accounts a ON a.id = coalesce(la.account_id, j.account_id)
LEFT JOIN tenants tn ON tn.id = a.tenant_id
GROUP BY ALL ORDER BY ALL
"""

_ACTIVE_USERS = """
SELECT b.label, count(DISTINCT j.owner_id)
FROM jobs j JOIN _buckets b ON j.start_time < b.end_ts AND coalesce(j.end_time, $end) > b.start_ts
WHERE j.start_time IS NOT NULL AND j.start_time < $end AND coalesce(j.end_time, $end) > $start
GROUP BY ALL
"""

_NEW_USERS = """
SELECT b.label, count(*) FROM users u JOIN _buckets b ON u.created_at >= b.start_ts AND u.created_at < b.end_ts
GROUP BY ALL
"""


def _run(warehouse: Warehouse, period: Period, sql: str) -> list[tuple]:
    buckets = period.buckets()
    table = pa.table({"label": [b.label for b in buckets],
                      "start_ts": pa.array([b.start for b in buckets], pa.timestamp("us")),
                      "end_ts": pa.array([b.end for b in buckets], pa.timestamp("us"))})
    con = warehouse.con.cursor()  # its own cursor: the temporary view is not shared
    try:
        con.register("_buckets", table)
        values = {"start": period.start, "end": period.end}
        return con.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql}).fetchall()
    finally:
        con.close()


def usage(warehouse: Warehouse, period: Period) -> list[UsageRow]:
    return [UsageRow(*row) for row in _run(warehouse, period, _USAGE)]


def revenue(warehouse: Warehouse, period: Period) -> list[RevenueRow]:
    return [RevenueRow(*row) for row in _run(warehouse, period, _REVENUE)]


def active_users(warehouse: Warehouse, period: Period) -> dict[str, int]:
    return dict(_run(warehouse, period, _ACTIVE_USERS))


def new_users(warehouse: Warehouse, period: Period) -> dict[str, int]:
    return dict(_run(warehouse, period, _NEW_USERS))


def clusters(warehouse: Warehouse) -> list[dict]:
    names, rows = warehouse.query("SELECT * FROM clusters ORDER BY name")
    return [dict(zip(names, row)) for row in rows]


def partitions(warehouse: Warehouse) -> list[dict]:
    names, rows = warehouse.query("SELECT cluster_id, name, nodes, cores_per_node, gpus_per_node, product_line, "
                                "node_names FROM partitions ORDER BY cluster_id, name")
    return [dict(zip(names, row)) for row in rows]


def core_hours(microseconds: int | None) -> Decimal:
    return Decimal(int(microseconds or 0)) / US_PER_HOUR

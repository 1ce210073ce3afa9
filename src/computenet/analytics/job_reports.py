"""The jobs report (what XDMoD's Jobs realm gives a centre): per bucket and per cluster, partition or
tenant, how many jobs started, how long they waited in the queue (median, 90th percentile, longest),
how large they were (cores, in XDMoD-like size classes; GPU jobs apart), how long they ran, and how
well the network predicted their start (the median error, and the share within an hour).

A job counts in the bucket in which it started; wait is start minus submission. Hours are Decimal
to three places; a figure with no jobs behind it is None, never zero.
"""

from __future__ import annotations

from decimal import Decimal

from ..messages import msg
from .periods import Period, ReportError
from .report_model import HOURS, RATIO, Report
from .warehouse import Warehouse

DIMENSIONS = ("cluster", "partition", "tenant")
# cores per job, as XDMoD groups them: 1, 2-8, 9-64, 65-512, more
SIZE_CLASSES = (("size_1", 1, 1), ("size_2_8", 2, 8), ("size_9_64", 9, 64), ("size_65_512", 65, 512),
                ("size_over_512", 513, None))
COLUMNS = ["bucket", "dimension", "key", "jobs", "wait_p50_h", "wait_p90_h", "wait_max_h",
           *(name for name, _, _ in SIZE_CLASSES), "gpu_jobs", "run_mean_h", "predicted_jobs",
           "prediction_error_p50_h", "predicted_within_1h"]

_KEY = {"cluster": "c.name", "partition": "c.name || '/' || j.partition",
        "tenant": "coalesce(t.name, '(no tenant)')"}


def jobs(warehouse: Warehouse, period: Period, dimension: str = "cluster") -> Report:
    if dimension not in DIMENSIONS:
        raise ReportError(f"unknown dimension {dimension!r}: use one of {', '.join(DIMENSIONS)}")
    report = Report("jobs", period, COLUMNS)
    buckets = period.buckets()
    found = False
    # older exports and synthetic years have no predicted start: their prediction figures are empty
    predicted_at = "j.predicted_start" if "predicted_start" in warehouse.columns("jobs") else "NULL::TIMESTAMP"
    for bucket in buckets:
        sizes = ", ".join(
            f"count(*) FILTER (WHERE j.cores >= {low}" + (f" AND j.cores <= {high})" if high else ")")
            for _, low, high in SIZE_CLASSES)  # constants of this module, not input
        sql = f"""
            SELECT {_KEY[dimension]} AS key, count(*) AS jobs,
                   quantile_cont(epoch(j.start_time - j.submitted_at), 0.5) / 3600 AS wait_p50,
                   quantile_cont(epoch(j.start_time - j.submitted_at), 0.9) / 3600 AS wait_p90,
                   max(epoch(j.start_time - j.submitted_at)) / 3600 AS wait_max,
                   {sizes},
                   count(*) FILTER (WHERE j.gpus > 0) AS gpu_jobs,
                   avg(epoch(j.end_time - j.start_time)) FILTER (WHERE j.end_time IS NOT NULL) / 3600 AS run_mean,
                   count({predicted_at}) AS predicted,
                   quantile_cont(abs(epoch(j.start_time - {predicted_at})), 0.5) / 3600 AS error_p50,
                   count(*) FILTER (WHERE abs(epoch(j.start_time - {predicted_at})) <= 3600) AS within_hour
            FROM jobs j
            JOIN clusters c ON c.id = j.cluster_id
            LEFT JOIN accounts a ON a.id = j.account_id
            LEFT JOIN tenants t ON t.id = a.tenant_id
            WHERE j.start_time >= ? AND j.start_time < ?
            GROUP BY 1 ORDER BY 1"""
        for row in warehouse.query(sql, [bucket.start, bucket.end])[1]:
            found = True
            key, count, p50, p90, longest, *rest = row
            size_counts, (gpu_jobs, run_mean, predicted, error_p50, within) = rest[:len(SIZE_CLASSES)], \
                rest[len(SIZE_CLASSES):]
            report.rows.append({
                "bucket": bucket.label, "dimension": dimension, "key": key, "jobs": int(count),
                "wait_p50_h": _hours(p50), "wait_p90_h": _hours(p90), "wait_max_h": _hours(longest),
                **{name: int(n) for (name, _, _), n in zip(SIZE_CLASSES, size_counts)},
                "gpu_jobs": int(gpu_jobs), "run_mean_h": _hours(run_mean), "predicted_jobs": int(predicted),
                "prediction_error_p50_h": _hours(error_p50) if predicted else None,
                "predicted_within_1h": (Decimal(int(within)) / Decimal(int(predicted))).quantize(RATIO)
                if predicted else None})
    if not found:
        report.empty = f"no job started between {period.first} and {period.last}"
    report.note(msg("a job counts in the bucket in which it started; wait = start - submission"))
    if any(r["predicted_jobs"] < r["jobs"] for r in report.rows):
        report.note(msg("prediction figures cover only the jobs that had a predicted start (predicted_jobs)"))
    return report


def _hours(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(HOURS)

"""The efficiency report (issue 21 item 5; XDMoD's SUPReMM realm in money): per tenant, app or cluster,
what the monitored jobs were given against what they used, and what the waste cost.

It reads the application characteristics database (job_profiles: one line per ended, monitored job).
A job counts in the bucket in which it ended. Per row:

* core-hours allocated (cores x run time) and used (CPU efficiency x allocated, over the jobs whose
  CPU use was measured); card-hours likewise with the GPU utilisation, and the idle card-hours between;
* memory asked for but never touched (requested - peak RSS) in GiB-hours, and memory efficiency;
* charged and wasted money: the findings' priced waste (monitoring/rules.py), their share of the
  charge, and the findings that cost most.

Hours are Decimal to three places; money is summed in cents and shown as Decimal; a figure with no
jobs behind it is None, never zero.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from ..billing.ledger import money
from ..messages import msg
from .money_reports import currency_of
from .periods import Period, ReportError
from .report_model import HOURS, Report, ratio
from .warehouse import Warehouse

DIMENSIONS = ("tenant", "app", "cluster")
TOTAL = "(all)"
TOP_FINDINGS = 3
COLUMNS = ["bucket", "dimension", "key", "jobs", "core_hours", "core_hours_used", "cpu_efficiency", "card_hours",
           "card_hours_used", "idle_card_hours", "gpu_utilisation", "mem_over_requested_gib_h", "mem_efficiency",
           "currency", "charged", "wasted", "waste_share", "top_findings"]

_KEY = {"tenant": "coalesce(t.name, '(no tenant)')", "app": "p.app", "cluster": "c.name"}
_GIB_HOUR = 1024 ** 3 * 3600
# sums in core-, card- and byte-seconds; usage above 1 (counters vs accounting clocks) counts as 1:
# a job cannot use more than it was given, so waste never turns negative; least() skips a NULL, so
# every figure of a use is filtered to the jobs where that use was measured
_SUMS = ["sum(p.cores * p.runtime_s)",
         "sum(p.cores * p.runtime_s) FILTER (WHERE p.cpu_efficiency IS NOT NULL)",
         "sum(least(p.cpu_efficiency, 1.0) * p.cores * p.runtime_s) FILTER (WHERE p.cpu_efficiency IS NOT NULL)",
         "sum(p.gpus * p.runtime_s)",
         "sum(p.gpus * p.runtime_s) FILTER (WHERE p.gpu_utilisation IS NOT NULL)",
         "sum(least(p.gpu_utilisation, 1.0) * p.gpus * p.runtime_s) FILTER (WHERE p.gpu_utilisation IS NOT NULL)",
         "sum(greatest(p.mem_requested_bytes - p.peak_rss, 0) * p.runtime_s) FILTER (WHERE p.mem_requested_bytes > 0)",
         "sum(p.mem_requested_bytes * p.runtime_s) FILTER (WHERE p.mem_requested_bytes > 0)",
         "sum(least(p.peak_rss, p.mem_requested_bytes) * p.runtime_s) FILTER (WHERE p.mem_requested_bytes > 0)",
         "sum(p.price)", "sum(p.wasted)"]


def efficiency(warehouse: Warehouse, period: Period, dimension: str = "tenant") -> Report:
    if dimension not in DIMENSIONS:
        raise ReportError(f"unknown dimension {dimension!r}: use one of {', '.join(DIMENSIONS)}")
    report = Report("efficiency", period, COLUMNS, currency=currency_of(warehouse))
    if "job_profiles" not in warehouse.tables():
        report.empty = msg("this data has no job profiles (exported before they were kept): no efficiency to report")
        return report
    profile_columns = set(warehouse.columns("job_profiles"))
    mem = "p.mem_requested_bytes" if "mem_requested_bytes" in profile_columns else "NULL::BIGINT"
    findings = "p.findings" if "findings" in profile_columns else "NULL::VARCHAR"
    sums = ", ".join(s.replace("p.mem_requested_bytes", mem) for s in _SUMS)  # constants of this module
    source = """
        FROM job_profiles p
        JOIN clusters c ON c.id = p.cluster_id
        LEFT JOIN jobs j ON j.id = p.job_id
        LEFT JOIN accounts a ON a.id = j.account_id
        LEFT JOIN tenants t ON t.id = a.tenant_id
        WHERE p.finished_at >= ? AND p.finished_at < ?"""
    found = False
    for bucket in period.buckets():
        groups = {}
        for key, jobs, *values in warehouse.query(f"SELECT {_KEY[dimension]} AS key, count(*), {sums} {source} "
                                                  "GROUP BY 1 ORDER BY 1", [bucket.start, bucket.end])[1]:
            groups[key] = [int(jobs), *values, Counter()]
        for key, wasted_in in warehouse.query(f"SELECT {_KEY[dimension]}, {findings} {source} AND p.wasted > 0",
                                              [bucket.start, bucket.end])[1]:
            for finding in json.loads(wasted_in) if wasted_in else ():
                groups[key][-1][finding["code"]] += Decimal(finding["wasted"])
        if not groups:
            continue
        found = True
        total = [sum(g[i] or 0 for g in groups.values()) for i in range(len(_SUMS) + 1)] + \
            [sum((g[-1] for g in groups.values()), Counter())]
        for key, figures in [*groups.items(), (TOTAL, total)]:
            report.rows.append(_row(bucket.label, dimension, key, figures, report.currency))
    if not found:
        report.empty = msg("no monitored job ended between %(first)s and %(last)s", first=period.first,
                           last=period.last)
        return report
    report.note(msg("a job counts in the bucket in which it ended; only monitored jobs have a profile"))
    report.note(msg("wasted: what the efficiency findings priced (idle cores and cards, over-requested "
                    "resources), in the currency of the charge"))
    if any(r["core_hours_used"] is None or r["card_hours"] and r["card_hours_used"] is None for r in report.rows):
        report.note(msg("used and idle figures cover only the jobs whose use was measured"))
    if mem == "NULL::BIGINT" or any(r["mem_efficiency"] is None for r in report.rows):
        report.note(msg("memory figures cover only the jobs whose requested memory is known"))
    return report


def _row(label: str, dimension: str, key: str, figures: list, currency: str | None) -> dict:
    (jobs, core_s, measured_core_s, used_core_s, card_s, measured_card_s, used_card_s, mem_over, mem_req,
     mem_used, price, wasted, by_finding) = figures
    charged, lost = money(int(price or 0)), money(int(wasted or 0))
    top = sorted(by_finding.items(), key=lambda item: (-item[1], item[0]))[:TOP_FINDINGS]
    return {
        "bucket": label, "dimension": dimension, "key": key, "jobs": jobs,
        "core_hours": _hours(core_s), "core_hours_used": _hours(used_core_s) if measured_core_s else None,
        "cpu_efficiency": ratio(_exact(used_core_s), _exact(measured_core_s)),
        "card_hours": _hours(card_s), "card_hours_used": _hours(used_card_s) if measured_card_s else None,
        "idle_card_hours": _hours(measured_card_s - (used_card_s or 0)) if measured_card_s else None,
        "gpu_utilisation": ratio(_exact(used_card_s), _exact(measured_card_s)),
        "mem_over_requested_gib_h": (_exact(mem_over) / _GIB_HOUR).quantize(HOURS) if mem_req else None,
        "mem_efficiency": ratio(_exact(mem_used), _exact(mem_req)),
        "currency": currency, "charged": charged, "wasted": lost, "waste_share": ratio(lost, charged),
        "top_findings": "; ".join(f"{code} {amount}" for code, amount in top) or None}


def _exact(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _hours(seconds) -> Decimal:
    return (_exact(seconds or 0) / 3600).quantize(HOURS)

"""The routing report (issue 21 item 5): what the router's choices did. Per cluster a job runs on, or per
pair of clusters a job moved between, over the jobs submitted in each bucket:

* moved away from the router's first choice at submission (that cluster refused the job: failover),
  from the cheapest feasible placement, or from an owned one (the policy preferred a sooner start);
* re-routed after submission (pending long past its predicted start: services/jobs/reroute.py);
* what the chosen placement was quoted above the cheapest feasible one (``extra_quoted``: quotes are
  the most the job could cost, at its time limit, when it was routed; jobs lacking either are left out);
* how far the predicted start was from the actual one: median and 90th percentile of the absolute
  error, the median signed error (positive: later than predicted) and the share within an hour.

Each job's decision is the one stored with it (jobs.routing, as ``cnet job ID --why`` shows it).
"""

from __future__ import annotations

from decimal import Decimal

from ..messages import msg
from .periods import Period, ReportError
from .report_model import HOURS, Report, ratio
from .warehouse import Warehouse

DIMENSIONS = ("cluster", "pair")
TOTAL = "(all)"
REASONS = ("not_first", "not_cheapest", "not_owned", "rerouted")
COLUMNS = ["bucket", "dimension", "key", "jobs", "decided_jobs", *REASONS, "currency", "extra_quoted", "top_reason",
           "predicted_jobs", "start_error_p50_h", "start_error_p90_h", "start_late_p50_h", "predicted_within_1h"]


def routing(warehouse: Warehouse, period: Period, dimension: str = "cluster") -> Report:
    if dimension not in DIMENSIONS:
        raise ReportError(f"unknown dimension {dimension!r}: use one of {', '.join(DIMENSIONS)}")
    report = Report("routing", period, COLUMNS, currency=_currency(warehouse))
    columns = set(warehouse.columns("jobs"))
    decided = warehouse.decisions()
    cur = warehouse.con.cursor()  # its own connection: its temporary tables are this report's alone
    try:
        _classify(cur, period, decided, "reroutes" in columns, "predicted_start" in columns)
        any_jobs, rows = _aggregate(cur, dimension, report.currency)
    finally:
        cur.close()
    if not any_jobs:
        report.empty = msg("no job was submitted between %(first)s and %(last)s", first=period.first,
                           last=period.last)
        return report
    report.rows.extend(rows)
    report.note(msg("a job counts in the bucket in which it was submitted, on the cluster it runs on now"))
    report.note(msg("extra_quoted: the chosen placement's quote minus the cheapest feasible one's (quotes are "
                    "the most a job could cost, at its time limit, when it was routed)"))
    if not decided or any(r["decided_jobs"] < r["jobs"] for r in report.rows):
        report.note(msg("jobs without a stored routing decision (pinned to a cluster by dependency, direct "
                        "sbatch, older exports) count in jobs but in no move"))
    if dimension == "pair" and not report.rows:
        report.note(msg("no job moved away from its first, cheapest or owned choice"))
    return report


def _currency(warehouse: Warehouse) -> str | None:
    from .money_reports import currency_of

    return currency_of(warehouse)


# One row per job submitted in a bucket, and one per move it made, classified in DuckDB from the stored
# decision (the JSON the router wrote): a year of a large operator's jobs is millions of decisions, too
# many to decode one by one in Python. The rules, for a decision whose "chosen" is set:
#   feasible   the candidates marked feasible, in the router's order; ``chosen`` the first of them whose
#              "cluster/partition" is the decision's choice
#   not_first  the first feasible candidate is not the chosen one (it refused the job: the note
#              "<target> failed: ..." names it, else "failover")
#   not_cheapest  a priced feasible candidate (the first at the lowest price) quoted less than the chosen
#              one; ``extra`` the difference. Why: "<policy>: <what the chosen one's explanation ends with>"
#   not_owned  the chosen one is not owned and an owned feasible candidate was there (the first of them)
#   rerouted   moved after submission (rerouted_from, or the job's reroutes count)
# A job without a decision moves only when its reroutes count says it was re-routed (from "?").
_DECISION = ('{"chosen": "VARCHAR", "policy": "VARCHAR", "rerouted_from": "VARCHAR", "notes": ["VARCHAR"], '
             '"candidates": [{"cluster": "VARCHAR", "partition": "VARCHAR", "feasible": "BOOLEAN", '
             '"price": "VARCHAR", "ownership": "VARCHAR", "explanation": "VARCHAR"}]}')
_PRICE = "TRY_CAST({} AS DECIMAL(38, 12))"
_WHY = "coalesce(nullif(policy, ''), '?') || ': ' || coalesce(string_split(nullif(chosen_c.explanation, ''), ': ')[-1], '?')"


def _classify(cur, period: Period, decided: bool, has_reroutes: bool, has_predicted: bool) -> None:
    cur.execute("CREATE OR REPLACE TEMP TABLE _buckets (n INTEGER, label VARCHAR, s TIMESTAMP, e TIMESTAMP)")
    cur.executemany("INSERT INTO _buckets VALUES (?, ?, ?, ?)",
                    [(n, b.label, b.start, b.end) for n, b in enumerate(period.buckets())])
    # parsed once, leniently: what is not an object, or a field of another type, reads as NULL
    routing = f"CASE WHEN json_valid(d.routing) THEN json_transform(d.routing, '{_DECISION}') END" \
        if decided else f"json_transform(NULL::JSON, '{_DECISION}')"
    joined = "LEFT JOIN job_decisions d ON d.job_id = j.id" if decided else ""
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE _routed AS
        WITH raw AS (
            SELECT b.n, b.label, j.id, c.name AS cluster, {"coalesce(j.reroutes, 0)" if has_reroutes else "0"} AS reroutes,
                   date_diff('microsecond', {"j.predicted_start" if has_predicted else "NULL::TIMESTAMP"},
                             j.start_time) / 1e6 AS err,
                   {routing} AS r
            FROM _buckets b JOIN jobs j ON j.submitted_at >= b.s AND j.submitted_at < b.e
            JOIN clusters c ON c.id = j.cluster_id {joined}),
        parsed AS (
            SELECT *, nullif(r.chosen, '') AS chosen, r.policy AS policy, nullif(r.rerouted_from, '') AS rerouted_from,
                   list_filter(r.notes, lambda x: contains(x, ' failed')) AS failed,
                   coalesce(list_filter(r.candidates, lambda x: x.feasible), []) AS feasible
            FROM raw),
        chosen AS (
            SELECT *, list_filter(feasible, lambda x: x.cluster || '/' || x.partition = chosen)[1] AS chosen_c,
                   list_filter(feasible, lambda x: {_PRICE.format("x.price")} IS NOT NULL) AS priced,
                   list_filter(feasible, lambda x: x.ownership = 'owned')[1] AS owned_c
            FROM parsed),
        cheapest AS (
            SELECT *, list_min(list_transform(priced, lambda x: {_PRICE.format("x.price")})) AS low
            FROM chosen)
        SELECT n, label, id, cluster, chosen IS NOT NULL AS decided, err,
               -- not_first
               CASE WHEN chosen_c IS NOT NULL AND feasible[1].cluster || '/' || feasible[1].partition != chosen
                    THEN feasible[1].cluster END AS first_from,
               coalesce(nullif(split_part(failed[1], ':', 1), ''), 'failover') AS first_why,
               -- not_cheapest
               CASE WHEN {_PRICE.format("chosen_c.price")} > low
                    THEN list_filter(priced, lambda x: {_PRICE.format("x.price")} = low)[1].cluster END AS cheap_from,
               {_PRICE.format("chosen_c.price")} - low AS extra,
               -- not_owned
               CASE WHEN chosen_c IS NOT NULL AND coalesce(chosen_c.ownership, '') != 'owned'
                    THEN owned_c.cluster END AS owned_from,
               {_WHY} AS why,
               CASE WHEN chosen IS NOT NULL AND (rerouted_from IS NOT NULL OR reroutes > 0)
                    THEN coalesce(rerouted_from, '?')
                    WHEN chosen IS NULL AND reroutes > 0 THEN '?' END AS rerouted_from,
               CASE WHEN chosen IS NOT NULL THEN 'pending past its predicted start' ELSE 're-routed' END AS rerouted_why
        FROM cheapest""")
    cur.execute("""
        CREATE OR REPLACE TEMP TABLE _moves AS
        SELECT n, id, 'not_first' AS reason, first_from AS source, first_why AS why FROM _routed WHERE first_from IS NOT NULL
        UNION ALL SELECT n, id, 'not_cheapest', cheap_from, why FROM _routed WHERE cheap_from IS NOT NULL
        UNION ALL SELECT n, id, 'not_owned', owned_from, why FROM _routed WHERE owned_from IS NOT NULL
        UNION ALL SELECT n, id, 'rerouted', rerouted_from, rerouted_why FROM _routed WHERE rerouted_from IS NOT NULL""")


def _aggregate(cur, dimension: str, currency: str | None) -> tuple[bool, list[dict]]:
    """(whether any job was submitted in the period, the report's rows in bucket order)."""
    if dimension == "cluster":  # each job in its cluster's row and in the bucket's total
        groups = f"SELECT n, id, cluster AS key, NULL AS source FROM _routed " \
                 f"UNION ALL SELECT n, id, '{TOTAL}', NULL FROM _routed"
    else:  # a job in each pair it moved along; in a pair's row only its moves from that pair's source count
        groups = "SELECT DISTINCT m.n, m.id, m.source || ' -> ' || r.cluster AS key, m.source " \
                 "FROM _moves m JOIN _routed r USING (n, id)"
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _groups AS {groups}")
    cur.execute("""CREATE OR REPLACE TEMP TABLE _group_moves AS
        SELECT g.n, g.key, g.id, m.reason, m.why FROM _groups g
        JOIN _moves m ON m.n = g.n AND m.id = g.id AND (g.source IS NULL OR m.source = g.source)""")
    flags = ", ".join(f"bool_or(reason = '{r}') AS {r}" for r in REASONS)
    counts = ", ".join(f"count(*) FILTER (WHERE f.{r}) AS {r}" for r in REASONS)
    rows = cur.execute(f"""
        WITH f AS (SELECT n, key, id, {flags} FROM _group_moves GROUP BY n, key, id)
        SELECT g.n, any_value(r.label), g.key, count(*), count(*) FILTER (WHERE r.decided), {counts},
               CAST(sum(r.extra) FILTER (WHERE f.not_cheapest) AS VARCHAR),
               count(r.err), quantile_cont(abs(r.err), 0.5), quantile_cont(abs(r.err), 0.9),
               quantile_cont(r.err, 0.5), count(*) FILTER (WHERE abs(r.err) <= 3600)
        FROM _groups g JOIN _routed r ON r.n = g.n AND r.id = g.id
        LEFT JOIN f ON f.n = g.n AND f.key = g.key AND f.id = g.id
        GROUP BY g.n, g.key""").fetchall()
    top = {}
    for n, key, text, count in cur.execute("""SELECT n, key, reason || ': ' || why, count(*) FROM _group_moves
                                              GROUP BY ALL""").fetchall():
        if (n, key) not in top or (-count, text) < top[(n, key)]:
            top[(n, key)] = (-count, text)
    any_jobs = cur.execute("SELECT count(*) > 0 FROM _routed").fetchone()[0]
    out = []
    # bucket by bucket, keys in order, each bucket's total last (as the other reports)
    for row in sorted(rows, key=lambda r: (r[0], r[2] == TOTAL, r[2])):
        n, label, key, jobs, decided, *moved = row
        counts_, (extra, predicted, p50, p90, late, within) = moved[:len(REASONS)], moved[len(REASONS):]
        out.append({"bucket": label, "dimension": dimension, "key": key, "jobs": jobs, "decided_jobs": decided,
                    **dict(zip(REASONS, counts_)), "currency": currency, "extra_quoted": _money(extra),
                    "top_reason": top[(n, key)][1] if (n, key) in top else None, "predicted_jobs": predicted,
                    "start_error_p50_h": _hours(p50), "start_error_p90_h": _hours(p90),
                    "start_late_p50_h": _hours(late), "predicted_within_1h": ratio(within, predicted)})
    return any_jobs, out


def _money(text: str | None) -> Decimal | None:
    """A sum of quotes with at least the cents and every place a quote had beyond them."""
    if text is None:
        return None
    value = Decimal(text).normalize()
    return value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value


def _hours(seconds: float | None) -> Decimal | None:
    return None if seconds is None else (Decimal(str(seconds)) / 3600).quantize(HOURS)

"""Operator reports on a hand-built network (tests/reports_network.py): every figure worked out on paper."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update

import reports_network
from computenet.analytics import costs, export, reports
from computenet.analytics.periods import ReportError
from computenet.analytics.warehouse import Warehouse, WarehouseError
from computenet.config import ClusterConfig, Price
from computenet.store.models import Cluster

D = Decimal


@pytest.fixture
def network(clean_db):
    reports_network.build(clean_db)
    return clean_db


@pytest.fixture
def warehouse(network):
    with Warehouse.from_database(network) as wh:
        yield wh


def pick(report, **match):
    rows = [r for r in report.rows if all(r[k] == v for k, v in match.items())]
    assert len(rows) == 1, (match, rows)
    return rows[0]


def two_days(warehouse, name, **options):
    return reports.run(name, warehouse, "2023-01-01", "2023-01-02", "day", **options)


def test_utilization_counts_distinct_nodes_and_clips_jobs_to_the_period(warehouse):
    r = two_days(warehouse, "utilization")
    own = pick(r, bucket="2023-01-01", level="cluster", name="own")
    # n1, n2, n3 (n2 is in both partitions): 30 cores x 24 h, not 40; J1 60 + J3 120 (6 of its 12 h)
    assert (own["core_capacity"], own["core_hours"], own["core_utilization"]) == (D(720), D(180), D("0.25"))
    assert own["card_utilization"] is None  # no GPUs: undefined, not 0
    assert pick(r, bucket="2023-01-01", name="own/cpu")["core_utilization"] == D("0.125")
    assert pick(r, bucket="2023-01-01", name="own/shared")["core_hours"] == D(120)
    # J2 straddles midnight: 12 h in each day; J5 runs past the period: 4 h of 6 counted
    lease = pick(r, bucket="2023-01-02", level="cluster", name="lease")
    assert (lease["core_hours"], lease["card_hours"], lease["card_utilization"]) == (D(96), D(48), D("0.25"))
    assert pick(r, bucket="2023-01-02", level="cluster", name="own")["core_hours"] == D(60)  # J4 20 + J5 40
    assert pick(r, bucket="2023-01-02", level="ownership", name="owned")["core_utilization"] == D("0.083333")
    assert pick(r, bucket="2023-01-02", level="ownership", name="leased")["card_capacity"] == D(192)


def test_revenue_comes_from_the_ledger_by_every_dimension(warehouse):
    r = two_days(warehouse, "revenue")
    day1 = {(row["dimension"], row["key"]): row["revenue"] for row in r.rows if row["bucket"] == "2023-01-01"}
    day2 = {(row["dimension"], row["key"]): row["revenue"] for row in r.rows if row["bucket"] == "2023-01-02"}
    assert day1[("total", "all")] == D("420.00")  # the 3000.00 hold on day 1 is not revenue
    assert day2[("total", "all")] == D("1235.00")  # 1200 posted + (40 - 10 refunded) + 5 storage; J5 is on 01-03
    assert day2[("product_line", "ai")] == D("1200.00") and day2[("product_line", "hpc")] == D("30.00")
    assert day2[("cluster", "lease")] == D("1200.00") and day2[("cluster", "(no cluster)")] == D("5.00")
    assert day2[("segment", "university")] == D("35.00") and day1[("segment", "research_institute")] == D("300")
    assert day2[("customer", "tenant corp")] == D("1200.00")
    assert day2[("billing", "postpaid")] == D("1200.00") and day2[("billing", "prepaid")] == D("35.00")
    assert ("billing", "postpaid") not in day1
    assert pick(r, bucket="2023-01-02", dimension="product_line", key="ai")["share"] == D("0.971660")
    only = two_days(warehouse, "revenue", dimension="cluster")
    assert {row["dimension"] for row in only.rows} == {"total", "cluster"}


def test_owned_capacity_costs_every_hour_and_margin_follows(warehouse):
    r = two_days(warehouse, "margin")
    own1 = pick(r, bucket="2023-01-01", level="cluster", name="own")
    # 3 nodes x 3.00 (2.00 depreciation + 0.60 power + 0.40 opex) x 24 h, whatever was used
    assert (own1["revenue"], own1["cost"], own1["gross_profit"], own1["margin"]) == (
        D("420.00"), D("216.00"), D("204.00"), D("0.485714"))
    own2 = pick(r, bucket="2023-01-02", level="cluster", name="own")
    assert (own2["cost"], own2["margin"]) == (D("216.00"), D("-6.2"))  # idle owned capacity pulls margin down
    lease1 = pick(r, bucket="2023-01-01", level="cluster", name="lease")
    assert (lease1["cost"], lease1["margin"]) == (D("249.60"), None)  # 96 x 0.10 + 48 x 5.00; no revenue yet
    assert "no revenue" in lease1["note"]
    assert pick(r, bucket="2023-01-02", level="cluster", name="lease")["margin"] == D("0.792")
    # n2 is split between hpc and industry: 1.5 nodes each
    hpc = pick(r, bucket="2023-01-01", level="product_line", name="hpc")
    assert (hpc["cost"], hpc["margin"]) == (D("108.00"), D("0.1"))
    assert pick(r, bucket="2023-01-01", level="product_line", name="industry")["margin"] == D("0.64")
    storage = pick(r, bucket="2023-01-02", level="product_line", name="storage")
    assert storage["cost"] is None and storage["margin"] is None and "unknown" in storage["note"]
    total = pick(r, bucket="2023-01-02", level="total", name="all")
    assert (total["revenue"], total["cost"], total["margin"]) == (D("1235.00"), D("465.60"), D("0.622996"))


def test_cost_model_falls_back_to_core_rates_and_says_when_it_has_none(network):
    with network.session() as s:
        s.execute(update(Cluster).where(Cluster.name == "own").values(
            node_capex=None, depreciation_years=None, node_watts=None, power_price_kwh=None, pue=None,
            node_opex_hour=None, cost_core_hour=D("0.02")))
    with Warehouse.from_database(network) as wh:
        own = pick(two_days(wh, "margin"), bucket="2023-01-01", level="cluster", name="own")
        assert own["cost"] == D("14.40")  # 30 cores x 24 h x 0.02
    with network.session() as s:
        s.execute(update(Cluster).where(Cluster.name == "own").values(cost_core_hour=None))
    with Warehouse.from_database(network) as wh:
        r = two_days(wh, "margin")
    own = pick(r, bucket="2023-01-01", level="cluster", name="own")
    assert own["cost"] is None and own["margin"] is None and "no cost configured" in own["note"]
    assert pick(r, bucket="2023-01-01", level="total", name="all")["margin"] is None
    assert pick(r, bucket="2023-01-01", level="product_line", name="hpc")["cost"] is None


def test_configured_costs_win_over_the_database(warehouse):
    cfg = ClusterConfig(name="lease", kind="local", ownership="leased", cost_core_hour=D("0.20"),
                        cost_gpu_hour=D("5.00"), prices={"*": Price(core_hour=D("1"))})
    settings = type("S", (), {"clusters": [cfg]})()
    costs.apply_settings(warehouse, settings)
    assert pick(two_days(warehouse, "margin"), bucket="2023-01-01", name="lease")["cost"] == D("259.20")
    with pytest.raises(ValueError, match="node_capex and depreciation_years"):
        ClusterConfig(name="x", kind="local", node_capex=D("1000"))


def test_segment_shares_of_core_and_card_hours(warehouse):
    r = two_days(warehouse, "segments")
    uni = pick(r, bucket="2023-01-01", segment="university")
    assert (uni["core_hours"], uni["cpu_share"]) == (D(60), D("0.217391"))  # 60 of 60 + 120 + 96
    ent = pick(r, bucket="2023-01-01", segment="enterprise")
    assert (ent["gpu_share"], ent["revenue"], ent["revenue_share"]) == (D(1), D("0.00"), D(0))
    assert pick(r, bucket="2023-01-02", segment="university")["cpu_share"] == D("0.384615")  # 60 of 156


def test_top_customers_concentration(warehouse):
    r = reports.run("customers", warehouse, "2023-01-01", "2023-01-02", "month", top=2)
    assert [(row["rank"], row["customer"], row["revenue"]) for row in r.rows] == [
        (1, "tenant corp", D("1200.00")), (2, "tenant inst", D("300.00"))]
    assert r.rows[1]["cumulative_share"] == D("0.906344")  # 1500 of 1655
    assert r.summary == [{"bucket": "2023-01", "customers": 3, "revenue": D("1655.00"), "top": 2,
                          "top_share": D("0.906344")}]
    with pytest.raises(ReportError, match="--top"):
        reports.run("customers", warehouse, "2023-01-01", "2023-01-02", "month", top=0)


def test_active_and_new_users(warehouse):
    r = two_days(warehouse, "users")
    assert r.rows == [{"bucket": "2023-01-01", "active_users": 3, "new_users": 0},
                      {"bucket": "2023-01-02", "active_users": 2, "new_users": 1}]


def test_growth_year_on_year_and_cagr(network):
    reports_network.add_revenue(network, "uni-lab", "hpc", "1000.00", "2022-06-01T00:00:00")
    with Warehouse.from_database(network) as wh:
        r = reports.run("growth", wh, "2021-01-01", "2023-12-31", "year")
        two = reports.run("growth", wh, "2022-01-01", "2023-12-31", "year")
        with pytest.raises(ReportError, match="whole years"):
            reports.run("growth", wh, "2022-03-01", "2023-12-31", "year")
        with pytest.raises(ReportError, match="not day"):
            reports.run("growth", wh, "2023-01-01", "2023-01-02", "day")
    assert pick(r, bucket="2023", line="all")["yoy"] == D("0.7")  # 1700 (1655 + J5's 45) over 1000
    assert pick(r, bucket="2023", line="hpc")["yoy"] == D("-0.805")  # 195 over 1000
    missing = pick(r, bucket="2022", line="all")
    assert missing["yoy"] is None and "no revenue recorded in 2021" in missing["yoy_note"]
    assert next(s for s in r.summary if s["line"] == "all")["cagr"] is None  # 2021 has no revenue
    assert next(s for s in two.summary if s["line"] == "all")["cagr"] == D("0.7")


def test_a_period_with_no_data_says_so(warehouse):
    for name in reports.REPORTS:
        r = reports.run(name, warehouse, "2024-06-01", "2024-06-30", "month")
        assert r.rows == [] and r.empty, name
        assert r.as_json()["empty"] == r.empty


@pytest.mark.parametrize("first,last,by,message", [
    ("2023-02-01", "2023-01-01", "month", "after --to"),
    ("2023-01-01", "2023-01-31", "week", "unknown grouping"),
    (None, "2023-01-31", "month", "--from is required"),
    ("2023-13-01", "2023-12-31", "month", "not a day"),
])
def test_bad_periods_are_refused_with_the_reason(warehouse, first, last, by, message):
    with pytest.raises(ReportError, match=message):
        reports.run("revenue", warehouse, first, last, by)


def test_unknown_report_and_dimension(warehouse):
    with pytest.raises(ReportError, match="unknown report"):
        reports.run("profit", warehouse, "2023-01-01", "2023-01-02")
    with pytest.raises(ReportError, match="unknown dimension"):
        two_days(warehouse, "revenue", dimension="colour")


def test_parquet_export_reads_back_to_the_same_reports(warehouse, tmp_path):
    written = export.export_tables(warehouse, tmp_path / "pq", "parquet")
    assert {p.name for p in written} >= {"jobs.parquet", "transfers.parquet", "clusters.parquet"}
    with Warehouse.from_parquet(tmp_path / "pq") as again:
        for name in ("utilization", "margin", "customers"):
            assert two_days(again, name).as_json() == two_days(warehouse, name).as_json()
    export.export_tables(warehouse, tmp_path / "csv", "csv")
    assert (tmp_path / "csv" / "usage_records.csv").read_text().startswith("id,")
    (tmp_path / "pq" / "users.parquet").unlink()
    with pytest.raises(WarehouseError, match="users.parquet is missing"):
        Warehouse.from_parquet(tmp_path / "pq")
    warehouse.con.execute("CREATE TABLE bare AS SELECT id, name FROM users")
    warehouse.con.table("bare").write_parquet(str(tmp_path / "pq" / "users.parquet"))
    with pytest.raises(WarehouseError, match="users lacks column"):
        Warehouse.from_parquet(tmp_path / "pq")


def test_one_warehouse_serves_concurrent_reports(warehouse):
    """The API shares one snapshot between request threads: every read has its own cursor, so no
    thread ever gets another's rows."""
    from concurrent.futures import ThreadPoolExecutor

    from computenet.analytics import queries

    alone = (queries.clusters(warehouse), queries.partitions(warehouse),
             two_days(warehouse, "margin").as_json()["rows"])

    def read(_):
        return (queries.clusters(warehouse), queries.partitions(warehouse),
                two_days(warehouse, "margin").as_json()["rows"])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, range(40)))
    assert all(result == alone for result in results)

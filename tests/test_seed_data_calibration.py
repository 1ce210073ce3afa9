"""The operator reports, run on a generated year, recover the seed operator's published mix.

Tolerances: segments' shares are met by construction up to one job: the 4,000
largest jobs are placed one by one, the rest are cut along their running total,
so a segment misses its target by at most the largest of the rest (well under
0.5 % of a year of 4,000 jobs). We allow 1 percentage point. The top-five share
depends on how finely revenue splits among tenants (whole jobs, contract
discounts): 1.5 points. The figures come from tests/fixtures/analytics/seed-figures.json.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from computenet.analytics import reports, seed_db, seed_parquet
from computenet.analytics.seed_data import SeedSpec, generate
from computenet.analytics.warehouse import Warehouse

FIGURES = json.loads((Path(__file__).parent / "fixtures" / "analytics" / "seed-figures.json").read_text())
YEAR = ("2022-01-01", "2022-12-31")
SHARE_TOLERANCE = Decimal("0.01")
TOP5_TOLERANCE = Decimal("0.015")


@pytest.fixture(scope="module")
def year():
    return generate(SeedSpec(year=2022, jobs=4_000, tenants=200, seed=11))


def _figures(warehouse: Warehouse) -> dict:
    segments = {r["segment"]: r for r in reports.run("segments", warehouse, *YEAR, by="year").rows}
    customers = reports.run("customers", warehouse, *YEAR, by="year", top=5)
    revenue = {(r["dimension"], r["key"]): r for r in reports.run("revenue", warehouse, *YEAR, by="year").rows}
    return {"university_cpu": segments["university"]["cpu_share"], "enterprise_gpu": segments["enterprise"]["gpu_share"],
            "top5": customers.summary[0]["top_share"], "customers": customers.summary[0]["customers"],
            "revenue": revenue[("total", "all")]["revenue"], "prepaid": revenue[("billing", "prepaid")]["share"],
            "individual": segments["individual"]["revenue_share"]}


def test_reports_recover_the_published_mix_from_the_database_and_from_parquet(clean_db, year, tmp_path):
    seed_db.write(clean_db, year)
    with Warehouse.from_database(clean_db) as warehouse:
        got = _figures(warehouse)
    assert abs(got["university_cpu"] - Decimal(FIGURES["university_cpu_share"])) <= SHARE_TOLERANCE
    assert abs(got["enterprise_gpu"] - Decimal(FIGURES["enterprise_gpu_share"])) <= SHARE_TOLERANCE
    assert abs(got["top5"] - Decimal(FIGURES["top5_revenue_share_2022"])) <= TOP5_TOLERANCE
    assert got["customers"] > 150
    # "mostly prepaid": we chose 85 % prepaid revenue (selected enterprises on credit lines)
    assert Decimal("0.80") <= got["prepaid"] <= Decimal("0.90")
    assert got["individual"] < Decimal("0.002")  # published: 0.07 % of revenue
    # the fast path writes the same year: the same figures, to the cent
    seed_parquet.write(year, tmp_path)
    with Warehouse.from_parquet(tmp_path) as warehouse:
        assert _figures(warehouse) == got


def test_shares_hold_at_another_scale_and_seed(tmp_path):
    seed_parquet.write(generate(SeedSpec(year=2023, jobs=12_000, tenants=400, seed=2)), tmp_path)
    with Warehouse.from_parquet(tmp_path) as warehouse:
        segments = {r["segment"]: r for r in reports.run("segments", warehouse, "2023-01-01", "2023-12-31",
                                                            by="year").rows}
        top = reports.run("customers", warehouse, "2023-01-01", "2023-12-31", by="year", top=5).summary[0]
    assert abs(segments["university"]["cpu_share"] - Decimal(FIGURES["university_cpu_share"])) <= SHARE_TOLERANCE
    assert abs(segments["enterprise"]["gpu_share"] - Decimal(FIGURES["enterprise_gpu_share"])) <= SHARE_TOLERANCE
    assert abs(top["top_share"] - Decimal(FIGURES["top5_revenue_share_2022"])) <= TOP5_TOLERANCE


def test_no_month_runs_more_than_the_network_has(tmp_path):
    """Jobs are placed by EASY within what the partitions have (December is about 1.5x January:
    its peaks queue), so no month reports more than its capacity; test_seed_capacity.py checks
    every instant."""
    seed_parquet.write(generate(SeedSpec(year=2022, jobs=30_000, tenants=300, seed=1)), tmp_path)
    with Warehouse.from_parquet(tmp_path) as warehouse:
        rows = reports.run("utilization", warehouse, *YEAR, by="month").rows
    busiest = max(r[k] for r in rows for k in ("core_utilization", "card_utilization") if r[k] is not None)
    assert Decimal("0.5") < busiest <= Decimal("1")

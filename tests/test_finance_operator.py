"""The operator's own statement from its ledger and its cost of capacity, through the same finance view
(and the same margin report as `cnet report margin --by year`)."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from computenet.analytics.finance import analyse
from computenet.analytics.finance_operator import operator_statement
from computenet.analytics.reports import operational_warehouse
from computenet.analytics.statements_io import StatementError
from computenet.billing import funds
from computenet.cli.main import app
from computenet.services.billing.charging import charge_record, settle_job
from computenet.store.models import Account, Charge, Cluster, Job, Transfer, UsageRecordRow

from conftest import add_user

PRICE = Decimal("36.00")  # the test cluster's list price per core-hour
COST = Decimal("12.50")  # what a core-hour costs the operator


def close(a: Decimal, b: Decimal) -> bool:  # 34-digit vs 28-digit division
    return abs(a - b) < Decimal("1e-20")


def charged_job(platform, account_id, owner_id, cpus, seconds, year):
    """A finished, rated and settled job whose money moved in ``year``."""
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster))
        account = session.get(Account, account_id)
        job = Job(owner_id=owner_id, account_id=account_id, cluster_id=cluster.id, partition="local", name="f",
                  state="COMPLETED", spec={}, script="#!/bin/bash\n", workdir="/w", stdout_path="/w/o",
                  stderr_path="/w/o", cores=cpus, gpus=0, time_limit_minutes=600, max_cost=Decimal("400.00"))
        session.add(job)
        session.flush()
        job.native_id = str(5000 + job.id)
        funds.hold_for_job(session, job, account, Decimal("400.00"), "hpc")
        now = datetime(year, 5, 31, 12, tzinfo=timezone.utc)  # it ran in that year, too
        row = UsageRecordRow(cluster_id=cluster.id, record_id=job.native_id, native_id=job.native_id,
                             submit_time=now, job_id=job.id, state="COMPLETED", start_time=now,
                             end_time=now + timedelta(seconds=seconds), elapsed_seconds=seconds, cpus=cpus,
                             mem_mb=100, gpus=0, nodes=1, exit_code=0, partition="local")
        session.add(row)
        session.flush()
        charge = charge_record(session, row)
        settle_job(session, job)
        moment = datetime(year, 6, 1, tzinfo=timezone.utc)
        session.execute(update(Transfer).where(Transfer.job_id == job.id).values(created_at=moment))
        session.execute(update(Charge).where(Charge.id == charge.id).values(created_at=moment))
        return charge.amount


@pytest.fixture
def ledger_years(platform):
    owner_id, _ = add_user(platform, "fin", balance="2000.00")
    with platform.db.session() as session:
        account_id = session.scalar(select(Account.id).where(Account.name == "fin-lab"))
        # leased: paid per core-hour used (owned capacity costs every hour: see the last test)
        session.execute(update(Cluster).values(cost_core_hour=COST, ownership="leased"))
    amounts = {2024: [charged_job(platform, account_id, owner_id, 2, 3600, 2024)],
               2025: [charged_job(platform, account_id, owner_id, 4, 3600, 2025),
                      charged_job(platform, account_id, owner_id, 1, 1800, 2025)]}
    core_hours = {2024: Decimal(2), 2025: Decimal(4) + Decimal("0.5")}
    return amounts, core_hours


def statement_of(platform, **options):
    return operator_statement(operational_warehouse(platform.db), **options)


def test_operator_growth_and_margin_from_the_ledger(platform, ledger_years):
    amounts, core_hours = ledger_years
    statement = statement_of(platform)
    revenue = {year: sum(values) for year, values in amounts.items()}
    assert revenue == {year: PRICE * hours for year, hours in core_hours.items()}  # top-ups are not revenue
    assert {y: statement.value("revenue", y) for y in statement.years} == revenue
    assert {y: statement.value("cost_of_revenue", y) for y in statement.years} == {
        year: COST * hours for year, hours in core_hours.items()}
    report = analyse(statement)
    last = report.years[-1]
    assert close(last.growth["revenue"].value, (revenue[2025] - revenue[2024]) / revenue[2024])
    assert close(last.margins["gross_margin"].value, (PRICE - COST) / PRICE)
    assert close(report.cagr["revenue"][2].value, last.growth["revenue"].value)  # one period: CAGR = yoy
    assert "gross profit 2025 = revenue - cost of revenue" in report.notes
    assert report.valuation["pe"].value is None  # the operator has no market cap here


def test_cost_unknown_without_configured_rates(platform, ledger_years):
    with platform.db.session() as session:
        session.execute(update(Cluster).values(cost_core_hour=None))
    statement = statement_of(platform)
    assert statement.value("cost_of_revenue", 2025) is None
    assert any("core-hours used but no cost_core_hour" in note for note in statement.notes), statement.notes
    margin = analyse(statement).years[-1].margins["gross_margin"]
    assert margin.value is None and "numerator" in margin.reason


def test_no_revenue_is_a_clear_error(platform):
    with pytest.raises(StatementError, match="no CNY revenue"):
        statement_of(platform)


def test_owned_capacity_costs_every_hour_of_the_year(platform, ledger_years):
    """Owned capacity is paid for whether used or not: a year's cost is capacity x hours x rate."""
    from datetime import date

    with platform.db.session() as session:
        session.execute(update(Cluster).values(ownership="owned"))
        cores = sum(p.nodes * p.cores_per_node for p in session.scalar(select(Cluster)).partitions)
    statement = statement_of(platform, today=date(2025, 7, 2))
    assert statement.value("cost_of_revenue", 2024) == COST * cores * 366 * 24  # a leap year
    assert statement.value("cost_of_revenue", 2025) == COST * cores * 183 * 24  # 1 January to today (2 July) included
    assert "2025 runs to 2025-07-02 (part of the year)" in statement.notes
    margin = analyse(statement).years[0].margins["gross_margin"]
    assert margin.value < 0  # two core-hours sold of a year's capacity: owned compute sitting idle loses money


def test_a_ledger_in_several_currencies_is_refused(platform, ledger_years):
    from computenet.billing import ledger

    with platform.db.session() as session:
        ledger.ledger_account(session, "revenue", product_line="hpc", currency="USD")
    with pytest.raises(StatementError, match="CNY, USD"):
        statement_of(platform)


def test_cnet_finance_operator(platform, ledger_years, db_url):
    result = CliRunner().invoke(app, ["finance", "operator", "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [y["year"] for y in data["years"]] == [2024, 2025]
    assert close(Decimal(data["years"][1]["gross_margin"]["value"]), (PRICE - COST) / PRICE)
    table = CliRunner().invoke(app, ["finance", "operator", "--db", db_url], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "gross margin" in table.output and "65.3 %" in table.output

"""`/reports` over HTTP (operators and finance only) and `cnet report` on the command line."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

import reports_network
from computenet.analytics.periods import ReportError
from computenet.analytics.warehouse import Warehouse
from computenet.cli.main import app
from computenet.services.tenancy import accounts


def _token(platform, name: str, role: str) -> str:
    with platform.db.session() as s:
        user = accounts.create_user(s, name)
        user.role = role
        return accounts.issue_token(s, user, "test")


def _get(server, token: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_reports_need_the_operator_or_finance_role(platform, server):
    reports_network.build(platform.db)
    period = {"from": "2023-01-01", "to": "2023-01-02", "by": "day"}
    assert _get(server, _token(platform, "plain", "user"), "/reports/revenue", **period).status_code == 403
    operator = _token(platform, "ops", "operator")
    got = _get(server, operator, "/reports/utilization", **period)
    assert got.status_code == 200, got.text
    own = next(r for r in got.json()["rows"] if r["bucket"] == "2023-01-01" and r["name"] == "own")
    assert (own["core_hours"], own["core_utilization"]) == ("180.000", "0.250000")
    finance = _token(platform, "money", "finance")
    revenue = _get(server, finance, "/reports/revenue", dimension="billing", **period).json()
    assert {(r["bucket"], r["key"]): r["revenue"] for r in revenue["rows"]}[("2023-01-02", "postpaid")] == "1200.00"
    csv = _get(server, finance, "/reports/customers", format="csv", top=1, **period)
    assert csv.text.splitlines()[1].startswith("2023-01-01,1,tenant inst,research_institute,300.00")
    bad = _get(server, operator, "/reports/revenue", **{**period, "by": "week"})
    assert bad.status_code == 400 and "unknown grouping" in bad.json()["detail"]
    png = _get(server, operator, "/reports/margin/chart.png", **period)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_cnet_report_on_the_database_and_on_parquet(platform, tmp_path, monkeypatch):
    reports_network.build(platform.db)
    monkeypatch.setenv("COMPUTENET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", platform.settings.db_url)
    runner = CliRunner()
    out = runner.invoke(app, ["report", "margin", "--from", "2023-01-01", "--to", "2023-01-02", "--by", "day",
                              "--json", "--csv", str(tmp_path / "margin.csv")])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["rows"]
    assert next(r for r in rows if r["name"] == "own" and r["bucket"] == "2023-01-01")["cost"] == "216.00"
    assert "own" in (tmp_path / "margin.csv").read_text()
    out = runner.invoke(app, ["report", "export", "--format", "parquet", "--out", str(tmp_path / "pq")])
    assert out.exit_code == 0, out.output
    table = runner.invoke(app, ["report", "users", "--from", "2023-01-01", "--to", "2023-01-02", "--by", "day",
                                "--data", str(tmp_path / "pq")])
    assert table.exit_code == 0 and "2023-01-02" in table.output, table.output
    chart = runner.invoke(app, ["report", "chart", "utilization", "--out", str(tmp_path / "u.png"), "--from",
                                "2023-01-01", "--to", "2023-01-02", "--by", "day", "--data", str(tmp_path / "pq")])
    assert chart.exit_code == 0 and (tmp_path / "u.png").read_bytes().startswith(b"\x89PNG"), chart.output
    empty = runner.invoke(app, ["report", "revenue", "--from", "2030-01-01", "--to", "2030-01-31",
                                "--data", str(tmp_path / "pq")])
    assert empty.exit_code == 0 and "no revenue in the ledger" in empty.output
    bad = runner.invoke(app, ["report", "revenue", "--from", "2023-02-01", "--to", "2023-01-01",
                              "--data", str(tmp_path / "pq")])
    assert bad.exit_code == 1 and "after --to" in bad.output


def test_charts_draw_each_kind(clean_db, tmp_path):
    from computenet.analytics import charts, reports

    reports_network.build(clean_db)
    with Warehouse.from_database(clean_db) as wh:
        for kind, name in charts.CHARTS.items():
            report = reports.run(name, wh, "2023-01-01", "2023-01-02", "day")
            if kind == "efficiency":  # this network has no monitored jobs (test_efficiency_routing_reports draws one)
                with pytest.raises(ReportError, match="nothing to draw: no monitored job ended"):
                    charts.draw(kind, report, tmp_path / f"{kind}.png")
                continue
            assert charts.draw(kind, report, tmp_path / f"{kind}.png").stat().st_size > 1000


def test_owned_costs_in_the_configuration_are_kept_on_the_cluster(make_platform):
    """What a node costs is set in the configuration and kept in the clusters table with the rest
    of the cluster's settings (so reports on exports or another host see it too)."""
    from decimal import Decimal

    from computenet.store.models import Cluster

    from conftest import local_cluster

    platform = make_platform([local_cluster(node_capex=Decimal("120000.00"), depreciation_years=Decimal("5"),
                                            node_watts=800, power_price_kwh=Decimal("0.65"), pue=Decimal("1.35"),
                                            node_opex_hour=Decimal("0.40"))])
    with platform.db.session() as session:
        row = session.query(Cluster).filter(Cluster.name == "local").one()
        assert (row.node_capex, row.depreciation_years, row.node_watts) == (Decimal("120000.00"), Decimal("5"), 800)
        assert (row.power_price_kwh, row.pue, row.node_opex_hour) == (Decimal("0.65"), Decimal("1.35"),
                                                                      Decimal("0.40"))


def test_reports_over_http_share_a_snapshot_until_refreshed(platform, server):
    """A dashboard's several requests read one copy of the tables (at most a minute old, and it says
    when it was read); refresh=true reads them again."""
    reports_network.build(platform.db)
    operator = _token(platform, "ops", "operator")
    period = {"from": "2023-01-01", "to": "2030-12-31", "by": "year"}
    first = _get(server, operator, "/reports/users", **period)
    assert first.status_code == 200 and first.headers["X-Data-As-Of"] == first.json()["as_of"]
    before = sum(r["new_users"] for r in first.json()["rows"])
    _token(platform, "newcomer", "user")  # a user signs up
    again = _get(server, operator, "/reports/users", **period).json()
    assert again["as_of"] == first.json()["as_of"] and sum(r["new_users"] for r in again["rows"]) == before
    fresh = _get(server, operator, "/reports/users", refresh="true", **period).json()
    assert fresh["as_of"] > first.json()["as_of"] and sum(r["new_users"] for r in fresh["rows"]) == before + 1

"""The jobs report (issue 21 item 5, XDMoD's Jobs realm): queue wait, job sizes, run time and the
start prediction's error per cluster, partition or tenant, from the warehouse and over HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import reports_network
from computenet.analytics import reports
from computenet.analytics.periods import ReportError
from computenet.analytics.warehouse import Warehouse
from computenet.cli.main import app
from computenet.store.models import Job


def _waits(database) -> None:
    """J1 waited 1 h and was predicted 2 h late; J2 waited 3 h and was predicted 30 min early."""
    with database.session() as s:
        jobs = {j.name: j for j in s.scalars(select(Job))}
        j1, j2 = jobs["J1"], jobs["J2"]
        j1.submitted_at, j1.predicted_start = j1.start_time - timedelta(hours=1), j1.start_time + timedelta(hours=2)
        j2.submitted_at, j2.predicted_start = j2.start_time - timedelta(hours=3), j2.start_time - timedelta(minutes=30)


def test_wait_size_run_time_and_prediction_per_cluster(clean_db):
    reports_network.build(clean_db)
    _waits(clean_db)
    with Warehouse.from_database(clean_db) as wh:
        report = reports.run("jobs", wh, "2023-01-01", "2023-01-02", "day", dimension="cluster")
    rows = {(r["bucket"], r["key"]): r for r in report.rows}
    own, lease = rows[("2023-01-01", "own")], rows[("2023-01-01", "lease")]
    # J3 started on 12-31: it counts there, not on 01-01
    assert own["jobs"] == 1 and own["wait_p50_h"] == own["wait_max_h"] == Decimal("1.000")
    assert own["size_9_64"] == 1 and own["gpu_jobs"] == 0 and own["run_mean_h"] == Decimal("6.000")
    assert own["prediction_error_p50_h"] == Decimal("2.000") and own["predicted_within_1h"] == 0
    assert lease["wait_p90_h"] == Decimal("3.000") and lease["gpu_jobs"] == 1 and lease["size_2_8"] == 1
    assert lease["prediction_error_p50_h"] == Decimal("0.500") and lease["predicted_within_1h"] == 1
    later = rows[("2023-01-02", "own")]  # J4 and J5: no prediction, so no prediction figures
    assert later["jobs"] == 2 and later["predicted_jobs"] == 0 and later["prediction_error_p50_h"] is None
    assert any("predicted_jobs" in note for note in report.notes)


def test_by_partition_and_tenant_and_a_bad_dimension(clean_db):
    reports_network.build(clean_db)
    with Warehouse.from_database(clean_db) as wh:
        parts = reports.run("jobs", wh, "2023-01-01", "2023-01-02", "month", dimension="partition")
        tenants = reports.run("jobs", wh, "2023-01-01", "2023-01-02", "month", dimension="tenant")
        with pytest.raises(ReportError, match="unknown dimension 'queue'"):
            reports.run("jobs", wh, "2023-01-01", "2023-01-02", "month", dimension="queue")
        empty = reports.run("jobs", wh, "2030-01-01", "2030-01-31", "month")
    assert {r["key"]: r["jobs"] for r in parts.rows} == {"lease/gpu": 1, "own/cpu": 3}
    assert sum(r["jobs"] for r in tenants.rows) == 4
    assert empty.empty and "no job started" in empty.empty


def test_cnet_report_jobs(platform, tmp_path, monkeypatch):
    reports_network.build(platform.db)
    monkeypatch.setenv("COMPUTENET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", platform.settings.db_url)
    out = CliRunner().invoke(app, ["report", "jobs", "--from", "2023-01-01", "--to", "2023-01-02", "--by", "day",
                                   "--dimension", "partition", "--json"])
    assert out.exit_code == 0, out.output
    assert {r["key"] for r in json.loads(out.output)["rows"]} == {"own/cpu", "lease/gpu"}


def test_report_notes_are_said_in_the_readers_language(clean_db):
    from computenet.web.render import Viewer

    reports_network.build(clean_db)
    with Warehouse.from_database(clean_db) as wh:
        report = reports.run("revenue", wh, "2022-12-30", "2023-01-02", "day")
    note = next(n for n in report.notes if "shares are undefined" in n)
    assert note.startswith("2022-12-30: total revenue is 0.00")  # the API and CLI keep the English
    said = Viewer(language="zh-CN").say(note)
    assert said.startswith("2022-12-30：总收入为") and "占比无定义" in said

"""The efficiency report (waste in money by tenant, app and cluster) and the routing report (jobs moved,
re-routed, their quoted money, start-prediction error) of issue 21 item 5, on the hand-built network of
reports_network.py, every figure worked out below; from the warehouse, the CLI and over HTTP, in en and zh-CN."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import reports_network
from computenet.analytics import reports
from computenet.analytics.periods import ReportError
from computenet.analytics.warehouse import Warehouse
from computenet.cli.main import app
from computenet.services.tenancy import accounts
from computenet.store.models import Job, JobProfile

GIB = 1024 ** 3
PERIOD = ("2023-01-01", "2023-01-02")


def _profiles(database) -> None:
    """Monitored jobs (run time from reports_network: J1 6 h, J2 24 h, J3 12 h, J4 4 h, J5 6 h):
    J1 uni  gromacs  10 cores, CPU 50 %, 2 of 10 GiB, 120.00 charged, low_cpu wasted 30.00
    J2 corp pytorch   8 cores 4 cards, CPU 25 %, GPU 75 %, 8 of 16 GiB, 1200.00, idle_gpu 250.00 + low_cpu 50.00
    J3 inst gromacs  20 cores, CPU not measured, memory asked unknown, 300.00, no waste
    J4 uni  job:J4    5 cores, CPU 120 % (counted as 100 %), 4 of 4 GiB, 40.00, no waste
    J5 uni  gromacs  ended on 01-03, after the period"""
    with database.session() as s:
        jobs = {j.name: j for j in s.scalars(select(Job))}

        def profile(name, app, cpu, gpu, peak_gib, asked_gib, price, findings):
            job = jobs[name]
            s.add(JobProfile(job_id=job.id, app=app, user_id=job.owner_id, cluster_id=job.cluster_id, cores=job.cores,
                             gpus=job.gpus, runtime_s=(job.end_time - job.start_time).total_seconds(),
                             time_limit_s=None, cpu_efficiency=cpu, peak_rss=peak_gib * GIB, gpu_utilisation=gpu,
                             price=Decimal(price), wasted=sum((Decimal(w) for _, w in findings), Decimal("0")),
                             finished_at=job.end_time, mem_requested_bytes=asked_gib * GIB if asked_gib else None,
                             findings=[{"code": c, "wasted": w} for c, w in findings]))

        profile("J1", "gromacs", 0.5, None, 2, 10, "120.00", [("low_cpu", "30.00")])
        profile("J2", "pytorch", 0.25, 0.75, 8, 16, "1200.00", [("idle_gpu", "250.00"), ("low_cpu", "50.00")])
        profile("J3", "gromacs", None, None, 1, None, "300.00", [])
        profile("J4", "job:J4", 1.2, None, 4, 4, "40.00", [])
        profile("J5", "gromacs", 0.5, None, 1, 2, "45.00", [("low_cpu", "9.00")])


def _candidate(cluster, partition, ownership, price, why):
    return {"cluster": cluster, "partition": partition, "ownership": ownership, "feasible": True, "reasons": [],
            "price": price, "wait_s": 0.0, "explanation": f"starts now, at most {price}, {ownership}: {why}"}


def _decisions(database) -> None:
    """J1 (own) went to owned own/cpu quoted 60.00 over leased lease/gpu at 40.00 (earliest start): not the
    cheapest, 20.00 more. J2 (lease): own/cpu ranked first (owned, 100.00) refused the job, so it went to
    lease/gpu at 3000.00: not first, not cheapest (2900.00 more), not owned. J4 (own) was re-routed from lease.
    J5 (own) has no stored decision. Predicted starts: J1 2 h late (it started 2 h before), J2 30 min early
    (it started 30 min after), J4 3 h early; J5 none. J3 was submitted on 12-31, before the period."""
    with database.session() as s:
        jobs = {j.name: j for j in s.scalars(select(Job))}
        j1, j2, j4 = jobs["J1"], jobs["J2"], jobs["J4"]
        j1.routing = {"policy": "earliest_start", "chosen": "own/cpu", "notes": [], "candidates": [
            _candidate("own", "cpu", "owned", "60.00", "the earliest predicted start"),
            _candidate("lease", "gpu", "leased", "40.00", "")]}
        j2.routing = {"policy": "owned_first", "chosen": "lease/gpu",
                      "notes": ["own/cpu failed: sbatch: error: QOSMaxSubmitJobPerUserLimit"], "candidates": [
                          _candidate("own", "cpu", "owned", "100.00", "owned capacity, wait within 30 min"),
                          _candidate("lease", "gpu", "leased", "3000.00",
                                     "no owned capacity starts within 30 min; earliest start")]}
        j4.routing = {"policy": "earliest_start", "chosen": "own/cpu", "rerouted_from": "lease",
                      "previous": "lease/gpu", "notes": [], "candidates": [
                          _candidate("own", "cpu", "owned", "20.00", "the earliest predicted start")]}
        j4.reroutes = 1
        j1.predicted_start = j1.start_time + timedelta(hours=2)
        j2.predicted_start = j2.start_time - timedelta(minutes=30)
        j4.predicted_start = j4.start_time - timedelta(hours=3)


def _network(database) -> None:
    reports_network.build(database)
    _profiles(database)
    _decisions(database)


def _rows(report) -> dict:
    return {(r["bucket"], r["key"]): r for r in report.rows}


def test_efficiency_per_tenant_with_totals(clean_db):
    _network(clean_db)
    with Warehouse.from_database(clean_db, reports_only=True) as wh:
        report = reports.run("efficiency", wh, *PERIOD, "month", dimension="tenant")
    rows = _rows(report)
    assert [r["key"] for r in report.rows] == ["corp", "inst", "uni", "(all)"]
    uni = rows[("2023-01", "uni")]  # J1 and J4; J5 ended after the period
    assert uni["jobs"] == 2 and uni["core_hours"] == Decimal("80.000") and uni["core_hours_used"] == Decimal("50.000")
    assert uni["cpu_efficiency"] == Decimal("0.625000") and uni["card_hours"] == Decimal("0.000")
    assert uni["card_hours_used"] is None and uni["idle_card_hours"] is None and uni["gpu_utilisation"] is None
    # J1 left 8 GiB untouched for 6 h; memory used 2x6 + 4x4 = 28 of 10x6 + 4x4 = 76 GiB-hours
    assert uni["mem_over_requested_gib_h"] == Decimal("48.000") and uni["mem_efficiency"] == Decimal("0.368421")
    assert (uni["currency"], uni["charged"], uni["wasted"], uni["waste_share"]) == \
        ("CNY", Decimal("120.00") + Decimal("40.00"), Decimal("30.00"), Decimal("0.187500"))
    assert uni["top_findings"] == "low_cpu 30.00"
    corp = rows[("2023-01", "corp")]
    assert (corp["core_hours"], corp["core_hours_used"], corp["cpu_efficiency"]) == \
        (Decimal("192.000"), Decimal("48.000"), Decimal("0.250000"))
    assert (corp["card_hours"], corp["card_hours_used"], corp["idle_card_hours"], corp["gpu_utilisation"]) == \
        (Decimal("96.000"), Decimal("72.000"), Decimal("24.000"), Decimal("0.750000"))
    assert corp["mem_over_requested_gib_h"] == Decimal("192.000") and corp["mem_efficiency"] == Decimal("0.500000")
    assert (corp["wasted"], corp["waste_share"], corp["top_findings"]) == \
        (Decimal("300.00"), Decimal("0.250000"), "idle_gpu 250.00; low_cpu 50.00")
    inst = rows[("2023-01", "inst")]  # nothing measured: no used figures, no waste
    assert inst["core_hours"] == Decimal("240.000") and inst["core_hours_used"] is None
    assert inst["cpu_efficiency"] is None and inst["mem_efficiency"] is None
    assert (inst["wasted"], inst["waste_share"], inst["top_findings"]) == (Decimal("0.00"), Decimal("0.000000"), None)
    total = rows[("2023-01", "(all)")]
    assert total["jobs"] == 4 and total["core_hours"] == Decimal("512.000")
    assert total["core_hours_used"] == Decimal("98.000") and total["cpu_efficiency"] == Decimal("0.360294")  # 98/272
    assert total["idle_card_hours"] == Decimal("24.000") and total["mem_over_requested_gib_h"] == Decimal("240.000")
    assert total["mem_efficiency"] == Decimal("0.478261")  # 220 / 460
    assert (total["charged"], total["wasted"], total["waste_share"]) == \
        (Decimal("1660.00"), Decimal("330.00"), Decimal("0.198795"))
    assert total["top_findings"] == "idle_gpu 250.00; low_cpu 80.00"
    assert any("only the jobs whose use was measured" in n for n in report.notes)
    assert any("requested memory is known" in n for n in report.notes)


def test_efficiency_per_app_and_cluster_by_day(clean_db):
    _network(clean_db)
    with Warehouse.from_database(clean_db, reports_only=True) as wh:
        apps = _rows(reports.run("efficiency", wh, *PERIOD, "month", dimension="app"))
        days = _rows(reports.run("efficiency", wh, *PERIOD, "day", dimension="cluster"))
    gromacs = apps[("2023-01", "gromacs")]  # J1 and J3 (J5 after the period)
    assert (gromacs["jobs"], gromacs["core_hours"], gromacs["core_hours_used"], gromacs["cpu_efficiency"]) == \
        (2, Decimal("300.000"), Decimal("30.000"), Decimal("0.500000"))
    assert apps[("2023-01", "job:J4")]["cpu_efficiency"] == Decimal("1.000000")  # 120 % counts as all it had
    # J1 and J3 ended on 01-01 on own; J4 on 01-02 on own, J2 on 01-02 on lease
    assert set(days) == {("2023-01-01", "own"), ("2023-01-01", "(all)"), ("2023-01-02", "lease"),
                         ("2023-01-02", "own"), ("2023-01-02", "(all)")}
    assert days[("2023-01-01", "own")]["charged"] == Decimal("420.00")
    assert days[("2023-01-02", "(all)")]["wasted"] == Decimal("300.00")


def test_routing_per_cluster(clean_db):
    _network(clean_db)
    with Warehouse.from_database(clean_db, reports_only=True) as wh:
        report = reports.run("routing", wh, *PERIOD, "month")
    rows = _rows(report)
    own, lease, total = rows[("2023-01", "own")], rows[("2023-01", "lease")], rows[("2023-01", "(all)")]
    assert (own["jobs"], own["decided_jobs"], own["not_first"], own["not_cheapest"], own["not_owned"],
            own["rerouted"]) == (3, 2, 0, 1, 0, 1)  # J1, J4, J5
    assert own["extra_quoted"] == Decimal("20.00") and own["currency"] == "CNY"
    assert own["top_reason"] == "not_cheapest: earliest_start: the earliest predicted start"
    # errors: J1 started 2 h before its prediction, J4 3 h after: |e| 2 h and 3 h
    assert (own["predicted_jobs"], own["start_error_p50_h"], own["start_error_p90_h"], own["start_late_p50_h"],
            own["predicted_within_1h"]) == (2, Decimal("2.500"), Decimal("2.900"), Decimal("0.500"), Decimal("0"))
    assert (lease["not_first"], lease["not_cheapest"], lease["not_owned"], lease["rerouted"]) == (1, 1, 1, 0)
    assert lease["extra_quoted"] == Decimal("2900.00") and lease["predicted_within_1h"] == Decimal("1")
    # one move of each kind: the first by name
    assert lease["top_reason"] == "not_cheapest: owned_first: no owned capacity starts within 30 min; earliest start"
    assert (total["jobs"], total["decided_jobs"], total["not_cheapest"], total["extra_quoted"]) == \
        (4, 3, 2, Decimal("2920.00"))
    # |e| = 0.5, 2, 3 h: median 2 h, p90 2 + 0.8 x 1 = 2.8 h; signed -2, 0.5, 3: median 0.5 h late
    assert (total["start_error_p50_h"], total["start_error_p90_h"], total["start_late_p50_h"],
            total["predicted_within_1h"]) == (Decimal("2.000"), Decimal("2.800"), Decimal("0.500"), Decimal("0.333333"))
    assert any("without a stored routing decision" in n for n in report.notes)  # J5


def test_routing_per_cluster_pair(clean_db):
    _network(clean_db)
    with Warehouse.from_database(clean_db, reports_only=True) as wh:
        rows = _rows(reports.run("routing", wh, *PERIOD, "month", dimension="pair"))
    assert set(rows) == {("2023-01", "own -> lease"), ("2023-01", "lease -> own")}
    away = rows[("2023-01", "own -> lease")]  # J2: own refused it, was cheaper and owned
    assert (away["jobs"], away["not_first"], away["not_cheapest"], away["not_owned"], away["rerouted"]) == \
        (1, 1, 1, 1, 0)
    assert away["extra_quoted"] == Decimal("2900.00")
    back = rows[("2023-01", "lease -> own")]  # J1 (lease was cheaper) and J4 (re-routed from lease)
    assert (back["jobs"], back["not_cheapest"], back["rerouted"], back["extra_quoted"]) == (2, 1, 1, Decimal("20.00"))


def test_empty_periods_bad_arguments_and_old_exports(clean_db, tmp_path):
    _network(clean_db)
    with Warehouse.from_database(clean_db, reports_only=True) as wh:
        for name, dimension in (("efficiency", "tenant"), ("routing", "cluster")):
            empty = reports.run(name, wh, "2030-01-01", "2030-01-31", "month", dimension=dimension)
            assert empty.empty and "2030-01-01" in empty.empty and empty.rows == []
            with pytest.raises(ReportError, match="unknown dimension 'queue'"):
                reports.run(name, wh, *PERIOD, "month", dimension="queue")
            with pytest.raises(ReportError, match="unknown grouping"):
                reports.run(name, wh, *PERIOD, "week")
        # an export made before profiles and routing decisions were kept
        wh.con.execute("DROP TABLE job_profiles")
        wh.con.execute("DROP TABLE job_decisions")  # read by the routing reports above
        wh.engine = None  # as from Parquet files that have no decisions
        old = reports.run("efficiency", wh, *PERIOD, "month")
        routed = reports.run("routing", wh, *PERIOD, "month")
    assert old.empty and "no job profiles" in old.empty
    total = _rows(routed)[("2023-01", "(all)")]
    assert total["decided_jobs"] == 0 and total["rerouted"] == 1  # J4's count of re-routes is still there
    assert total["predicted_jobs"] == 3


def test_notes_and_empty_reports_in_chinese(clean_db):
    from computenet.web.report_language import in_language

    _network(clean_db)
    with Warehouse.from_database(clean_db, reports_only=True) as wh:
        waste = in_language(reports.run("efficiency", wh, *PERIOD, "month"), "zh-CN")
        routed = in_language(reports.run("routing", wh, *PERIOD, "month"), "zh-CN")
        empty = in_language(reports.run("routing", wh, "2030-01-01", "2030-01-31", "month"), "zh-CN")
        english = reports.run("efficiency", wh, *PERIOD, "month")
    assert "作业计入其结束的时段；只有受监控的作业才有画像" in waste.notes
    assert any(n.startswith("浪费金额") for n in waste.notes)
    assert any(n.startswith("作业计入其提交的时段") for n in routed.notes)
    assert empty.empty == "2030-01-01 至 2030-01-31 之间没有提交作业"
    assert english.notes[0] == "a job counts in the bucket in which it ended; only monitored jobs have a profile"
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        in_language(english, "fr")


def test_cnet_report_efficiency_and_routing(platform, tmp_path, monkeypatch):
    _network(platform.db)
    monkeypatch.setenv("COMPUTENET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", platform.settings.db_url)
    period = ["--from", PERIOD[0], "--to", PERIOD[1]]
    out = CliRunner().invoke(app, ["report", "efficiency", *period, "--dimension", "app", "--json",
                                   "--csv", str(tmp_path / "waste.csv")])
    assert out.exit_code == 0, out.output
    rows = {r["key"]: r for r in json.loads(out.output)["rows"]}
    assert rows["pytorch"]["idle_card_hours"] == "24.000" and rows["(all)"]["wasted"] == "330.00"
    table = list(csv.DictReader(open(tmp_path / "waste.csv")))
    assert table[0]["key"] == "gromacs" and table[0]["cpu_efficiency"] == "0.500000"
    assert table[0]["mem_efficiency"] == "0.200000"  # J3's request unknown, J1's 2 of 10 GiB: only J1 counts
    said = CliRunner().invoke(app, ["report", "routing", *period, "--lang", "zh-CN"])
    assert said.exit_code == 0, said.output
    assert "作业计入其提交的时段" in said.output and "own" in said.output
    for args, expected in ((["routing", *period, "--dimension", "queue"], "unknown dimension 'queue'"),
                           (["efficiency", *period, "--lang", "fr"], "unknown language 'fr'"),
                           (["efficiency", "--from", "2023-02-01", "--to", "2023-01-01"], "is after --to"),
                           (["routing", "--from", "2023-02-31", "--to", "2023-03-01"], "is not a day")):
        bad = CliRunner().invoke(app, ["report", *args])
        assert bad.exit_code != 0 and expected in bad.output and "Traceback" not in bad.output
    empty = CliRunner().invoke(app, ["report", "efficiency", "--from", "2030-01-01", "--to", "2030-01-31"])
    assert empty.exit_code == 0 and "no monitored job ended between 2030-01-01 and 2030-01-31" in empty.output


def _get(server, token: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_reports_over_http(platform, server):
    _network(platform.db)
    with platform.db.session() as s:
        user = accounts.create_user(s, "ops")
        user.role = "operator"
        token = accounts.issue_token(s, user, "test")
    period = {"from": PERIOD[0], "to": PERIOD[1]}
    got = _get(server, token, "/reports/efficiency", dimension="cluster", lang="zh-CN", **period)
    assert got.status_code == 200, got.text
    body = got.json()
    lease = next(r for r in body["rows"] if r["key"] == "lease")
    assert (lease["wasted"], lease["waste_share"], lease["currency"]) == ("300.00", "0.250000", "CNY")
    assert "作业计入其结束的时段；只有受监控的作业才有画像" in body["notes"]
    text = _get(server, token, "/reports/routing", dimension="pair", format="csv", **period)
    assert text.status_code == 200
    pairs = {r["key"]: r for r in csv.DictReader(io.StringIO(text.text))}
    assert pairs["own -> lease"]["extra_quoted"] == "2900.00"
    for params, expected in (({"dimension": "queue"}, "unknown dimension 'queue'"),
                             ({"lang": "fr"}, "unknown language 'fr'")):
        bad = _get(server, token, "/reports/routing", **period, **params)
        assert bad.status_code == 400 and expected in bad.json()["detail"]
    default = _get(server, token, "/reports/routing", **period).json()
    assert default["rows"][-1]["key"] == "(all)" and default["rows"][-1]["jobs"] == 4


def test_the_portal_shows_both_reports_in_chinese_with_a_chart(platform):
    from fastapi.testclient import TestClient

    from computenet.api.app import create_app
    from computenet.services import audit
    from computenet.services.tenancy import grants
    from computenet.services.signin import passwords

    _network(platform.db)
    with platform.db.session() as s:
        op = accounts.create_user(s, "op")
        grants.grant(s, None, audit.SYSTEM, op, "operator", "on call")
        passwords.set_password(s, audit.SYSTEM, op, "Correct-Horse-7", platform.settings.auth)
        op.language = "zh-CN"
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": "op", "password": "Correct-Horse-7", "next": "/"}).status_code == 303
    page = client.get("/portal/operations/reports", params={"name": "efficiency", "from": PERIOD[0], "to": PERIOD[1]})
    assert page.status_code == 200
    assert "效率与浪费" in page.text and "浪费占比" in page.text and "作业计入其结束的时段" in page.text
    chart = json.loads(re.search(r"data-chart='([^']*)'", page.text).group(1).replace("&#34;", '"'))
    assert {s["name"]: s["data"] for s in chart["series"]} == {"corp": [300.0], "inst": [0.0], "uni": [30.0]}
    assert chart["yAxis"]["name"].endswith("(CNY)")
    routed = client.get("/portal/operations/reports", params={"name": "routing", "from": PERIOD[0], "to": PERIOD[1]})
    assert routed.status_code == 200 and "开始时间误差中位数（时）" in routed.text and "已重新路由" in routed.text
    empty = client.get("/portal/operations/reports", params={"name": "routing", "from": "2030-01-01",
                                                             "to": "2030-01-31"})
    assert empty.status_code == 200 and "2030-01-01 至 2030-01-31 之间没有提交作业" in empty.text


def test_a_chart_of_the_waste_per_tenant(platform, tmp_path, monkeypatch):
    from computenet.analytics import charts

    _network(platform.db)
    with Warehouse.from_database(platform.db, reports_only=True) as wh:
        report = reports.run("efficiency", wh, *PERIOD, "day")
    ax = charts.figure("efficiency", report).axes[0]
    assert ax.get_ylabel() == "wasted (CNY)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["corp", "inst", "uni"]  # the totals row is no bar
    heights = {}
    for bars, name in zip(ax.containers, ("corp", "inst", "uni")):
        heights[name] = [bar.get_height() for bar in bars]
    assert heights == {"corp": [0.0, 300.0], "inst": [0.0, 0.0], "uni": [30.0, 0.0]}  # 01-01, 01-02
    monkeypatch.setenv("COMPUTENET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", platform.settings.db_url)
    out = CliRunner().invoke(app, ["report", "chart", "efficiency", "--from", PERIOD[0], "--to", PERIOD[1],
                                   "--out", str(tmp_path / "waste.png")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "waste.png").read_bytes().startswith(b"\x89PNG")

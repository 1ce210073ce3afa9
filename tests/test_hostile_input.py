"""Hostile input gets a clear 4xx naming the problem, never a 500 (issue 13, item 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from computenet.analytics.periods import MAX_BUCKETS, ReportError, make_period
from computenet.api.app import create_app
from computenet.domain.sbatch import ScriptError, parse_submission
from computenet.services.tenancy import accounts, tenants

from conftest import add_user

SCRIPT = "#!/bin/bash\n#SBATCH -c 1 -t 1 -H\ntrue\n"
HUGE = 2 ** 64
INT64_OVER = 2 ** 63


@pytest.fixture
def http(platform):
    """An in-process client for a member (alice) and one for finance staff, sharing one app."""
    with platform.db.session() as session:
        uni = tenants.create_tenant(session, "uni", "university")
        pi = accounts.create_user(session, "pi")
        fin = accounts.create_user(session, "fin")
        fin.role = "finance"
        tenants.create_project(session, uni, "md-lab", pi)
        tenants.create_project(session, uni, "md-two", pi)
        tokens = {"fin": accounts.issue_token(session, fin), "pi": accounts.issue_token(session, pi)}
    _, tokens["alice"] = add_user(platform, "alice")
    app = create_app(platform)

    def client(name: str) -> TestClient:
        return TestClient(app, raise_server_exceptions=False,
                          headers={"Authorization": f"Bearer {tokens[name]}"})
    return client


def clear_refusal(response, *fragments: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    for fragment in fragments:
        assert fragment in response.text, (fragment, response.text)


@pytest.mark.parametrize("method,path", [
    ("GET", "/jobs/{n}"), ("POST", "/jobs/{n}/cancel"), ("GET", "/jobs/{n}/stats"),
    ("GET", "/jobs/{n}/stats.png"), ("GET", "/jobs/{n}/output"), ("POST", "/notifications/{n}/read"),
])
@pytest.mark.parametrize("number", [HUGE, INT64_OVER, 2 ** 31, -1, 0])  # 2**31: past PostgreSQL's INTEGER keys
def test_ids_beyond_64_bits_are_refused_not_500(http, method, path, number):
    with http("alice") as alice:
        response = alice.request(method, path.format(n=number))
    assert response.status_code in (404, 422), (response.status_code, response.text)
    if number > 0 and response.status_code == 422:
        assert "job_id" in response.text or "notification_id" in response.text


@pytest.mark.parametrize("offset", [HUGE, INT64_OVER])
def test_output_offset_beyond_64_bits_is_refused(http, offset):
    with http("alice") as alice:
        job = alice.post("/jobs", json={"script": SCRIPT})
        assert job.status_code == 202, job.text
        response = alice.get(f"/jobs/{job.json()['id']}/output", params={"offset": offset})
    clear_refusal(response, "offset")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_a_json_number_is_a_422_naming_the_field(http, value):
    body = '{"script": "%s", "routing": {"max_wait_minutes": %s}}' % (SCRIPT.replace("\n", "\\n"), value)
    with http("alice") as alice:
        response = alice.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "max_wait_minutes" in response.json()["detail"]


def test_a_validation_error_carrying_nan_still_answers_json(http):
    # a float field that accepts NaN must not make the error handler itself fail
    with http("alice") as alice:
        response = alice.post("/jobs", content='{"script": NaN}', headers={"Content-Type": "application/json"})
    clear_refusal(response, "script")
    json.loads(response.text)


def test_a_lone_surrogate_in_a_script_is_refused(http):
    body = '{"script": "#!/bin/bash\\necho \\ud800\\n"}'
    with http("alice") as alice:
        response = alice.post("/jobs", content=body, headers={"Content-Type": "application/json"})
        assert alice.get("/jobs").json() == []  # nothing half-written
    clear_refusal(response, "script")  # pydantic refuses text that is not valid Unicode


@pytest.mark.parametrize("args", [["-J", "a\x00b"], ["--export=A=b\x00c"], ["--", "x\x00y"],
                                  ["-J", "\ud800"]])
def test_nul_or_surrogate_in_a_script_argument_is_a_400(http, args):
    body = json.dumps({"script": SCRIPT, "args": args})
    with http("alice") as alice:
        response = alice.post("/jobs", content=body, headers={"Content-Type": "application/json"})
        assert alice.get("/jobs").json() == []
    assert response.status_code == 400, response.text
    assert "NUL" in response.text or "surrogate" in response.text


def test_the_parser_refuses_nul_and_surrogates_in_flags():
    for flags in (["-J", "a\x00"], ["--export=X=\x00"], ["--", "\x00"], ["-J", "\udcff"]):
        with pytest.raises(ScriptError, match="NUL|surrogate"):
            parse_submission(SCRIPT, flags)
    with pytest.raises(ScriptError, match="surrogate"):
        parse_submission("#!/bin/bash\necho \ud800\n")


AMOUNTS = ["1e18", "1000000000000000000", "99999999999999999999.99", "-1e18", "1e400"]


@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.parametrize("who,method,path,body", [
    ("fin", "POST", "/accounts/md-lab/topups", {"reference": "r1"}),
    ("fin", "POST", "/accounts/md-lab/moves", {"to": "md-two", "reference": "m1"}),
    ("fin", "PUT", "/accounts/md-lab/credit-limit", {}),
    ("fin", "PUT", "/accounts/md-lab/low-balance", {}),
    ("pi", "PUT", "/accounts/md-lab/budget", {}),
    ("pi", "PUT", "/accounts/md-lab/members/fin", {"role": "member"}),
    ("fin", "PUT", "/accounts/md-lab/storage-quota", {}),
])
def test_amounts_of_1e18_and_more_are_refused_naming_the_field(http, who, method, path, body, amount):
    field = "spend_limit" if path.endswith("/members/fin") else "amount"
    with http(who) as client:
        response = client.request(method, path, json=body | {field: amount})
        audit = http("fin").get("/admin/audit").json()
    clear_refusal(response, field)
    assert response.status_code in (400, 422)
    assert audit == []  # nothing half-written


def test_an_ordinary_amount_still_works(http):
    with http("fin") as fin:
        assert fin.post("/accounts/md-lab/topups", json={"amount": "999999999.99", "reference": "big"}).status_code == 201
        assert fin.put("/accounts/md-lab/storage-quota", json={"amount": "1000"}).status_code == 200


def test_report_periods_are_capped_before_any_work():
    with pytest.raises(ReportError, match="periods"):
        make_period("0001-01-01", "9999-12-31", "day")
    with pytest.raises(ReportError, match="periods"):
        make_period("0001-01-01", "9999-12-31", "month")
    started = time.monotonic()
    with pytest.raises(ReportError):
        make_period("9990-01-01", "9999-12-31", "year")  # the day after 9999-12-31 does not exist
    assert make_period("2020-01-01", "2020-12-31", "day").buckets()[-1].label == "2020-12-31"
    assert len(make_period("1990-01-01", "2029-12-31", "year").buckets()) == 40
    assert MAX_BUCKETS >= 3660  # ten years by day
    assert time.monotonic() - started < 30  # a refusal costs no bucket list (generous: a busy machine)


@pytest.mark.parametrize("first,last,by", [("0001-01-01", "9999-12-31", "day"),
                                           ("0001-01-01", "9999-12-31", "month"),
                                           ("2026-01-01", "9999-12-31", "year"),
                                           ("9990-01-01", "9999-12-31", "year")])
def test_report_over_http_with_an_absurd_range_is_a_400(http, first, last, by):
    with http("fin") as fin:
        response = fin.get("/reports/utilization", params={"from": first, "to": last, "by": by})
    assert response.status_code == 400, response.text
    assert "period" in response.json()["detail"] or "day" in response.json()["detail"]


def test_a_report_over_its_time_limit_is_refused(platform, http, monkeypatch):
    from computenet.analytics import reports
    from computenet.api.routers import reports as routes

    def slow(warehouse, period, **options):
        time.sleep(30)
        raise AssertionError("should have been cut off")

    monkeypatch.setitem(reports.REPORTS, "users", slow)
    monkeypatch.setattr(routes, "REPORT_TIME_LIMIT_S", 1.0)
    started = time.monotonic()
    with http("fin") as fin:
        response = fin.get("/reports/users", params={"from": "2026-01-01", "to": "2026-01-31", "by": "day"})
    assert response.status_code == 503, response.text
    assert "time limit" in response.json()["detail"]
    assert time.monotonic() - started < 25


# -- the server stops promptly on SIGTERM -----------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(os.environ.get("COMPUTENET_TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="one database is enough: this tests the process, not the store")
def test_server_stops_promptly_on_sigterm_even_with_a_request_in_flight(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env |= {"COMPUTENET_DATA_DIR": str(tmp_path / "data"), "COMPUTENET_SERVER__PORT": str(port),
            "COMPUTENET_DATABASE_URL": f"sqlite:///{tmp_path / 'server.db'}", "COMPUTENET_SERVER__HOST": "127.0.0.1"}
    cnet = [sys.executable, "-c", "from computenet.cli.main import app; app()"]
    subprocess.run(cnet + ["admin", "init"], env=env, check=True, capture_output=True, timeout=120)
    made = subprocess.run(cnet + ["admin", "user-add", "ops", "--admin"], env=env,
                          capture_output=True, text=True, timeout=120)
    token = made.stdout.strip().split()[-1]
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(cnet + ["server"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        # a long request in flight (a slow client holding the connection open) must not keep the server up
        hold = subprocess.Popen([sys.executable, "-c", _SLOW_CLIENT, str(port), token])
        time.sleep(2)
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)  # GRACE_S for the open request, then out (a busy machine adds a little)
        except subprocess.TimeoutExpired:
            pytest.fail("the server was still running 30 s after SIGTERM")
        print(f"stopped {time.monotonic() - sent:.1f} s after SIGTERM")
        hold.kill()
        hold.wait()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()


# opens a request and sends its body one byte a second: uvicorn waits for it forever unless told not to
_SLOW_CLIENT = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + sys.argv[2] +
           "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode())
for _ in range(600):
    try:
        s.sendall(b" ")
    except OSError:
        break
    time.sleep(1)
"""


@pytest.mark.parametrize("month", ["9999-12", "+2026-01", " 2026-01", "2026-1"])
def test_a_month_that_is_not_yyyy_mm_is_refused(http, month):
    with http("fin") as fin:
        statement = fin.get(f"/accounts/md-lab/statements/{month}")
        closed = fin.post(f"/admin/months/{month}/close")
    clear_refusal(statement, "" if month == "9999-12" else "month")
    clear_refusal(closed, "" if month == "9999-12" else "month")  # 9999-12 ends in a year a date cannot hold


@pytest.mark.parametrize("path", ["a\x00b", "\x00"])
def test_nul_in_a_file_path_is_refused(http, path):
    with http("alice") as alice:
        answers = [alice.get("/files", params={"path": path}), alice.get("/files/content", params={"path": path}),
                   alice.put("/files/content", params={"path": path}, content=b"x"),
                   alice.post("/files/mkdir", json={"path": path}), alice.delete("/files", params={"path": path}),
                   alice.post("/files/move", json={"src": "x", "dst": path}),
                   alice.post("/uploads", json={"path": path, "size": 1, "sha256": "0" * 64})]
    for response in answers:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text)


def test_nul_in_a_query_or_stored_text_is_refused_not_500(http):
    """PostgreSQL text cannot hold a NUL (SQLite can): either way the answer is a 4xx."""
    with http("alice") as alice:
        clear_refusal(alice.get("/notifications", params={"limit": "5\x00"}), "NUL")
        clear_refusal(alice.get("/jobs", params={"state": "RUN\x00NING"}))

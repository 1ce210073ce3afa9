"""The portal's network pages: the simulator (cnet sim), the cluster registry, Slurm accounts, Unix logins
and enforcement (cnet admin map-account | map-user | enforce), the permissions table, and the clusters
page everyone sees (cnet clusters). Operators only where roles.py says so; bad input is a 4xx page that
names the problem and writes nothing; the simulator's figures are the CLI's."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from computenet.api.app import create_app
from computenet.services.tenancy import accounts, grants, roles
from computenet.services import audit
from computenet.services.network import simulations
from computenet.services.signin import passwords
from computenet.store.models import AuditEvent, RegisteredCluster, SlurmAccount, UnixIdentity

from conftest import poll_until

GOOD = "Correct-Horse-7"
SWF = Path(__file__).parent / "fixtures" / "traces" / "sdsc-sp2-first-500.swf"
OPERATOR_PAGES = ("/portal/operations/simulator", "/portal/operations/registry", "/portal/operations/access")


@pytest.fixture
def net(platform):
    """An operator op, finance fin, a plain user with account plain-lab."""
    with platform.db.session() as session:
        people = {n: accounts.create_user(session, n) for n in ("op", "fin", "plain")}
        accounts.create_account(session, "plain-lab", owner=people["plain"])
        session.flush()
        grants.grant(session, None, audit.SYSTEM, people["op"], "operator", "on call")
        grants.grant(session, None, audit.SYSTEM, people["fin"], "finance", "finance team")
        for user in people.values():
            passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
    return platform


def browser(platform, name: str) -> TestClient:
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


def token_of(client, url: str = "/") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(url).text).group(1)


def count(platform, model) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# -- who may open what --------------------------------------------------------------------------

def test_operator_pages_are_refused_to_everyone_else(net):
    anonymous = TestClient(create_app(net), follow_redirects=False)
    for url in OPERATOR_PAGES + ("/portal/operations/permissions", "/portal/clusters"):
        assert anonymous.get(url).status_code == 303  # to the sign-in page
    op, fin, plain = browser(net, "op"), browser(net, "fin"), browser(net, "plain")
    for url in OPERATOR_PAGES:
        assert op.get(url).status_code == 200, url
        assert fin.get(url).status_code == 403, url  # staff, but running clusters is the operator's
        assert plain.get(url).status_code == 403, url
    assert fin.get("/portal/operations/permissions").status_code == 200
    assert plain.get("/portal/operations/permissions").status_code == 403
    # and their changes too (with a valid token: the role refuses, not the CSRF check)
    token = token_of(plain)
    assert plain.post("/portal/operations/access/accounts", data={"cluster": "local", "slurm_account": "lab",
                                                                  "account": "plain-lab", "csrf_token": token}).status_code == 403
    assert plain.post("/portal/operations/registry", data={"name": "x", "transport": "local", "ownership": "owned",
                                                           "csrf_token": token}).status_code == 403
    assert plain.post("/portal/operations/simulator", data={"trace": "", "csrf_token": token}).status_code == 403
    assert count(net, SlurmAccount) == 0 and count(net, RegisteredCluster) == 0
    sections = op.get("/portal/operations").text
    assert all(f'href="{url}"' in sections for url in OPERATOR_PAGES + ("/portal/operations/permissions",))


def test_forms_without_the_csrf_token_change_nothing(net):
    op = browser(net, "op")
    assert op.post("/portal/operations/access/accounts", data={"cluster": "local", "slurm_account": "lab",
                                                               "account": "plain-lab"}).status_code == 403
    assert op.post("/portal/operations/access/users", data={"user": "plain", "unix_user": "plain"}).status_code == 403
    assert op.post("/portal/operations/registry/local/remove").status_code == 403
    assert op.post("/portal/operations/simulator", files={"upload": ("t.swf", SWF.read_bytes())},
                   data={"policies": "static"}).status_code == 403
    assert count(net, SlurmAccount) == 0 and count(net, UnixIdentity) == 0
    assert not simulations.runs_dir(net.settings).exists()


# -- clusters for everyone ----------------------------------------------------------------------

def test_every_signed_in_user_sees_the_clusters_partitions_and_list_prices(net):
    page = browser(net, "plain").get("/portal/clusters")
    assert page.status_code == 200
    assert "local" in page.text and "online" in page.text
    assert "¥36.00" in page.text  # the list price per core-hour (conftest's local cluster)
    assert 'href="/portal/clusters"' in page.text  # in the main navigation


# -- the registry -------------------------------------------------------------------------------

def test_a_file_configured_cluster_is_read_only_and_bad_input_writes_nothing(net):
    op = browser(net, "op")
    page = op.get("/portal/operations/registry").text
    assert "Edited in the configuration file." in page and "/portal/operations/registry/local/remove" not in page
    token = token_of(op)
    changed = op.post("/portal/operations/registry/local", data={"transport": "local", "ownership": "owned",
                                                                 "region": "x", "csrf_token": token})
    assert changed.status_code == 400 and "configuration file" in changed.text
    base = {"name": "gamma", "transport": "local", "ownership": "owned", "workdir_root": "/shared/work",
            "csrf_token": token}
    bad = op.post("/portal/operations/registry", data={**base, "ownership": "borrowed"})
    assert bad.status_code == 400 and "ownership" in bad.text
    no_dir = op.post("/portal/operations/registry", data={**base, "workdir_root": ""})
    assert no_dir.status_code == 400 and "workdir_root" in no_dir.text
    prices = op.post("/portal/operations/registry", data={**base, "prices": "* cheap"})
    assert prices.status_code == 400 and "not a number" in prices.text and 'value="gamma"' in prices.text
    named = op.post("/portal/operations/registry", data={**base, "name": "../etc"})
    assert named.status_code == 400 and "name" in named.text
    assert op.post("/portal/operations/registry/nosuch/remove", data={"csrf_token": token}).status_code == 404
    assert count(net, RegisteredCluster) == 0 and "gamma" not in [c.name for c in net.settings.clusters]


@pytest.mark.slurm
def test_an_operator_registers_changes_and_removes_a_cluster_and_its_token_is_never_shown(testbed, net):
    import os

    op = browser(net, "op")
    token = token_of(op)
    form = {"name": "gamma", "transport": "local", "ownership": "partner", "slurm_conf": testbed["SLURM_CONF_ALPHA"],
            "slurm_cluster": "alpha", "workdir_root": str(Path(os.environ["COMPUTENET_TESTBED"]) / "work"),
            "region": "north", "cost_core_hour": "0.03", "prices": "* 0.04 1.50", "tags": "ib, gpfs",
            "rest_token": "sekrit-jwt-value", "csrf_token": token}
    made = op.post("/portal/operations/registry", data=form)
    assert made.status_code == 303, made.text
    page = op.get("/portal/operations/registry").text
    assert "sekrit-jwt-value" not in page and "set (never shown)" in page
    with net.db.session() as session:
        row = session.scalar(select(RegisteredCluster).where(RegisteredCluster.name == "gamma"))
        assert row.config["rest_token"] == "sekrit-jwt-value" and row.config["prices"]["*"]["core_hour"] == "0.04"
    users_view = browser(net, "plain").get("/portal/clusters").text
    assert "gamma" in users_view and "debug" in users_view  # partitions discovered from Slurm
    # a change that leaves the token blank keeps it
    changed = op.post("/portal/operations/registry/gamma", data={**form, "region": "south", "rest_token": ""})
    assert changed.status_code == 303, changed.text
    with net.db.session() as session:
        row = session.scalar(select(RegisteredCluster).where(RegisteredCluster.name == "gamma"))
        assert row.config["region"] == "south" and row.config["rest_token"] == "sekrit-jwt-value"
    assert op.post("/portal/operations/registry", data=form).status_code == 409  # exists
    assert op.post("/portal/operations/registry/gamma/remove", data={"csrf_token": token}).status_code == 303
    assert count(net, RegisteredCluster) == 0
    with net.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.target == "cluster:gamma")))
    assert {"cluster.register", "cluster.update", "cluster.deregister"} <= actions


# -- Slurm accounts, Unix logins, enforcement ---------------------------------------------------

def test_an_operator_maps_accounts_and_logins_and_runs_enforcement(net):
    op = browser(net, "op")
    token = token_of(op)
    mapped = op.post("/portal/operations/access/accounts", data={"cluster": "local", "slurm_account": "lab",
                                                                 "account": "plain-lab", "csrf_token": token})
    assert mapped.status_code == 303
    again = op.post("/portal/operations/access/accounts", data={"cluster": "local", "slurm_account": "lab",
                                                                "account": "plain-lab", "csrf_token": token})
    assert again.status_code == 409 and "already mapped" in again.text
    bad = op.post("/portal/operations/access/accounts", data={"cluster": "local", "slurm_account": "Lab;drop",
                                                              "account": "plain-lab", "csrf_token": token})
    assert bad.status_code == 400 and "invalid Slurm account name" in bad.text
    nowhere = op.post("/portal/operations/access/accounts", data={"cluster": "nowhere", "slurm_account": "lab2",
                                                                  "account": "plain-lab", "csrf_token": token})
    assert nowhere.status_code == 400 and "nowhere" in nowhere.text
    assert count(net, SlurmAccount) == 1
    assert op.post("/portal/operations/access/users", data={"user": "plain", "unix_user": "bad user!",
                                                            "csrf_token": token}).status_code == 400
    assert op.post("/portal/operations/access/users", data={"user": "plain", "unix_user": "plain1",
                                                            "cluster": "local", "csrf_token": token}).status_code == 303
    page = op.get("/portal/operations/access").text
    assert "plain-lab" in page and "plain1" in page
    ran = op.post("/portal/operations/access/enforce", data={"csrf_token": token})
    assert ran.status_code == 200 and "Checked 0 Slurm accounts." in ran.text  # the local executor has no Slurm
    with net.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"slurm_account.map", "identity.map"} <= actions


# -- the permissions table ----------------------------------------------------------------------

def test_the_permissions_table_is_roles_py_in_both_languages(net):
    from computenet.web.messages import translated

    zh = translated("zh-CN")
    words = [r.what for r in roles.ACTIONS.values()] + list(roles.ROLE_MEANINGS.values())
    assert [w for w in words if w not in zh] == []  # a new action needs its zh-CN words (network.po)
    fin = browser(net, "fin")
    page = fin.get("/portal/operations/permissions").text
    assert all(f"<code class=\"muted\">{a}</code>" in page for a in roles.ACTIONS)
    with net.db.session() as session:
        accounts.get_user(session, "fin").language = "zh-CN"
    chinese = fin.get("/portal/operations/permissions").text
    assert "running clusters (register" not in chinese and "权限" in chinese


# -- the simulator ------------------------------------------------------------------------------

def _wait(platform, client, url: str) -> str:
    run_id = url.rsplit("/", 1)[1]
    runner = simulations.runner(platform.settings)
    poll_until(lambda: runner.get(run_id)["status"] != "running", timeout=120, what="the simulation to end")
    return client.get(url).text


def test_a_simulation_from_an_upload_shows_the_clis_figures(net):
    op = browser(net, "op")
    sent = op.post("/portal/operations/simulator", files={"upload": ("sdsc first 500.swf", SWF.read_bytes())},
                   data={"csrf_token": token_of(op), "trace": "", "clusters": "own-a:owned:0.6,lease-c:leased:0.4",
                         "policies": ["static", "least_loaded"], "jobs": "200", "kill_at_limit": "on"})
    assert sent.status_code == 303, sent.text
    page = _wait(net, op, sent.headers["location"])
    run = simulations.runner(net.settings).get(sent.headers["location"].rsplit("/", 1)[1])
    assert run["status"] == "done", run
    # the same function `cnet sim --json` prints
    cli = simulations.run(simulations.Spec(trace=SWF, clusters="own-a:owned:0.6,lease-c:leased:0.4",
                                           policies=["static", "least_loaded"], jobs=200, kill_at_limit=True)).as_json()
    assert {**run["result"], "trace": "-"} == {**cli, "trace": "-"}  # named after the uploaded file
    assert [r["policy"] for r in cli["results"]] == ["static", "least_loaded", "pooled"]
    for r in cli["results"]:
        assert f"<code>{r['policy']}</code>" in page
    assert page.count("data-chart=") == 4 and "Mean bounded slowdown" in page
    listing = op.get("/portal/operations/simulator").text
    assert "sdsc-first-500-" in listing and run["id"] in listing  # the upload is offered for the next run
    with net.db.session() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "simulation.start")) is not None


def test_a_trace_from_the_servers_folder_and_a_failed_run(net):
    folder = simulations.traces_dir(net.settings)
    folder.mkdir(parents=True)
    (folder / "sdsc.swf").write_bytes(SWF.read_bytes())
    (folder / "broken.swf").write_text("1 2 3\n")  # the server's own files are read when the run starts
    op = browser(net, "op")
    token = token_of(op)
    page = op.get("/portal/operations/simulator").text
    assert 'value="shared:sdsc.swf"' in page and 'value="shared:broken.swf"' in page
    sent = op.post("/portal/operations/simulator", data={"csrf_token": token, "trace": "shared:sdsc.swf",
                                                         "policies": "earliest_start", "jobs": "100",
                                                         "clusters": simulations.DEFAULT_CLUSTERS})
    assert sent.status_code == 303
    assert "<code>earliest_start</code>" in _wait(net, op, sent.headers["location"])
    sent = op.post("/portal/operations/simulator", data={"csrf_token": token, "trace": "shared:broken.swf",
                                                         "policies": "static", "clusters": simulations.DEFAULT_CLUSTERS})
    assert sent.status_code == 303
    text = _wait(net, op, sent.headers["location"])
    assert "broken.swf line 1: 3 fields, SWF has 18" in text and "failed" in text


@pytest.mark.parametrize("form, status, says", [
    ({"trace": "shared:../../etc/passwd"}, 400, "no trace"),
    ({"trace": ""}, 400, "pick a trace"),
    ({"clusters": "a:owned:0.5,b:leased:0.2"}, 400, "the shares must add up to 1"),
    ({"policies": "fastest"}, 400, "unknown policy"),
    ({"policies": []}, 400, "name at least one"),
    ({"jobs": "ten"}, 400, "whole number"),
    ({"jobs": "0"}, 400, "at least 1"),
    ({"jobs": "999999999"}, 400, "at most"),
])
def test_bad_simulator_input_is_refused_and_writes_nothing(net, form, status, says):
    folder = simulations.traces_dir(net.settings)
    folder.mkdir(parents=True)
    (folder / "sdsc.swf").write_bytes(SWF.read_bytes())
    op = browser(net, "op")
    data = {"csrf_token": token_of(op), "trace": "shared:sdsc.swf", "clusters": simulations.DEFAULT_CLUSTERS,
            "policies": ["static"], **form}
    answer = op.post("/portal/operations/simulator", data=data)
    assert answer.status_code == status and says in answer.text, answer.text[-2000:]
    assert simulations.runner(net.settings).listing() == []


def test_uploads_that_are_too_big_or_not_swf_are_refused_and_not_kept(make_platform):
    from computenet.config import SimConfig

    platform = make_platform(sim=SimConfig(max_upload_mb=1))
    with platform.db.session() as session:
        op = accounts.create_user(session, "op")
        grants.grant(session, None, audit.SYSTEM, op, "operator", "on call")
        passwords.set_password(session, audit.SYSTEM, op, GOOD, platform.settings.auth)
    client = browser(platform, "op")
    token = token_of(client)
    big = client.post("/portal/operations/simulator", data={"csrf_token": token, "policies": "static"},
                      files={"upload": ("big.swf", SWF.read_bytes() * 40)})
    assert big.status_code == 413 and "1 MB" in big.text
    junk = client.post("/portal/operations/simulator", data={"csrf_token": token, "policies": "static"},
                       files={"upload": ("notes.swf", b"hello, this is not a workload log\n")})
    assert junk.status_code == 400 and "not a usable SWF log" in junk.text
    broken_gz = client.post("/portal/operations/simulator", data={"csrf_token": token, "policies": "static"},
                            files={"upload": ("t.swf.gz", b"\x1f\x8b\x08\x00garbage")})
    assert broken_gz.status_code == 400 and "not a usable SWF log" in broken_gz.text
    uploads = simulations.uploads_dir(platform.settings)
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert simulations.runner(platform.settings).listing() == []


def test_a_second_simulation_while_one_runs_is_refused_with_a_clear_message(net):
    folder = simulations.traces_dir(net.settings)
    folder.mkdir(parents=True)
    (folder / "sdsc.swf").write_bytes(SWF.read_bytes())
    runner = simulations.runner(net.settings)
    release = threading.Event()
    busy = threading.Thread(target=release.wait, daemon=True)  # stands for a run that has hours to go
    busy.start()
    runner.active["20240101T000000-abcdef"] = busy
    try:
        op = browser(net, "op")
        answer = op.post("/portal/operations/simulator", data={"csrf_token": token_of(op), "trace": "shared:sdsc.swf",
                                                               "policies": "static", "jobs": "50",
                                                               "clusters": simulations.DEFAULT_CLUSTERS})
        assert answer.status_code == 409 and "at most 1 at a time" in answer.text
    finally:
        release.set()
        busy.join()
        runner.active.pop("20240101T000000-abcdef", None)
    assert runner.listing() == []


def test_a_run_the_server_stopped_under_reads_as_interrupted_and_odd_ids_are_not_found(net):
    from computenet.fsutil import atomic_write_json

    folder = simulations.runs_dir(net.settings)
    folder.mkdir(parents=True)
    atomic_write_json(folder / "20240101T000000-0a0b0c.json", {
        "id": "20240101T000000-0a0b0c", "status": "running", "by": "op", "started_at": "2024-01-01T00:00:00+00:00",
        "finished_at": None, "trace": "x.swf", "spec": {"clusters": "a:owned:1", "policies": ["static"], "jobs": 5,
                                                        "cores": None, "gpus": None, "kill_at_limit": False, "nodes": None},
        "progress": {"done": 0, "total": 2, "running": "static"}, "error": None, "title": None, "result": None})
    op = browser(net, "op")
    page = op.get("/portal/operations/simulator/runs/20240101T000000-0a0b0c")
    assert page.status_code == 200 and "The server stopped while this simulation ran" in page.text
    assert op.get("/portal/operations/simulator/runs/..%2F..%2Fsecrets").status_code == 404
    assert op.get("/portal/operations/simulator/runs/20240101T000000-ffffff").status_code == 404


# -- in a browser, en and zh-CN -----------------------------------------------------------------

def test_the_network_pages_in_a_browser(net, chromium):
    from browser import axe, new_page, shot, sign_in

    from computenet.cli.embedded import EmbeddedServer

    folder = simulations.traces_dir(net.settings)
    folder.mkdir(parents=True)
    (folder / "sdsc-sp2-first-500.swf").write_bytes(SWF.read_bytes())
    runner = simulations.runner(net.settings)
    run_id = runner.start(simulations.Spec(trace=folder / "sdsc-sp2-first-500.swf", jobs=300), "sdsc-sp2-first-500.swf",
                          "op")
    poll_until(lambda: runner.get(run_id)["status"] != "running", timeout=120, what="the simulation to end")
    with net.db.session() as session:
        enforcement_account = accounts.get_account(session, "plain-lab")
        from computenet.services.billing import enforcement
        enforcement.map_account(session, "local", "lab", enforcement_account, audit.SYSTEM)
    pages = [("/portal/operations/simulator", "network-simulator", "op", None),
             (f"/portal/operations/simulator/runs/{run_id}", "network-simulation", "op", ".chart svg"),
             ("/portal/operations/registry", "network-registry", "op", None),
             ("/portal/operations/access", "network-access", "op", None),
             ("/portal/operations/permissions", "network-permissions", "op", None),
             ("/portal/clusters", "network-clusters", "plain", None)]
    with EmbeddedServer(net, run_services=False) as server:
        for language in ("en", "zh-CN"):
            with net.db.session() as session:
                for name in ("op", "plain"):
                    accounts.get_user(session, name).language = language
            for login in ("op", "plain"):
                page = new_page(chromium, server.url, locale="zh-CN" if language == "zh-CN" else "en-US")
                sign_in(page, login, GOOD)
                for url, name, _who, wait_for in [p for p in pages if p[2] == login]:
                    page.goto(url)
                    if wait_for:
                        page.wait_for_selector(wait_for)
                    assert page.locator("html").get_attribute("lang") == language
                    assert axe(page) == [], (url, language)
                    shot(page, f"{name}-{language}")
                page.context.close()

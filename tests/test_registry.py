"""The cluster registry through the operator API: register, change, route to, reload, remove."""

import os
from pathlib import Path

import httpx
import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts
from computenet.services.platform import Platform
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, make_settings, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


def test_an_operator_registers_a_cluster_that_then_takes_jobs(testbed, make_platform, tmp_path, db_url):
    beta = [c for c in slurm_clusters(testbed) if c.name == "beta"]
    platform = make_platform(beta)
    with platform.db.session() as session:
        ops = accounts.create_user(session, "ops")
        ops.role = "operator"
        ops_token = accounts.issue_token(session, ops)
    _, user_token = add_user(platform, "una", balance="20.00")
    gamma = {"name": "gamma", "kind": "slurm", "slurm_conf": testbed["SLURM_CONF_ALPHA"], "slurm_cluster": "alpha",
             "workdir_root": str(Path(os.environ["COMPUTENET_TESTBED"]) / "work"), "region": "north",
             "site": "partner-centre", "ownership": "partner", "cost_core_hour": "0.03",
             "prices": {"*": {"core_hour": "0.04"}}}
    with EmbeddedServer(platform, run_services=False) as server:
        ops_http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ops_token}"}, timeout=60)
        user_http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user_token}"}, timeout=60)
        assert user_http.post("/admin/clusters", json=gamma).status_code == 403
        bad = ops_http.post("/admin/clusters", json={**gamma, "ownership": "borrowed"})
        assert bad.status_code == 400 and "ownership" in bad.text
        made = ops_http.post("/admin/clusters", json=gamma)
        assert made.status_code == 201 and made.json()["health"] == "online", made.text
        assert ops_http.post("/admin/clusters", json=gamma).status_code == 409
        listed = {c["name"]: c for c in ops_http.get("/admin/clusters").json()}
        assert listed["gamma"]["source"] == "api" and listed["beta"]["source"] == "file"
        clusters = {c["name"]: c for c in user_http.get("/clusters").json()}
        assert {p["name"] for p in clusters["gamma"]["partitions"]} == {"cpu", "debug"}  # discovered
        assert (clusters["gamma"]["region"], clusters["gamma"]["ownership"]) == ("north", "partner")
        # cheaper than beta and idle: the router sends a CPU job there
        job = user_http.post("/jobs?wait=native", json={"script": "#!/bin/bash\n#SBATCH -c 1 -t 5\necho hi\n"}).json()
        assert job["cluster"] == "gamma", job
        poller = ClusterPoller(platform, "gamma")
        poll_until(lambda: user_http.get(f"/jobs/{job['id']}").json()["settled"], step=poller.run_once,
                   timeout=90, what="settled on the registered cluster")
        changed = ops_http.patch("/admin/clusters/gamma", json={"region": "south", "tags": ["ib", "gpfs"]})
        assert changed.status_code == 200, changed.text
        assert ops_http.patch("/admin/clusters/beta", json={"region": "x"}).status_code == 400  # file-defined
        assert ops_http.patch("/admin/clusters/gamma", json={"name": "delta"}).status_code == 400
    # a restart keeps it
    again = Platform(make_settings(tmp_path / "data2", db_url, beta), db=platform.db)
    again.start()
    assert "gamma" in again.adapters and again.cluster_config("gamma").region == "south"
    with EmbeddedServer(again, run_services=False) as server:
        ops_http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ops_token}"}, timeout=60)
        assert ops_http.delete("/admin/clusters/gamma").status_code == 204
        user_http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user_token}"}, timeout=60)
        job = user_http.post("/jobs?wait=native", json={"script": "#!/bin/bash\n#SBATCH -c 1 -t 5\ntrue\n"}).json()
        assert job["cluster"] == "beta"  # gone from the network
        audit = [e["action"] for e in ops_http.get("/admin/audit", params={"limit": 50}).json()]
    assert {"cluster.register", "cluster.update", "cluster.deregister"} <= set(audit)

"""The router on the real two-cluster test bed: free capacity wins, a stopped
controller is failed over and seen as offline, pins are obeyed, and a job left
pending long past its predicted start moves once.

alpha (cpu: 2 x 32 cores at 0.05, debug: 1 of those nodes at 0.08) is cheaper
than beta (cpu: 1 x 16 cores at 0.06), so with both idle a CPU job goes to alpha.
"""

import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from computenet.billing import ledger
from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app
from computenet.client import ApiError, ComputeNetClient
from computenet.config import RoutingConfig
from computenet.services import audit
from computenet.services.billing.enforcement import map_account
from computenet.services.network import routing
from computenet.services.network.cluster_probe import ClusterProbe
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.jobs.reroute import Rerouter
from computenet.store.models import Account, Charge, Cluster, Job, Transfer, User
from computenet.store.types import utcnow

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm
TESTBED_SCRIPT = Path(__file__).parents[1] / "scripts" / "slurm-testbed"
SHORT = "#!/bin/bash\n#SBATCH -c 4 -t 5\nsleep 1\n"


@pytest.fixture
def net(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed), routing=RoutingConfig(queue_cache_seconds=0))
    _, token = add_user(platform, "rita", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        pollers = {name: ClusterPoller(platform, name) for name in ("alpha", "beta")}

        def step():
            for poller in pollers.values():
                poller.run_once()

        yield platform, client, step, server, token
        for job in client.jobs(active=True):  # leave the test bed empty for the next test
            client.cancel(job.id)
        poll_until(lambda: not client.jobs(active=True), step=step, timeout=60, what="jobs to end")


def fill(client, step, cluster: str, cores: int, count: int, minutes: int):
    jobs = [client.submit(f"#!/bin/bash\n#SBATCH -M {cluster} -p cpu -c {cores} -t {minutes}\nsleep 600\n")
            for _ in range(count)]
    poll_until(lambda: all(client.job(j.id).state == "RUNNING" for j in jobs), step=step, what=f"{cluster} full")
    return jobs


def test_a_job_goes_where_capacity_is_free(net):
    platform, client, step, server, token = net
    idle = client.submit(SHORT)
    assert (idle.cluster, idle.partition) == ("alpha", "cpu")  # both idle: the cheaper one
    fillers = fill(client, step, "alpha", 32, 2, 10)  # alpha's 64 cores (and debug's node) taken
    job = client.submit(SHORT)
    assert (job.cluster, job.partition) == ("beta", "cpu")
    detail = client.job(job.id)
    by_name = {f"{c['cluster']}/{c['partition']}": c for c in detail.routing["candidates"]}
    assert detail.routing["chosen"] == "beta/cpu" and detail.routing["policy"] == "earliest_start"
    assert by_name["beta/cpu"]["wait_s"] == 0 and "earliest predicted start" in by_name["beta/cpu"]["explanation"]
    assert 500 < by_name["alpha/cpu"]["wait_s"] <= 600  # until a filler's 10 min limit
    assert by_name["alpha/debug"]["wait_s"] > 500  # debug shares alpha-n1 with a filler
    assert not by_name["beta/gpu"]["feasible"] and "asks for no GPU" in by_name["beta/gpu"]["reasons"][0]
    assert detail.predicted_start is not None
    env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "COLUMNS": "200"}
    why = CliRunner().invoke(app, ["job", str(job.id), "--why"], env=env)
    assert why.exit_code == 0 and "beta/cpu" in why.output and "alpha/debug" in why.output, why.output
    estimate = client.estimate("#!/bin/bash\n#SBATCH -N 2 --ntasks-per-node=24 -t 5\ntrue\n")
    rows = {f"{c['cluster']}/{c['partition']}": c for c in estimate["candidates"]}
    assert estimate["chosen"] == "alpha/cpu" and rows["alpha/cpu"]["predicted_start"]
    assert rows["alpha/cpu"]["wait_s"] > 500  # 48 cores: it waits for a filler to end
    assert "asks for 2 nodes; partition cpu has 1" in rows["beta/cpu"]["reasons"][0]
    # 16 cores for an hour: 0.80 on alpha, 0.96 on beta
    shown = CliRunner().invoke(app, ["estimate", "-c", "16", "-t", "60", "--max-price", "0.85"],
                               input="#!/bin/bash\ntrue\n", env=env)
    assert shown.exit_code == 0 and "above your maximum of 0.85" in shown.output, shown.output
    # waits for a filler: about its 10-minute limit less the seconds it has run (600 s when the plan
    # was made as it started, shown "in 10:00")
    waits = re.search(r"→ │ alpha/cpu .*?│ in (\d+):(\d\d) ", shown.output)
    assert waits and 500 < int(waits.group(1)) * 60 + int(waits.group(2)) <= 600, shown.output
    for j in fillers:
        client.cancel(j.id)


def test_pins_and_bounds_are_obeyed(net):
    _, client, step, _, _ = net
    assert client.submit("#!/bin/bash\n#SBATCH -M beta -c 1 -t 5\ntrue\n").cluster == "beta"
    debug = client.submit("#!/bin/bash\n#SBATCH -p debug -c 1 -t 5\ntrue\n")
    assert (debug.cluster, debug.partition) == ("alpha", "debug")
    gpu = client.submit("#!/bin/bash\n#SBATCH --gres=gpu:1 -c 2 -t 5\ntrue\n")
    assert (gpu.cluster, gpu.partition) == ("beta", "gpu")  # only GPU partitions take a GPU job
    with pytest.raises(ApiError) as err:
        client.submit("#!/bin/bash\n#SBATCH -M beta -p debug -t 5\ntrue\n")
    assert err.value.status == 400 and "unknown partition 'debug'" in err.value.detail
    from computenet.schemas import RoutingIn
    with pytest.raises(ApiError) as err:
        client.submit(SHORT, routing=RoutingIn(max_price="0.001"))
    assert err.value.status == 400 and "above your maximum of 0.001" in err.value.detail
    with pytest.raises(ApiError) as err:
        client.submit(SHORT, routing=RoutingIn(region="mars"))
    assert "not mars" in err.value.detail
    cheap = client.submit(SHORT, routing=RoutingIn(policy="cheapest"))
    assert cheap.cluster == "alpha"


def _testbed(*args):
    subprocess.run([str(TESTBED_SCRIPT), *args, os.environ["COMPUTENET_TESTBED"]], check=True,
                   capture_output=True, timeout=120)


def test_a_stopped_controller_is_failed_over_and_marked_offline(net):
    platform, client, step, _, _ = net
    survivor = client.submit("#!/bin/bash\n#SBATCH -M alpha -c 1 -t 5\nsleep 12\n")
    poll_until(lambda: client.job(survivor.id).state == "RUNNING", step=step, what="RUNNING")
    routing.queues(platform).ttl_s = 300
    client.estimate(SHORT)  # the queues as they were a moment before the outage
    _testbed("stop-controller", "alpha")
    try:
        # the registry still says online and the cached queue says idle: alpha is tried first,
        # fails, and beta takes the job
        moved = client.submit(SHORT)
        assert moved.cluster == "beta"
        notes = client.job(moved.id).routing["notes"]
        assert len(notes) == 1 and notes[0].startswith("alpha/cpu failed: cluster unreachable"), notes
        routing.queues(platform).ttl_s = 0
        unknown = client.estimate(SHORT)  # a fresh read: alpha's queue cannot be read
        assert unknown["chosen"] == "beta/cpu"
        assert "alpha: queue unreadable, start unknown (ranked last)" in unknown["notes"]
        platform.sync_clusters()
        health = {c.name: c.health for c in client.clusters()}
        assert health == {"alpha": "offline", "beta": "online"}
        after = client.submit(SHORT)
        rejected = {c["partition"]: c["reasons"] for c in client.job(after.id).routing["candidates"]
                    if c["cluster"] == "alpha"}
        assert after.cluster == "beta" and rejected["cpu"] == ["cluster alpha is offline"]
        with pytest.raises(ApiError) as err:
            client.submit("#!/bin/bash\n#SBATCH -M alpha -t 5\ntrue\n")
        assert err.value.status == 503 and "offline" in err.value.detail
        shown = {c.name: c for c in client.clusters()}
        assert shown["alpha"].retry_at is not None and shown["beta"].retry_at is None
    finally:
        _testbed("start-controller", "alpha")
    # back as soon as it answers (issue 13 item 13): probed, not left offline until the next sync
    probe = ClusterProbe(platform)
    poll_until(lambda: "alpha" in probe.run_once(), interval=1.0, timeout=30, what="alpha answers again")
    shown = {c.name: c for c in client.clusters()}
    assert shown["alpha"].health == "online" and shown["alpha"].retry_at is None
    # its jobs were never lost: the one running through the outage finishes and is charged
    poll_until(lambda: client.job(survivor.id).settled, step=step, timeout=90, what="survivor settled")
    assert client.job(survivor.id).state == "COMPLETED"
    with platform.db.session() as session:
        alpha = session.scalar(select(Cluster).where(Cluster.name == "alpha"))
        assert alpha.failures == 0 or alpha.breaker_open_until is None


def _slurm(testbed, *argv: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)


def test_a_job_pending_past_its_prediction_moves_once(net, testbed):
    platform, client, step, _, _ = net
    # on alpha the platform account runs under a Slurm account of its own: a moved job takes that -A,
    # not the one it had on beta (the user's default there)
    _slurm(testbed, "sacctmgr", "-i", "add", "account", "cnetmove", "cluster=alpha", "description=t",
           "organization=t")
    _slurm(testbed, "sacctmgr", "-i", "add", "user", "root", "account=cnetmove", "cluster=alpha")
    with platform.db.session() as session:
        account = session.get(Account, session.scalar(select(User).where(User.name == "rita")).default_account_id)
        map_account(session, "alpha", "cnetmove", account, audit.Who("ops", "test"))
    beta_filler = fill(client, step, "beta", 16, 1, 10)
    alpha_fillers = fill(client, step, "alpha", 32, 2, 20)
    job = client.submit("#!/bin/bash\n#SBATCH -c 4 -t 5\nsleep 1\n")
    assert job.cluster == "beta"  # beta frees in ~10 min, alpha in ~20
    poll_until(lambda: client.job(job.id).state == "PENDING", step=step, what="PENDING on beta")
    old_native = client.job(job.id).native_id
    for filler in alpha_fillers:
        client.cancel(filler.id)
    poll_until(lambda: all(client.job(f.id).state == "CANCELLED" for f in alpha_fillers), step=step,
               what="alpha free")
    # and free in Slurm too: cancelled jobs stay COMPLETING (holding their cores) for KillWait
    poll_until(lambda: not platform.adapter("alpha").queue(), timeout=60, what="alpha's queue empty")

    def overdue():
        with platform.db.session() as session:
            session.get(Job, job.id).predicted_start = utcnow() - timedelta(hours=1)

    def moved():  # Slurm may still be releasing alpha's cores for a moment: ask again until it moves
        overdue()
        return Rerouter(platform).run_once().moved

    assert poll_until(moved, timeout=60, interval=1, what="the job to move") == [(job.id, "beta", "alpha")]
    overdue()
    assert Rerouter(platform).run_once().moved == []  # once per decision
    detail = client.job(job.id)
    assert detail.cluster == "alpha" and detail.reroutes == 1 and detail.routing["rerouted_from"] == "beta"
    assert any(e.detail.startswith(f"re-routed from beta (job {old_native}") for e in detail.events)
    with platform.db.session() as session:
        assert session.get(Job, job.id).spec["resources"]["account"] == "cnetmove"
    on_alpha = _slurm(testbed, "squeue", "-M", "alpha", "-h", "-t", "all", "-j", detail.native_id, "-o", "%a")
    assert on_alpha.stdout.split()[-1:] == ["cnetmove"], on_alpha
    beta = platform.adapter("beta").status([old_native]).get(old_native)
    assert beta is None or beta.state.value == "CANCELLED"  # gone from beta
    try:
        poll_until(lambda: client.job(job.id).settled, step=step, timeout=90, what="settled on alpha")
    except AssertionError:
        late = client.job(job.id)
        raise AssertionError(f"not settled: {late.state} {late.native_id} {late.cluster} "
                             f"{[(e.to_state, e.detail) for e in late.events]} "
                             f"{platform.adapter('alpha').status([late.native_id])}") from None
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Charge.id)).where(Charge.job_id == job.id)) == 1
        open_holds = [t for t in session.scalars(select(Transfer).where(Transfer.kind == "hold"))
                      if ledger.open_hold(session, t) and t.memo.startswith(f"hold for job {job.id}")]
        assert open_holds == [] and ledger.invariant(session) == []
    assert client.job(job.id).state == "COMPLETED"
    client.cancel(beta_filler[0].id)
    assert routing  # the module under test

"""Interactive sessions on the real Slurm test bed: JupyterLab started as a Slurm job on alpha,
its report's host checked against the node Slurm gave the job (SLURMD_NODENAME; the address is the
node's NodeAddr), a cell run through the proxy's kernel WebSocket, extend (scontrol update
TimeLimit), stop (scancel) and the charge from sacct."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import Price, RoutingConfig
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.sessions.watch import SessionWatch
from computenet.store.models import Charge, InteractiveSession

from conftest import add_user, poll_until, session_origin_client, slurm_clusters
from test_sessions import execute

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(not (Path(sys.executable).parent / "jupyter-lab").exists(),
                                                    reason="needs jupyterlab in the test environment")]


def test_jupyterlab_on_slurm_through_the_proxy(testbed, make_platform, monkeypatch):
    # sbatch passes the submitting environment on: the venv's jupyter is on the job's PATH
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    clusters = slurm_clusters(testbed)
    clusters[0].tags = ["jupyterlab"]  # alpha has it; beta does not
    clusters[0].prices = {"cpu": Price(core_hour=Decimal("36.00"))}  # a few seconds cost a few cents
    platform = make_platform(clusters, routing=RoutingConfig(queue_cache_seconds=0))
    _, token = add_user(platform, "sam", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        poller, watch = ClusterPoller(platform, "alpha"), SessionWatch(platform)

        def step():
            poller.run_once()
            watch.run_once()
        started = client.start_session("jupyterlab", cores=1, hours=1)
        assert started["cluster"] == "alpha"
        sid = started["id"]
        shown = poll_until(lambda: (s := client.session(sid))["state"] in ("running", "ended") and s, step=step,
                           timeout=180, what="JupyterLab on alpha")
        assert shown["state"] == "running", shown
        with platform.db.session() as session:
            row = session.get(InteractiveSession, sid)
            host, address, native = row.host, row.address, row.job.native_id
        assert host.startswith("alpha-n") and address == "127.0.0.1"  # the NodeAddr of a node Slurm gave it
        # the session's own origin: a ticket from the API becomes its cookie (no API token works there)
        base = shown["url"]
        entered = httpx.get(client.session_connect_url(sid), timeout=30)
        auth = {"Cookie": f"cnet_access={entered.cookies['cnet_access']}"}
        assert httpx.get(f"{base}api/status", headers=auth, timeout=30).status_code == 200
        kernel = httpx.post(f"{base}api/kernels", headers=auth, json={"name": "python3"}, timeout=60).json()
        printed = execute(base.replace("http://", "ws://"), kernel["id"],
                          "import os\nprint(os.environ['SLURMD_NODENAME'], sum(range(101)))", auth)
        assert printed.split() == [host, "5050"]

        longer = client.extend_session(sid, 30)
        assert longer["time_limit_minutes"] == 90
        shown_limit = subprocess.run(["squeue", "-h", "-j", native, "-o", "%l"], capture_output=True, text=True,
                                     env={**os.environ, "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}).stdout.strip()
        assert shown_limit == "1:30:00", shown_limit

        client.stop_session(sid)
        job = poll_until(lambda: (j := client.job(started["job_id"])).settled and j, step=poller.run_once,
                         timeout=120, what="the session's charge from sacct")
        assert job.state == "CANCELLED" and job.cost > 0


def test_a_session_whose_processes_die_on_the_node_ends_charged_and_told(testbed, make_platform):
    """The node's side of a session goes away (its processes killed there: the test bed's nodes are shared,
    so no node is set down): the proxy says so plainly, the session ends, its owner is told, sacct's
    record is charged."""
    import signal

    from sqlalchemy import select

    from computenet.store.models import Notification
    from test_sessions import _publish, client

    clusters = slurm_clusters(testbed)
    clusters[0].prices = {"*": Price(core_hour=Decimal("36.00"))}
    platform = make_platform(clusters[:1], routing=RoutingConfig(queue_cache_seconds=0))
    with EmbeddedServer(platform, run_services=False) as server:
        _publish(platform, server, "node-echo")
        poller, watch = ClusterPoller(platform, "alpha"), SessionWatch(platform)

        def step():
            poller.run_once()
            watch.run_once()
        with client(platform, server, "h18b-dora") as dora:
            sid = dora.start_session("node-echo", cores=1, hours=1)["id"]
            shown = poll_until(lambda: (s := dora.session(sid))["state"] in ("running", "ended") and s, step=step,
                               timeout=180, what="the session on alpha")
            assert shown["state"] == "running", shown
            origin = session_origin_client(server, dora, sid)  # entered while it runs, as a browser would
            with platform.db.session() as session:
                workdir = os.path.realpath(session.get(InteractiveSession, sid).job.workdir)
            # the job's processes on the node: those working in its directory (a job id alone is not unique
            # across the test bed's clusters)
            pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _cwd(p) == workdir]
            assert pids
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            page = poll_until(lambda: (a := origin.get(f"/sessions/{sid}/", headers={"Accept": "text/html"}))
                              .status_code != 200 and a, timeout=30, what="the proxy to notice")
            assert page.status_code == 409 and ("does not answer" in page.text or "has ended" in page.text), page.text
            ended = poll_until(lambda: (s := dora.session(sid))["state"] == "ended" and s, step=step, timeout=120,
                               what="the session ended")
            assert ended["ended_reason"] in ("ended", "node_failed"), ended
            with platform.db.session() as session:
                told = [n.message for n in session.scalars(select(Notification).where(
                    Notification.kind == "session_ended"))]
            assert len(told) == 1 and f"session {sid} (node-echo) ended" in told[0], told
            job = poll_until(lambda: (j := dora.job(ended["job_id"])).settled and j, step=poller.run_once,
                             timeout=120, what="the charge from sacct")
            # charged from its accounting record (Slurm counts whole seconds: killed within its first
            # second, a run costs 0.00, as it did once under CI's load)
            with platform.db.session() as session:
                assert session.scalars(select(Charge).where(Charge.job_id == job.id)).all()


def _cwd(proc: Path) -> str | None:
    try:
        return os.path.realpath(os.readlink(proc / "cwd"))
    except OSError:
        return None

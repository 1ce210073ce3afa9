"""The shell interactive app on the real Slurm test bed: terminado started by a Slurm job on
alpha, reached through the platform's WebSocket proxy with an API token; the shell runs inside
the job (its SLURM_JOB_ID, on the node Slurm gave it); stop (scancel) and the charge from sacct."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit
from decimal import Decimal
from pathlib import Path

import pytest
from websockets.sync.client import connect

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import Price, RoutingConfig
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.sessions.watch import SessionWatch
from computenet.store.models import InteractiveSession

from computenet.api.session_origin import TICKET_PARAM
from conftest import add_user, poll_until, slurm_clusters

pytest.importorskip("terminado")
pytestmark = pytest.mark.slurm


def _typed(ws, line: str, expect: str, timeout: float = 30.0) -> str:
    ws.send(json.dumps(["stdin", line + "\n"]))
    seen, deadline = "", time.monotonic() + timeout
    while expect not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{expect!r} not seen in {seen!r}"
        message = json.loads(ws.recv(timeout=left))
        if message[0] == "stdout":
            seen += message[1]
    return seen


def test_shell_on_slurm_through_the_proxy(testbed, make_platform, monkeypatch):
    # sbatch passes the submitting environment on: the venv's python3 (terminado) is on the job's PATH
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    clusters = slurm_clusters(testbed)
    clusters[0].tags = ["terminado"]  # alpha has it; beta does not
    clusters[0].prices = {"cpu": Price(core_hour=Decimal("36.00"))}
    platform = make_platform(clusters, routing=RoutingConfig(queue_cache_seconds=0))
    _, token = add_user(platform, "sam", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        poller, watch = ClusterPoller(platform, "alpha"), SessionWatch(platform)

        def step():
            poller.run_once()
            watch.run_once()
        started = client.start_session("shell", cores=1, hours=1)
        assert started["cluster"] == "alpha" and started["kind"] == "shell"
        sid = started["id"]
        shown = poll_until(lambda: (s := client.session(sid))["state"] in ("running", "ended") and s, step=step,
                           timeout=180, what="the shell on alpha")
        assert shown["state"] == "running", shown
        with platform.db.session() as session:
            row = session.get(InteractiveSession, sid)
            host, native = row.host, row.job.native_id
        # on the sessions' own origin, with a one-time ticket (as the portal's shell page opens it)
        ticket = parse_qs(urlsplit(client.session_connect_url(sid)).query)["ticket"][0]
        url = f"{server.origins.session_origin(sid).replace('http://', 'ws://')}/sessions/{sid}/websocket"
        with connect(f"{url}?{urlencode({TICKET_PARAM: ticket})}", open_timeout=30) as ws:
            ws.send(json.dumps(["set_size", 24, 100]))
            seen = _typed(ws, "echo job=$SLURM_JOB_ID node=$SLURMD_NODENAME", f"job={native} node={host}")
        assert f"job={native} node={host}" in seen and host.startswith("alpha-n")

        # Slurm counts whole seconds: a shell started, used and stopped within one second (an idle machine)
        # ran 00:00:00 and costs nothing. Let it run two seconds by Slurm's own clock before stopping it.
        def ran_two_seconds() -> bool:
            out = subprocess.run(["squeue", "-h", "-j", native, "-o", "%M"], capture_output=True, text=True,
                                 env={**os.environ, "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}, timeout=30).stdout
            return out.strip() not in ("", "0:00", "0:01")
        poll_until(ran_two_seconds, timeout=30, what="the shell's job to have run two seconds")
        client.stop_session(sid)
        job = poll_until(lambda: (j := client.job(started["job_id"])).settled and j, step=poller.run_once,
                         timeout=120, what="the session's charge from sacct")
        assert job.state == "CANCELLED" and job.cost > 0

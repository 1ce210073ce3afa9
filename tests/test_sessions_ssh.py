"""A session on a cluster reached through the SSH transport: its node is reached through a port
forwarded over the cluster's SSH connection (an OpenSSH server on loopback in front of the test
bed's alpha), to the node and port the job reported and the platform checked; the forward closes
when the session ends."""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.config import ClusterConfig, Price, RoutingConfig
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.sessions import reach
from computenet.services.sessions.watch import SessionWatch
from computenet.store.models import InteractiveSession

from conftest import poll_until, session_origin_client
from test_sessions import _publish, client

pytestmark = pytest.mark.slurm


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_a_session_over_ssh_goes_through_a_forward_that_closes_with_it(ssh_login, testbed, make_platform):
    work = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")
    cfg = ClusterConfig(name="alpha", kind="slurm", transport="ssh", ssh_host=ssh_login["host"],
                        ssh_port=ssh_login["port"], ssh_user="root", ssh_key=ssh_login["key"],
                        ssh_known_hosts=ssh_login["known_hosts"], slurm_conf=testbed["SLURM_CONF_ALPHA"],
                        workdir_root=work, poll_interval_s=0.5, prices={"*": Price(core_hour=Decimal("36.00"))})
    platform = make_platform([cfg], routing=RoutingConfig(queue_cache_seconds=0))
    transport = platform.adapter("alpha").transport
    try:
        with EmbeddedServer(platform, run_services=False) as srv:
            _publish(platform, srv, "node-echo")
            poller, watch = ClusterPoller(platform, "alpha"), SessionWatch(platform)

            def step():
                poller.run_once()
                watch.run_once()
            with client(platform, srv, "h18b-ossie") as ossie:
                sid = ossie.start_session("node-echo", cores=1, hours=1)["id"]
                shown = poll_until(lambda: (s := ossie.session(sid))["state"] in ("running", "ended") and s,
                                   step=step, timeout=180, what="the session on alpha over ssh")
                assert shown["state"] == "running", shown
                with platform.db.session() as session:
                    row = session.get(InteractiveSession, sid)
                    host, address, port, secret, job_id = row.host, row.address, row.port, row.secret, row.job_id
                    here = reach.target(platform, row)
                # the checked node (its NodeAddr, resolved by the login node) and the job's port, through a
                # port of this process's own: one forward, the watch's probe and the proxy share it
                assert host.startswith("alpha-n") and address == "127.0.0.1"
                assert here[0] == "127.0.0.1" and here[1] != port
                assert transport.forwards() == [f"session-{sid}"]

                origin = session_origin_client(srv, ossie, sid)  # the sessions' own origin, a ticket's cookie
                answer = origin.get(f"/sessions/{sid}/api/x?y=1")
                assert answer.status_code == 200 and answer.text == f"node {host} path /sessions/{sid}/api/x?y=1"
                # the forwarded port is a tunnel to that node and port (the server still wants its secret)
                direct = httpx.get(f"http://127.0.0.1:{here[1]}/z", headers={"Authorization": f"token {secret}"},
                                   timeout=30)
                assert direct.text == f"node {host} path /z"
                assert httpx.get(f"http://127.0.0.1:{here[1]}/z", timeout=30).status_code == 403

                # the SSH connection drops: the next request makes a fresh forward over a fresh connection
                transport._drop(None)
                again = origin.get(f"/sessions/{sid}/b")
                assert again.status_code == 200 and again.text == f"node {host} path /sessions/{sid}/b"

                ossie.stop_session(sid)
                assert transport.forwards() == []
                poll_until(lambda: _refused(here[1]), timeout=30, what="the forward closed")
                job = poll_until(lambda: (j := ossie.job(job_id)).settled and j, step=poller.run_once,
                                 timeout=120, what="the session's charge from sacct")
                assert job.state == "CANCELLED" and job.cost > 0
    finally:
        transport.close()

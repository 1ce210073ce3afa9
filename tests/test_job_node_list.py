"""`cnet job` shows where a job runs: the node list the poller read from the scheduler (squeue %N),
kept after the job has left the queue (issue 17)."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app
from computenet.client import ComputeNetClient
from computenet.clusters.slurm.parsers import parse_squeue
from computenet.clusters.slurm.commands import SQUEUE_FIELDS
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, local_cluster, poll_until, slurm_clusters


def _row(**given: str) -> str:
    values = {"%i": "7", "%A": "7", "%T": "RUNNING", "%r": "None", "%V": "2026-12-07T08:00:00",
              "%S": "2026-12-07T08:00:01", "%e": "2026-12-07T09:00:01", "%P": "cpu", "%D": "2", "%C": "8",
              "%b": "N/A", "%N": "c[1-2]", "%l": "1:00:00", "%j": "x", **given}
    from computenet.clusters.slurm.commands import SEP

    return SEP.join(values[f] for f in SQUEUE_FIELDS)


def test_squeue_node_list_is_read_only_once_placed():
    (running,) = parse_squeue(_row(), None)
    assert running.node_list == "c[1-2]"
    (pending,) = parse_squeue(_row(**{"%T": "PENDING", "%N": "", "%r": "Priority"}), None)
    assert pending.node_list is None


def _cnet_job(url: str, token: str, job_id: int) -> str:
    result = CliRunner().invoke(app, ["job", str(job_id)], catch_exceptions=False,
                                env={"COMPUTENET_URL": url, "COMPUTENET_TOKEN": token, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_local_job_shows_this_machine_and_keeps_it_after_it_ends(make_platform):
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "nodes-local")
    poller = ClusterPoller(platform, "local")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -t 5\nsleep 1\n", [], "n.sh")
        assert "nodelist (not placed yet)" in _cnet_job(server.url, token, job.id)
        poll_until(lambda: client.job(job.id).state == "COMPLETED", step=poller.run_once, timeout=60,
                   what="the local job to complete")
        assert client.job(job.id).node_list == socket.gethostname()
        assert f"nodelist {socket.gethostname()}" in _cnet_job(server.url, token, job.id)


@pytest.mark.slurm
def test_a_slurm_job_shows_its_nodes_while_running_and_after(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    _, token = add_user(platform, "nodes-sam", balance="50.00")
    poller = ClusterPoller(platform, "beta")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -M beta -p cpu -N 1 -c 1 -t 5\nsleep 4\n", [], "n.sh")
        assert job.cluster == "beta"
        running = poll_until(lambda: (lambda j: j if j.state == "RUNNING" else None)(client.job(job.id)),
                             step=poller.run_once, timeout=90, what="the job to run")
        assert running.node_list == "beta-c1"  # the test bed's one CPU node of beta
        assert "nodelist beta-c1" in _cnet_job(server.url, token, job.id)
        poll_until(lambda: client.job(job.id).state == "COMPLETED", step=poller.run_once, timeout=120,
                   what="the job to complete")
        assert client.job(job.id).node_list == "beta-c1"  # kept when squeue has forgotten it

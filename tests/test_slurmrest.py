"""slurmrestd (v0.0.38, JWT): golden parsers on captured answers, then the adapter for real."""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from computenet.clusters.base import ClusterError, SubmitRejected, SubmitRequest
from computenet.clusters.slurmrest import api
from computenet.domain.resources import JobOptions, JobSpec, ResourceRequest
from computenet.domain.states import JobState

FIX = Path(__file__).parent / "fixtures" / "slurmrest"


def load(name):
    return json.loads((FIX / f"{name}.json").read_text())


def test_submit_answers():
    assert api.parse_submit(load("submit_ok")) == "4"
    with pytest.raises(SubmitRejected, match="Invalid partition name specified"):
        api.parse_submit(load("submit_bad_partition"))
    with pytest.raises(ClusterError):
        api.parse_submit({"errors": [{"error_code": 1007, "error": "Protocol authentication error"}]})


def test_jobs_queue_and_one_job():
    statuses = {s.native_id: s for s in api.parse_jobs(load("jobs"))}
    assert statuses["4"].state == JobState.RUNNING and statuses["4"].start == datetime.fromtimestamp(
        1795778633, timezone.utc)
    assert statuses["6"].state == JobState.PENDING and statuses["6"].start is None  # expected start is not a start
    assert statuses["6"].reason == "Resources" and statuses["1"].state == JobState.CANCELLED
    assert statuses["1"].end is not None and statuses["1"].exit_code == 15
    queue = {e.native_id: e for e in api.parse_queue(load("jobs"))}
    assert set(queue) == {"4", "5", "6", "7"}  # the cancelled ones are not in the queue
    assert (queue["4"].gpus, queue["4"].cpus, queue["4"].node_names, queue["4"].time_limit_s) == (
        2, 4, ("beta-g2",), 600)
    assert (queue["7"].reason, queue["7"].partition) == ("Priority", "cpu")
    (one,) = api.parse_jobs(load("job_one"))
    assert one.native_id == "4"
    assert api.errors_of(load("job_unknown"))[0]["error_number"] == api.INVALID_JOB_ID


def test_accounting_partitions_ping():
    records = {r.record_id: r for r in api.parse_db_jobs(load("db_jobs"), "beta")}
    gpu = records["4"]
    assert (gpu.cpus, gpu.gpus, gpu.gpu_type, gpu.nodes, gpu.mem_mb) == (4, 2, "a100", 1, 1024)
    assert gpu.comment == "computenet:901" and gpu.partition == "gpu" and gpu.account == "research"
    assert gpu.state == JobState.CANCELLED and gpu.elapsed_seconds == 4 and gpu.time_limit_minutes == 10
    assert gpu.submit == datetime.fromtimestamp(1795778633, timezone.utc)
    assert gpu.node_list == "beta-g2" and not gpu.requeued  # where it ran, as sacct's NodeList
    assert records["6"].node_list is None  # "None assigned": pending, placed nowhere
    assert api.parse_db_jobs(load("db_jobs"), "alpha") == []  # another cluster's rows are not ours
    parts = {p.name: p for p in api.parse_partitions(load("partitions"), load("nodes"))}
    assert (parts["gpu"].nodes, parts["gpu"].cores_per_node, parts["gpu"].gpus_per_node, parts["gpu"].gpu_type) == (
        2, 32, 4, "a100")
    assert parts["cpu"].is_default and parts["cpu"].max_time_minutes == 2880 and parts["cpu"].node_names == ("beta-c1",)
    up, detail = api.parse_ping(load("ping"))
    assert up and "primary" in detail


def _request(**extra):
    res = ResourceRequest(cpus_per_task=2, gpus_per_node=1, gpu_type="a100", time_limit_minutes=5, partition="gpu")
    return SubmitRequest(script="#!/bin/bash\ntrue\n", spec=JobSpec(resources=res, options=JobOptions(**extra)),
                         job_name="j", workdir="/w", output="/w/o", error="/w/e", comment="computenet:9",
                         environment={"COMPUTENET_JOB_ID": "9"})


def test_submit_body_and_what_it_refuses():
    body = api.submit_body(_request())
    assert body["job"]["gres"] == "gpu:a100:1" and body["job"]["time_limit"] == 5
    # the job's environment: only what the platform sets, never the server's
    assert body["job"]["environment"] == {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                                          "COMPUTENET_JOB_ID": "9"}
    assert body["job"]["wckey"] == "computenet:9" and "comment" not in body["job"]  # the default job_tag
    tagged = api.submit_body(_request(), "comment", {"HOME": "/w/u"})
    assert tagged["job"]["comment"] == "computenet:9" and "wckey" not in tagged["job"]
    assert tagged["job"]["environment"] == {"HOME": "/w/u", "COMPUTENET_JOB_ID": "9"}
    with pytest.raises(SubmitRejected, match="--hold"):
        api.submit_body(_request(passthrough=("--hold",)))
    from dataclasses import replace

    with pytest.raises(SubmitRejected, match="script arguments"):
        api.submit_body(replace(_request(), script_args=("a",)))


@pytest.mark.slurm
def test_jobs_through_slurmrestd_as_each_user(testbed, make_platform, tmp_path):
    """The real daemon: submit, track, cancel and charge; a user's job carries the user's own JWT."""
    from decimal import Decimal

    from computenet.cli.embedded import EmbeddedServer
    from computenet.client import ComputeNetClient
    from computenet.clusters.slurmrest.adapter import RestCluster
    from computenet.config import ClusterConfig, Price
    from computenet.services.jobs.poller import ClusterPoller

    from conftest import add_user, poll_until

    env = Path(os.environ["COMPUTENET_TESTBED"]) / "env.sh"
    url = next(line.split("=", 1)[1].strip("'\"") for line in env.read_text().splitlines()
               if line.startswith("export SLURMRESTD_URL_BETA="))
    work = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")
    cfg = ClusterConfig(name="beta", kind="slurm", transport="rest", rest_url=url, rest_user="root",
                        slurm_conf=testbed["SLURM_CONF_BETA"], workdir_root=work, poll_interval_s=0.5,
                        prices={"cpu": Price(core_hour=Decimal("0.06")),
                                "gpu": Price(core_hour=Decimal("0.06"), gpu_hour=Decimal("8.00"))})
    platform = make_platform([cfg])
    assert isinstance(platform.adapter("beta"), RestCluster)
    _, token = add_user(platform, "rex", balance="50.00")
    poller = ClusterPoller(platform, "beta")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        clusters = {c.name: c for c in client.clusters()}
        assert clusters["beta"].health == "online"
        assert {p.name: p.gpus_per_node for p in clusters["beta"].partitions} == {"cpu": 0, "gpu": 4}
        job = client.submit("#!/bin/bash\n#SBATCH -p gpu --gres=gpu:a100:1 -c 2 -t 5\necho rest\n")
        done = poll_until(lambda: (lambda j: j if j.settled else None)(client.job(job.id)), step=poller.run_once,
                          timeout=120, what="settled through slurmrestd")
        assert done.state == "COMPLETED" and client.output(job.id).data == "rest\n"
        from sqlalchemy import select

        from computenet.store.models import Charge, UsageRecordRow
        with platform.db.session() as session:  # accounting through slurmdbd's REST: the GPU is in it
            (row,) = session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id))
            assert (row.gpus, row.gpu_type, row.cpus) == (1, "a100", 2)
            assert len(session.scalars(select(Charge).where(Charge.job_id == job.id)).all()) == 1
        slow = client.submit("#!/bin/bash\n#SBATCH -c 1 -t 5\nsleep 60\n")
        poll_until(lambda: client.job(slow.id).state == "RUNNING", step=poller.run_once, what="RUNNING")
        client.cancel(slow.id)
        poll_until(lambda: client.job(slow.id).state == "CANCELLED", step=poller.run_once, what="CANCELLED")
    # per-user JWT: a job submitted as a mapped user is that user's job in Slurm
    adapter = platform.adapter("beta")
    import pwd
    import subprocess

    try:
        pwd.getpwnam("cnet-rest")
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "cnet-rest"], check=True)
    subprocess.run(["sacctmgr", "-i", "add", "user", "name=cnet-rest", "account=research", "cluster=beta"],
                   env={**os.environ, "SLURM_CONF": testbed["SLURM_CONF_BETA"]}, capture_output=True, timeout=60)
    request = SubmitRequest(script="#!/bin/bash\ntrue\n", spec=JobSpec(resources=ResourceRequest(
        time_limit_minutes=1, partition="cpu")), job_name="as-ann", workdir="/tmp", output="/dev/null",
        error="/dev/null", comment="rest:user", run_as="cnet-rest")
    native = adapter.submit(request)
    record = poll_until(lambda: next(iter(adapter.accounting(None, [native])), None), timeout=60,
                        what="the job in accounting")
    assert record.user == "cnet-rest"  # Slurm's own record: the user's job, not the service's

"""scontrol update / hold / release through the platform on the real Slurm test bed."""

import pytest

from computenet.client import ApiError, ComputeNetClient
from computenet.cli.embedded import EmbeddedServer
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


@pytest.fixture
def bed(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    _, token = add_user(platform, "sam", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        poller = ClusterPoller(platform, "alpha")
        yield platform, client, poller.run_once


def shown(platform, native_id) -> dict:
    """scontrol show job's KEY=VALUE words (what Slurm itself holds for the job)."""
    result = platform.adapter("alpha")._run(["scontrol", "show", "job", "--oneliner", native_id])
    return dict(word.split("=", 1) for word in result.stdout.split() if "=" in word)


def test_update_hold_release_reach_slurm(bed):
    platform, client, step = bed
    job = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 1 -t 20 --hold\nsleep 1\n")
    poll_until(lambda: client.job(job.id).state == "PENDING", step=step, what="PENDING")
    updated = client.update(job.id, time_limit="10", partition="debug", name="renamed")
    assert (updated.time_limit_minutes, updated.partition, updated.name) == (10, "debug", "renamed")
    slurm = shown(platform, job.native_id)
    assert (slurm["TimeLimit"], slurm["Partition"], slurm["JobName"]) == ("00:10:00", "debug", "renamed")
    with pytest.raises(ApiError) as caught:
        client.update(job.id, time_limit="15")
    assert caught.value.status == 400 and "only be lowered" in caught.value.detail
    client.release(job.id)
    assert shown(platform, job.native_id)["Reason"] != "JobHeldUser"
    poll_until(lambda: client.job(job.id).state == "COMPLETED", step=step, timeout=90, what="COMPLETED")
    with pytest.raises(ApiError) as caught:
        client.update(job.id, name="late")
    assert caught.value.status == 409


def test_partition_of_a_running_job_is_refused(bed):
    platform, client, step = bed
    job = client.submit("#!/bin/bash\n#SBATCH -M alpha -p debug -c 1 -t 5\nsleep 60\n")
    poll_until(lambda: client.job(job.id).state == "RUNNING", step=step, what="RUNNING")
    with pytest.raises(ApiError) as caught:
        client.update(job.id, partition="cpu")
    assert caught.value.status == 409 and "only a waiting (PENDING) job" in caught.value.detail
    assert client.update(job.id, time_limit="3").time_limit_minutes == 3  # a running job's limit goes down
    assert shown(platform, job.native_id)["TimeLimit"] == "00:03:00"
    client.cancel(job.id)

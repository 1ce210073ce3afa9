"""Issue 5's "done when" on the real two-cluster test bed: alpha and beta each have their own
working filesystem root; a LAMMPS-style app run with an uploaded input is routed to either
cluster, its input is staged there, it runs under Slurm, and its outputs land back in the
user's workspace with the checksums of the files the job wrote."""

import hashlib
import os
from pathlib import Path

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import RoutingConfig
from computenet.services.files.job_files import OutputCollector
from computenet.services.jobs.poller import ClusterPoller

from conftest import FIXTURES, add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


@pytest.fixture
def net(testbed, make_platform):
    base = Path(os.environ["COMPUTENET_TESTBED"]) / "work"
    clusters = slurm_clusters(testbed)
    for cluster in clusters:  # each cluster its own filesystem root; both run the apps' stand-ins
        cluster.workdir_root = str(base / f"fs-{cluster.name}")
        cluster.tags = ["stand-in"]
    platform = make_platform(clusters, routing=RoutingConfig(queue_cache_seconds=0))
    _, token = add_user(platform, "lena", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        pollers = [ClusterPoller(platform, name) for name in ("alpha", "beta")]
        collector = OutputCollector(platform)

        def step():
            for poller in pollers:
                poller.run_once()
            collector.run_once()

        yield platform, client, step


def test_an_app_run_follows_its_files_to_either_cluster_and_back(net, tmp_path):
    platform, client, step = net
    uploaded = client.upload(FIXTURES / "apps" / "in.lj", "md/in.lj")
    seen = {}
    for cluster in ("alpha", "beta"):
        job = client.run_app("lammps", {"input": "md/in.lj", "steps": 200}, cluster=cluster)
        assert job.cluster == cluster
        detail = poll_until(lambda: (lambda d: d if d.outputs in ("done", "failed") else None)(client.job(job.id)),
                            step=step, timeout=120, what=f"job {job.id} on {cluster} and its outputs")
        assert detail.state == "COMPLETED" and detail.outputs == "done", detail.events
        root = platform.cluster_config(cluster).workdir_root
        # the input was staged into this cluster's own root, unchanged
        staged = detail.inputs[0]
        assert staged["cluster"] == cluster and staged["remote"].startswith(root + "/")
        assert hashlib.sha256(Path(staged["remote"]).read_bytes()).hexdigest() == uploaded["sha256"]
        assert detail.workdir.startswith(root + "/")
        fetched = {Path(f["path"]).name: f for f in detail.output_files}
        assert {"log.lammps", "traj.dump"} <= set(fetched)
        for f in fetched.values():
            assert f["cluster"] == cluster and f["remote_path"].startswith(root + "/")
            assert hashlib.sha256(Path(f["remote_path"]).read_bytes()).hexdigest() == f["sha256"]
        got = client.download(f"jobs/{job.id}/log.lammps", tmp_path / f"{cluster}.log")
        assert got["verified"] and got["sha256"] == fetched["log.lammps"]["sha256"]
        assert "Loop time" in Path(got["local"]).read_text()
        seen[cluster] = detail
    # the other cluster's root never saw the other run's files
    alpha_root = platform.cluster_config("alpha").workdir_root
    assert not Path(alpha_root, "lena", "jobs", str(seen["beta"].id)).exists()


def test_routing_chooses_a_cluster_for_an_app_and_the_input_follows(net):
    platform, client, step = net
    client.upload(FIXTURES / "apps" / "in.lj", "in.lj")
    job = client.run_app("lammps", {"input": "in.lj", "steps": 100})
    assert job.cluster in ("alpha", "beta")
    detail = client.job(job.id)
    assert detail.routing["chosen"].startswith(job.cluster + "/")
    assert Path(detail.inputs[0]["remote"]).exists()
    done = poll_until(lambda: (lambda d: d if d.outputs in ("done", "failed") else None)(client.job(job.id)),
                      step=step, timeout=120, what="the routed app run")
    assert done.outputs == "done" and any(f["path"].endswith("log.lammps") for f in done.output_files)


def test_over_ssh_inputs_go_up_and_outputs_come_back_by_sftp(ssh_login, testbed, make_platform, tmp_path):
    from decimal import Decimal

    from computenet.config import ClusterConfig, Price
    from computenet.files import SftpStager
    from computenet.services.files.job_files import stager_for

    root = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work" / "fs-ssh")
    cfg = ClusterConfig(name="alpha", kind="slurm", transport="ssh", ssh_host=ssh_login["host"],
                        ssh_port=ssh_login["port"], ssh_user="root", ssh_key=ssh_login["key"],
                        ssh_known_hosts=ssh_login["known_hosts"], slurm_conf=testbed["SLURM_CONF_ALPHA"],
                        workdir_root=root, poll_interval_s=0.5, tags=["stand-in"],
                        prices={"*": Price(core_hour=Decimal("0.05"))})
    platform = make_platform([cfg])
    assert isinstance(stager_for(platform, "alpha"), SftpStager)
    _, token = add_user(platform, "sam", balance="50.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        poller, collector = ClusterPoller(platform, "alpha"), OutputCollector(platform)
        uploaded = client.upload(FIXTURES / "apps" / "in.lj", "in.lj")
        job = client.run_app("lammps", {"input": "in.lj", "steps": 100})

        def step():
            poller.run_once()
            collector.run_once()
        done = poll_until(lambda: (lambda d: d if d.outputs in ("done", "failed") else None)(client.job(job.id)),
                          step=step, timeout=120, what="the app run over SSH")
        assert done.state == "COMPLETED" and done.outputs == "done", done.events
        assert done.inputs[0]["sha256"] == uploaded["sha256"] and done.inputs[0]["remote"].startswith(root)
        assert any("staged 1 input file(s)" in e.detail for e in done.events)
        fetched = {Path(f["path"]).name: f for f in done.output_files}
        assert hashlib.sha256(Path(fetched["log.lammps"]["remote_path"]).read_bytes()).hexdigest() == \
            fetched["log.lammps"]["sha256"]

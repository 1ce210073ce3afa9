"""One filesystem view on real Slurm: a plain job's working directory is on the cluster's shared
storage, not in the workspace, so when it ends its files come back to the same place in the
workspace (~/jobs/<id>); a file staged with the submission is read by its name there."""

import os
from pathlib import Path

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import RoutingConfig
from computenet.services.files.job_files import OutputCollector
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


@pytest.fixture
def net(testbed, make_platform):
    base = Path(os.environ["COMPUTENET_TESTBED"]) / "work"
    clusters = slurm_clusters(testbed)
    for cluster in clusters:
        cluster.workdir_root = str(base / f"fsview-{cluster.name}")
    platform = make_platform(clusters, routing=RoutingConfig(queue_cache_seconds=0))
    _, token = add_user(platform, "vera", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        pollers = [ClusterPoller(platform, name) for name in ("alpha", "beta")]
        collector = OutputCollector(platform)

        def step():
            for poller in pollers:
                poller.run_once()
            collector.run_once()

        yield platform, client, step


def test_a_plain_slurm_job_reads_a_staged_file_and_its_directory_comes_back(net, tmp_path):
    platform, client, step = net
    local = tmp_path / "input.dat"
    local.write_text("7 8 9\n")
    client.upload(local, "data/input.dat")
    script = "#!/bin/bash\n#SBATCH -t 5\nmkdir -p res\nwc -w < input.dat > res/count.txt\ncat input.dat\n"
    job = client.submit(script, ["-M", "alpha", "-p", "debug"], "job.sh", inputs=["data/input.dat"])
    detail = poll_until(lambda: (lambda d: d if d.outputs in ("done", "failed") else None)(client.job(job.id)),
                        step=step, timeout=120, what=f"job {job.id} and its files")
    assert detail.state == "COMPLETED" and detail.outputs == "done", detail.events
    assert not detail.workdir.startswith(str(platform.settings.storage_root()))  # the cluster's storage
    names = {e["path"] for e in client.ls(f"jobs/{job.id}")}
    assert {f"~/jobs/{job.id}/res", f"~/jobs/{job.id}/slurm-{detail.native_id}.out"} <= names, names
    assert f"~/jobs/{job.id}/input.dat" not in names  # an input staged there is not a result
    client.download(f"jobs/{job.id}/res/count.txt", tmp_path / "count.txt")
    assert (tmp_path / "count.txt").read_text().strip() == "3"
    client.download(f"jobs/{job.id}/slurm-{detail.native_id}.out", tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "7 8 9\n"


def test_with_chdir_only_the_output_comes_back_to_the_same_place(net, tmp_path):
    platform, client, step = net
    root = Path(platform.cluster_config("alpha").workdir_root) / "vera" / "shared"
    root.mkdir(parents=True, exist_ok=True)
    (root / "big-reference.dat").write_text("not copied after every job\n")
    job = client.submit("#!/bin/bash\n#SBATCH -t 5\nls\n", ["-M", "alpha", "-p", "debug", "--chdir", "shared"], "ls.sh")
    detail = poll_until(lambda: (lambda d: d if d.outputs in ("done", "failed") else None)(client.job(job.id)),
                        step=step, timeout=120, what=f"job {job.id} and its output")
    assert detail.state == "COMPLETED" and detail.outputs == "done", detail.events
    names = {e["path"] for e in client.ls("shared")}
    assert names == {f"~/shared/slurm-{detail.native_id}.out"}, names

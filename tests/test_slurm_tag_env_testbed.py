"""Issue 17 leftovers on the real test bed: a job on a cluster without run_as_users starts from its
user's environment, not the server's (on this host and over SSH); a cluster whose tag is in the
comment (job_tag = "comment") still adopts a job after a crash between sbatch and the row update,
and keeps the user's own comment; slurmrestd tags the same field. Pure parts: test_slurm_tag_env.py."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from computenet.config import ClusterConfig, Price
from computenet.domain.sbatch import platform_tag
from computenet.services.files import paths
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Charge, Job, JobEvent
from computenet.store.types import utcnow

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm
SECRET = "COMPUTENET_SECRET_PROBE"
ENV_SCRIPT = "#!/bin/bash\nenv\n"


def _work() -> str:
    return str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")


def _env_of_jobs(platform, user_id: int, flag_sets: list[list[str]]) -> list[dict[str, str]]:
    """Submit ENV_SCRIPT to alpha with each set of flags; what each job printed."""
    jobs = [submit_job(platform, user_id, ENV_SCRIPT, ["-M", "alpha", "-t", "1", "-o", "env-%j.out", *flags])
            for flags in flag_sets]
    adapter = platform.adapter("alpha")
    ids = [job.native_id for job in jobs]
    poll_until(lambda: all(s.state.is_terminal for s in adapter.status(ids).values()), timeout=180, interval=0.5,
               what="the env jobs to end")
    printed = []
    for job in jobs:
        path = Path(job.workdir) / f"env-{job.native_id}.out"  # never an earlier run's (platform ids repeat)
        text = poll_until(lambda: path.exists() and path.read_text(), timeout=30, what=f"{path}")
        printed.append(dict(line.split("=", 1) for line in text.splitlines() if "=" in line))
    return printed


def _check_env(platform, user: str) -> None:
    user_id, _ = add_user(platform, user)
    plain, exported, none = _env_of_jobs(platform, user_id, [[], ["--export=ALL,MYVAR=42"], ["--export=NONE"]])
    space = paths.user_space(_work(), user)
    for env in (plain, exported, none):
        assert SECRET not in env  # only in the server's environment
    assert plain["HOME"] == space and exported["HOME"] == space  # the user's workspace, not the service's HOME
    assert plain["USER"] == plain["LOGNAME"] == "root"  # the account the job runs as (the test bed's service)
    assert plain["COMPUTENET_JOB_ID"].isdigit() and "MYVAR" not in plain
    assert exported["MYVAR"] == "42"
    assert "MYVAR" not in none


def test_a_job_gets_its_users_environment_not_the_servers(testbed, make_platform, monkeypatch):
    monkeypatch.setenv(SECRET, "s3cret-of-the-server")
    _check_env(make_platform(slurm_clusters(testbed)), "tagenvlocal")


def test_over_ssh_the_job_gets_its_users_environment_too(ssh_login, testbed, make_platform, monkeypatch):
    monkeypatch.setenv(SECRET, "s3cret-of-the-server")
    cfg = ClusterConfig(name="alpha", kind="slurm", transport="ssh", ssh_host=ssh_login["host"],
                        ssh_port=ssh_login["port"], ssh_user="root", ssh_key=ssh_login["key"],
                        ssh_known_hosts=ssh_login["known_hosts"], slurm_conf=testbed["SLURM_CONF_ALPHA"],
                        workdir_root=_work(), poll_interval_s=0.5,
                        prices={"cpu": Price(core_hour=Decimal("0.05")), "debug": Price(core_hour=Decimal("0.08"))})
    platform = make_platform([cfg])
    try:
        _check_env(platform, "tagenvssh")
    finally:
        platform.adapter("alpha").transport.close()


def test_another_installations_job_with_the_same_id_is_never_adopted(testbed, make_platform, monkeypatch):
    """Two installations (a staging copy, a restored database, two test runs) on one cluster both have a
    job 1. Ours was accepted and its submitter died before sbatch: the other's job 1, tagged in the old
    form or in the new with its own nonce, is not ours to adopt (nor to charge). It once was."""
    from computenet.services.jobs import poller as poller_module
    from computenet.services.jobs.job_accept import accept_job

    monkeypatch.setattr(poller_module, "SUBMIT_GRACE", timedelta(seconds=1))  # minutes in service
    platform = make_platform(slurm_clusters(testbed))
    user_id, _ = add_user(platform, "tagtwin")
    job_id = accept_job(platform, user_id, "#!/bin/bash\ntrue\n", ["-M", "alpha", "-t", "1"]).job_id
    with platform.db.session() as session:  # claimed by a submitter that died before its sbatch
        job = session.get(Job, job_id)
        job.submit_claim, job.submit_claimed_at = "submitter:alpha:dead", utcnow()
    transport = platform.adapter("alpha").transport
    theirs = [transport.run(["sbatch", "--parsable", "--hold", "-J", "twin", "-t", "1", f"--wckey={tag}",
                             "--wrap", "true"]).stdout.strip().split(";")[0]
              for tag in (f"computenet:{job_id}", platform_tag(job_id, "0ther1n5"))]
    try:
        time.sleep(1.5)
        poller = ClusterPoller(platform, "alpha")
        for _ in range(2):
            poller.run_once()
        with platform.db.session() as session:
            job = session.get(Job, job_id)
            details = [e.detail for e in session.scalars(select(JobEvent).where(JobEvent.job_id == job_id))]
            assert job.native_id is None and job.state == "CANCELLED", (job.native_id, job.state, details)
            assert not any("adopted" in d for d in details) and any("never reached alpha" in d for d in details)
            assert job.settled_at is not None  # withdrawn: its hold voided, nothing charged
    finally:
        for native in theirs:
            transport.run(["scancel", native])


def _squeue_tag_fields(platform, native_id: str) -> str:
    result = platform.adapter("alpha").transport.run(["squeue", "-h", "--states=all", "-j", native_id,
                                                      "-o", "%k|%w"])
    return result.stdout.strip()


def test_a_comment_tagged_cluster_adopts_a_job_after_a_crash_and_keeps_the_users_comment(
        testbed, make_platform, monkeypatch):
    from computenet.services.jobs import poller as poller_module

    monkeypatch.setattr(poller_module, "SUBMIT_GRACE", timedelta(seconds=1))  # minutes in service
    clusters = slurm_clusters(testbed)
    clusters[0].job_tag = "comment"  # as at a site that enforces wckeys
    platform = make_platform(clusters)
    user_id, _ = add_user(platform, "tagcrash")
    held = submit_job(platform, user_id, '#!/bin/bash\n#SBATCH --comment="my run 3"\ntrue\n',
                      ["-M", "alpha", "--hold", "-t", "2"])
    quick = submit_job(platform, user_id, "#!/bin/bash\ntrue\n", ["-M", "alpha", "-t", "1", "--comment=quick one"])
    try:
        assert _squeue_tag_fields(platform, held.native_id).split("|")[0] == f"{platform_tag(held.id, held.tag_nonce)} my run 3"
        assert _squeue_tag_fields(platform, quick.native_id).split("|")[0] == f"{platform_tag(quick.id, quick.tag_nonce)} quick one"
        with platform.db.session() as session:  # the server died after sbatch, before it stored the answers
            for job in (held, quick):
                stored = session.get(Job, job.id)
                stored.native_id, stored.state = None, "SUBMITTING"
        time.sleep(1.5)
        poller = ClusterPoller(platform, "alpha")
        poller.run_once()
        with platform.db.session() as session:
            stored = session.get(Job, held.id)
            assert stored.native_id == held.native_id and stored.state == "PENDING" and stored.settled_at is None
            assert "adopted from the queue by its comment" in [e.detail for e in session.scalars(
                select(JobEvent).where(JobEvent.job_id == held.id))]

        def quick_settled():
            with platform.db.session() as session:
                return session.get(Job, quick.id).settled_at is not None

        poll_until(quick_settled, step=poller.run_once, interval=1.0, timeout=180, what="the quick job to settle")
        with platform.db.session() as session:  # found by its tag in sacct too, and charged once
            stored = session.get(Job, quick.id)
            assert stored.native_id == quick.native_id and stored.state == "COMPLETED"
            assert len(session.scalars(select(Charge).where(Charge.job_id == quick.id)).all()) == 1
    finally:
        platform.adapter("alpha").cancel(held.native_id)


def test_slurmrestd_puts_the_tag_in_the_configured_field(testbed):
    from computenet.clusters.base import SubmitRequest
    from computenet.clusters.slurmrest.adapter import RestCluster, TokenSource, scontrol_minter
    from computenet.clusters.slurm.transport import LocalTransport
    from computenet.domain.resources import JobSpec, ResourceRequest

    env = Path(os.environ["COMPUTENET_TESTBED"]) / "env.sh"
    url = next(line.split("=", 1)[1].strip("'\"") for line in env.read_text().splitlines()
               if line.startswith("export SLURMRESTD_URL_BETA="))
    squeue = LocalTransport(testbed["SLURM_CONF_BETA"])
    for field in ("comment", "wckey"):
        adapter = RestCluster("beta", url, TokenSource("root", scontrol_minter(testbed["SLURM_CONF_BETA"])),
                              job_tag=field)
        tag = f"computenet:{900000 + len(field)}"
        native = adapter.submit(SubmitRequest(
            script="#!/bin/bash\nsleep 30\n", spec=JobSpec(resources=ResourceRequest(time_limit_minutes=1,
                                                                                     partition="cpu")),
            job_name="tagged", workdir="/tmp", output="/dev/null", error="/dev/null", comment=tag))
        try:
            fields = squeue.run(["squeue", "-h", "-j", native, "-o", "%k|%w"]).stdout.strip().split("|")
            assert fields[("comment", "wckey").index(field)] == tag, fields
            assert native in [n for n, _ in adapter.jobs_by_comment()[tag]]  # what adoption reads
        finally:
            adapter.cancel(native)

"""Issue 13 item 11: Slurm reuses the ids of jobs it lost. A Slurm job is matched to a
platform job by its ``computenet:<id>`` comment and submit time, never by the id alone; a
job Slurm lost ends LOST with its hold released and its owner told; a new job that takes
a stale row's id is recorded as the new job.

The first tests run anywhere (the poller on the local executor, records as sacct gives
them); the last kills alpha's slurmctld on the test bed (marked slurm).
"""

import os
import signal
import subprocess
import time
from dataclasses import replace
from datetime import timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from computenet.billing import funds
from computenet.clusters.base import UsageRecord
from computenet.domain.states import JobState
from computenet.services.jobs import reconcile
from computenet.services.jobs.jobs import cancel_job, submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Account, Charge, Cluster, Job, Notification, UsageRecordRow, User
from computenet.store.types import utcnow

from conftest import add_user, poll_until, slurm_clusters

ROOT = Path(__file__).resolve().parent.parent


def _funds(platform, user_id):
    with platform.db.session() as session:
        return funds.funds(session, session.get(Account, session.get(User, user_id).default_account_id))


def _record(native_id: str, comment: str | None, submit, cpus=32, seconds=3600) -> UsageRecord:
    return UsageRecord(cluster="local", record_id=native_id, native_id=native_id, submit=submit,
                       state=JobState.COMPLETED, raw_state="COMPLETED", start=submit,
                       end=submit + timedelta(seconds=seconds),
                       elapsed_seconds=seconds, cpus=cpus, mem_mb=1024, gpus=0, gpu_type=None, nodes=1, exit_code=0,
                       partition="local", account=None, user="someone", comment=comment, job_name="theirs")


def test_a_record_with_another_jobs_comment_is_not_charged_to_the_job_holding_its_id(platform):
    """The lost job must not take over the new Slurm job's usage (one user billed for another's 32 cores)."""
    ann, _ = add_user(platform, "ann")
    job = submit_job(platform, ann, "#!/bin/bash\n#SBATCH -t 5\nsleep 60\n")
    poller = ClusterPoller(platform, "local")
    later = utcnow() + timedelta(minutes=1)
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        # the scheduler lost ann's job and gave its id to someone else's: their comment, their submit time
        poller._store(session, cluster, _record(job.native_id, "computenet:987654", later))
        poller._store(session, cluster, replace(_record(job.native_id, None, later + timedelta(seconds=5)),
                                                record_id=job.native_id + "x"))
        rows = list(session.scalars(select(UsageRecordRow)))
        assert len(rows) == 2 and all(r.job_id != job.id for r in rows)
    cancel_job(platform, ann, job.id)


def test_a_new_job_taking_a_stale_rows_id_is_recorded(platform):
    ann, _ = add_user(platform, "ann")
    ben, _ = add_user(platform, "ben")
    first = submit_job(platform, ann, "#!/bin/bash\n#SBATCH -t 5\nsleep 60\n")
    second = submit_job(platform, ben, "#!/bin/bash\n#SBATCH -t 5\nsleep 60\n")
    with platform.db.session() as session:
        # as if the scheduler had handed ann's id to ben's job after losing its state
        session.get(Job, second.id).native_id = first.native_id
    poller = ClusterPoller(platform, "local")
    poller.run_once()
    with platform.db.session() as session:
        stale, new = session.get(Job, first.id), session.get(Job, second.id)
        assert stale.state == "LOST" and stale.settled_at is not None
        assert f"gave its id {first.native_id} to job {second.id}" in stale.reason
        assert new.state != "LOST" and new.native_id == first.native_id
        assert any(f"job {first.id}" in n.message for n in session.scalars(
            select(Notification).where(Notification.user_id == ann)))
    assert _funds(platform, ann).held == 0 and _funds(platform, ann).balance == Decimal("100.00")
    platform.adapters["local"].cancel(second.native_id)


def _kill_controller(base: Path) -> None:
    pid = int((base / "alpha" / "run" / "slurmctld.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)


def _start_controller(base: Path) -> None:
    subprocess.run([str(ROOT / "scripts" / "slurm-testbed"), "start-controller", "alpha", str(base)],
                   check=True, capture_output=True, timeout=180)


def _forgotten_job(platform, user_id, base: Path) -> Job:
    """Submit to alpha and kill -9 its slurmctld at once. An idle slurmctld saves its state
    right after a submission, then at most every couple of seconds: a first job triggers
    that save, the second, killed before the next, is forgotten. A few tries: it is a race."""
    adapter = platform.adapter("alpha")
    flags = ["-M", "alpha", "--hold", "-t", "2"]
    for _ in range(3):
        try:
            decoy = submit_job(platform, user_id, "#!/bin/bash\ntrue\n", flags)
            job = submit_job(platform, user_id, "#!/bin/bash\ntrue\n", flags)
            _kill_controller(base)
        finally:
            _start_controller(base)
        known = adapter.status([decoy.native_id, job.native_id])
        for other in (decoy, job):  # every job but the forgotten one under test: out of the way
            if other is job and known[job.native_id].state == JobState.UNKNOWN:
                continue
            if known[other.native_id].state != JobState.UNKNOWN:
                adapter.cancel(other.native_id)
            with platform.db.session() as session:
                reconcile.mark_lost(session, session.get(Job, other.id), "test housekeeping")
        if known[job.native_id].state == JobState.UNKNOWN:
            return job
    pytest.fail("slurmctld saved its state before every kill")


@pytest.mark.slurm
def test_a_job_slurm_forgot_is_lost_and_its_id_goes_to_a_new_job(testbed, make_platform, monkeypatch):
    monkeypatch.setattr(reconcile, "LOST_AFTER", timedelta(seconds=5))  # minutes in service; seconds here
    platform = make_platform(slurm_clusters(testbed))
    ann, _ = add_user(platform, "ann")
    ben, _ = add_user(platform, "ben")
    lost = _forgotten_job(platform, ann, Path(os.environ["COMPUTENET_TESTBED"]))
    assert _funds(platform, ann).held > 0
    poller = ClusterPoller(platform, "alpha")

    def is_lost():
        with platform.db.session() as session:
            return session.get(Job, lost.id).state == "LOST"

    started = time.monotonic()
    poll_until(is_lost, step=poller.run_once, interval=1.0, timeout=120, what="the forgotten job to be LOST")
    found_after = time.monotonic() - started
    with platform.db.session() as session:
        stored = session.get(Job, lost.id)
        assert stored.settled_at is not None and not stored.needs_reconcile
        assert "accounting never ended" in stored.reason
        assert session.scalar(select(Charge.id).where(Charge.job_id == lost.id)) is None
        told = [n.message for n in session.scalars(select(Notification).where(Notification.user_id == ann))]
        assert any(f"job {lost.id} " in m and "lost" in m for m in told), told
    assert _funds(platform, ann).held == 0 and _funds(platform, ann).balance == Decimal("100.00")
    assert found_after < 60  # LOST_AFTER plus a pass or two

    # Slurm hands the forgotten id out again: recorded as ben's new job (no UNIQUE-constraint 500)
    new = submit_job(platform, ben, "#!/bin/bash\ntrue\n", ["-M", "alpha", "--hold", "-t", "2"])
    with platform.db.session() as session:
        stale = session.scalar(select(Job).where(Job.native_id == new.native_id, Job.id != new.id))
        stale_id = stale.id if stale is not None else None
    if stale_id is None:
        # whether slurmctld saved its id counter before the kill is a race of its own: the
        # collision is covered without it by test_a_new_job_taking_a_stale_rows_id_is_recorded
        cancel_job(platform, ben, new.id)
        pytest.skip(f"Slurm gave the new job id {new.native_id}, not the forgotten {lost.native_id}")
    with platform.db.session() as session:
        assert session.get(Job, stale_id).state == "LOST"
    for _ in range(3):
        poller.run_once()
    with platform.db.session() as session:
        assert session.get(Job, new.id).state == "PENDING" and session.get(Job, stale_id).state == "LOST"
    cancel_job(platform, ben, new.id)

    def settled():
        with platform.db.session() as session:
            return session.get(Job, new.id).settled_at is not None

    poll_until(settled, step=poller.run_once, interval=1.0, timeout=120, what="ben's job to settle")
    with platform.db.session() as session:
        rows = list(session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == new.id)))
        assert rows and all(r.submit_time >= session.get(Job, new.id).submitted_at - timedelta(seconds=30)
                            for r in rows)
        assert session.scalar(select(UsageRecordRow.id).where(UsageRecordRow.job_id.in_([lost.id, stale_id]))) is None
    assert _funds(platform, ben).held == 0 and _funds(platform, ann).balance == Decimal("100.00")


def test_queue_by_comment_parser_and_argv():
    from computenet.clusters.slurm import commands, parsers

    argv = commands.squeue_comments_argv()
    assert argv[:3] == ["squeue", "--noheader", "--states=all"] and argv[3].endswith("%k\x1f%w")
    # the tag is in the wckey now (the user's comment stays theirs); jobs tagged before, in the comment
    out = ("41\x1f2026-12-07T00:29:14\x1fcomputenet:7\x1f(null)\n42\x1f2026-12-07T00:29:15\x1f(null)\x1f(null)\n"
           "43\x1f2026-12-07T00:29:16\x1f\x1f\n44\x1f2026-12-07T00:29:17\x1fmine\x1fcomputenet:8\n")
    found = parsers.parse_squeue_comments(out, timezone.utc)
    assert list(found) == ["computenet:7", "computenet:8"] and found["computenet:7"][0][0] == "41"
    assert found["computenet:8"][0][0] == "44"
    assert found["computenet:7"][0][1].isoformat() == "2026-12-07T00:29:14+00:00"


@pytest.mark.slurm
def test_interrupted_submission_pending_on_slurm_is_adopted_from_the_queue(testbed, make_platform, monkeypatch):
    """sacct has no comment for a pending job: the queue names it, so it is adopted, not withdrawn."""
    from computenet.services.jobs import poller as poller_module

    monkeypatch.setattr(poller_module, "SUBMIT_GRACE", timedelta(seconds=1))  # minutes in service
    platform = make_platform(slurm_clusters(testbed))
    ann, _ = add_user(platform, "ann")
    job = submit_job(platform, ann, "#!/bin/bash\ntrue\n", ["-M", "alpha", "--hold", "-t", "2"])
    with platform.db.session() as session:  # the server died before it stored sbatch's answer
        stored = session.get(Job, job.id)
        stored.native_id, stored.state = None, "SUBMITTING"
    time.sleep(1.5)
    try:
        ClusterPoller(platform, "alpha").run_once()
        with platform.db.session() as session:
            stored = session.get(Job, job.id)
            assert stored.native_id == job.native_id and stored.state == "PENDING" and stored.settled_at is None
    finally:
        platform.adapter("alpha").cancel(job.native_id)

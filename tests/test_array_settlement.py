"""Issue 13 item 12: job arrays settle task by task, tasks that never started included.

The pure part (which tasks each accounting row stands for) runs anywhere; the rest
on the real Slurm test bed (`scripts/slurm-testbed start`, COMPUTENET_TESTBED).
"""

from decimal import Decimal

import pytest
from sqlalchemy import select

from computenet.billing import funds
from computenet.clusters.slurm.parsers import array_tasks
from computenet.services.jobs.jobs import cancel_job, submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.billing.settlement import covers_all, expected_records
from computenet.store.models import Account, Charge, Job, UsageRecordRow, User

from conftest import add_user, poll_until, slurm_clusters


@pytest.mark.parametrize("job_id,tasks", [("7_2", "2"), ("9_[0-3]", "0-3"), ("9_[2-3%1]", "2-3"),
                                          ("9_[1,3,5-7]", "1,3,5-7"), ("12", None)])
def test_sacct_job_id_names_its_tasks(job_id, tasks):
    assert array_tasks(job_id) == tasks


def test_one_row_for_the_tasks_that_never_started_covers_them():
    job = Job(spec={"options": {"array": "0-3%2"}})
    assert expected_records(job) == 4
    ran = [UsageRecordRow(array_tasks="0"), UsageRecordRow(array_tasks="1")]
    assert not covers_all(job, ran)
    assert covers_all(job, ran + [UsageRecordRow(array_tasks="2-3")])
    assert covers_all(job, [UsageRecordRow(array_tasks="0-3")])
    # a scheduler that does not name tasks: one record per task, as before
    assert not covers_all(job, [UsageRecordRow()] * 3) and covers_all(job, [UsageRecordRow()] * 4)
    assert covers_all(Job(spec={"options": {}}), [UsageRecordRow()])


@pytest.fixture
def alpha(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    user_id, _ = add_user(platform, "ada", balance="500.00")
    poller = ClusterPoller(platform, "alpha")
    return platform, user_id, poller


def _settled(platform, job_id, poller, timeout=120):
    def done():
        with platform.db.session() as session:
            return session.get(Job, job_id).settled_at is not None

    poll_until(done, step=poller.run_once, interval=1.0, timeout=timeout, what=f"array job {job_id} to settle")


def _held(platform, user_id) -> Decimal:
    with platform.db.session() as session:
        return funds.funds(session, session.get(Account, session.get(User, user_id).default_account_id)).held


@pytest.mark.slurm
def test_array_cancelled_while_pending_settles_every_task(alpha):
    platform, user_id, poller = alpha
    job = submit_job(platform, user_id, "#!/bin/bash\ntrue\n", ["-M", "alpha", "--array=0-3", "--hold", "-t", "2"])
    assert _held(platform, user_id) > 0
    poller.run_once()
    cancel_job(platform, user_id, job.id)
    _settled(platform, job.id, poller)
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        rows = list(session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id)))
        charges = list(session.scalars(select(Charge).where(Charge.job_id == job.id)))
        assert stored.state == "CANCELLED" and not stored.needs_reconcile
        assert covers_all(stored, rows) and sum(c.amount for c in charges) == 0  # nothing ran
    assert _held(platform, user_id) == 0


@pytest.mark.slurm
def test_running_array_whose_tasks_end_at_different_times(alpha):
    platform, user_id, poller = alpha
    script = "#!/bin/bash\nsleep $((1 + 2 * SLURM_ARRAY_TASK_ID))\n"
    job = submit_job(platform, user_id, script, ["-M", "alpha", "--array=0-3", "-c", "1", "-t", "2"])
    _settled(platform, job.id, poller, timeout=180)
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        rows = list(session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id)))
        charges = list(session.scalars(select(Charge).where(Charge.job_id == job.id)))
        assert stored.state == "COMPLETED"
        assert sorted(r.array_tasks for r in rows) == ["0", "1", "2", "3"]
        assert len(charges) == 4 and all(r.elapsed_seconds >= 1 for r in rows)
        ends = sorted(r.end_time for r in rows)
        assert ends[0] < ends[-1]  # they did end at different times
    assert _held(platform, user_id) == 0

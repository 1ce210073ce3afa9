"""On the real test bed: the hold covers what Slurm allocates for --gpus-per-task, and the
account cannot end below zero (issue 13, item 9c: held at 0.02, Slurm allocated 4 A100s,
and a 0.20 balance ended at -0.34).

beta/gpu: 2 nodes of 32 cores and 4 A100s (fake, gres), 0.06 a core-hour and 8.00 a GPU-hour.
"""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from computenet.billing import funds, ledger
from computenet.services.tenancy import accounts
from computenet.services.errors import InsufficientFunds
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Account, Job, UsageRecordRow

from conftest import poll_until, slurm_clusters

pytestmark = pytest.mark.slurm
SCRIPT = "#!/bin/bash\n#SBATCH -M beta -p gpu -n 4 --gpus-per-task=1 -t 5\nsleep 2\n"
# 4 GPUs x 5 min x 8.00 + 4 cores x 5 min x 0.06 = 2.6666.. + 0.02, rounded up to the cent
HOLD = Decimal("2.69")


@pytest.fixture
def gpu_bed(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    with platform.db.session() as session:
        user = accounts.create_user(session, "gina")
        acc = accounts.create_account(session, "gina-lab", owner=user)
        accounts.top_up(session, acc, "0.20", key=f"test:{uuid.uuid4()}")
        ids = user.id, acc.id
    poller = ClusterPoller(platform, "beta")
    yield platform, *ids, poller.run_once


def test_gpus_per_task_is_held_for_the_gpus_slurm_allocates(gpu_bed):
    platform, user_id, account_id, step = gpu_bed
    # 0.20 does not cover four A100s for five minutes: refused before sbatch, nothing held
    with pytest.raises(InsufficientFunds, match=f"up to {HOLD}"):
        submit_job(platform, user_id, SCRIPT)
    with platform.db.session() as session:
        account = session.get(Account, account_id)
        assert funds.funds(session, account).held == Decimal("0.00")
        accounts.top_up(session, account, "3.00", key=f"test:{uuid.uuid4()}")
    job = submit_job(platform, user_id, SCRIPT)
    assert (job.cores, job.gpus, job.max_cost) == (4, 4, HOLD)
    with platform.db.session() as session:
        assert funds.funds(session, session.get(Account, account_id)).held == HOLD

    def settled():
        with platform.db.session() as session:
            row = session.get(Job, job.id)
            return row if row.settled_at is not None else None

    done = poll_until(settled, step=step, timeout=120, what="the GPU job to be settled")
    assert done.state == "COMPLETED"
    with platform.db.session() as session:
        (record,) = session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id))
        assert (record.gpus, record.cpus) == (4, 4)  # what Slurm allocated: what was held for
        f = funds.funds(session, session.get(Account, account_id))
        assert f.held == Decimal("0.00")
        assert f.balance >= 0, f"a 3.20 balance ended at {f.balance}"
        assert Decimal("3.20") - f.balance <= HOLD  # the charge stayed within the hold
        assert ledger.invariant(session) == []

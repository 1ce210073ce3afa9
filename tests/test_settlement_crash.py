"""kill -9 the settlement process at random points, 200 times, and restart it.

Every finished job must end up charged exactly once, for the right amount,
and the ledger must balance after every single kill.
"""

import os
import random
import signal
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select

from computenet.billing import funds, ledger
from computenet.billing.rating import rate
from computenet.services.billing.settlement import settle_pass
from computenet.store.db import Database
from computenet.store.models import Account, Charge, Cluster, Job, Transfer, UsageRecordRow

from conftest import add_user

TRIALS = 200
BATCH = 12  # finished jobs added whenever the previous ones are all settled
PRICE = Decimal("36.00")  # the test cluster's core-hour price


def add_finished_jobs(platform, account_id, owner_id, count, rng) -> dict[int, Decimal]:
    """Jobs that ended, each with its hold and a final accounting record."""
    expected = {}
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster))
        account = session.get(Account, account_id)
        now = datetime.now(timezone.utc)
        for _ in range(count):
            cpus, elapsed = rng.randint(1, 4), rng.randint(0, 7200)
            job = Job(owner_id=owner_id, account_id=account_id, cluster_id=cluster.id, partition="local", name="c",
                      state="COMPLETED", spec={}, script="#!/bin/bash\n", workdir="/w", stdout_path="/w/o",
                      stderr_path="/w/o", cores=cpus, gpus=0, time_limit_minutes=120, max_cost=Decimal("0"))
            session.add(job)
            session.flush()
            job.native_id = str(100000 + job.id)
            limit_cost = rate(7200, cpus, 0, PRICE, Decimal(0)).amount
            job.max_cost = limit_cost
            funds.hold_for_job(session, job, account, limit_cost, "hpc")
            session.add(UsageRecordRow(
                cluster_id=cluster.id, record_id=job.native_id, native_id=job.native_id, submit_time=now,
                job_id=job.id, state="COMPLETED", start_time=now, end_time=now + timedelta(seconds=elapsed),
                elapsed_seconds=elapsed, cpus=cpus, mem_mb=100, gpus=0, nodes=1, exit_code=0, partition="local"))
            expected[job.id] = rate(elapsed, cpus, 0, PRICE, Decimal(0)).amount
    return expected


def run_settlement_and_kill(db_url: str, cluster_id: int, delay: float) -> bool:
    """Fork a settlement process, SIGKILL it after ``delay`` s; True if it was killed mid-way."""
    pid = os.fork()
    if pid == 0:  # the settlement process: its own connections, nothing inherited
        try:
            db = Database(db_url)
            while settle_pass(db, cluster_id) != (0, 0):
                pass
            os._exit(0)
        except BaseException:
            os._exit(3)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3), "the settlement process crashed by itself"
    return os.WIFSIGNALED(status)


def test_kill_9_during_settlement(platform, db_url):
    rng = random.Random(20261122)
    owner_id, _ = add_user(platform, "crash", balance="0")
    with platform.db.session() as session:
        account = session.scalar(select(Account).where(Account.name == "crash-lab"))
        funds.top_up(session, account, "10000000.00", key="crash:fund")
        account_id = account.id
        cluster_id = session.scalar(select(Cluster.id))
    expected: dict[int, Decimal] = {}
    platform.db.engine.dispose()  # no connection may cross the fork
    killed = 0
    for trial in range(TRIALS):
        with platform.db.session() as session:
            open_jobs = session.scalar(select(func.count(Job.id)).where(Job.settled_at.is_(None)))
        if open_jobs == 0:
            expected.update(add_finished_jobs(platform, account_id, owner_id, BATCH, rng))
        platform.db.engine.dispose()
        killed += run_settlement_and_kill(db_url, cluster_id, rng.uniform(0.0, 0.12))
        with platform.db.session() as session:
            # whatever was committed before the kill is whole and balanced
            assert ledger.invariant(session) == [], f"trial {trial}"
            assert session.scalar(select(func.count()).select_from(
                select(Charge.usage_record_id).group_by(Charge.usage_record_id)
                .having(func.count() > 1).subquery())) == 0
            assert session.scalar(select(func.count()).select_from(
                select(Transfer.pending_id).where(Transfer.pending_id.is_not(None)).group_by(Transfer.pending_id)
                .having(func.count() > 1).subquery())) == 0
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} processes were killed while working"
    print(f"\n{TRIALS} trials, {killed} settlement processes killed mid-way, {len(expected)} jobs")
    while settle_pass(platform.db, cluster_id) != (0, 0):  # a last, undisturbed restart
        pass
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Job.id)).where(Job.settled_at.is_(None))) == 0
        charges = dict(session.execute(select(Charge.job_id, Charge.amount)).all())
        assert charges == expected  # every finished job charged, once, the right amount
        posted = dict(session.execute(select(Transfer.job_id, func.count()).where(
            Transfer.kind.in_(["post", "void"])).group_by(Transfer.job_id)).all())
        assert set(posted) == set(expected) and set(posted.values()) == {1}
        account = session.get(Account, account_id)
        f = funds.funds(session, account)
        assert f.held == 0 and f.balance == Decimal("10000000.00") - sum(expected.values())
        assert ledger.invariant(session) == []

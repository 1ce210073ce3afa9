"""An account below zero under running jobs: notice, grace, then hold or cancel; resume on top-up."""

import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from computenet.billing import funds, ledger
from computenet.services.tenancy import accounts
from computenet.services.billing import exhaustion
from computenet.services.billing.exhaustion import ExhaustionWatch
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import AuditEvent, Job, Notification

from conftest import add_user, poll_until

TICKING = "#!/bin/bash\n#SBATCH -c 1 -t 10\nwhile true; do echo x >> ticks; sleep 0.1; done\n"  # holds 6.00


def _account_on_credit(platform, name: str, policy: str, grace: int = 0) -> int:
    """A postpaid account: no balance, a credit line of 20.00, the given policy."""
    user_id, _ = add_user(platform, name, balance="0")
    with platform.db.session() as session:
        account = accounts.get_account(session, f"{name}-lab")
        funds.set_credit_limit(session, account, "20.00")
        exhaustion.set_policy(session, account, policy, grace)
    return user_id


def _lower_credit_line(platform, name: str) -> None:
    # the operator cuts the credit line under a running job: available = 0 + 0 - 6.00
    with platform.db.session() as session:
        funds.set_credit_limit(session, accounts.get_account(session, f"{name}-lab"), "0")


def _state(platform, job_id: int) -> str:
    with platform.db.session() as session:
        return session.get(Job, job_id).state


def _ticks(job) -> int:
    path = Path(job.workdir) / "ticks"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_hold_policy_suspends_running_jobs_and_resumes_them_after_a_top_up(platform):
    user_id = _account_on_credit(platform, "eve", "hold")
    job = submit_job(platform, user_id, TICKING)
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: _state(platform, job.id) == "RUNNING" and _ticks(job) > 0, step=poller.run_once,
               what="the job to run")
    watch = ExhaustionWatch(platform)
    assert watch.run_once().paused == []  # in credit: nothing to do
    _lower_credit_line(platform, "eve")
    first = watch.run_once()
    assert first.exhausted == ["eve-lab"] and first.paused == []  # notice first, then the grace (0 min here)
    with platform.db.session() as session:
        (notice,) = session.scalars(select(Notification).where(Notification.kind == "exhausted"))
        assert "6.00 CNY in arrears" in notice.message and "suspended" in notice.message
    assert watch.run_once().paused == [job.id]
    poll_until(lambda: _state(platform, job.id) == "SUSPENDED", step=poller.run_once, what="SUSPENDED")
    stopped_at = _ticks(job)
    time.sleep(1.0)
    assert _ticks(job) == stopped_at  # really stopped, not just labelled
    assert watch.run_once().paused == []  # asked once
    with platform.db.session() as session:
        accounts.top_up(session, accounts.get_account(session, "eve-lab"), "10.00", key="eve:pay")
    restored = watch.run_once()
    assert restored.restored == ["eve-lab"] and restored.resumed == [job.id]
    poll_until(lambda: _state(platform, job.id) == "RUNNING", step=poller.run_once, what="RUNNING again")
    poll_until(lambda: _ticks(job) > stopped_at + 3, what="the job to tick again")
    with platform.db.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions == ["job.pause_for_funds", "job.resume_for_funds"]
        kinds = [n.kind for n in session.scalars(select(Notification).order_by(Notification.id))]
        assert kinds == ["exhausted", "restored"]
    platform.adapter("local").cancel(job.native_id)


def test_cancel_policy_cancels_running_and_waiting_jobs_after_the_grace(platform):
    user_id = _account_on_credit(platform, "fay", "cancel")
    running = submit_job(platform, user_id, TICKING)
    waiting = submit_job(platform, user_id, "#!/bin/bash\n#SBATCH -c 1 -t 5 -H\ntrue\n")  # held by its owner
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: _state(platform, running.id) == "RUNNING", step=poller.run_once, what="RUNNING")
    _lower_credit_line(platform, "fay")
    watch = ExhaustionWatch(platform)
    assert watch.run_once().exhausted == ["fay-lab"]
    assert sorted(watch.run_once().cancelled) == sorted([running.id, waiting.id])
    poll_until(lambda: {_state(platform, j.id) for j in (running, waiting)} == {"CANCELLED"},
               step=poller.run_once, what="both cancelled")
    poll_until(lambda: funds_of(platform, "fay-lab").held == 0, step=poller.run_once, timeout=30,
               what="the holds to be settled")
    with platform.db.session() as session:
        assert ledger.invariant(session) == []
        assert session.get(Job, running.id).settled_at is not None


def test_block_policy_and_the_grace_period_leave_running_jobs_alone(platform):
    blocked = _account_on_credit(platform, "gus", "block")
    graced = _account_on_credit(platform, "hal", "cancel", grace=60)
    jobs = [submit_job(platform, blocked, TICKING), submit_job(platform, graced, TICKING)]
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: all(_state(platform, j.id) == "RUNNING" for j in jobs), step=poller.run_once,
               what="RUNNING")
    _lower_credit_line(platform, "gus")
    _lower_credit_line(platform, "hal")
    watch = ExhaustionWatch(platform)
    assert sorted(watch.run_once().exhausted) == ["gus-lab", "hal-lab"]
    second = watch.run_once()
    assert (second.paused, second.cancelled) == ([], [])
    with platform.db.session() as session:
        messages = {n.account_id: n.message for n in session.scalars(select(Notification))}
        assert any("New jobs are refused" in m for m in messages.values())
        assert any("will be cancelled" in m for m in messages.values())
    for job in jobs:
        assert _state(platform, job.id) == "RUNNING"
        platform.adapter("local").cancel(job.native_id)


def funds_of(platform, name):
    with platform.db.session() as session:
        return funds.funds(session, accounts.get_account(session, name))


def test_policy_input_is_checked(platform):
    import pytest

    from computenet.services.errors import InvalidRequest

    add_user(platform, "ida")
    with platform.db.session() as session:
        account = accounts.get_account(session, "ida-lab")
        for policy, grace in (("suspend", None), ("hold", -1), ("hold", 10**6), ("hold", True)):
            with pytest.raises(InvalidRequest):
                exhaustion.set_policy(session, account, policy, grace)
        assert (account.exhaustion_policy, account.exhaustion_grace_minutes) == ("block", 60)
        assert Decimal(0) == funds.funds(session, account).held

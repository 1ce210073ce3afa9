"""The per-cluster poller: transitions, accounting, charging exactly once."""

import threading
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from computenet.billing import funds
from computenet.services.tenancy import accounts
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.billing.settlement import expected_records
from computenet.store.models import Charge, Job, JobEvent, UsageRecordRow
from computenet.store.types import utcnow

from conftest import add_user, poll_until

QUICK = "#!/bin/bash\n#SBATCH -t 5 -c 2\nsleep 1.1\necho done\n"


def settle(platform, job_id, poller=None, timeout=30):
    poller = poller or ClusterPoller(platform, "local")

    def settled():
        with platform.db.session() as session:
            return session.get(Job, job_id).settled_at is not None

    poll_until(settled, step=poller.run_once, timeout=timeout, what=f"job {job_id} to settle")


def job_state(platform, job_id) -> str:
    with platform.db.session() as session:
        return session.get(Job, job_id).state


def count(platform, model, *where):
    with platform.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_one_status_call_for_all_active_jobs(platform):
    user_id, _ = add_user(platform, "erin", balance="1000")
    calls = []
    adapter = platform.adapters["local"]
    original = adapter.status
    adapter.status = lambda ids: (calls.append(list(ids)), original(ids))[1]
    jobs = [submit_job(platform, user_id, "#!/bin/bash\nsleep 5\n").id for _ in range(3)]
    report = ClusterPoller(platform, "local").run_once()
    with platform.db.session() as session:
        natives = sorted(session.get(Job, i).native_id for i in jobs)
    assert report.polled == 3 and len(calls) == 1 and sorted(calls[0]) == natives
    for job_id in jobs:
        from computenet.services.jobs.jobs import cancel_job
        cancel_job(platform, user_id, job_id)


def test_charge_matches_usage_and_is_final(platform):
    user_id, _ = add_user(platform, "fay")
    job = submit_job(platform, user_id, QUICK)
    settle(platform, job.id)
    with platform.db.session() as session:
        row = session.scalar(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id))
        charge = session.scalar(select(Charge).where(Charge.job_id == job.id))
        stored = session.get(Job, job.id)
        assert stored.state == "COMPLETED" and stored.exit_code == 0
        assert stored.start_time is not None and stored.end_time >= stored.start_time
        assert row.cpus == 2 and row.elapsed_seconds >= 1
        assert charge.core_seconds == row.elapsed_seconds * 2
        expected = (Decimal(charge.core_seconds) * Decimal("36.00") / 3600).quantize(Decimal("0.01"))
        assert charge.amount == expected
        f = funds.funds(session, stored.account)
        assert (f.balance, f.held) == (Decimal("100.00") - expected, Decimal("0.00"))
        assert accounts.ledger_problems(session) == []


def test_records_seen_again_are_the_same_record(platform):
    user_id, _ = add_user(platform, "gus")
    job = submit_job(platform, user_id, QUICK)
    poller = ClusterPoller(platform, "local")
    settle(platform, job.id, poller)
    # forget the cursor: the next pass re-reads everything
    with platform.db.session() as session:
        from computenet.store.models import Cluster
        session.scalar(select(Cluster)).accounting_cursor = None
    for _ in range(3):
        report = poller.run_once()
        assert report.charged == 0
    assert count(platform, UsageRecordRow) == 1 and count(platform, Charge) == 1


def test_late_accounting_is_charged(platform):
    """A record that shows up only after several passes is still charged."""
    user_id, _ = add_user(platform, "hal")
    job = submit_job(platform, user_id, QUICK)
    adapter = platform.adapters["local"]
    real_accounting = adapter.accounting
    adapter.accounting = lambda since, ids=None: []  # slurmdbd is lagging
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: job_state(platform, job.id) == "COMPLETED", step=poller.run_once,
               what="job to end")
    for _ in range(3):
        poller.run_once()
    assert count(platform, Charge) == 0
    with platform.db.session() as session:
        assert session.get(Job, job.id).settled_at is None  # not settled, not free
    adapter.accounting = real_accounting
    report = poller.run_once()
    assert report.charged == 1 and report.settled == 1


def test_missing_accounting_is_flagged_not_free(platform):
    user_id, _ = add_user(platform, "ivy")
    job = submit_job(platform, user_id, QUICK)
    adapter = platform.adapters["local"]
    adapter.accounting = lambda since, ids=None: []  # the record never comes
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: job_state(platform, job.id) == "COMPLETED", step=poller.run_once,
               what="job to end")
    with platform.db.session() as session:  # pretend the grace period has passed
        session.get(Job, job.id).end_time = utcnow() - timedelta(hours=1)
    report = poller.run_once()
    assert report.flagged == 1
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored.needs_reconcile and stored.settled_at is None
        # the reservation stays: the money is not released until someone decides
        assert stored.max_cost > 0


def test_lost_sbatch_answer_is_adopted_by_comment(platform):
    """sbatch ran but the server crashed before storing the id."""
    user_id, _ = add_user(platform, "jay")
    job = submit_job(platform, user_id, QUICK)
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        stored.native_id, stored.state = None, "SUBMITTING"
    settle(platform, job.id)
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored.native_id == job.native_id and stored.state == "COMPLETED"
        assert "adopted from accounting" in [e.detail for e in session.scalars(
            select(JobEvent).where(JobEvent.job_id == job.id))]
    assert count(platform, Charge) == 1


def test_two_pollers_at_once_charge_once(platform):
    user_id, _ = add_user(platform, "kim", balance="1000")
    jobs = [submit_job(platform, user_id, QUICK).id for _ in range(2)]
    first, second = ClusterPoller(platform, "local"), ClusterPoller(platform, "local")
    errors = []

    def run(poller):
        try:
            for _ in range(40):
                poller.run_once()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job_id in jobs:
        settle(platform, job_id)
    assert not errors
    assert count(platform, Charge) == 2 and count(platform, UsageRecordRow) == 2
    with platform.db.session() as session:
        assert accounts.ledger_problems(session) == []


def test_expected_records_for_arrays():
    job = Job(spec={"options": {"array": "0-9%2"}})
    assert expected_records(job) == 10
    assert expected_records(Job(spec={"options": {"array": "1,3,5-7,10-20:5"}})) == 1 + 1 + 3 + 3
    assert expected_records(Job(spec={"options": {}})) == 1


def test_interim_charges_while_running_then_true_up(make_platform):
    """A running job is charged as it goes; settlement corrects to the accounted cost."""
    from computenet.billing import ledger
    from computenet.store.models import Transfer

    platform = make_platform(interim_charge_seconds=1)
    user_id, _ = add_user(platform, "long", balance="1000")
    job = submit_job(platform, user_id, "#!/bin/bash\n#SBATCH -t 10 -c 4\nsleep 4.5\n")
    poller = ClusterPoller(platform, "local")
    interim_posts = poll_until(lambda: (lambda n: n if n >= 2 else None)(
        count(platform, Transfer, Transfer.job_id == job.id, Transfer.memo.contains("interim"))),
        step=poller.run_once, timeout=20, what="two interim charges while the job runs")
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored.state == "RUNNING" and stored.interim_charged > 0
        f = funds.funds(session, stored.account)
        # charged so far + still held == the original hold, so available never moved
        assert f.balance == Decimal("1000.00") - stored.interim_charged
        assert f.held == stored.max_cost - stored.interim_charged
        assert f.available == Decimal("1000.00") - stored.max_cost
    settle(platform, job.id, poller)
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        (charge,) = session.scalars(select(Charge).where(Charge.job_id == job.id))
        f = funds.funds(session, stored.account)
        assert f.held == 0 and f.balance == Decimal("1000.00") - charge.amount  # exactly the accounted cost
        assert ledger.invariant(session) == []
    assert interim_posts >= 2

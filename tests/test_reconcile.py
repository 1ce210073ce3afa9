"""Issue 13 item 4: no row and no hold left behind by a failed or interrupted submission,
and the operator's way to list and resolve jobs that need a decision (API and CLI)."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from computenet.billing import funds
from computenet.client.sdk import ApiError, ComputeNetClient
from computenet.services.files import paths
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Account, AuditEvent, Job, Notification, User
from computenet.store.types import utcnow

from conftest import add_user, poll_until

QUICK = "#!/bin/bash\n#SBATCH -t 5 -c 2\nsleep 1.1\necho done\n"


def held(platform, user_id) -> Decimal:
    with platform.db.session() as session:
        user = session.get(User, user_id)
        return funds.funds(session, session.get(Account, user.default_account_id)).held


def jobs_of(platform, user_id) -> list[Job]:
    with platform.db.session() as session:
        return list(session.scalars(select(Job).where(Job.owner_id == user_id)))


def test_unexpected_error_after_the_row_leaves_no_job_and_no_hold(platform, server):
    """-D naming an existing file: the executor fails with an OSError after the row and hold exist."""
    user_id, token = add_user(platform, "dora")
    space = paths.user_space(platform.settings.workdir_root(platform.cluster_config("local")), "dora")
    os.makedirs(space, exist_ok=True)
    with open(os.path.join(space, "afile"), "w") as handle:
        handle.write("not a directory\n")
    with ComputeNetClient(server.url, token) as client:
        with pytest.raises(ApiError) as refused:
            client.submit("#!/bin/bash\ntrue\n", ["-D", "afile", "-t", "1"])
    assert 400 <= refused.value.status < 500, refused.value
    assert "afile" in str(refused.value) or "directory" in str(refused.value)
    assert jobs_of(platform, user_id) == []
    assert held(platform, user_id) == 0


class Crash(BaseException):
    """The server process dying between writing the row and hearing sbatch's answer."""


def _crashed_submission(platform, user_id, reach_cluster: bool) -> int:
    adapter = platform.adapters["local"]
    real_submit = adapter.submit

    def crash(request):
        if reach_cluster:
            real_submit(request)
        raise Crash()

    adapter.submit = crash
    try:
        with pytest.raises(Crash):
            submit_job(platform, user_id, QUICK)
    finally:
        adapter.submit = real_submit
    (job,) = jobs_of(platform, user_id)
    assert job.state == "SUBMITTING" and job.native_id is None and held(platform, user_id) > 0
    return job.id


def test_crashed_submission_that_never_reached_the_cluster_is_withdrawn(platform):
    user_id, _ = add_user(platform, "emil")
    job_id = _crashed_submission(platform, user_id, reach_cluster=False)
    poller = ClusterPoller(platform, "local")
    poller.run_once()
    assert jobs_of(platform, user_id)[0].state == "SUBMITTING"  # sbatch's answer may still be on its way
    with platform.db.session() as session:
        session.get(Job, job_id).submitted_at = utcnow() - timedelta(minutes=6)
    poller.run_once()
    (job,) = jobs_of(platform, user_id)
    assert job.state == "CANCELLED" and job.settled_at is not None and not job.needs_reconcile
    assert "withdrawn" in (job.reason or "")
    assert held(platform, user_id) == 0
    with platform.db.session() as session:
        balance = funds.funds(session, session.get(Account, session.get(User, user_id).default_account_id)).balance
    assert balance == Decimal("100.00")  # nothing charged


def test_crashed_submission_that_reached_the_cluster_is_adopted(platform):
    user_id, _ = add_user(platform, "fred")
    job_id = _crashed_submission(platform, user_id, reach_cluster=True)
    with platform.db.session() as session:  # even when the answer is found late
        session.get(Job, job_id).submitted_at = utcnow() - timedelta(seconds=30)
    poller = ClusterPoller(platform, "local")

    def settled():
        with platform.db.session() as session:
            return session.get(Job, job_id).settled_at is not None

    poll_until(settled, step=poller.run_once, what="adopted job to settle")
    (job,) = jobs_of(platform, user_id)
    assert job.state == "COMPLETED" and job.native_id is not None
    assert held(platform, user_id) == 0


def _flagged_job(platform, name: str) -> tuple[int, int]:
    """A finished job whose accounting record never came: flagged for an operator."""
    user_id, _ = add_user(platform, name)
    job = submit_job(platform, user_id, QUICK)
    adapter = platform.adapters["local"]
    adapter.accounting = lambda since, ids=None: []
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: jobs_of(platform, user_id)[0].state == "COMPLETED", step=poller.run_once, what="job to end")
    with platform.db.session() as session:
        session.get(Job, job.id).end_time = utcnow() - timedelta(hours=1)
    poller.run_once()
    assert jobs_of(platform, user_id)[0].needs_reconcile
    return user_id, job.id


def test_operator_lists_and_resolves_over_the_api(platform, server):
    user_id, job_id = _flagged_job(platform, "gus")
    _, member_token = add_user(platform, "hal")
    _, ops_token = add_user(platform, "ops")
    with platform.db.session() as session:
        session.scalar(select(User).where(User.name == "ops")).role = "operator"
    with ComputeNetClient(server.url, member_token) as member:
        with pytest.raises(ApiError) as denied:
            member._call("GET", "/admin/reconcile")
        assert denied.value.status == 403
    with ComputeNetClient(server.url, ops_token) as ops:
        listed = ops._call("GET", "/admin/reconcile")
        assert [j["id"] for j in listed] == [job_id]
        assert listed[0]["why"] and listed[0]["held"] != "0.00"
        with pytest.raises(ApiError) as bad:
            ops._call("POST", f"/admin/reconcile/{job_id}", json={"action": "adopt"})
        assert bad.value.status in (400, 409, 422)
        done = ops._call("POST", f"/admin/reconcile/{job_id}", json={"action": "release", "note": "node died"})
        assert done["settled"] and not done["needs_reconcile"]
        assert ops._call("GET", "/admin/reconcile") == []
        with pytest.raises(ApiError) as again:
            ops._call("POST", f"/admin/reconcile/{job_id}", json={"action": "release"})
        assert again.value.status == 409
    assert held(platform, user_id) == 0
    with platform.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "reconcile", AuditEvent.target == f"job {job_id}")) == 1


def test_operator_lists_and_resolves_from_the_cli(platform, monkeypatch):
    from computenet.cli import reconcile as cli_reconcile
    from computenet.cli.main import app

    user_id, job_id = _flagged_job(platform, "ida")
    monkeypatch.setattr(cli_reconcile, "_platform", lambda: platform)
    runner = CliRunner()
    listed = runner.invoke(app, ["admin", "reconcile", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert f"{job_id}" in listed.output and "ida" in listed.output
    refused = runner.invoke(app, ["admin", "reconcile", "resolve", str(job_id), "--action", "charge",
                                 "--amount", "-1"])
    assert refused.exit_code == 1 and "amount" in refused.output
    done = runner.invoke(app, ["admin", "reconcile", "resolve", str(job_id), "--action", "charge",
                              "--amount", "0.05"])
    assert done.exit_code == 0, done.output
    assert held(platform, user_id) == 0
    with platform.db.session() as session:
        account = session.get(Account, session.get(User, user_id).default_account_id)
        assert funds.funds(session, account).balance == Decimal("99.95")
    empty = runner.invoke(app, ["admin", "reconcile", "list"])
    assert "no job needs" in empty.output


def test_lost_job_tells_its_owner(platform):
    """A job the cluster forgot (here: its spool entry vanished) ends LOST, hold released, owner told."""
    import shutil

    user_id, _ = add_user(platform, "jan")
    job = submit_job(platform, user_id, "#!/bin/bash\n#SBATCH -t 5\nsleep 30\n")
    adapter = platform.adapters["local"]
    poller = ClusterPoller(platform, "local")
    poller.run_once()
    adapter.cancel(job.native_id)
    # the runner writes its ending into the spool entry: remove it only once it has ended, or the
    # removal races those writes ("Directory not empty", seen on a busy machine)
    poll_until(lambda: adapter.status([job.native_id])[job.native_id].state.is_terminal, timeout=30,
               what="the cancelled runner to end")
    shutil.rmtree(adapter.spool / "jobs" / job.native_id)
    poller.run_once()
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored.state != "LOST" and stored.missing_since is not None  # not at once: it may come back
        stored.missing_since = utcnow() - timedelta(minutes=10)
    poller.run_once()
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored.state == "LOST" and stored.settled_at is not None
        notes = list(session.scalars(select(Notification).where(Notification.user_id == user_id)))
        assert any(f"job {job.id}" in n.message and "lost" in n.message for n in notes)
    assert held(platform, user_id) == 0

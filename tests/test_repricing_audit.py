"""Re-pricing with compensating transfers, closed months, and the audit log."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from computenet.billing import funds, ledger, pricebook
from computenet.billing.statements import statement
from computenet.services import audit
from computenet.services.billing import repricing
from computenet.services.errors import InvalidRequest, NotFound
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Account, AuditEvent, Charge, ChargeAdjustment, ClosedPeriod, Job, Partition, Transfer

from conftest import add_user, poll_until

OPERATOR = audit.Who("ops", "test")


def settled_job(platform, user_id, script="#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n"):
    job = submit_job(platform, user_id, script)
    poller = ClusterPoller(platform, "local")

    def done():
        with platform.db.session() as session:
            return session.get(Job, job.id).settled_at is not None

    poll_until(done, step=poller.run_once, what="job to settle")
    return job.id


def test_reprice_after_a_price_correction(platform):
    user_id, _ = add_user(platform, "rita", balance="100.00")
    job_id = settled_job(platform, user_id)
    with platform.db.session() as session:
        charge = session.scalar(select(Charge).where(Charge.job_id == job_id))
        part = session.scalar(select(Partition))
        account = session.get(Account, charge.account_id)
        before = funds.funds(session, account).balance
        # the operator finds the price was wrong: half of it, from before the job ran
        pricebook.set_price(session, part.cluster_id, "local", "core_hour", Decimal("18.00"),
                            effective_from=datetime.now(timezone.utc) - timedelta(days=1), actor="ops")
        (r,) = repricing.reprice(session, [job_id], "core price was entered twice as high", "b1", OPERATOR)
        assert r.old_amount == charge.amount and r.new_amount == (charge.amount / 2).quantize(Decimal("0.01"))
        assert funds.funds(session, account).balance == before - r.difference
        assert repricing.reprice(session, [job_id], "again", "b2", OPERATOR)[0].difference == 0  # nothing new
        kinds = [t.kind for t in session.scalars(select(Transfer).where(Transfer.job_id == job_id))]
        assert kinds.count("adjustment") == 1
        assert session.get(Charge, charge.id).amount == charge.amount  # the charge itself is untouched
        month = datetime.now(timezone.utc).strftime("%Y-%m")
        s = statement(session, account, month)
        assert s.charges == r.new_amount and [l.kind for l in s.lines].count("adjustment") == 1
        assert ledger.invariant(session) == []
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "reprice"))
        assert event.actor == "ops" and event.detail["reason"] == "core price was entered twice as high"


def test_reprice_refusals_write_nothing(platform):
    user_id, _ = add_user(platform, "sol", balance="100.00")
    done = settled_job(platform, user_id)
    running = submit_job(platform, user_id, "#!/bin/bash\nsleep 30\n").id
    for ids, reason, error, fragment in (
        ([done, running], "fix", InvalidRequest, "not settled"),
        ([done, 999999], "fix", NotFound, "no job 999999"),
        ([done], "  ", InvalidRequest, "needs a reason"),
        ([], "fix", InvalidRequest, "name the jobs"),
    ):
        with platform.db.session() as session, pytest.raises(error) as err:
            repricing.reprice(session, ids, reason, "bad", OPERATOR)
        assert fragment in str(err.value)
    with platform.db.session() as session:
        assert session.scalar(select(ChargeAdjustment)) is None
        assert session.scalar(select(Transfer).where(Transfer.kind == "adjustment")) is None


def test_closed_months_are_final(platform):
    user_id, _ = add_user(platform, "tom", balance="100.00")
    job_id = settled_job(platform, user_id)
    this_month = datetime.now(timezone.utc).strftime("%Y-%m")
    with platform.db.session() as session:
        with pytest.raises(InvalidRequest):
            repricing.close_month(session, this_month, OPERATOR)  # not over yet
        with pytest.raises(InvalidRequest):
            repricing.close_month(session, "2026-13", OPERATOR)
        repricing.close_month(session, "2020-01", OPERATOR)
        # pretend this month was closed too: its charges become final
        session.add(ClosedPeriod(month=this_month, actor="ops"))
        session.flush()
        with pytest.raises(InvalidRequest) as err:
            repricing.reprice(session, [job_id], "late fix", "b3", OPERATOR)
        assert "closed" in str(err.value)
        account = session.scalar(select(Account).where(Account.name == "tom-lab"))
        assert statement(session, account, this_month).closed


def test_admin_commands_are_audited(tmp_path, db_url, clean_db):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update(COMPUTENET_DATA_DIR=str(tmp_path), COMPUTENET_DATABASE_URL=db_url, HOME=str(tmp_path))
    cnet = str(Path(sys.executable).with_name("cnet"))
    for args in (["admin", "tenant-add", "uni", "--segment", "university"],
                 ["admin", "user-add", "ann", "--account", "ann-lab", "--balance", "5.00"],
                 ["admin", "topup", "uni", "50", "--key", "pay-7"],
                 ["admin", "credit-limit", "ann-lab", "10"],
                 ["admin", "exhaustion-policy", "ann-lab", "hold", "--grace", "30"],
                 ["admin", "budget", "ann-lab", "40.00", "--period", "total"],
                 ["admin", "webhook", "ann-lab", "https://93.184.215.14/hooks"]):
        result = subprocess.run([cnet, *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    log = subprocess.run([cnet, "admin", "audit"], env=env, capture_output=True, text=True, timeout=60).stdout
    refused = subprocess.run([cnet, "admin", "exhaustion-policy", "ann-lab", "panic"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and "unknown exhaustion policy 'panic'" in refused.stderr
    for action in ("tenant.add", "user.add", "account.add", "topup", "credit_limit.set", "exhaustion_policy.set",
                   "budget.set", "webhook.set"):
        assert action in log
    assert "cli " in log and "@cli" in log  # who and from where
    with clean_db.session() as session:
        topups = session.scalars(select(AuditEvent).where(AuditEvent.action == "topup")).all()
        assert {e.target for e in topups} == {"account:uni", "account:ann-lab"}
        ann_lab = session.scalar(select(Account).where(Account.name == "ann-lab"))
        assert (ann_lab.exhaustion_policy, ann_lab.exhaustion_grace_minutes) == ("hold", 30)
        assert (ann_lab.budget, ann_lab.budget_period) == (Decimal("40.00"), "total")
        assert ann_lab.webhook_url == "https://93.184.215.14/hooks"

"""The event types added with the webhooks: statement.issued when a month is closed, efficiency.finding
when an ended job's samples are read for the last time, account.notice for every other notice;
each once, on the account's tenant."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from computenet.config import MonitoringConfig
from computenet.services.tenancy import accounts, tenants
from computenet.services import audit
from computenet.services.integration import notifications
from computenet.services.billing import repricing
from computenet.services.jobs.jobs import submit_job
from computenet.services.monitoring.monitoring import SampleCollector
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.event_models import OutboxEvent
from computenet.store.models import Job
from computenet.store.types import utcnow

from conftest import local_cluster, poll_until


def _events(platform, type_: str) -> list[OutboxEvent]:
    with platform.db.session() as session:
        rows = list(session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq)))
        session.expunge_all()
        return rows


def _tenant_project(platform, tenant: str, user: str) -> int:
    with platform.db.session() as session:
        t = tenants.create_tenant(session, tenant, "enterprise")
        u = accounts.create_user(session, user)
        u.tenant_id = t.id
        project = tenants.create_project(session, t, f"{user}-lab", pi=u)
        accounts.top_up(session, project, "100.00", key=f"test:{uuid.uuid4()}")
        return u.id


def test_closing_a_month_issues_a_statement_event_per_account(platform):
    _tenant_project(platform, "acme", "ann")
    last_month = (utcnow().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    with platform.db.session() as session:
        repricing.close_month(session, last_month, audit.Who.cli())
    issued = {e.data["account"]: e for e in _events(platform, "statement.issued")}
    assert "ann-lab" in issued
    ann = issued["ann-lab"]
    assert (ann.tenant, ann.subject) == ("acme", f"statement/ann-lab/{last_month}")
    assert ann.data["month"] == last_month and ann.data["currency"] == "CNY"
    assert ann.data["opening_balance"] == ann.data["closing_balance"] == "0.00"  # the top-up is this month's


def test_other_notices_are_account_notice_events_once_each(platform):
    _tenant_project(platform, "acme", "ann")
    with platform.db.session() as session:
        lab, ann = accounts.get_account(session, "ann-lab"), accounts.get_user(session, "ann")
        assert notifications.notify_user(session, ann, lab, "session_ended", "session 1 ended", "session_ended:1")
        assert notifications.notify_user(session, ann, lab, "session_ended", "session 2 ended", "session_ended:2")
        assert not notifications.notify_user(session, ann, lab, "session_ended", "again", "session_ended:1")
    told = _events(platform, "account.notice")
    assert [(e.tenant, e.data["kind"], e.data["message"]) for e in told] == [
        ("acme", "session_ended", "session 1 ended"), ("acme", "session_ended", "session 2 ended")]


def test_an_idle_job_has_an_efficiency_finding_event(make_platform):
    platform = make_platform([local_cluster(slots=8)], monitoring=MonitoringConfig(interval_s=0.5,
                                                                                   collect_every_s=0.5))
    user_id = _tenant_project(platform, "acme", "ida")
    job = submit_job(platform, user_id, "#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 3\n")
    poller, collector = ClusterPoller(platform, "local"), SampleCollector(platform)

    def done():
        poller.run_once()
        collector.run_once()
        with platform.db.session() as session:
            row = session.get(Job, job.id)
            return row.monitor_state == "done" and row.settled_at

    poll_until(done, timeout=90, what=f"job {job.id} ended, charged and its samples read")
    findings = [e for e in _events(platform, "efficiency.finding") if e.data["job"] == job.id]
    idle = [e for e in findings if e.data["code"] == "idle_job"]
    assert len(idle) == 1 and idle[0].tenant == "acme" and idle[0].subject == f"job/{job.id}"
    assert idle[0].data["account"] == "ida-lab" and idle[0].data["severity"] in ("warning", "critical")
    assert float(idle[0].data["wasted"]) >= 0 and idle[0].data["title"]
    collector._done(job.id)  # read once more: the same findings, no second event
    assert len([e for e in _events(platform, "efficiency.finding") if e.data["job"] == job.id]) == len(findings)

"""Domain events: written to the outbox in the change's own transaction, published to NATS
JetStream on per-tenant subjects, once per change, also across a publisher killed between
publishing and marking, and across a broker restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from computenet.config import EventsConfig
from computenet.services.tenancy import accounts, tenants
from computenet.services.integration import notifications
from computenet.services.integration.event_publisher import EventPublisher
from computenet.services.jobs.jobs import submit_job
from computenet.services.integration.notifications import BalanceWatch
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.event_models import OutboxEvent
from computenet.store.models import Charge, Cluster, JobEvent

from conftest import FIXTURES, poll_until
from events_nats import PrivateNats, consume, delete_stream, nats_url_or_skip

SCRIPT = "#!/bin/bash\n#SBATCH -c 1 -t 10\necho hi\n"


@pytest.fixture
def events(request):
    """Where this test's events go: a stream and subject prefix of its own (streams may not overlap)."""
    url = nats_url_or_skip()
    tag = uuid.uuid4().hex[:10]
    cfg = EventsConfig(nats_url=url, stream=f"T{tag}", subject_prefix=f"t{tag}")
    yield cfg
    delete_stream(url, cfg.stream)


def _tenant_user(platform, tenant: str, user: str, balance: str = "100.00") -> int:
    with platform.db.session() as session:
        t = tenants.create_tenant(session, tenant, "enterprise")
        u = accounts.create_user(session, user)
        u.tenant_id = t.id
        project = tenants.create_project(session, t, f"{user}-lab", pi=u)
        accounts.top_up(session, project, balance, key=f"test:{uuid.uuid4()}")
        return u.id


def _run_job(platform, user_id: int) -> int:
    job = submit_job(platform, user_id, SCRIPT)
    poller = ClusterPoller(platform, "local")

    def charged() -> bool:
        with platform.db.session() as session:
            return bool(session.scalar(select(OutboxEvent.seq).where(OutboxEvent.type == "job.charged",
                                                                   OutboxEvent.subject == f"job/{job.id}")))

    poll_until(charged, step=poller.run_once, what="the job to end and be charged")
    return job.id


def test_one_event_per_change_on_the_tenants_subject_only(make_platform, events):
    platform = make_platform(events=events)
    ann = _tenant_user(platform, "acme", "ann")
    _tenant_user(platform, "beta.corp", "bob")  # a dot in the name: a token of its own ("beta~corp")
    job_id = _run_job(platform, ann)
    with platform.db.session() as session:
        changes = [(e.from_state, e.to_state) for e in session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)) if e.from_state != e.to_state]
        lab = accounts.get_account(session, "ann-lab")
        accounts.add_member(session, lab, accounts.get_user(session, "bob"))  # two members told, one event
        notifications.set_threshold(session, lab, "150.00")
        session.scalar(select(Cluster).where(Cluster.name == "local")).health = "offline"
    assert BalanceWatch(platform).run_once().notices == 2
    assert changes and changes[-1][1] == "COMPLETED"

    with platform.db.session() as session:  # written with the change; not yet sent
        assert session.scalars(select(OutboxEvent).where(OutboxEvent.published_at.isnot(None))).all() == []
    report = EventPublisher(platform).run_once()
    assert report.error == "" and report.duplicates == 0 and report.published
    assert EventPublisher(platform).run_once().published == []  # marked: nothing twice

    acme = consume(events.nats_url, events.stream, f"{events.subject_prefix}.acme.events.>")
    jobs = [e for e in acme if e["type"] == "job.state_changed"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in jobs] == changes  # one per change, in order
    assert all(e["subject"] == f"job/{job_id}" and e["tenant"] == "acme" and e["schema"] == "computenet.event/1"
               for e in jobs)
    (charged,) = [e for e in acme if e["type"] == "job.charged"]
    with platform.db.session() as session:
        charge = session.scalar(select(Charge).where(Charge.job_id == job_id))
    assert Decimal(charged["data"]["amount"]) == charge.amount and charged["data"]["account"] == "ann-lab"
    assert charged["data"]["charge"] == charge.id and charged["data"]["currency"] == "CNY"
    (low,) = [e for e in acme if e["type"] == "balance.low"]
    assert low["data"]["account"] == "ann-lab"
    assert len({e["id"] for e in acme}) == len(acme) and all(e["msg_id"] == e["id"] for e in acme)
    # the other tenant's consumer sees none of it; a cluster's health is the platform's
    assert consume(events.nats_url, events.stream, f"{events.subject_prefix}.beta~corp.events.>") == []
    platform_events = consume(events.nats_url, events.stream, f"{events.subject_prefix}._platform.events.>")
    assert [(e["type"], e["data"]["from"], e["data"]["to"]) for e in platform_events] == [
        ("cluster.health_changed", "unknown", "online"), ("cluster.health_changed", "online", "offline")]


KILLED_PUBLISHER = textwrap.dedent("""
    import os, signal, sys
    from types import SimpleNamespace
    from computenet.config import EventsConfig
    from computenet.services.integration.event_publisher import EventPublisher
    from computenet.store.db import Database

    url, nats_url, stream, prefix = sys.argv[1:5]
    platform = SimpleNamespace(db=Database(url), settings=SimpleNamespace(
        events=EventsConfig(nats_url=nats_url, stream=stream, subject_prefix=prefix)))
    # kill -9 after JetStream acknowledged every event and before the rows are marked published
    EventPublisher.mark = lambda self, *a: os.kill(os.getpid(), signal.SIGKILL)
    EventPublisher(platform).run_once()
""")


def test_publisher_killed_between_publish_and_mark_republishes_once(make_platform, events, db_url):
    platform = make_platform(events=events)
    ann = _tenant_user(platform, "acme", "ann")
    _run_job(platform, ann)
    with platform.db.session() as session:
        ids = set(session.scalars(select(OutboxEvent.id)))
    killed = subprocess.run([sys.executable, "-c", KILLED_PUBLISHER, db_url, events.nats_url, events.stream,
                             events.subject_prefix], env=os.environ | {"PYTHONPATH": "src"}, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with platform.db.session() as session:  # it died before marking: every row still unpublished
        assert set(session.scalars(select(OutboxEvent.id).where(OutboxEvent.published_at.is_(None)))) == ids
    report = EventPublisher(platform).run_once()  # the next publisher sends them again ...
    assert set(report.published) == ids and report.duplicates == len(ids)  # ... and JetStream drops them
    seen = consume(events.nats_url, events.stream, f"{events.subject_prefix}.>")
    assert sorted(e["id"] for e in seen) == sorted(ids)  # each once


def test_broker_restart(make_platform, tmp_path):
    broker = PrivateNats(tmp_path / "jetstream")
    broker.start()
    try:
        cfg = EventsConfig(nats_url=broker.url, timeout_s=2.0)
        platform = make_platform(events=cfg)
        ann = _tenant_user(platform, "acme", "ann")
        first = _run_job(platform, ann)
        assert EventPublisher(platform).run_once().error == ""
        broker.stop()
        second = _run_job(platform, ann)  # the platform goes on with the broker down
        down = EventPublisher(platform).run_once()
        assert down.error and down.published == []
        with platform.db.session() as session:
            waiting = set(session.scalars(select(OutboxEvent.id).where(OutboxEvent.published_at.is_(None))))
            assert waiting
            everything = set(session.scalars(select(OutboxEvent.id).where(OutboxEvent.tenant == "acme")))
        broker.start()  # same store: what it had before is still there
        up = EventPublisher(platform).run_once()
        assert up.error == "" and set(up.published) == waiting
        seen = consume(broker.url, cfg.stream, "computenet.acme.events.>")
        assert sorted(e["id"] for e in seen) == sorted(everything)
        # the jobs' own events (their owner's job-ended notice is an account.notice event too)
        assert {e["data"]["job"] for e in seen if e["type"].startswith("job.")} == {first, second}
    finally:
        broker.stop()


def test_app_approval_is_an_event_and_a_rolled_back_change_is_none(platform):
    from computenet.services.apps import apps

    source = (FIXTURES / "apps" / "only-plain.yaml").read_text().replace("name: only-plain", "name: vendor-tool")
    with platform.db.session() as session:
        isv, boss = accounts.create_user(session, "isv"), accounts.create_user(session, "boss")
        isv.role, boss.role = "vendor", "operator"
        version = apps.publish(session, isv, source, "vendor").spec.version
    with platform.db.session() as session:
        assert not session.scalars(select(OutboxEvent).where(OutboxEvent.type == "app.approved")).all()
        apps.review(session, accounts.get_user(session, "boss"), "vendor-tool", version, True, "checked")
    with platform.db.session() as session:
        (approved,) = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "app.approved"))
        assert (approved.tenant, approved.subject) == ("_platform", f"app/vendor-tool/{version}")
        before = session.scalar(select(func.count()).select_from(OutboxEvent))
    with pytest.raises(RuntimeError), platform.db.session() as session:  # the change fails after its flush
        session.scalar(select(Cluster).where(Cluster.name == "local")).health = "offline"
        session.flush()
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == before + 1
        raise RuntimeError("rolled back")
    with platform.db.session() as session:  # ... and its event went with it
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == before


def test_the_publisher_is_a_worker_task_when_a_broker_is_set(make_platform):
    from computenet.workers.tasks import platform_tasks

    assert "events" not in {t.name for t in platform_tasks(make_platform())}  # the outbox waits
    configured = make_platform(events=EventsConfig(nats_url="nats://127.0.0.1:4222", publish_every_s=3))
    (task,) = [t for t in platform_tasks(configured) if t.name == "events"]
    assert task.interval_s == 3 and task.run.__self__.__class__ is EventPublisher


def test_a_slurm_job_is_followed_through_the_stream(testbed, make_platform, events):
    """On the real Slurm test bed: the job's states as the poller saw them, then its charge."""
    from conftest import slurm_clusters

    platform = make_platform(slurm_clusters(testbed), events=events)
    # a name of its own: job directories on the test bed's shared storage outlive the test, and an "ann"
    # here left work/ann/jobs/1 to root, where test_identity_testbed's ann (run as cnet-ann) then failed
    ann = _tenant_user(platform, "acme", "eva-events")
    job = submit_job(platform, ann, "#!/bin/bash\nsleep 2\n", ["-M", "alpha", "-c", "1", "-t", "2"])
    poller = ClusterPoller(platform, "alpha")

    def ended_and_charged() -> bool:  # the charge (sacct) may be written before the end (squeue), or after
        with platform.db.session() as session:
            told = {(e.type, e.data.get("to")) for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.subject == f"job/{job.id}"))}
            return {("job.charged", None), ("job.state_changed", "COMPLETED")} <= told

    poll_until(ended_and_charged, step=poller.run_once, interval=1.0, timeout=180,
               what="the Slurm job to end and be charged")
    assert EventPublisher(platform).run_once().error == ""
    seen = [e for e in consume(events.nats_url, events.stream, f"{events.subject_prefix}.acme.events.job.>")
            if e["data"]["job"] == job.id]
    states = [e["data"]["to"] for e in seen if e["type"] == "job.state_changed"]
    assert states[-1] == "COMPLETED" and len(states) == len(set(states))  # each change once
    assert states[0] == "SUBMITTING" and {"PENDING", "RUNNING"} <= set(states)
    assert all(e["data"]["cluster"] == "alpha" for e in seen if e["type"] == "job.state_changed")
    (charged,) = [e for e in seen if e["type"] == "job.charged"]
    assert charged["data"]["account"] == "eva-events-lab" and Decimal(charged["data"]["amount"]) >= 0

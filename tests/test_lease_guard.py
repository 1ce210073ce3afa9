"""A task that lost its lease does not act outside the process (services/lease_guard.py).

A worker stalled past its lease (SIGSTOP, a long GC pause) may still be inside run_once() when
another worker takes the task over. Here the takeover is made in-process at the worst moment
(while the stale run is sending its first webhook, or deciding a move), on the test database:
SQLite, or PostgreSQL with COMPUTENET_TEST_DATABASE_URL. No sleeps stand in for the stall.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from computenet.cli.embedded import free_port
from computenet.billing import ledger
from computenet.config import NotificationsConfig, WebhooksConfig
from computenet.services.integration import notifications, webhooks
from computenet.services.integration.webhook_sender import WebhookDispatcher
from computenet.services.lease_guard import LeaseLost
from computenet.store.event_models import OutboxEvent
from computenet.store.models import Account, Job, Transfer, User, WorkerLease
from computenet.store.webhook_models import WebhookDelivery
from computenet.workers.leases import Leases, db_now

from conftest import add_user


class Receiver:
    """A webhook endpoint on loopback that records each delivery id it is sent, in order."""

    def __init__(self, on_request=None) -> None:
        self.got: list[int] = []
        self.on_request = on_request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.got.append(self.headers["webhook-id"])  # the event's id (Standard Webhooks)
                assert body["id"] == receiver.got[-1]
                if receiver.on_request:
                    receiver.on_request(len(receiver.got))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def lapse(db, task: str) -> None:
    with db.session() as session:
        now = db_now(session)
        session.execute(update(WorkerLease).where(WorkerLease.task == task).values(expires_at=now - timedelta(seconds=1)))


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def webhook_notices(platform, url: str, how_many: int) -> list[str]:
    """One low-balance notice for each of ``how_many`` accounts, each account with a webhook endpoint at
    ``url`` for balance events: the ids of the events its webhooks carry, in order."""
    for i in range(how_many):
        add_user(platform, f"hook{i}")
    with platform.db.session() as session:
        for account in session.scalars(select(Account).order_by(Account.id)):
            webhooks.add_endpoint(session, account, url, ["balance.*"], platform.settings.notifications, "test")
            notifications.notify_members(session, account, "low_balance", f"{account.name}: low", f"t:{account.id}")
        ids = list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "balance.low")
                                   .order_by(OutboxEvent.seq)))
    assert len(ids) == how_many
    return ids


def test_the_fenced_guard_renews_while_held_and_refuses_after_a_takeover(clean_db):
    a, b = Leases(clean_db, "host:1:a", lease_seconds=15), Leases(clean_db, "host:2:b", lease_seconds=15)
    a.ensure("delivery", 10)
    lease = a.claim("delivery")
    guard = a.guard(lease)
    with clean_db.session() as session:
        before = session.get(WorkerLease, "delivery").expires_at
    guard.check()  # held: passes, and extends the lease
    with clean_db.session() as session:
        assert session.get(WorkerLease, "delivery").expires_at >= before
    lapse(clean_db, "delivery")
    with pytest.raises(LeaseLost):  # lapsed, even before anyone took it
        guard.check()
    assert b.claim("delivery") is not None
    with pytest.raises(LeaseLost):
        guard.check()
    assert a.claim("delivery") is None  # and the check did not revive it


def test_a_webhook_run_that_lost_its_lease_mid_pass_sends_nothing_more(make_platform, receiver):
    platform = make_platform(notifications=NotificationsConfig(webhook_allow_private=True),
                             webhooks=WebhooksConfig(parallel=1))
    ids = webhook_notices(platform, receiver.url, 3)
    stale, fresh = Leases(platform.db, "host:1:stale"), Leases(platform.db, "host:2:fresh")
    stale.ensure("webhooks", 10)
    stale_lease = stale.claim("webhooks")
    taken = []

    def takeover(count: int) -> None:  # the stale worker stalls in its first send; the other takes over
        if count == 1:
            lapse(platform.db, "webhooks")
            taken.append(fresh.claim("webhooks"))

    receiver.on_request = takeover
    with pytest.raises(LeaseLost):
        WebhookDispatcher(platform).run_once(guard=stale.guard(stale_lease))
    assert len(receiver.got) == 1 and receiver.got[0] in ids  # the send under way finished; nothing after
    receiver.on_request = None
    WebhookDispatcher(platform).run_once(guard=fresh.guard(taken[0]))
    assert sorted(receiver.got) == sorted(ids) and len(set(receiver.got)) == len(receiver.got)  # each once
    with platform.db.session() as session:
        assert all(d.status == "delivered" and d.attempts == 1 for d in session.scalars(select(WebhookDelivery)))


def test_a_balance_watch_pass_that_overlaps_another_says_the_low_balance_once(make_platform):
    platform = make_platform()
    add_user(platform, "lowie", balance="5.00")
    with platform.db.session() as session:
        account = session.scalar(select(Account))
        account.low_balance_threshold = 10
    watch = notifications.BalanceWatch(platform)
    # the stale pass read the account (not yet told) before the other pass told it
    with platform.db.session() as session:
        stale_account = session.scalar(select(Account))
        assert stale_account.low_balance_notified is False
        session.expunge(stale_account)
    assert watch.run_once().notices == 1  # the new holder's pass, committed meanwhile
    with platform.db.session() as session:  # the stale pass goes on from what it read
        assert not notifications._claim_low_notice(session, stale_account)
    assert watch.run_once().notices == 0
    with platform.db.session() as session:
        user = session.scalar(select(User).where(User.name == "lowie"))
        assert len(notifications.for_user(session, user)) == 1


# -- re-routing: two local clusters of one slot each; the job waits on one while the other frees

def _stuck_job(make_platform):
    """A platform with a job pending on one cluster past its prediction while the other is idle."""
    from computenet.services.jobs.job_actions import cancel_job
    from computenet.services.jobs.jobs import submit_job
    from computenet.services.jobs.poller import ClusterPoller
    from conftest import local_cluster, poll_until
    from computenet.store.types import utcnow

    platform = make_platform([local_cluster("a", slots=1), local_cluster("b", slots=1)])
    user_id, _ = add_user(platform, "mover", balance="500.00")
    fillers = [submit_job(platform, user_id, f"#!/bin/bash\n#SBATCH -M {c} -c 1 -t 20\nsleep 300\n").id
               for c in ("a", "b")]  # pinned: they stay where they are
    job = submit_job(platform, user_id, "#!/bin/bash\n#SBATCH -c 1 -t 5\nsleep 1\n")

    def where(job_id: int) -> str:
        with platform.db.session() as session:
            return session.get(Job, job_id).cluster.name

    assert {where(f) for f in fillers} == {"a", "b"}
    here = where(job.id)
    step = lambda: [ClusterPoller(platform, c).run_once() for c in ("a", "b")]  # noqa: E731
    cancel_job(platform, user_id, next(f for f in fillers if where(f) != here))
    with platform.db.session() as session:
        poll_until(lambda: session.get(Job, job.id).state == "PENDING", step=step, what="the job pending")
    poll_until(lambda: not platform.adapter("b" if here == "a" else "a").queue(), what="the other cluster free")
    with platform.db.session() as session:
        row = session.get(Job, job.id)
        row.predicted_start = utcnow() - timedelta(hours=1)
        native = row.native_id
    return platform, job.id, here, native


def test_a_re_routing_pass_that_lost_its_lease_moves_nothing(make_platform):
    from computenet.services.jobs.reroute import Rerouter

    platform, job_id, here, native = _stuck_job(make_platform)
    stale, fresh = Leases(platform.db, "host:1:stale"), Leases(platform.db, "host:2:fresh")
    stale.ensure("re-routing", 60)
    lease = stale.claim("re-routing")
    lapse(platform.db, "re-routing")
    fresh.claim("re-routing")
    with pytest.raises(LeaseLost):
        Rerouter(platform).run_once(guard=stale.guard(lease))
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        assert (job.cluster.name, job.native_id, job.reroutes) == (here, native, 0)
    assert platform.adapter(here).status([native])[native].state.value == "PENDING"  # not cancelled there
    assert Rerouter(platform).run_once(guard=fresh.guard(fresh.claim("re-routing"))).moved == [
        (job_id, here, "b" if here == "a" else "a")]


@pytest.mark.skipif(not os.environ.get("COMPUTENET_TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="two overlapping passes need two writers at once (PostgreSQL)")
def test_two_overlapping_re_routing_passes_move_a_job_once(make_platform, monkeypatch):
    """The stale pass decided before the other's whole move committed; its claim in the row fails."""
    from computenet.services.jobs import reroute

    platform, job_id, here, native = _stuck_job(make_platform)
    there = "b" if here == "a" else "a"
    decide = reroute.routing.decide
    inner: list = []

    def decide_then_overlap(*args, **kwargs):
        decision = decide(*args, **kwargs)
        if not inner:  # the first (stale) pass has read the job; the other pass runs start to end now
            inner.append(None)
            inner[0] = reroute.Rerouter(platform).run_once()
        return decision

    monkeypatch.setattr(reroute.routing, "decide", decide_then_overlap)
    outer = reroute.Rerouter(platform).run_once()
    assert inner[0].moved == [(job_id, here, there)] and outer.moved == []
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        assert job.cluster.name == there and job.reroutes == 1 and job.native_id
        hold = session.get(Transfer, job.hold_id)
        assert ledger.open_hold(session, hold)  # the new copy's hold, not voided by the stale pass
        new_native = job.native_id
    assert platform.adapter(there).status([new_native])[new_native].state.value in ("PENDING", "RUNNING",
                                                                                     "COMPLETED")


def test_the_runner_hands_a_guarded_task_its_fenced_guard_and_a_lost_lease_ends_the_run(platform):
    from computenet.workers import Runner
    from computenet.workers.tasks import TaskSpec
    from conftest import poll_until

    after_loss: list[str] = []
    done = threading.Event()

    def run(guard) -> None:
        if done.is_set():
            return
        guard.check()  # held: passes
        lapse(platform.db, "guarded")
        Leases(platform.db, "host:9:other").claim("guarded")  # taken over while this run is under way
        try:
            guard.check()
            after_loss.append("acted after losing the lease")
        finally:
            done.set()

    runner = Runner(platform, tasks=[TaskSpec("guarded", 0.05, run, guarded=True)], holder="host:1:me",
                    lease_seconds=15, claim_every_s=0.05, record_runs=True).start()
    try:
        poll_until(lambda: done.is_set(), timeout=30, what="the guarded run")
        poll_until(lambda: "LeaseLost" in (row_of(platform.db, "guarded").last_error or ""), timeout=30,
                   what="the run recorded as stopped by the lost lease")
    finally:
        runner.stop()
    assert after_loss == [] and row_of(platform.db, "guarded").holder == "host:9:other"


def row_of(db, task: str) -> WorkerLease:
    with db.session() as session:
        return session.get(WorkerLease, task)

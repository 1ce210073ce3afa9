"""Leases on background tasks (workers/leases.py) and the runner that honours them, on the test
database (SQLite, or PostgreSQL with COMPUTENET_TEST_DATABASE_URL). A lease's lapse is made by
moving its expiry into the past, not by sleeping: the tests do not depend on the machine's speed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from computenet.store.models import WorkerLease, WorkerRun
from computenet.workers import Runner
from computenet.workers.leases import Leases, db_now
from computenet.workers.tasks import TaskSpec


def lapse(db, task: str) -> None:
    """The holder went quiet for longer than its lease."""
    with db.session() as session:
        now = db_now(session)
        session.execute(update(WorkerLease).where(WorkerLease.task == task).values(expires_at=now - timedelta(seconds=1)))


def row(db, task: str) -> WorkerLease:
    with db.session() as session:
        return session.get(WorkerLease, task)


def test_one_holder_renews_and_the_other_is_refused(clean_db):
    a, b = Leases(clean_db, "host:1:a"), Leases(clean_db, "host:2:b")
    a.ensure("delivery", 10)
    b.ensure("delivery", 10)  # the second process finds the row there
    first = a.claim("delivery")
    assert first is not None and first.fence == 1
    assert b.claim("delivery") is None
    again = a.claim("delivery")
    assert again.fence == first.fence and again.expires_at >= first.expires_at
    assert row(clean_db, "delivery").holder == "host:1:a"
    assert a.held() == {"delivery"} and b.held() == set()


def test_a_lapsed_lease_is_taken_over_and_the_old_holder_is_fenced_off(clean_db):
    a, b = Leases(clean_db, "host:1:a"), Leases(clean_db, "host:2:b")
    a.ensure("poller:c1", 2)
    old = a.claim("poller:c1")
    lapse(clean_db, "poller:c1")
    new = b.claim("poller:c1")
    assert new is not None and new.fence == old.fence + 1 and row(clean_db, "poller:c1").holder == "host:2:b"
    assert a.claim("poller:c1") is None  # b's lease is live
    assert a.start_run(old, record=True) is None  # a stale tenure does not start a run
    assert a.heartbeat() == 0  # nor does a's heartbeat revive it
    assert b.start_run(new, record=True)
    with clean_db.session() as session:
        assert [(r.holder, r.fence) for r in session.scalars(select(WorkerRun))] == [("host:2:b", new.fence)]


def test_heartbeat_extends_every_lease_of_the_holder_and_release_frees_them(clean_db):
    a, b = Leases(clean_db, "host:1:a"), Leases(clean_db, "host:2:b")
    for task in ("enforcement", "outputs"):
        a.ensure(task, 30)
        a.claim(task)
    before = row(clean_db, "outputs").expires_at
    assert a.heartbeat() == 2
    assert row(clean_db, "outputs").expires_at >= before
    a.release_all()
    assert a.held() == set()
    assert b.claim("enforcement") is not None and b.claim("outputs") is not None


def test_the_outcome_of_a_run_is_kept_and_a_run_past_its_lease_is_told(clean_db):
    a, b = Leases(clean_db, "host:1:a"), Leases(clean_db, "host:2:b")
    a.ensure("exhaustion", 30)
    lease = a.claim("exhaustion")
    run = a.start_run(lease, record=True)
    assert a.finish_run(lease, run, 0.25, None) is True
    r = row(clean_db, "exhaustion")
    assert r.last_success_at is not None and r.last_duration_s == 0.25 and r.last_error == ""
    run = a.start_run(lease, record=False)
    lapse(clean_db, "exhaustion")
    b.claim("exhaustion")  # taken over while a's run went on
    assert a.finish_run(lease, run, 1.5, "ClusterError: sacct timed out") is False
    r = row(clean_db, "exhaustion")
    assert r.last_error == "ClusterError: sacct timed out" and r.holder == "host:2:b"


def test_of_many_simultaneous_claimants_exactly_one_wins(clean_db):
    Leases(clean_db, "seed").ensure("re-routing", 60)
    claimants = [Leases(clean_db, f"host:{i}:x") for i in range(8)]
    results: list = [None] * len(claimants)
    gate = threading.Barrier(len(claimants))

    def go(i):
        gate.wait()
        results[i] = claimants[i].claim("re-routing")

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(claimants))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and row(clean_db, "re-routing").holder == winners[0].holder


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_runners_run_a_task_in_one_place_and_hand_it_over(platform):
    """One runner holds the task; stopped, it hands over at once; a runner whose lease is taken
    stops running the task. Runs never overlap (the task itself checks)."""
    inside, runs, overlaps = set(), [], []
    lock = threading.Lock()

    def task(who):
        def run():
            with lock:
                if inside:
                    overlaps.append((who, set(inside)))
                inside.add(who)
                runs.append(who)
            time.sleep(0.02)
            with lock:
                inside.discard(who)
        return run

    def runner(who):
        return Runner(platform, tasks=[TaskSpec("probe", 0.05, task(who))], holder=who, lease_seconds=15,
                      claim_every_s=0.05, record_runs=True)

    a, b = runner("A").start(), runner("B").start()
    try:
        wait_for(lambda: len(runs) >= 5, what="runs of the task")
        holder = row(platform.db, "probe").holder
        first, second = (a, b) if holder == "A" else (b, a)
        assert set(runs) == {holder}
        first.stop()
        wait_for(lambda: second.holder in runs, what="the other runner taking over")
        # the lease taken from under the current holder (as if it had stalled): it stops running
        with platform.db.session() as session:
            session.execute(update(WorkerLease).where(WorkerLease.task == "probe")
                            .values(holder="elsewhere", expires_at=db_now(session) + timedelta(seconds=60)))
        time.sleep(0.2)  # a run already started may finish
        count = len(runs)
        time.sleep(0.5)
        assert len(runs) == count, "a runner without the lease went on running the task"
    finally:
        a.stop()
        b.stop()
    assert overlaps == []
    with platform.db.session() as session:
        recorded = list(session.scalars(select(WorkerRun).order_by(WorkerRun.started_at, WorkerRun.id)))
    assert len(recorded) == len(runs) and all(r.ended_at is not None for r in recorded)

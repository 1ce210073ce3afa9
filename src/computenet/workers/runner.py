"""Runs each background task that is due, in the one process that holds its lease.

Every process with the worker role runs a thread per task. The thread claims the task's lease (or
renews it), waits until the task is due (interval after its last run ended, whoever ran it), checks
the lease once more as it records the start (the fence: a process that lost its lease since the
claim does not start), then calls run_once(). A control thread renews this process's leases (so a
long run keeps its lease) and adds the clusters other replicas registered.

A run that outlives its lease (the process stalled longer than lease_seconds) may overlap the new
holder's first run; every run_once() is idempotent for that reason (see docs in README: "Running
several API replicas and workers"), and finish_run() logs it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from ..services.lease_guard import LeaseLost
from ..services.platform import Platform
from .leases import Leases, holder_name
from .tasks import TaskSpec, attach_registered, cluster_tasks, platform_tasks

log = logging.getLogger(__name__)
DISCOVER_EVERY_S = 30.0


class Runner:
    def __init__(self, platform: Platform, tasks: list[TaskSpec] | None = None, holder: str | None = None,
                 lease_seconds: float | None = None, claim_every_s: float | None = None,
                 record_runs: bool | None = None, discover: bool | None = None) -> None:
        cfg = platform.settings.workers
        self.platform = platform
        self.holder = holder or holder_name()
        self.lease_seconds = lease_seconds if lease_seconds is not None else cfg.lease_seconds
        self.claim_every = claim_every_s if claim_every_s is not None else cfg.claim_every_s
        self.record = cfg.record_runs if record_runs is None else record_runs
        self.leases = Leases(platform.db, self.holder, self.lease_seconds)
        self.discover = tasks is None if discover is None else discover
        if tasks is None:
            tasks = platform_tasks(platform) + [t for c in platform.settings.clusters if c.name in platform.adapters
                                                for t in cluster_tasks(platform, c.name)]
        self.tasks: dict[str, TaskSpec] = {}
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.running: set[str] = set()  # tasks in run_once() now (the health listener shows them)
        self._lock = threading.Lock()
        self._pending = list(tasks)

    # -- life cycle

    def start(self) -> "Runner":
        for spec in self._pending:
            self._add(spec)
        self._pending = []
        control = threading.Thread(target=self._control, name="workers-control", daemon=True)
        self.threads.append(control)
        control.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.leases.release_all()  # the others need not wait for the leases to lapse
        except Exception:
            log.exception("releasing the leases of %s failed (they lapse by themselves)", self.holder)

    def _add(self, spec: TaskSpec) -> None:
        with self._lock:
            if spec.name in self.tasks:
                return
            self.tasks[spec.name] = spec
        self.leases.ensure(spec.name, spec.interval_s)
        thread = threading.Thread(target=self._task_loop, args=(spec,), name=f"task-{spec.name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    # -- threads

    def _control(self) -> None:
        renew_every = self.lease_seconds / 3
        next_discover = time.monotonic() + DISCOVER_EVERY_S
        while not self.stop_event.wait(renew_every):
            try:
                self.leases.heartbeat()
                if self.discover and time.monotonic() >= next_discover:
                    next_discover = time.monotonic() + DISCOVER_EVERY_S
                    for name in attach_registered(self.platform):
                        for task in cluster_tasks(self.platform, name):
                            self._add(task)
                    for cfg in list(self.platform.settings.clusters):  # registered in this process
                        if cfg.name in self.platform.adapters:
                            for task in cluster_tasks(self.platform, cfg.name):
                                self._add(task)
            except Exception:  # the database away for a moment: the leases may lapse, the threads re-claim
                log.exception("worker heartbeat failed")

    def _task_loop(self, spec: TaskSpec) -> None:
        while not self.stop_event.is_set():
            try:
                wait = self._step(spec)
            except Exception:  # a database error around the run: try again shortly
                log.exception("task %s: lease bookkeeping failed", spec.name)
                wait = self.claim_every
            self.stop_event.wait(wait)

    def _step(self, spec: TaskSpec) -> float:
        """Claim, and run when due. How long to wait before the next step."""
        lease = self.leases.claim(spec.name)
        if lease is None:
            return self.claim_every  # held by a live process: look again soon (takeover within the bound)
        now = lease.expires_at - timedelta(seconds=self.lease_seconds)
        due = None if lease.last_started_at is None else lease.last_started_at + timedelta(
            seconds=(lease.last_duration_s or 0) + spec.interval_s)  # an interval after the last run ended
        if due is not None and due > now:
            # keep the lease while waiting: renew at a third of its length
            return min((due - now).total_seconds(), self.lease_seconds / 3)
        run_id = self.leases.start_run(lease, self.record)
        if run_id is None:
            return self.claim_every  # lost between the claim and the start: fenced off
        error = None
        started = time.monotonic()
        with self._lock:
            self.running.add(spec.name)
        try:
            spec.run(guard=self.leases.guard(lease)) if spec.guarded else spec.run()
        except LeaseLost as exc:  # stalled past the lease: the new holder carries on from the database
            log.warning("%s stopped: %s", spec.name, exc)
            error = f"LeaseLost: {exc}"
        except Exception as exc:  # a bad pass must not kill the loop
            log.exception("%s failed", spec.name)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self.running.discard(spec.name)
        if not self.leases.finish_run(lease, run_id or 0, time.monotonic() - started, error):
            log.warning("task %s ran past its lease (another worker holds it now); its run_once() is idempotent",
                        spec.name)
        return min(spec.interval_s, self.lease_seconds / 3)

"""The submitter task (``submitter:<cluster>``): sends accepted jobs (services/jobs/job_accept.py) to
their cluster, a batch at a time, with a few sbatch calls in parallel.

The guarantees are the synchronous path's:
- at most once: a job is claimed before it is sent (one UPDATE ... WHERE submit_claim IS NULL,
  committed before sbatch, with a token of this pass); a claimed job is never claimed again, by this
  worker or by the one that takes the lease over after it;
- never an unknown job or a stuck hold: a crash between the claim and sbatch, or between sbatch and
  recording its answer, leaves a claimed SUBMITTING job with no native id; the cluster's poller
  adopts it by its tag (``computenet:<id>``, in accounting or the queue) or withdraws it (hold voided,
  the reason in its history, its owner told) once SUBMIT_GRACE has passed since the claim;
- sbatch refusing the job (or the executor its paths) moves it to the next acceptable choice, the
  reason in its timeline (services/jobs/submit_refusal.py); where no other cluster may take it, it is
  withdrawn at once with every refusal's reason. Any other failure (a cluster that did not answer)
  is ambiguous, the job may be there, and goes the crash way.

API replicas wake the submitter of their own process at once; one in another process finds the job
within ``workers.submit_poll_s``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select, update

from ...clusters.base import SubmitRejected, SubmitRequest
from ...domain.states import JobState
from ...store.models import Cluster, Job, User
from ...store.types import utcnow
from . import reconcile
from ..network import routing
from ..errors import ServiceError
from .jobs import _stage, record_submitted, request_for, translate_dependency
from ..platform import Platform
from .submit_refusal import move_elsewhere, no_choice_left

log = logging.getLogger(__name__)

RUN_FOR_S = 2.0  # one run_once() keeps looking this long (the runner's lease writes stay few)
_PATH_ERRORS = (FileExistsError, NotADirectoryError, IsADirectoryError)
_wakers: dict[str, threading.Event] = {}
_wakers_lock = threading.Lock()


def _event(cluster: str) -> threading.Event:
    with _wakers_lock:
        return _wakers.setdefault(cluster, threading.Event())


def wake(cluster: str) -> None:
    """A job for ``cluster`` was accepted in this process: its submitter looks now."""
    _event(cluster).set()


@dataclass
class Outcome:
    job_id: int
    native_id: str | None = None
    refused: str | None = None  # definitive: withdraw with this reason
    elsewhere: bool = False  # refused by this cluster only: the next acceptable choice may take it
    error: BaseException | None = None  # ambiguous: the poller adopts or withdraws it later


class Submitter:
    def __init__(self, platform: Platform, cluster: str, holder: str = "", run_for_s: float = RUN_FOR_S) -> None:
        cfg = platform.settings.workers
        self.platform = platform
        self.cluster = cluster
        self.holder = (holder or f"submitter:{cluster}")[:40]
        self.batch = cfg.submit_batch
        self.threads = cfg.submit_threads
        self.poll_s = cfg.submit_poll_s
        self.run_for_s = run_for_s

    def run_once(self) -> int:
        """Send what is waiting, and keep looking for ``run_for_s``; the number of jobs sent."""
        deadline = time.monotonic() + self.run_for_s
        event = _event(self.cluster)
        sent = 0
        while True:
            event.clear()
            done = self.submit_pass()
            sent += done
            left = deadline - time.monotonic()
            if left <= 0:
                return sent
            if done == 0:
                event.wait(min(self.poll_s, left))

    def submit_pass(self) -> int:
        """Claim a batch, send it (in parallel), record the answers. The number claimed."""
        claimed = self._claim()
        if not claimed:
            return 0
        ready, outcomes = self._requests(claimed)
        if len(ready) == 1:
            outcomes.append(self._send(*ready[0]))
        elif ready:
            with ThreadPoolExecutor(min(self.threads, len(ready)), thread_name_prefix=f"sbatch-{self.cluster}") as pool:
                outcomes.extend(pool.map(lambda item: self._send(*item), ready))
        self._record(outcomes)
        return len(claimed)

    def _claim(self) -> list[int]:
        token = f"{self.holder}:{uuid.uuid4().hex}"[:80]
        with self.platform.db.session() as session:
            cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == self.cluster))
            if cluster_id is None:
                return []
            waiting = (select(Job.id).where(Job.cluster_id == cluster_id, Job.state == JobState.SUBMITTING.value,
                                            Job.queued_at.is_not(None), Job.submit_claim.is_(None),
                                            Job.native_id.is_(None))
                       .order_by(Job.id).limit(self.batch))
            if session.get_bind().dialect.name == "postgresql":  # two submitters (a takeover) skip each other's
                waiting = waiting.with_for_update(skip_locked=True)
            ids = list(session.scalars(waiting))
            if not ids:
                return []
            session.execute(update(Job).where(Job.id.in_(ids), Job.submit_claim.is_(None))
                            .values(submit_claim=token, submit_claimed_at=utcnow())
                            .execution_options(synchronize_session=False))
            return list(session.scalars(select(Job.id).where(Job.id.in_(ids), Job.submit_claim == token)
                                        .order_by(Job.id)))
        # committed: from here on these jobs are this pass's alone

    def _requests(self, ids: list[int]) -> tuple[list[tuple[int, SubmitRequest, bool]], list[Outcome]]:
        """What sbatch gets per job; a job that can no longer be sent (its Unix identity or a
        dependency gone since it was accepted) is refused here, before anything reaches the cluster."""
        ready, refused = [], []
        with self.platform.db.session() as session:
            cluster = session.scalar(select(Cluster).where(Cluster.name == self.cluster))
            for job in session.scalars(select(Job).where(Job.id.in_(ids)).order_by(Job.id)):
                try:
                    dependency = (job.spec.get("options") or {}).get("dependency")
                    if dependency and dependency != "singleton":
                        dependency, _ = translate_dependency(session, session.get(User, job.owner_id), dependency)
                    ready.append((job.id, request_for(session, self.platform, job, dependency, cluster=cluster),
                                  bool(job.inputs)))
                except ServiceError as exc:
                    refused.append(Outcome(job.id, refused=str(exc)))
        return ready, refused

    def _send(self, job_id: int, request: SubmitRequest, stage: bool) -> Outcome:
        try:
            if stage:
                _stage(self.platform, job_id, self.cluster, request)
            return Outcome(job_id, native_id=self.platform.adapter(self.cluster).submit(request))
        except SubmitRejected as exc:
            return Outcome(job_id, refused=f"{self.cluster} refused it: {str(exc)[:300]}", elsewhere=True)
        except _PATH_ERRORS as exc:  # the executor could not make its paths: nothing was started
            return Outcome(job_id, refused=f"{self.cluster} cannot use the job's paths: {exc.strerror}: {exc.filename}",
                           elsewhere=True)
        except ServiceError as exc:  # staging refused an input
            return Outcome(job_id, refused=str(exc))
        except Exception as exc:
            return Outcome(job_id, error=exc)

    def _record(self, outcomes: list[Outcome]) -> None:
        moved_to: set[str] = set()
        with self.platform.db.session() as session:
            for outcome in outcomes:
                job = session.get(Job, outcome.job_id)
                if job is None or job.native_id is not None or job.state != JobState.SUBMITTING.value:
                    continue  # recorded meanwhile (the poller adopted it by its tag)
                if outcome.native_id is not None:
                    record_submitted(session, self.platform, job, self.cluster, outcome.native_id)
                elif outcome.refused is not None:
                    moved = move_elsewhere(session, self.platform, job, self.cluster, outcome.refused) \
                        if outcome.elsewhere else None
                    if moved is not None:
                        moved_to.add(moved.cluster)
                    else:
                        reconcile.withdraw(session, job, no_choice_left(job, self.cluster, outcome.refused))
                else:
                    log.warning("job %s on %s: sbatch failed (%s); the poller adopts or withdraws it",
                                job.id, self.cluster, outcome.error)
            if any(o.native_id for o in outcomes):
                routing.record_success(session, self.cluster)
            elif any(o.error for o in outcomes):
                routing.record_failure(session, self.cluster, self.platform)
        for cluster in moved_to:  # committed: their submitters may look now
            wake(cluster)

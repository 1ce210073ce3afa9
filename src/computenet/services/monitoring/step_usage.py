"""sstat snapshots of running jobs' steps, and the view of them the efficiency analysis uses.

One sstat call per cluster per pass covers all its running jobs (so a thousand running jobs
cost one command, not a thousand). Clusters whose adapter has no step_usage (local, slurmrestd)
are skipped: the agent's samples are all there is for them.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...clusters.base import ClusterError
from ...domain.states import JobState
from ...monitoring.steps import StepSnapshot, StepsView, view
from ...store.models import Cluster, Job, JobStepSample
from ..platform import Platform

log = logging.getLogger(__name__)
BATCH = 200  # job ids per sstat call (its --jobs list has to fit one command line)


class StepUsageCollector:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> int:
        """Snapshots taken this pass (one per running step)."""
        taken = 0
        with self.platform.db.session() as session:
            rows = session.execute(select(Cluster.name, Job.id, Job.native_id).join(Cluster, Job.cluster_id == Cluster.id)
                                   .where(Job.state == JobState.RUNNING.value, Job.native_id.is_not(None),
                                          Job.monitor_state == "on")).all()
        by_cluster: dict[str, dict[str, int]] = {}
        for cluster, job_id, native_id in rows:
            by_cluster.setdefault(cluster, {})[native_id] = job_id
        for cluster, jobs in by_cluster.items():
            adapter = self.platform.adapters.get(cluster)
            if adapter is None or not hasattr(adapter, "step_usage"):
                continue
            ids = sorted(jobs)
            for i in range(0, len(ids), BATCH):
                try:
                    usage = adapter.step_usage(ids[i:i + BATCH])
                except ClusterError as exc:  # the cluster's trouble; the poller reports its health
                    log.warning("sstat on %s: %s", cluster, exc)
                    break
                taken += self._store(jobs, usage, time.time())
        return taken

    def _store(self, jobs: dict[str, int], usage: dict, now: float) -> int:
        rows = [JobStepSample(job_id=jobs[native_id], t=now, step=s.step[:32], ntasks=s.ntasks, nodes=len(s.nodes),
                              cpu_s=s.cpu_seconds, rss=s.rss_bytes, read_bytes=s.read_bytes,
                              write_bytes=s.write_bytes)
                for native_id, steps in usage.items() if native_id in jobs for s in steps]
        if rows:
            with self.platform.db.session() as session:
                session.add_all(rows)
        return len(rows)


def steps_of(session: Session, job: Job) -> StepsView | None:
    snaps = [StepSnapshot(t=r.t, step=r.step, ntasks=r.ntasks, nodes=r.nodes, cpu_s=r.cpu_s, rss=r.rss)
             for r in session.scalars(select(JobStepSample).where(JobStepSample.job_id == job.id))]
    started = job.start_time.timestamp() if job.start_time else None
    return view(snaps, job.cores, started)

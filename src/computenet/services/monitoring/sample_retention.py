"""Old jobs' series, downsampled: one sample per [monitoring] downsample_s once a job ended more
than keep_full_days ago. Totals, peaks, means and gaps stay what they were (monitoring/downsample.py);
the rows shrink by downsample_s / interval_s (30x at the defaults)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from ...monitoring.downsample import downsample
from ...store.models import Job, JobSample, JobStepSample
from ...store.types import utcnow
from .monitoring import series_of
from ..platform import Platform

log = logging.getLogger(__name__)
PER_PASS = 50  # jobs per pass: each is one short transaction


class SampleCompactor:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> int:
        """Jobs compacted this pass."""
        cfg = self.platform.settings.monitoring
        cutoff = utcnow() - timedelta(days=cfg.keep_full_days)
        with self.platform.db.session() as session:
            ids = list(session.scalars(select(Job.id).where(Job.monitor_state == "done", Job.end_time < cutoff)
                                       .order_by(Job.id).limit(PER_PASS)))
        done = 0
        for job_id in ids:
            try:
                self.compact(job_id)
                done += 1
            except Exception:  # one job's trouble must not stop the others; it is tried again next pass
                log.exception("downsampling the samples of job %s", job_id)
        return done

    def compact(self, job_id: int) -> tuple[int, int]:
        """(rows before, rows after); all in one transaction, so a crash leaves the full series."""
        cfg = self.platform.settings.monitoring
        with self.platform.db.session() as session:
            job = session.get(Job, job_id)
            series = series_of(session, job, cfg.interval_s)
            before = len(series.samples)
            bucket = cfg.downsample_s
            if before > 2 and bucket >= 2 * series.interval_s:
                coarse = downsample(series, bucket)
                # every coarse sample stands at the time of a stored one: those rows are rewritten in place
                # and the rest deleted, so row ids (the ingest counter in /metrics) never move
                ids = dict(session.execute(select(JobSample.t, JobSample.id).where(JobSample.job_id == job_id)).all())
                session.execute(update(JobSample), [dict(  # ORM bulk update by primary key
                    id=ids[s.t], seq=s.seq, cpu_s=s.cpu_s, cores=s.cores, rss=s.rss, read_bytes=s.read,
                    write_bytes=s.write, nproc=s.nproc, nthreads=s.nthreads, gpus=s.to_json()["gpus"] or None)
                    for s in coarse.samples])
                kept = {ids[s.t] for s in coarse.samples}
                session.execute(delete(JobSample).where(JobSample.id.in_([i for i in ids.values() if i not in kept]))
                                .execution_options(synchronize_session=False))
                job.sample_interval_s, job.sample_gaps = coarse.interval_s, [list(g) for g in coarse.known_gaps]
                after = len(coarse.samples)
            else:  # already coarse enough (or nearly empty): nothing to gain
                after = before
            # sstat snapshots: each step's last one holds its totals
            last = (select(JobStepSample.step, func.max(JobStepSample.t).label("t"))
                    .where(JobStepSample.job_id == job_id).group_by(JobStepSample.step).subquery())
            keep = select(JobStepSample.id).join(last, (JobStepSample.step == last.c.step) & (JobStepSample.t == last.c.t)) \
                .where(JobStepSample.job_id == job_id)
            session.execute(delete(JobStepSample).where(JobStepSample.job_id == job_id,
                                                        JobStepSample.id.not_in(keep)))
            job.monitor_state = "archived"  # fits String(8): PostgreSQL refuses longer, SQLite would not say
        return before, after

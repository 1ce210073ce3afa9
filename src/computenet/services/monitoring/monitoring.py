"""Job monitoring on the platform side: reading the agent's samples from each job's working
directory into the database (while it runs and once it has ended), and the efficiency
analysis of a job: metrics, diagnosis findings and what the waste cost.

Samples come back the way outputs do (the cluster's filesystem here, or SFTP), so compute
nodes need no route to the control plane. A missing stretch of samples stays a gap.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
import secrets
import time
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import files
from ...domain.states import ON_NODES, TERMINAL_STATES, JobState
from ...monitoring.agent_key import agent_token
from ...monitoring.efficiency import JobFacts, measure, price_parts
from ...monitoring.infer import profile_key
from ...monitoring.inject import samples_file
from ...monitoring.rules import diagnose
from ...monitoring.downsample import downsample
from ...monitoring.series import JobSeries, Sample
from ...store.models import Charge, Job, JobProfile, JobSample, User
from ...store.types import utcnow
from ..billing.pricing import job_memory_mb
from ..platform import Platform

log = logging.getLogger(__name__)
LIVE = ON_NODES
CLOCK_SKEW_S = 300.0  # how far a node's clock may be behind ours before its samples look older than the job
MAX_POINTS = 2000  # samples in an analysis's series before it is downsampled for display
MAX_SAMPLE_FILE = 256 * 1024 * 1024  # a day at 1 s is ~20 MB: more is not the agent's


def receive(platform: Platform, token: str, body: dict) -> int:
    """A batch POSTed by a job's agent: checked against that job's token, stored idempotently."""
    from ..errors import Forbidden, InvalidRequest, NotFound

    job_ref = str(body.get("job") or "")
    if not (job_ref.isascii() and job_ref.isdigit()):
        raise InvalidRequest("job: the platform job id the samples belong to")
    job_id = int(job_ref)
    if not hmac.compare_digest(token or "", agent_token(platform.settings, job_id)):
        raise Forbidden(f"this token does not sign samples of job {job_id}")
    raw = body.get("samples")
    if not isinstance(raw, list) or len(raw) > 10_000:
        raise InvalidRequest("samples: a list of at most 10,000 samples")
    samples = []
    for item in raw:
        try:
            samples.append(Sample.from_json(item))
        except ValueError:
            continue  # one bad sample does not lose the batch
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        if job is None or not job.monitor_state:
            raise NotFound(f"job {job_id} is not monitored")
        return ingest(session, job_id, samples)


def ingest(session: Session, job_id: int, samples: list[Sample]) -> int:
    """Store samples not stored yet (by time); returns how many were new. Samples from before the
    job was submitted are not its own (a samples file left in a reused directory by an earlier job
    with the same id, after the platform's database was reset) and are dropped."""
    submitted = session.scalar(select(Job.submitted_at).where(Job.id == job_id))
    if submitted is not None:
        earliest = submitted.timestamp() - CLOCK_SKEW_S
        samples = [s for s in samples if s.t >= earliest]
    if not samples:
        return 0
    known = set(session.scalars(select(JobSample.t).where(JobSample.job_id == job_id,
                                                          JobSample.t >= min(s.t for s in samples))))
    new = [s for s in {s.t: s for s in samples}.values() if s.t not in known and _storable(s)]
    if new:  # one executemany, not an ORM object per sample (4x the rate); a POST racing us is skipped
        session.execute(_insert_ignoring_duplicates(session), [dict(
            job_id=job_id, t=s.t, seq=s.seq, cpu_s=s.cpu_s, cores=s.cores, rss=s.rss, read_bytes=s.read,
            write_bytes=s.write, nproc=s.nproc, nthreads=s.nthreads,
            gpus=[dataclasses.asdict(g) for g in s.gpus] or None) for s in new])
    return len(new)


_BIGINT = 2 ** 63 - 1


def _storable(s: Sample) -> bool:
    return all(0 <= v <= _BIGINT for v in (s.rss, s.read, s.write)) and abs(s.t) < 1e11


def _insert_ignoring_duplicates(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(JobSample).on_conflict_do_nothing(index_elements=["job_id", "t"])


def parse_lines(text: str) -> list[Sample]:
    """The agent's JSON lines; a line cut short by a kill (the last one) or garbage is skipped."""
    import json

    out = []
    for line in text.splitlines():
        try:
            out.append(Sample.from_json(json.loads(line)))
        except ValueError:
            continue
    return out


class SampleCollector:
    """Background step: samples of running jobs every collect_every_s, and once more when they end."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.last: dict[int, float] = {}

    def run_once(self) -> dict[int, int]:
        every = self.platform.settings.monitoring.collect_every_s
        now = time.monotonic()
        with self.platform.db.session() as session:
            rows = session.execute(select(Job.id, Job.state, Job.settled_at, Job.end_time).where(
                Job.monitor_state == "on", Job.native_id.is_not(None),
                Job.state.in_(LIVE + tuple(s.value for s in TERMINAL_STATES)))).all()
        read: dict[int, int] = {}
        stale = utcnow() - timedelta(days=1)
        # settled jobs first (their last read), then whoever waited longest since its last read
        rows.sort(key=lambda r: (r.settled_at is None, self.last.get(r.id, -1e9)))
        for job_id, state, settled_at, end_time in rows[:500]:
            # the last read waits for the charge, so the profile has the price (or a day, if it never comes)
            final = state not in LIVE and (settled_at is not None or (end_time is not None and end_time < stale))
            if not final and now - self.last.get(job_id, -1e9) < every:
                continue
            self.last[job_id] = now
            try:
                read[job_id] = self.collect(job_id, final=final)
            except Exception as exc:  # one job's trouble must not stop the others
                log.warning("reading samples of job %s: %s", job_id, exc)
                if final:
                    try:
                        self._done(job_id)
                    except Exception:
                        log.exception("closing the samples of job %s", job_id)
        return read

    def collect(self, job_id: int, final: bool = False) -> int:
        from ..files.job_files import stager_for

        with self.platform.db.session() as session:
            job = session.get(Job, job_id)
            cluster_name, workdir = job.cluster.name, job.workdir
            run_as = None
            if self.platform.cluster_config(cluster_name).run_as_users:
                from ..tenancy.identities import unix_user_for

                run_as = unix_user_for(session, job.owner_id, job.cluster_id)
        scratch = self.platform.settings.storage_root() / ".fetch"
        scratch.mkdir(parents=True, exist_ok=True)
        stager = stager_for(self.platform, cluster_name, run_as)
        new, budget = 0, MAX_SAMPLE_FILE
        own = samples_file(job_id)  # this job's files only: jobs may share a working directory
        try:
            for found in stager.list(workdir, [f"{own}.jsonl", f"{own}.*.jsonl"]):
                if found.kind != "file" or "/" in found.path or found.size > budget:
                    continue
                budget -= found.size
                temp = scratch / f"samples-{job_id}-{secrets.token_hex(6)}"
                try:
                    stager.get(f"{workdir.rstrip('/')}/{found.path}", temp, max_bytes=found.size + 65536)
                    samples = parse_lines(temp.read_text(encoding="utf-8", errors="replace"))
                finally:
                    temp.unlink(missing_ok=True)
                with self.platform.db.session() as session:
                    new += ingest(session, job_id, samples)
        except files.NotFound:
            pass  # the job has not started writing yet, or its directory is gone
        finally:
            stager.close()
        if final:
            self._done(job_id)
        else:  # samples may also have come by POST: look at the GPUs on every pass
            from .idle_gpus import watch_idle_gpus

            watch_idle_gpus(self.platform, job_id)
        return new

    def _done(self, job_id: int) -> None:
        with self.platform.db.session() as session:
            job = session.get(Job, job_id)
            job.monitor_state = "done"
            if job.start_time is not None and job.end_time is not None:
                result = analyse(session, self.platform, job)
                if job.state == JobState.COMPLETED.value:
                    record_profile(session, self.platform, job, result)  # typical runs: the ones that ended well
                tell_findings(session, job, result)
        self.last.pop(job_id, None)


# -- the application characteristics database ----------------------------------------

def record_profile(session: Session, platform: Platform, job: Job, result: dict | None = None) -> None:
    """One line per ended monitored job; aggregated by app, user and cluster (services/monitoring/app_profiles.py)."""
    result = result or analyse(session, platform, job)
    if not result["samples"] and not result["steps"]:
        return
    eff = result["efficiency"]
    row = session.get(JobProfile, job.id) or JobProfile(job_id=job.id)
    row.app = profile_key(job.app, job.script, job.name)
    row.user_id, row.cluster_id, row.cores, row.gpus = job.owner_id, job.cluster_id, job.cores, job.gpus
    row.runtime_s, row.time_limit_s = result["runtime_s"], (job.time_limit_minutes or 0) * 60 or None
    row.cpu_efficiency, row.peak_rss, row.gpu_utilisation = eff["cpu_efficiency"], eff["peak_rss"], \
        eff["gpu_utilisation"]
    row.price, row.wasted, row.finished_at = Decimal(result["price"]), Decimal(result["wasted"]), job.end_time
    row.mem_requested_bytes = job_memory_mb(job) * 1024 * 1024 or None
    row.findings = [{"code": f["code"], "wasted": f["wasted"]} for f in result["findings"]]
    session.add(row)


def tell_findings(session: Session, job: Job, result: dict) -> None:
    """An `efficiency.finding` event per finding of the ended job (docs/events.md), once each."""
    from ...store.event_models import add_event

    for f in result["findings"]:
        add_event(session, "efficiency.finding", job.account_id, f"job/{job.id}",
                  {"job": job.id, "name": job.name, "cluster": job.cluster.name, "code": f["code"],
                   "severity": f["severity"], "title": str(f["title"]), "detail": str(f["detail"]),
                   "recommendation": str(f["recommendation"]), "wasted": f["wasted"], "price": result["price"],
                   "confidence": f["confidence"]},
                  dedup_key=f"efficiency.finding:{job.id}:{f['code']}"[:200])


# -- analysis ---------------------------------------------------------------------

def series_of(session: Session, job: Job, default_interval_s: float) -> JobSeries:
    """The stored series at its own interval (downsampled old jobs keep their gaps)."""
    rows = session.scalars(select(JobSample).where(JobSample.job_id == job.id).order_by(JobSample.t))
    return JobSeries(tuple(Sample.from_json({
        "t": r.t, "seq": r.seq, "cpu_s": r.cpu_s, "cores": r.cores, "rss": r.rss, "read": r.read_bytes,
        "write": r.write_bytes, "nproc": r.nproc, "nthreads": r.nthreads, "gpus": r.gpus or []}) for r in rows),
        job.sample_interval_s or default_interval_s,
        known_gaps=tuple(tuple(g) for g in job.sample_gaps or ()))


def _charged(session: Session, charge: Charge) -> Decimal:
    from ...store.models import ChargeAdjustment

    latest = session.scalar(select(ChargeAdjustment.new_amount).where(ChargeAdjustment.charge_id == charge.id)
                            .order_by(ChargeAdjustment.id.desc()).limit(1))
    return Decimal(latest if latest is not None else charge.amount)


_PARALLEL_LAUNCH = re.compile(r"(^|[\s;&|(`])(srun|mpirun|mpiexec|mpiexec\.hydra|prun|aprun)\b", re.M)


def partial_view(job: Job) -> str | None:
    """Why the agent cannot see all of the job's work: it samples the batch shell's processes on the
    first node; srun/MPI tasks run under Slurm's step daemons and on the other nodes."""
    nodes = ((job.spec or {}).get("resources") or {}).get("nodes") or 1
    if nodes > 1:
        return f"the job spans {nodes} nodes; only the first node's batch processes are sampled"
    if _PARALLEL_LAUNCH.search(job.script or ""):
        return "the job launches tasks with srun/mpirun, which run outside the sampled batch processes"
    return None


def facts_of(session: Session, job: Job) -> JobFacts:
    """What the job was given and what it cost, split into its CPU and GPU parts by list price."""
    from ..billing.pricing import job_memory_mb

    charges = list(session.scalars(select(Charge).where(Charge.job_id == job.id)))
    # what was charged (re-pricing included), split in the proportion the charges' own rates give
    price = sum((_charged(session, c) for c in charges), Decimal("0"))
    core_value = sum((c.price_core_hour * c.core_seconds for c in charges), Decimal("0"))
    gpu_value = sum((c.price_gpu_hour * c.gpu_seconds for c in charges), Decimal("0"))
    cpu_part, gpu_part = price_parts(price, core_value, gpu_value)
    start = job.start_time
    end = job.end_time or (utcnow() if start else None)
    runtime = (end - start).total_seconds() if start and end else 0.0
    spec_gpu = ((job.spec or {}).get("resources") or {}).get("gpu_type")
    return JobFacts(
        job_id=str(job.id), cores=job.cores, gpus=job.gpus, gpu_type=spec_gpu,
        mem_requested_bytes=job_memory_mb(job) * 1024 * 1024,
        time_limit_s=job.time_limit_minutes * 60 if job.time_limit_minutes else None,
        runtime_s=max(runtime, 0.0), price=price, price_cpu_part=cpu_part, price_gpu_part=gpu_part,
        app=(job.app or {}).get("name"), user=session.get(User, job.owner_id).name, cluster=job.cluster.name,
        started_at=start.timestamp() if isinstance(start, datetime) else None)


def analyse(session: Session, platform: Platform, job: Job) -> dict:
    """Efficiency, findings with their cost, and the series for charts (JSON-ready)."""
    from .step_usage import steps_of

    series = series_of(session, job, platform.settings.monitoring.interval_s)
    facts = facts_of(session, job)
    eff = measure(facts, series)
    partial = partial_view(job)
    steps = steps_of(session, job)
    view = "full"
    if partial:  # what the agent did not see is not idle: only rules that need no more than is known
        view = "any"
        if steps and steps.cpu_efficiency is not None:  # Slurm saw every step and node: its CPU figure holds
            runtime = facts.runtime_s or steps.window_s
            eff = dataclasses.replace(eff, cpu_efficiency=steps.cpu_efficiency, cpu_seconds=steps.cpu_seconds,
                                      peak_rss=max(eff.peak_rss, steps.peak_rss),
                                      covered_fraction=min(steps.window_s / runtime, 1.0) if runtime > 0 else 0.0)
            view = "cpu_total"
    findings = diagnose(facts, series, eff=eff, view=view) if series.samples or view == "cpu_total" else []
    samples = series.samples
    if len(samples) > MAX_POINTS:  # a week at 10 s is 60,480 points: charts and sparklines need ~1,000
        bucket = max(series.span_seconds() / (MAX_POINTS // 2), 2 * series.interval_s)
        samples = downsample(series, bucket).samples
    return {
        "job": job.id, "monitored": job.monitor_state, "samples": len(series.samples), "partial": partial,
        "steps": steps.to_json() if steps else None,
        "interval_s": series.interval_s, "gaps": [list(g) for g in series.gaps()],
        "price": str(facts.price), "runtime_s": facts.runtime_s, "cores": facts.cores, "gpus": facts.gpus,
        "efficiency": {k: v for k, v in dataclasses.asdict(eff).items()},
        "findings": [dataclasses.asdict(f) | {"wasted": str(f.wasted)} for f in findings],
        "wasted": str(sum((f.wasted for f in findings), Decimal("0"))),
        "series": {"t": [s.t for s in samples], "cores": [s.cores for s in samples],
                   "rss": [s.rss for s in samples],
                   "gpu_util": [sum(g.util for g in s.gpus) / len(s.gpus) if s.gpus else None for s in samples]},
    }

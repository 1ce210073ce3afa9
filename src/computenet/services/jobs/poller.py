"""One poller per cluster: states, accounting, charges.

Each pass asks the status of all active jobs in one call, applies the
transitions, reads accounting with an overlapping look-back window (and by
job id for finished jobs still without a record), stores every record once
under (cluster, record id, submit time), and charges each final record once.
Safe to run twice at the same time: the unique keys decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal


from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from ...billing import funds
from ...billing.rating import Usage
from ...clusters.base import ClusterError, UsageRecord
from ...domain.sbatch import PLATFORM_TAG, platform_tag, read_platform_tag
from ...domain.states import RUN_REQUEUED, JobState, TERMINAL_STATES
from ...store.models import AccountMember, Charge, Cluster, Job, JobEvent, Partition, UsageRecordRow, User
from ...store.types import utcnow
from ..billing.pricing import quote
from ..billing.settlement import settle_pass
from .jobs import apply_state
from ..billing.pricing import job_memory_mb
from ..billing.charging import requeued_runs_cost
from ..billing import enforcement
from . import reconcile
from ..platform import Platform

log = logging.getLogger(__name__)

_TERMINAL = [s.value for s in TERMINAL_STATES]
_RAN = (JobState.RUNNING.value, JobState.SUSPENDED.value, JobState.COMPLETING.value)
REQUEUED_DETAIL = "requeued: back in the queue to run again"
OVERLAP = timedelta(minutes=15)  # sacct rows arrive late; re-read this much
SUBMIT_GRACE = timedelta(minutes=5)  # SUBMITTING rows older than this lost their sbatch
SLOWEST_STAGING_BYTES_S = 10 * 1024 * 1024  # a job's inputs may take this long to stage before it counts as lost


def sent_at(job) -> object:
    """When the platform called sbatch for the job (about): the submitter's claim, else the request."""
    return job.submit_claimed_at or job.submitted_at


def staging_allowance(inputs: list[dict]) -> timedelta:
    return timedelta(seconds=sum(int(i.get("size") or 0) for i in inputs) / SLOWEST_STAGING_BYTES_S)


@dataclass
class PassReport:
    cluster: str
    polled: int = 0
    transitions: int = 0
    records: int = 0
    charged: int = 0
    settled: int = 0
    interim: int = 0
    flagged: int = 0
    error: str | None = None
    changed_jobs: list[int] = field(default_factory=list)


def adopt_direct_job(session, cluster: Cluster, record: UsageRecord) -> Job | None:
    """A job sbatch'ed straight on the cluster under a mapped Slurm account:
    metered and charged like any other, to the mapped account."""
    account = enforcement.account_for(session, cluster.id, record.account)
    if account is None:
        return None
    members = session.execute(select(AccountMember, User).join(User, User.id == AccountMember.user_id)
                              .where(AccountMember.account_id == account.id)).all()
    if not members:
        log.error("direct job %s on %s: account %s has no members to own it", record.native_id, cluster.name,
                  account.name)
        return None
    # the member with the same name as the Slurm user, else the PI, else the first member
    owner = next((u for m, u in members if u.name == record.user), None) \
        or next((u for m, u in members if m.role == "pi"), None) or members[0][1]
    job = Job(owner_id=owner.id, account_id=account.id, cluster_id=cluster.id, partition=record.partition or "",
              name=(record.job_name or "direct")[:200], native_id=record.native_id, state=record.state.value,
              spec={"resources": {}, "options": {}}, script="", workdir="", stdout_path="", stderr_path="",
              cores=record.cpus, gpus=record.gpus, time_limit_minutes=record.time_limit_minutes,
              submitted_at=record.submit, start_time=record.start, end_time=record.end if record.is_final else None,
              exit_code=record.exit_code if record.is_final else None, origin="direct")
    session.add(job)
    session.flush()
    session.add(JobEvent(job_id=job.id, from_state=None, to_state=job.state,
                         detail=f"direct sbatch by {record.user} under Slurm account {record.account}"))
    return job


class ClusterPoller:
    def __init__(self, platform: Platform, cluster_name: str) -> None:
        self.platform = platform
        self.name = cluster_name
        self.adapter = platform.adapter(cluster_name)

    def run_once(self) -> PassReport:
        report = PassReport(self.name)
        try:
            self._states(report)
            self._interim(report)
            self._accounting(report)
        except ClusterError as exc:
            report.error = str(exc)
            with self.platform.db.session() as session:
                cluster = self._cluster(session)
                cluster.health, cluster.health_detail = "degraded", str(exc)[:1000]
            log.warning("poll of %s failed: %s", self.name, exc)
        self._charge(report)
        return report

    def _cluster(self, session) -> Cluster:
        return session.scalar(select(Cluster).where(Cluster.name == self.name))

    def _states(self, report: PassReport) -> None:
        """Compare the active jobs (plain rows, the few columns a poll reads) with the cluster's
        answer; jobs whose fields alone change are written with one executemany UPDATE, and only the
        ones that change state (or are lost) become ORM objects (bench/poll.py: 30,000 ORM objects a
        pass were most of its cost)."""
        with self.platform.db.session() as session:
            cluster_id = self._cluster(session).id
            rows = session.execute(
                select(Job.id, Job.native_id, Job.state, Job.reason, Job.node_list, Job.missing_since,
                       Job.start_time.is_(None)).where(
                    Job.cluster_id == cluster_id, Job.state.not_in(_TERMINAL), Job.native_id.is_not(None)
                ).order_by(Job.submitted_at, Job.id)
            ).all()
        # Slurm reuses the ids of jobs it lost: the latest job with an id is the one it
        # means; an earlier live one with the same id is gone from the scheduler
        active: dict[str, tuple] = {}
        superseded: list[tuple[int, str, int]] = []
        for row in rows:
            native_id = row[1]
            if native_id in active:
                superseded.append((active[native_id][0], native_id, row[0]))
            active[native_id] = row
        if not active:
            return
        statuses = self.adapter.status(list(active))  # one call for all of them
        report.polled = len(active)
        now = utcnow()
        fields, first_missing, to_orm = [], [], []
        for native_id, (job_id, _, state, reason, node_list, missing_since, not_started) in active.items():
            status = statuses.get(native_id)
            if status is None or status.state == JobState.UNKNOWN:
                # between squeue and sacct for seconds, or forgotten by the scheduler for good
                if missing_since is None:
                    first_missing.append({"b_id": job_id, "b_native": native_id, "b_state": state})
                elif now - missing_since >= reconcile.LOST_AFTER:
                    to_orm.append((job_id, native_id, status))
                continue
            if status.state.value != state:
                to_orm.append((job_id, native_id, status))
                continue
            new_nodes = status.node_list or node_list  # kept once the job leaves the queue
            new_start = status.start if not_started else None
            if missing_since is not None or new_nodes != node_list or new_start is not None \
                    or reason != status.reason:
                fields.append({"b_id": job_id, "b_native": native_id, "b_state": state, "b_reason": status.reason,
                               "b_nodes": new_nodes, "b_start": new_start})
        with self.platform.db.session() as session:
            # only where the row is still as read: moved (re-routing) or changed meanwhile is left alone
            still = [Job.id == bindparam("b_id"), Job.native_id == bindparam("b_native"),
                     Job.cluster_id == cluster_id, Job.state == bindparam("b_state")]
            if fields:
                session.execute(update(Job.__table__).where(*still).values(
                    reason=bindparam("b_reason"), node_list=bindparam("b_nodes"), missing_since=None,
                    start_time=func.coalesce(Job.start_time, bindparam("b_start", type_=Job.start_time.type))),
                    fields)
            if first_missing:
                session.execute(update(Job.__table__).where(*still).values(missing_since=now), first_missing)
            self._transitions(session, cluster_id, superseded, to_orm, now, report)

    def _transitions(self, session, cluster_id: int, superseded: list, to_orm: list, now, report: PassReport) -> None:
        """Jobs that change state, are lost or lost their id to a later job: as ORM objects, loaded
        1,000 at a time (session.get below finds them in the identity map)."""
        wanted = [job_id for job_id, _, _ in to_orm] + [old for old, _, _ in superseded]
        held = []  # the identity map is weak: these keep the loaded jobs in it
        for lo in range(0, len(wanted), 1000):
            held += session.scalars(select(Job).where(Job.id.in_(wanted[lo:lo + 1000]))
                                    .options(defer(Job.script), defer(Job.routing), defer(Job.inputs),
                                             defer(Job.outputs))).all()
        for job_id, native_id, newer_id in superseded:
            job = session.get(Job, job_id)
            if job.native_id == native_id and job.cluster_id == cluster_id and job.settled_at is None:
                reconcile.mark_lost(session, job, f"cluster {self.name} gave its id {native_id} to job "
                                                  f"{newer_id}, submitted later")
                report.transitions += 1
                report.changed_jobs.append(job.id)
        for job_id, native_id, status in to_orm:
            job = session.get(Job, job_id)
            if job is None or job.native_id != native_id or job.cluster_id != cluster_id:
                continue  # moved to another cluster meanwhile (re-routing)
            if status is None or status.state == JobState.UNKNOWN:
                if job.missing_since is None:
                    job.missing_since = now
                elif now - job.missing_since >= reconcile.LOST_AFTER:
                    why = status.reason if status is not None else "not known to it any more"
                    reconcile.mark_lost(session, job, f"out of the queue since {job.missing_since:%H:%M:%S} "
                                                      f"UTC and its accounting never ended ({why})")
                    report.transitions += 1
                    report.changed_jobs.append(job.id)
                continue
            # set only what changed: an attribute set, even to its value, is compared at every flush
            if job.missing_since is not None:
                job.missing_since = None
            if status.node_list and job.node_list != status.node_list:  # kept once the job leaves the queue
                job.node_list = status.node_list
            if status.start and job.start_time is None:
                job.start_time = status.start
            if status.end and status.state.is_terminal:
                job.end_time = status.end
            if status.exit_code is not None and status.state.is_terminal:
                job.exit_code = status.exit_code
            if job.reason != status.reason:
                job.reason = status.reason
            detail = status.raw_state
            if status.state == JobState.PENDING and job.state in _RAN:
                # requeued (by its owner, an operator or a node failure): this run is over, its record
                # is charged on its own; the next run starts its own clock
                detail = REQUEUED_DETAIL
                job.start_time, job.interim_at = None, None
            if apply_state(session, job, status.state, detail):
                if status.state.is_terminal and job.end_time is None:
                    job.end_time = utcnow()
                report.transitions += 1
                report.changed_jobs.append(job.id)

    def _interim(self, report: PassReport) -> None:
        """Charge running jobs for what they used so far, every interim period."""
        every = timedelta(seconds=self.platform.settings.interim_charge_seconds)
        now = utcnow()
        with self.platform.db.session() as session:
            cluster = self._cluster(session)
            due = list(session.scalars(select(Job.id).where(
                Job.cluster_id == cluster.id, Job.state == JobState.RUNNING.value, Job.start_time.is_not(None),
                Job.start_time <= now - every, or_(Job.interim_at.is_(None), Job.interim_at <= now - every))))
        for job_id in due:
            with self.platform.db.session() as session:
                job = session.get(Job, job_id)
                part = session.scalar(select(Partition).where(Partition.cluster_id == job.cluster_id,
                                                              Partition.name == job.partition))
                if part is None:
                    continue
                seconds = int((now - job.start_time).total_seconds())
                so_far = quote(session, part, Usage(seconds, job.cores, job.gpus, job_memory_mb(job)), job.start_time,
                               self.platform.settings.billing, gpu_model=(job.spec.get("resources") or {}).get("gpu_type"),
                               tenant_id=job.account.tenant_id)
                if so_far is None:
                    continue
                # this run so far, plus the runs that ended in a requeue (interim_charged counts them too)
                earlier = requeued_runs_cost(session, job).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
                if funds.interim(session, job, so_far.amount + earlier) is not None:
                    report.interim += 1
                job.interim_at = now

    def _accounting(self, report: PassReport) -> None:
        pass_started = utcnow()
        with self.platform.db.session() as session:
            cluster = self._cluster(session)
            cursor = cluster.accounting_cursor
            oldest_unsettled = session.scalar(
                select(Job.submitted_at).where(Job.cluster_id == cluster.id, Job.settled_at.is_(None))
                .order_by(Job.submitted_at).limit(1)
            )
            # finished jobs with no record yet (a requeued run's is not the last one's): asked for by
            # id, whatever the window
            missing = list(session.scalars(
                select(Job.native_id).where(
                    Job.cluster_id == cluster.id, Job.state.in_(_TERMINAL), Job.settled_at.is_(None),
                    Job.native_id.is_not(None),
                    ~select(UsageRecordRow.id).where(UsageRecordRow.job_id == Job.id,
                                                     UsageRecordRow.state != RUN_REQUEUED).exists(),
                )
            ))
        since = (cursor or oldest_unsettled or pass_started) - OVERLAP
        records = self.adapter.accounting(since)
        if missing:
            seen = {r.native_id for r in records}
            wanted = [m for m in missing if m not in seen]
            if wanted:
                records += self.adapter.accounting(None, wanted)
        with self.platform.db.session() as session:
            cluster = self._cluster(session)
            for record in records:
                if not record.is_complete:
                    continue  # a stub of a just-ended job: read again next pass
                if self._store(session, cluster, record):
                    report.records += 1
            cluster.accounting_cursor = pass_started
            self._flag_missing(session, cluster, report)

    def _store(self, session, cluster: Cluster, record: UsageRecord) -> bool:
        """Insert or refresh one record; True if it is new or changed."""
        row = session.scalar(
            select(UsageRecordRow).where(
                UsageRecordRow.cluster_id == cluster.id,
                UsageRecordRow.record_id == record.record_id,
                UsageRecordRow.submit_time == record.submit,
            )
        )
        job_id = self._job_for(session, cluster, record)
        requeued = getattr(record, "requeued", False) and record.end is not None
        if job_id is not None and record.node_list:
            job = session.get(Job, job_id)
            if not job.node_list:  # it started and ended between two polls: squeue never said where
                job.node_list = record.node_list
        values = dict(
            native_id=record.native_id, state=RUN_REQUEUED if requeued else record.state.value,
            start_time=record.start,
            end_time=record.end, elapsed_seconds=record.elapsed_seconds, cpus=record.cpus,
            mem_mb=record.mem_mb, gpus=record.gpus, gpu_type=record.gpu_type, nodes=record.nodes,
            exit_code=record.exit_code, partition=record.partition, alloc_tres=record.alloc_tres,
            array_tasks=getattr(record, "array_tasks", None),  # Slurm's records say which tasks they stand for
        )
        if row is None:
            try:
                with session.begin_nested():
                    session.add(UsageRecordRow(cluster_id=cluster.id, record_id=record.record_id,
                                               submit_time=record.submit, job_id=job_id, **values))
                    session.flush()
                    if requeued:
                        self._requeued_run(session, job_id, record)
            except IntegrityError:
                return False  # another poller stored it first
            return True
        if session.scalar(select(Charge.id).where(Charge.usage_record_id == row.id)):
            return False  # charged: the record as charged is the record
        changed = any(getattr(row, k) != v for k, v in values.items()) or (job_id and row.job_id != job_id)
        newly_requeued = requeued and row.state != RUN_REQUEUED
        for key, value in values.items():
            setattr(row, key, value)
        # a final record carries its comment: that decides whose it is, whatever a live one suggested
        row.job_id = job_id if record.state.is_terminal or requeued else (row.job_id or job_id)
        if newly_requeued:
            self._requeued_run(session, row.job_id, record)
        return bool(changed)

    @staticmethod
    def _requeued_run(session, job_id: int | None, record: UsageRecord) -> None:
        """The timeline says that a run ended and the job went back to the queue (the poller may never
        have seen it wait in between: it ran again before the next pass)."""
        job = session.get(Job, job_id) if job_id is not None else None
        if job is None:
            return
        if not JobState(job.state).is_terminal and job.start_time is not None and record.start is not None \
                and job.start_time <= record.start:
            # its start time is that run's: the next run's clock (and interim charges) starts afresh
            job.start_time, job.interim_at = None, None
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                             detail=f"a run ended by requeue ({record.start:%Y-%m-%d %H:%M:%S} to "
                                    f"{record.end:%H:%M:%S} UTC) is charged on its own"
                             if record.start else "a run ended by requeue is charged on its own"))

    @staticmethod
    def _job_for(session, cluster: Cluster, record: UsageRecord) -> int | None:
        """The job a record belongs to: by the ``computenet:<id>.<nonce>`` tag the platform sets,
        never by the native id alone (Slurm reuses the ids of jobs it lost)."""
        tagged = (record.comment or "").startswith(PLATFORM_TAG)
        if not tagged:
            # the latest job with this id, submitted before the record (an id reused later is
            # another job's); Slurm stores the comment only once a job starts or ends, so a
            # live record without it may still be a platform job's, a final one never is
            latest = session.scalar(select(Job).where(
                Job.cluster_id == cluster.id, Job.native_id == record.native_id,
            ).order_by(Job.submitted_at.desc(), Job.id.desc()).limit(1))
            if latest is not None and record.submit >= latest.submitted_at - timedelta(minutes=5) and (
                    latest.origin == "direct" or not record.state.is_terminal):
                return latest.id
            if record.account and (latest is None or latest.origin != "direct"):
                direct = adopt_direct_job(session, cluster, record)
                return direct.id if direct is not None else None
            return None
        ref = read_platform_tag(record.comment)
        job = session.get(Job, ref[0]) if ref is not None else None
        if job is None or job.cluster_id != cluster.id or job.tag_nonce != ref[1]:
            return None  # another installation's job (or an earlier database's) with the same id
        if job.native_id == record.native_id:
            return job.id
        allowance = SUBMIT_GRACE + staging_allowance(job.inputs or [])
        if job.native_id is None and job.settled_at is None and abs(record.submit - sent_at(job)) < allowance:
            # our sbatch ran but we never heard its answer: adopt the job
            job.native_id = record.native_id
            apply_state(session, job, JobState.PENDING, "adopted from accounting")
            return job.id
        return None  # our comment on an id the job no longer has: an earlier copy Slurm lost

    def _flag_missing(self, session, cluster: Cluster, report: PassReport) -> None:
        grace = timedelta(minutes=self.platform.settings.accounting_grace_minutes)
        now = utcnow()
        stale = session.scalars(
            select(Job).where(
                Job.cluster_id == cluster.id, Job.state.in_(_TERMINAL), Job.settled_at.is_(None),
                Job.needs_reconcile.is_(False), Job.end_time < now - grace,
            )
        )
        for job in stale:  # no record, or not every array task's, or one that cannot be priced
            job.needs_reconcile = True  # an operator decides; never silently free
            report.flagged += 1
            log.error("job %s on %s ended %s and its accounting is still incomplete", job.id, self.name,
                      job.end_time)
        lost = session.scalars(
            select(Job).where(Job.cluster_id == cluster.id, Job.native_id.is_(None), Job.needs_reconcile.is_(False),
                              # a sync submission, or one the submitter task claimed (services/jobs/submitter.py);
                              # an accepted job not yet claimed waits for the submitter
                              or_(and_(Job.state == JobState.SUBMITTING.value, Job.queued_at.is_(None),
                                       Job.submitted_at < now - SUBMIT_GRACE),
                                  and_(Job.state == JobState.SUBMITTING.value, Job.submit_claimed_at < now - SUBMIT_GRACE),
                                  # a move (re-routing) that never finished
                                  and_(Job.state == JobState.PENDING.value, Job.updated_at < now - SUBMIT_GRACE)))
        )
        in_queue: dict[str, list] | None = None
        for job in lost:
            if job.state == JobState.SUBMITTING.value and job.inputs and \
                    sent_at(job) > now - SUBMIT_GRACE - staging_allowance(job.inputs):
                continue  # still copying its inputs to the cluster, most likely
            if job.state == JobState.SUBMITTING.value:
                # no record with its comment in the accounting just read; a scheduler that can
                # list its queue by comment is asked too (Slurm keeps a pending job's comment there)
                if in_queue is None:
                    in_queue = self._queue_by_comment()
                    if in_queue is None:
                        return  # the cluster did not answer: decide next pass
                allowance = SUBMIT_GRACE + staging_allowance(job.inputs or [])
                near = sorted((abs(submit - sent_at(job)), native) for native, submit in
                              in_queue.get(platform_tag(job.id, job.tag_nonce), []) if submit is not None
                              and abs(submit - sent_at(job)) < allowance)
                native_id = near[0][1] if near else None
                if native_id is not None:
                    job.native_id = native_id
                    apply_state(session, job, JobState.PENDING, "adopted from the queue by its comment")
                else:
                    reconcile.withdraw(session, job, f"the submission was interrupted and never reached {self.name}")
                report.transitions += 1
                continue
            job.needs_reconcile = True  # a move that never finished: an operator decides
            report.flagged += 1

    def _queue_by_comment(self) -> dict[str, list] | None:
        """{comment: [(native id, submit)]} from the scheduler's queue; {} where it cannot say, None if it failed."""
        finder = getattr(self.adapter, "jobs_by_comment", None)
        if finder is None:
            return {}
        try:
            return finder()
        except ClusterError as exc:
            log.warning("listing %s's queue by comment failed: %s", self.name, exc)
            return None

    def _charge(self, report: PassReport) -> None:
        with self.platform.db.session() as session:
            cluster_id = self._cluster(session).id
        charged, settled = settle_pass(self.platform.db, cluster_id, self.platform.settings.billing)
        report.charged += charged
        report.settled += settled

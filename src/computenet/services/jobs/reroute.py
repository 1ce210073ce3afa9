"""Re-routing: a job still pending long after its predicted start is moved.

Only jobs that have not started, that nobody pinned to a cluster, without
dependencies or arrays, and at most ``max_reroutes`` times. The move is safe
against the job starting meanwhile: it is first held where it waits, then
checked to be still pending, and only then cancelled there; a new hold for
the new price is taken before anything is touched, and the old hold is
voided once the new cluster has the job. Every step is in the job's history.

One move per job even if two passes overlap (a worker stalled past its lease
while another took over): before touching the cluster a pass checks its lease
(services/lease_guard.py) and then claims the move in the job's row, a
compare-and-set on (native id, re-route count) written before the scancel; the
pass that loses the claim leaves the job alone. Once the old copy is cancelled
the move is finished whatever the lease says: stopping between the scancel and
the sbatch would leave a job that is on no cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from ...billing import funds, ledger
from ...clusters.base import ClusterError, SubmitRejected
from ...domain.resources import JobSpec
from ...domain.states import JobState
from ...routing.model import Constraints
from ...store.models import Account, Cluster, Job, JobEvent, Partition, Transfer, UsageRecordRow, User
from ...store.types import utcnow
from ..network import routing
from ..errors import InvalidRequest
from ..files.job_files import stage_inputs
from ..lease_guard import UNGUARDED, LeaseGuard, LeaseLost
from .jobs import apply_state, job_paths, path_unix_user, request_for
from ..billing import enforcement
from ..billing.pricing import max_cost
from ..platform import Platform

log = logging.getLogger(__name__)
MIN_GAIN_S = 60.0  # move only for a real gain


@dataclass
class RerouteReport:
    considered: int = 0
    moved: list[tuple[int, str, str]] = field(default_factory=list)  # (job, from, to)
    kept: list[tuple[int, str]] = field(default_factory=list)  # (job, why)


class Rerouter:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self, guard: LeaseGuard = UNGUARDED) -> RerouteReport:
        report = RerouteReport()
        cfg = self.platform.settings.routing
        late = utcnow() - timedelta(minutes=cfg.reroute_after_minutes)
        with self.platform.db.session() as session:
            ids = list(session.scalars(select(Job.id).where(
                Job.state == JobState.PENDING.value, Job.native_id.is_not(None), Job.origin == "platform",
                Job.predicted_start.is_not(None), Job.predicted_start < late, Job.reroutes < cfg.max_reroutes,
                Job.paused_for_funds_at.is_(None),
                # a requeued job waits again but has run where it is (its runs are charged there): it stays
                ~select(JobEvent.id).where(JobEvent.job_id == Job.id,
                                           JobEvent.to_state == JobState.RUNNING.value).exists()).order_by(Job.id)))
        for job_id in ids:
            report.considered += 1
            try:
                self._consider(job_id, report, guard)
            except LeaseLost:
                raise  # the rest is the new holder's
            except Exception as exc:  # one job's trouble must not stop the others
                log.exception("re-routing job %s failed", job_id)
                report.kept.append((job_id, f"error: {exc}"))
        return report

    def _consider(self, job_id: int, report: RerouteReport, guard: LeaseGuard = UNGUARDED) -> None:
        platform = self.platform
        guard.check()  # outside the job's transaction (SQLite has one writer); the claim below is exact
        with platform.db.session() as session:
            job = session.get(Job, job_id)
            spec = JobSpec.model_validate(job.spec)
            if spec.options.cluster or spec.options.dependency or spec.options.array:
                report.kept.append((job_id, "pinned, dependent or an array: stays"))
                job.reroutes = platform.settings.routing.max_reroutes  # not again
                return
            old_cluster = job.cluster.name
            account = session.get(Account, job.account_id)
            # what the user pinned or bounded still holds; the cluster is free
            pinned = (job.routing or {}).get("constraints") or {}
            constraints = Constraints(partition=pinned.get("partition"), region=pinned.get("region"),
                                      max_price=None if pinned.get("max_price") is None
                                      else Decimal(pinned["max_price"]),
                                      # an app moves only where it is available (its script for there is kept)
                                      only_clusters=frozenset(job.app["scripts"]) if job.app else None,
                                      only_reason="does not offer the job's app")
            request_spec = spec.model_copy(update={"resources": spec.resources.model_copy(
                update={"partition": pinned.get("partition"), "time_limit_minutes": job.time_limit_minutes})})
            routing.queues(platform).forget()
            decision = routing.decide(session, platform, request_spec, account, constraints)
            here = next((c for c in decision.ranked if c.target.cluster == old_cluster
                         and c.target.partition == job.partition), None)
            better = next((c for c in decision.ranked if c.target.cluster != old_cluster), None)
            here_wait = here.wait_s if here is not None and here.wait_s is not None else float("inf")
            if better is None or better.wait_s is None or better.wait_s + MIN_GAIN_S >= here_wait:
                report.kept.append((job_id, "no cluster would start it sooner"))
                return
            new_part = session.scalar(select(Partition).join(Cluster).where(
                Cluster.name == better.target.cluster, Partition.name == better.target.partition))
            # -A: the Slurm account mapped to the platform account on the new cluster (or the user's default)
            new_spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={
                "partition": new_part.name, "time_limit_minutes": better.time_limit_minutes,
                "account": enforcement.slurm_account_for(session, new_part.cluster_id, account.id)})})
            cost = max_cost(session, platform, new_spec, better.time_limit_minutes, new_part, account)
            old_native, old_hold_id = job.native_id, job.hold_id
            # the claim: out of the pollers' sight while it moves (they poll jobs by native id), and
            # out of any other pass's reach (its compare-and-set finds the row changed). A crash from
            # here to the end leaves a PENDING job without a native id, which the poller flags.
            claimed = session.execute(
                update(Job).where(Job.id == job.id, Job.native_id == old_native, Job.reroutes == job.reroutes,
                                  Job.state == JobState.PENDING.value, Job.paused_for_funds_at.is_(None))
                .values(native_id=None).execution_options(synchronize_session=False)).rowcount
            if claimed != 1:
                session.rollback()
                report.kept.append((job_id, "changed meanwhile (moved or started by another pass)"))
                return
            try:  # the new hold first: if the money is not there, nothing has moved
                new_hold = ledger.transfer(
                    session, f"hold:job:{job.id}:reroute:{job.reroutes + 1}", funds.customer(session, account),
                    funds.revenue(session, new_part.product_line, account.currency), ledger.cents(cost), "hold",
                    pending=True, check_funds=True, memo=f"hold for job {job.id} on {better.target.name}")
            except ledger.InsufficientFunds:
                session.rollback()  # and the claim with it
                report.kept.append((job_id, "the account cannot hold the new price as well"))
                return
            new_hold_id = new_hold.id
            user_name = session.get(User, job.owner_id).name
            new_cluster = session.scalar(select(Cluster).where(Cluster.name == better.target.cluster))
            workdir, out, err = job_paths(platform, better.target.cluster, user_name, job.id, spec.options,
                                          job_name=job.name,
                                          unix_user=path_unix_user(session, platform, new_cluster, job.owner_id))
            moved = dict(cluster=better.target.cluster, partition=new_part.name, spec=new_spec, cost=cost,
                         workdir=workdir, out=out, err=err, wait=better.wait_s, decision=decision)
            session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                                 detail=f"moving: {old_cluster} job {old_native} to be held and cancelled"))
        old = platform.adapter(old_cluster)
        if not self._stop_if_pending(old, old_native):
            self._void(new_hold_id, f"job {job_id} started where it was: no move")
            with platform.db.session() as session:
                job = session.get(Job, job_id)
                job.native_id = old_native
                session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                                     detail="not moved: it started where it was"))
            report.kept.append((job_id, "it started meanwhile"))
            return
        with platform.db.session() as session:
            job = session.get(Job, job_id)
            job.spec = moved["spec"].model_dump(mode="json")
            job.workdir, job.stdout_path, job.stderr_path = moved["workdir"], moved["out"], moved["err"]
            if job.app:
                job.script = job.app["scripts"][moved["cluster"]]
            # as the owner's identity on the new cluster; the job moves for real once that cluster has it
            request = request_for(session, platform, job, cluster=session.scalar(
                select(Cluster).where(Cluster.name == moved["cluster"])))
            old_inputs = job.inputs
        try:
            if old_inputs:  # the inputs follow it (from the workspace, not the old cluster)
                stage_inputs(platform, job_id, moved["cluster"], run_as=request.run_as)
            native_id = platform.adapter(moved["cluster"]).submit(request)
        except Exception as exc:  # whatever it was, the job must not stay cancelled with two holds
            if old_inputs:
                with platform.db.session() as session:
                    session.get(Job, job_id).inputs = old_inputs  # still staged where it was
            if not isinstance(exc, (SubmitRejected, ClusterError, InvalidRequest)):
                log.exception("moving job %s to %s failed", job_id, moved["cluster"])
            self._back_home(job_id, old_cluster, new_hold_id, f"{moved['cluster']} refused: {exc}")
            report.kept.append((job_id, f"{moved['cluster']} refused: {exc}"))
            return
        with platform.db.session() as session:
            job = session.get(Job, job_id)
            old_hold = session.get(Transfer, old_hold_id) if old_hold_id else None
            if old_hold is not None and ledger.open_hold(session, old_hold):
                ledger.resolve(session, f"void:{old_hold.key}", old_hold, 0, memo=f"job {job_id} moved")
            cluster = session.scalar(select(Cluster).where(Cluster.name == moved["cluster"]))
            # what accounting said of the copy that waited there (nothing ran) is no longer this job's
            session.execute(update(UsageRecordRow).where(UsageRecordRow.job_id == job.id,
                                                         UsageRecordRow.cluster_id == job.cluster_id)
                            .values(job_id=None))
            detail = (f"re-routed from {old_cluster} (job {old_native}, pending past its predicted start "
                      f"{job.predicted_start:%H:%M:%S}) to {moved['cluster']}/{moved['partition']} as {native_id}")
            job.cluster_id, job.partition, job.native_id = cluster.id, moved["partition"], native_id
            job.hold_id, job.max_cost, job.reroutes = new_hold_id, moved["cost"], job.reroutes + 1
            job.predicted_start = utcnow() + timedelta(seconds=moved["wait"])
            job.routing = moved["decision"].to_json() | {
                "rerouted_from": old_cluster, "previous": (job.routing or {}).get("chosen"),
                "constraints": (job.routing or {}).get("constraints") or {}}
            session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail=detail))
            report.moved.append((job_id, old_cluster, moved["cluster"]))

    @staticmethod
    def _stop_if_pending(adapter, native_id: str) -> bool:
        """Hold it (it cannot start now), check it still waits, then cancel it. False if it runs."""
        try:
            adapter.pause(native_id)
            status = adapter.status([native_id]).get(native_id)
            if status is None or status.state != JobState.PENDING:
                adapter.resume(native_id)
                return False
            adapter.cancel(native_id)
            return True
        except (ClusterError, LookupError, AttributeError):
            return False

    def _void(self, hold_id: int, memo: str) -> None:
        with self.platform.db.session() as session:
            hold = session.get(Transfer, hold_id)
            if hold is not None and ledger.open_hold(session, hold):
                ledger.resolve(session, f"void:{hold.key}", hold, 0, memo=memo)

    def _back_home(self, job_id: int, old_cluster: str, new_hold_id: int, why: str) -> None:
        """The new cluster refused after the old copy was cancelled: submit it where it was."""
        self._void(new_hold_id, f"job {job_id}: {why}")
        with self.platform.db.session() as session:
            job = session.get(Job, job_id)
            old_spec = JobSpec.model_validate(job.spec).model_copy()
            user_name = session.get(User, job.owner_id).name
            home = session.scalar(select(Cluster).where(Cluster.name == old_cluster))
            job.workdir, job.stdout_path, job.stderr_path = job_paths(
                self.platform, old_cluster, user_name, job.id, old_spec.options, job_name=job.name,
                unix_user=path_unix_user(session, self.platform, home, job.owner_id))
            old_spec = old_spec.model_copy(update={"resources": old_spec.resources.model_copy(
                update={"partition": job.partition})})
            job.spec = old_spec.model_dump(mode="json")
            if job.app:
                job.script = job.app["scripts"][old_cluster]
            request = request_for(session, self.platform, job)
        try:
            native_id = self.platform.adapter(old_cluster).submit(request)
        except (SubmitRejected, ClusterError) as exc:
            with self.platform.db.session() as session:
                job = session.get(Job, job_id)
                job.reroutes += 1
                apply_state(session, job, JobState.FAILED, f"re-routing failed ({why}) and {old_cluster} "
                                                           f"refused it back: {exc}")
                job.end_time = utcnow()
            return
        with self.platform.db.session() as session:
            job = session.get(Job, job_id)
            job.native_id, job.reroutes = native_id, job.reroutes + 1
            session.execute(update(UsageRecordRow).where(UsageRecordRow.job_id == job.id,
                                                         UsageRecordRow.native_id != native_id)
                            .values(job_id=None))  # the cancelled copy's record is not this job's
            session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                                 detail=f"re-routing failed ({why}); resubmitted to {old_cluster} as {native_id}"))

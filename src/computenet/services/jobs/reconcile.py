"""Jobs whose money would otherwise stay held: lost by the scheduler, interrupted
submissions, and finished jobs without accounting, with the operator's way to resolve them.

Every way out settles the job once: its hold is posted (for what an operator
charges) or voided, through the ledger's keyed, immutable entries, so doing it
twice is refused rather than doubled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...billing import funds
from ...billing.ledger import money, open_hold
from ...domain.money import MoneyError, to_decimal
from ...domain.states import JobState
from ...store.models import Account, Cluster, Job, JobEvent, Partition, Transfer, User
from ...store.types import utcnow
from .. import audit
from ...messages import Money, msg
from ..errors import Conflict, InvalidRequest, NotFound
from ..integration.notifications import JOB_LOST, JOB_WITHDRAWN

log = logging.getLogger(__name__)

# how long a live job may be out of the scheduler's sight (out of squeue with accounting
# not final, or its id on another job) before it counts as lost: sacct lags seconds, not minutes
LOST_AFTER = timedelta(minutes=3)
ACTIONS = ("adopt", "withdraw", "release", "charge")


def _product_line(session: Session, job: Job) -> str:
    part = session.scalar(select(Partition).where(Partition.cluster_id == job.cluster_id,
                                                  Partition.name == job.partition))
    return part.product_line if part else "hpc"


def _settle(session: Session, job: Job, amount: Decimal) -> None:
    """Post ``amount`` of the job's hold (0: void it; interim charges above it come back)."""
    funds.settle(session, job, amount, _product_line(session, job))
    job.settled_at = utcnow()
    job.needs_reconcile = False
    job.missing_since = None


def tell_owner(session: Session, job: Job, kind: str, message: str) -> None:
    """One notice to the job's owner (e-mail and webhook go out with it); said once per job and kind."""
    from ..integration.notifications import notify_user

    owner, account = session.get(User, job.owner_id), session.get(Account, job.account_id)
    notify_user(session, owner, account, kind, message, f"{kind}:{job.id}:{owner.id}")


def _end(session: Session, job: Job, state: JobState, detail: str) -> None:
    session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=state.value, detail=detail[:1000]))
    job.state = state.value
    job.reason = detail[:1000]
    job.end_time = job.end_time or utcnow()


def mark_lost(session: Session, job: Job, detail: str) -> None:
    """The scheduler forgot the job: LOST, hold voided (nothing charged), owner told.

    A final record that still turns up later (matched by its comment) is charged then,
    as any record after settlement is."""
    cluster = session.get(Cluster, job.cluster_id)
    _end(session, job, JobState.LOST, detail)
    _settle(session, job, Decimal("0"))
    tell_owner(session, job, "job_lost",
               msg(JOB_LOST, job=job.id, name=job.name, cluster=cluster.name, detail=detail))
    log.error("job %s on %s lost: %s", job.id, cluster.name, detail)


def withdraw(session: Session, job: Job, detail: str) -> None:
    """A submission that never reached the cluster: CANCELLED, hold voided, owner told."""
    _end(session, job, JobState.CANCELLED, f"withdrawn: {detail}")
    _settle(session, job, Decimal("0"))
    tell_owner(session, job, "job_withdrawn",
               msg(JOB_WITHDRAWN, job=job.id, name=job.name, detail=detail))


@dataclass(frozen=True)
class Pending:
    """A job an operator must decide on."""

    id: int
    owner: str
    account: str
    cluster: str
    native_id: str | None
    state: str
    submitted_at: datetime
    end_time: datetime | None
    held: Decimal
    max_cost: Decimal
    why: str
    actions: tuple[str, ...]

    def to_json(self) -> dict:
        return {"id": self.id, "owner": self.owner, "account": self.account, "cluster": self.cluster,
                "native_id": self.native_id, "state": self.state, "submitted_at": self.submitted_at.isoformat(),
                "end_time": self.end_time.isoformat() if self.end_time else None, "held": str(self.held),
                "max_cost": str(self.max_cost), "why": self.why, "actions": list(self.actions)}


def _held(session: Session, job: Job) -> Decimal:
    hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    if hold is None or not open_hold(session, hold):
        return Decimal("0.00")
    return money(hold.amount)


def _actions(job: Job) -> tuple[str, ...]:
    if JobState(job.state).is_terminal:
        return ("release", "charge")
    return ("adopt", "withdraw") if job.native_id is None else ("withdraw",)


def _why(job: Job) -> str:
    if JobState(job.state).is_terminal:
        return "ended, and after the grace period its accounting is incomplete (a record or task missing, or unpriced)"
    if job.native_id is None:
        return "no job id from the cluster (a submission or move that never finished)"
    return "flagged for reconciliation"


def needing(session: Session) -> list[Pending]:
    """Every job flagged for an operator, oldest first."""
    jobs = session.scalars(select(Job).where(Job.needs_reconcile.is_(True), Job.settled_at.is_(None))
                           .order_by(Job.id)).all()
    out = []
    for job in jobs:
        out.append(Pending(job.id, session.get(User, job.owner_id).name, session.get(Account, job.account_id).name,
                           session.get(Cluster, job.cluster_id).name, job.native_id, job.state, job.submitted_at,
                           job.end_time, _held(session, job), job.max_cost, _why(job), _actions(job)))
    return out


def resolve(session: Session, job_id: int, action: str, who: audit.Who, native_id: str | None = None,
            amount: object | None = None, note: str = "") -> Job:
    """An operator's decision on a flagged job; each is audited in the same transaction.

    adopt: the cluster has it under ``native_id`` (the poller follows it from there);
    withdraw: it never ran (or is to be given up): CANCELLED, nothing charged;
    release: it ended, charge only its rated records (none: nothing); charge: it ended, charge
    ``amount`` (at most its max cost) instead.
    """
    if action not in ACTIONS:
        raise InvalidRequest(msg("unknown action %(action)r (use %(actions)s)", action=action,
                                 actions=", ".join(ACTIONS)))
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(msg("no job %(job_id)s", job_id=job_id))
    if not job.needs_reconcile or job.settled_at is not None:
        raise Conflict(msg("job %(job_id)s does not need reconciling (state %(state)s, settled)", job_id=job_id,
                           state=job.state) if job.settled_at else
                       msg("job %(job_id)s does not need reconciling (state %(state)s)", job_id=job_id,
                           state=job.state))
    if action not in _actions(job):
        said = dict(job_id=job_id, state=job.state, actions=" or ".join(_actions(job)), action=action)
        raise InvalidRequest(msg("job %(job_id)s (%(state)s, no cluster id) can be resolved with %(actions)s, not "
                                 "%(action)s", **said) if job.native_id is None else
                             msg("job %(job_id)s (%(state)s) can be resolved with %(actions)s, not %(action)s", **said))
    why = f" ({note})" if note else ""
    if action == "adopt":
        if not native_id or not native_id.isdigit() or len(native_id) > 20:
            raise InvalidRequest(msg("adopt needs the job's id on the cluster (digits)"))
        job.native_id = native_id
        job.needs_reconcile = False
        job.missing_since = None
        if job.state == JobState.SUBMITTING.value:
            job.state = JobState.PENDING.value
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                             detail=f"adopted as {native_id} by {who.actor}{why}"))
    elif action == "withdraw":
        withdraw(session, job, f"by operator {who.actor}{why}")
    elif action == "release":  # charge what was measured and rated, nothing for the rest
        from ..billing.charging import settle_job

        settle_job(session, job)
        job.missing_since = None
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                             detail=f"settled by {who.actor} at its rated charges{why}"))
    else:
        value = Decimal("0")
        if action == "charge":
            try:
                value = to_decimal(amount if amount is not None else "")
            except MoneyError as exc:
                raise InvalidRequest(msg("charge needs an amount: %(why)s", why=exc)) from None
            if value < 0 or value > job.max_cost or value != value.quantize(Decimal("0.01")):
                raise InvalidRequest(msg("the amount must be between 0.00 and the job's max cost %(most)s, in cents",
                                         most=Money(job.max_cost)))
        _settle(session, job, value)
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                             detail=f"settled by {who.actor} at {value}{why}"))
    audit.record(session, who, "reconcile", f"job {job.id}", decision=action, native_id=native_id,
                 amount=None if amount is None else str(amount), note=note)
    session.flush()
    return job

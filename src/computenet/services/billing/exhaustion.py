"""When an account's money runs out under running jobs.

New submissions are always refused once nothing is available (the funds
check and the cluster block). Running jobs are covered by their holds, so
an account only goes *below* zero available through an overrun, a re-pricing
or a credit line lowered under running jobs. Then the account's policy
applies after a grace period, with notice first:

- ``block``: nothing more (running jobs finish and are charged);
- ``hold``: running jobs are suspended and pending ones held, until a top-up
  brings available funds back to zero or above, when they are resumed;
- ``cancel``: the account's running and pending jobs are cancelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...billing import funds
from ...billing.ledger import CUSTOMER
from ...clusters.base import ClusterError
from ...domain.states import JobState
from ...store.models import Account, Job, JobEvent, LedgerAccount
from ...store.types import utcnow
from .. import audit
from ..errors import InvalidRequest
from ...messages import Money, msg
from ..integration.notifications import EXHAUSTED_BLOCK, EXHAUSTED_CANCEL, EXHAUSTED_HOLD, RESTORED, notify_members
from ..platform import Platform

log = logging.getLogger(__name__)
POLICIES = ("block", "hold", "cancel")
_DETAIL = {"pause": "suspended or held: its account has no funds",
           "cancel": "cancel requested: its account has no funds",
           "resume": "resumed: its account has funds again"}
_LIVE = [JobState.PENDING.value, JobState.RUNNING.value, JobState.SUSPENDED.value]


def set_policy(session: Session, account: Account, policy: str, grace_minutes: int | None = None) -> None:
    if policy not in POLICIES:
        raise InvalidRequest(msg("unknown exhaustion policy %(policy)r (use %(listed)s)", policy=policy, listed=", ".join(POLICIES)))
    if grace_minutes is not None:
        if not isinstance(grace_minutes, int) or isinstance(grace_minutes, bool) or not 0 <= grace_minutes <= 43_200:
            raise InvalidRequest(msg("the grace period is a whole number of minutes between 0 and 43200 (30 days)"))
        account.exhaustion_grace_minutes = grace_minutes
    account.exhaustion_policy = policy
    session.flush()


@dataclass
class ExhaustionReport:
    exhausted: list[str] = field(default_factory=list)  # newly below zero (members told)
    paused: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Action:
    job_id: int
    cluster: str
    native_id: str
    what: str  # pause | cancel | resume


class ExhaustionWatch:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> ExhaustionReport:
        report = ExhaustionReport()
        with self.platform.db.session() as session:
            actions = self._plan(session, report)
        # the clusters are called outside any transaction (SQLite writers wait on an open one)
        for action in actions:
            try:
                adapter = self.platform.adapter(action.cluster)
                if action.what == "cancel":
                    adapter.cancel(action.native_id)
                elif action.what == "pause":
                    adapter.pause(action.native_id)
                else:
                    adapter.resume(action.native_id)
            except LookupError:
                pass  # already gone: the poller settles it
            except (ClusterError, AttributeError) as exc:
                report.errors.append(f"job {action.job_id}: {action.what} failed: {exc}")
                log.warning("exhaustion policy: %s of job %s failed: %s", action.what, action.job_id, exc)
                continue
            with self.platform.db.session() as session:
                self._record(session, action, report)
        return report

    def _plan(self, session: Session, report: ExhaustionReport) -> list[_Action]:
        now = utcnow()
        actions: list[_Action] = []
        # in arrears now, or were at the last pass (one query, not one per account)
        customer = LedgerAccount
        in_arrears = select(customer.account_id).where(
            customer.code == CUSTOMER,
            customer.credits_posted - customer.debits_posted + customer.credit_limit - customer.debits_pending < 0)
        candidates = session.scalars(select(Account).where(or_(
            Account.exhausted_since.is_not(None), Account.id.in_(in_arrears)))).all()
        for account in candidates:
            available = funds.funds(session, account).available
            if available >= 0:
                if account.exhausted_since is not None:
                    account.exhausted_since = None
                    report.restored.append(account.name)
                    actions += [_Action(j.id, j.cluster.name, j.native_id, "resume")
                                for j in self._jobs(session, account, paused=True)]
                    notify_members(session, account, "restored",
                                   msg(RESTORED, account=account.name, available=Money(available, account.currency)),
                                   f"restored:{account.id}:{now.isoformat()}")
                continue
            if account.exhausted_since is None:
                account.exhausted_since = now
                report.exhausted.append(account.name)
                deadline = now + timedelta(minutes=account.exhaustion_grace_minutes)
                template = {"block": EXHAUSTED_BLOCK, "hold": EXHAUSTED_HOLD,
                            "cancel": EXHAUSTED_CANCEL}[account.exhaustion_policy]
                notify_members(session, account, "exhausted",
                               msg(template, account=account.name, arrears=Money(-available, account.currency),
                                   deadline=deadline.strftime("%Y-%m-%d %H:%M")),
                               f"exhausted:{account.id}:{now.isoformat()}")
                continue
            due = account.exhausted_since + timedelta(minutes=account.exhaustion_grace_minutes)
            if account.exhaustion_policy == "block" or now < due:
                continue
            what = "pause" if account.exhaustion_policy == "hold" else "cancel"
            actions += [_Action(j.id, j.cluster.name, j.native_id, what)
                        for j in self._jobs(session, account, paused=False)]
        return actions

    @staticmethod
    def _jobs(session: Session, account: Account, paused: bool) -> list[Job]:
        query = select(Job).where(Job.account_id == account.id, Job.state.in_(_LIVE), Job.native_id.is_not(None))
        if paused:  # suspended or held by us, not those we asked to cancel
            cancelled = select(JobEvent.job_id).where(JobEvent.detail == _DETAIL["cancel"])
            query = query.where(Job.paused_for_funds_at.is_not(None), Job.id.not_in(cancelled))
        else:
            query = query.where(Job.paused_for_funds_at.is_(None))
        return list(session.scalars(query.order_by(Job.id)))

    @staticmethod
    def _record(session: Session, action: _Action, report: ExhaustionReport) -> None:
        job = session.get(Job, action.job_id)
        # a cancelled job keeps the mark too: it is asked once, the poller records its end
        job.paused_for_funds_at = None if action.what == "resume" else utcnow()
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail=_DETAIL[action.what]))
        audit.record(session, audit.SYSTEM, f"job.{action.what}_for_funds", f"job:{job.id}",
                     account=job.account.name)
        {"pause": report.paused, "cancel": report.cancelled, "resume": report.resumed}[action.what].append(job.id)

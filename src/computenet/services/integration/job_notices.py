"""Telling people their job ended: one notice per job when it is settled (an array is one job, so one
notice for all its tasks), with its state, where it ran and what it cost, to its owner, in the portal
and the API, and by e-mail when the owner asked for it (``notify_job_ended``: off, app, email).

The notice is written in the settlement's transaction (the deliveries table is an outbox), so a job is
told once, exactly when its charge is final, and never for a charge that rolled back.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from ...messages import Money, msg
from ...store.models import Account, Cluster, Job, User
from ..errors import InvalidRequest

CHOICES = ("off", "app", "email")


def job_ended(session: Session, job: Job, cost: Decimal) -> bool:
    """The owner's notice that the job ended; False when they turned these off (or were told already)."""
    from .notifications import JOB_ENDED, notify_user

    owner = session.get(User, job.owner_id)
    if owner is None or owner.notify_job_ended == "off":
        return False
    account = session.get(Account, job.account_id)
    cluster = session.get(Cluster, job.cluster_id)
    text = msg(JOB_ENDED, job=job.id, name=job.name, state=job.state, cluster=cluster.name if cluster else "?",
               cost=Money(cost.quantize(Decimal("0.01")), account.currency if account else None))
    return notify_user(session, owner, account, "job_ended", text, f"job_ended:{job.id}",
                       channels=("email",) if owner.notify_job_ended == "email" else ())


def set_choice(session: Session, user: User, choice: str) -> None:
    if choice not in CHOICES:
        raise InvalidRequest(msg("unknown choice %(value)r for job-ended notices (use %(listed)s)",
                                 value=choice, listed=", ".join(CHOICES)))
    user.notify_job_ended = choice
    session.flush()

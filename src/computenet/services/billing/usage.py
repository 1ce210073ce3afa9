"""Usage reports: what was used and what it cost, grouped the way people ask."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...store.models import Account, AccountMember, Charge, Cluster, Job, UsageRecordRow, User
from ..errors import InvalidRequest
from ...messages import msg

GROUPS = ("user", "account", "cluster", "partition", "day")


@dataclass
class UsageRow:
    key: str
    jobs: int
    core_hours: Decimal
    gpu_hours: Decimal
    cost: Decimal


def usage(session: Session, user: User, by: str, start: datetime | None, end: datetime | None) -> list[UsageRow]:
    """Rated usage in the accounts the user belongs to, by when it ran (its end)."""
    if by not in GROUPS:
        raise InvalidRequest(msg("cannot group by %(by)r (use one of %(listed)s)", by=by, listed=", ".join(GROUPS)))
    if start and end and end <= start:
        raise InvalidRequest(msg("--to must be after --from"))
    member_of = select(AccountMember.account_id).where(AccountMember.user_id == user.id)
    query = (
        select(Charge.job_id, Charge.core_seconds, Charge.gpu_seconds, Charge.amount, UsageRecordRow.end_time,
               UsageRecordRow.partition, User.name, Account.name, Cluster.name)
        .join(UsageRecordRow, UsageRecordRow.id == Charge.usage_record_id)
        .join(Job, Job.id == Charge.job_id)
        .join(User, User.id == Job.owner_id)
        .join(Account, Account.id == Charge.account_id)
        .join(Cluster, Cluster.id == Job.cluster_id)
        .where(Charge.account_id.in_(member_of))
    )
    if start:
        query = query.where(UsageRecordRow.end_time >= start)
    if end:
        query = query.where(UsageRecordRow.end_time < end)
    groups: dict[str, dict] = defaultdict(lambda: {"jobs": set(), "core": 0, "gpu": 0, "cost": Decimal("0.00")})
    for job_id, core_s, gpu_s, amount, ended, partition, owner, account, cluster in session.execute(query):
        key = {"user": owner, "account": account, "cluster": cluster,
               "partition": f"{cluster}/{partition}", "day": ended.strftime("%Y-%m-%d")}[by]
        g = groups[key]
        g["jobs"].add(job_id)
        g["core"] += core_s
        g["gpu"] += gpu_s
        g["cost"] += amount
    hours = lambda seconds: (Decimal(seconds) / 3600).quantize(Decimal("0.0001"))  # noqa: E731
    return [UsageRow(key, len(g["jobs"]), hours(g["core"]), hours(g["gpu"]), g["cost"])
            for key, g in sorted(groups.items())]

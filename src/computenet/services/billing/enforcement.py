"""Enforcement at the cluster: nobody bypasses the balance with a direct sbatch.

Each platform account can be mapped to a Slurm account per cluster. The
reconciler compares, every pass, what should be (blocked when available
funds are exhausted) with what Slurm says (GrpSubmitJobs=0 on the account's
association) and corrects Slurm. So a block comes back after a Slurm
restore, and a top-up lifts it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...billing import funds
from ...clusters.base import ClusterError
from ...store.models import Account, Cluster, SlurmAccount
from ...store.types import utcnow
from .. import audit
from ..errors import Conflict, InvalidRequest, NotFound
from ...messages import msg
from ..integration.notifications import BLOCKED, UNBLOCKED, notify_members
from ..platform import Platform

log = logging.getLogger(__name__)
# Slurm account names as sacctmgr stores them; nothing that could change a where-clause
SLURM_ACCOUNT = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,63}$")


def map_account(session: Session, cluster_name: str, slurm_account: str, account: Account, who: audit.Who) -> SlurmAccount:
    if not SLURM_ACCOUNT.match(slurm_account):
        raise InvalidRequest(msg("invalid Slurm account name %(name)r (lower-case letters, digits, . _ -)",
                                 name=slurm_account))
    cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
    if cluster is None:
        raise NotFound(msg("unknown cluster %(cluster)r", cluster=cluster_name))
    if session.scalar(select(SlurmAccount).where(SlurmAccount.cluster_id == cluster.id,
                                                 SlurmAccount.slurm_account == slurm_account)):
        raise Conflict(msg("%(name)s on %(cluster)s is already mapped", name=slurm_account, cluster=cluster_name))
    row = SlurmAccount(cluster_id=cluster.id, slurm_account=slurm_account, account_id=account.id)
    session.add(row)
    audit.record(session, who, "slurm_account.map", f"account:{account.name}", cluster=cluster_name,
                 slurm_account=slurm_account)
    session.flush()
    return row


def slurm_account_for(session: Session, cluster_id: int, account_id: int) -> str | None:
    return session.scalar(select(SlurmAccount.slurm_account).where(
        SlurmAccount.cluster_id == cluster_id, SlurmAccount.account_id == account_id).limit(1))


def account_for(session: Session, cluster_id: int, slurm_account: str | None) -> Account | None:
    if not slurm_account:
        return None
    row = session.scalar(select(SlurmAccount).where(SlurmAccount.cluster_id == cluster_id,
                                                    SlurmAccount.slurm_account == slurm_account))
    return session.get(Account, row.account_id) if row else None


@dataclass
class EnforcementReport:
    checked: int = 0
    blocked: list[str] = field(default_factory=list)
    unblocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Enforcer:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> EnforcementReport:
        report = EnforcementReport()
        with self.platform.db.session() as session:
            by_cluster: dict[str, dict[str, bool]] = {}
            for row, cluster in session.execute(select(SlurmAccount, Cluster).join(Cluster)):
                account = session.get(Account, row.account_id)
                # out of money: nothing left to hold for a new job
                by_cluster.setdefault(cluster.name, {})[row.slurm_account] = funds.funds(session, account).available <= 0
        for cluster_name, desired in by_cluster.items():
            adapter = self.platform.adapters.get(cluster_name)
            if adapter is None or not hasattr(adapter, "set_account_blocked"):
                continue  # the local executor has no direct way in: nothing to enforce
            try:
                actual = adapter.account_limits(sorted(desired))
                for slurm_account, blocked in sorted(desired.items()):
                    report.checked += 1
                    if actual.get(slurm_account) is blocked:
                        continue
                    adapter.set_account_blocked(slurm_account, blocked)
                    (report.blocked if blocked else report.unblocked).append(f"{cluster_name}/{slurm_account}")
            except ClusterError as exc:
                report.errors.append(f"{cluster_name}: {exc}")
                log.warning("enforcement on %s failed: %s", cluster_name, exc)
                continue
            with self.platform.db.session() as session:
                cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
                for row in session.scalars(select(SlurmAccount).where(SlurmAccount.cluster_id == cluster.id)):
                    changed = row.blocked != desired[row.slurm_account]
                    row.blocked, row.checked_at = desired[row.slurm_account], utcnow()
                    if changed:
                        audit.record(session, audit.SYSTEM, "slurm_account.block" if row.blocked else
                                     "slurm_account.unblock", f"{cluster_name}/{row.slurm_account}")
                        account = session.get(Account, row.account_id)
                        notify_members(
                            session, account, "blocked" if row.blocked else "unblocked",
                            msg(BLOCKED if row.blocked else UNBLOCKED, account=account.name, cluster=cluster_name,
                                slurm_account=row.slurm_account),
                            f"{'block' if row.blocked else 'unblock'}:{row.id}:{utcnow().isoformat()}")
        return report

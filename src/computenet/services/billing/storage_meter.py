"""Storage GB-days: once a day, what each account keeps in workspaces is measured and charged.

A user's own workspace is charged to their default account, a project's to the project. The
figure measured when the meter runs stands for the day before (a day is charged once: the
ledger key is account, site and day, so a second pass on the same day charges nothing more).
Unfinished uploads past their keep time are dropped on the same pass.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from ...billing import ledger, storage
from ...store.models import Account, Cluster, User
from ...store.types import utcnow
from ..files import workspaces
from ..platform import Platform

log = logging.getLogger(__name__)
GB = Decimal(1024 ** 3)


@dataclass
class MeterReport:
    day: date | None = None
    measured: dict[str, int] = field(default_factory=dict)  # account name -> bytes
    charged: dict[str, Decimal] = field(default_factory=dict)  # account name -> amount
    skipped: list[str] = field(default_factory=list)
    uploads_dropped: int = 0


class StorageMeter:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def measure(self) -> dict[int, int]:
        """Bytes per paying account: users' workspaces (their default account) and projects'."""
        per_account: dict[int, int] = defaultdict(int)
        root = self.platform.settings.storage_root()
        with self.platform.db.session() as session:
            for user in session.scalars(select(User).where(User.default_account_id.is_not(None))):
                if (root / "users" / user.name).is_dir():
                    space = workspaces.own_space(self.platform, user)
                    per_account[user.default_account_id] += workspaces.workspace(self.platform, space).usage()
            for account in session.scalars(select(Account)):
                if (root / "projects" / account.name).is_dir():
                    space = workspaces.Space(f"project:{account.name}", f"@{account.name}",
                                             root / "projects" / account.name, 1 << 62, account.id)
                    per_account[account.id] += workspaces.workspace(self.platform, space).usage()
        return dict(per_account)

    def run_once(self, day: date | None = None) -> MeterReport:
        day = day or utcnow().date() - timedelta(days=1)
        report = MeterReport(day=day)
        settings = self.platform.settings
        site_cluster = settings.files.storage_cluster or settings.default_cluster
        usage = self.measure()
        with self.platform.db.session() as session:
            report.uploads_dropped = workspaces.drop_stale_uploads(session, self.platform)
            cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == site_cluster))
            for account_id, used in sorted(usage.items()):
                account = session.get(Account, account_id)
                report.measured[account.name] = used
                gb = (Decimal(used) / GB).quantize(Decimal("0.000001"))
                try:
                    with session.begin_nested():
                        charge = storage.charge_day(session, account, cluster_id, day, gb, settings.billing.rounding)
                except storage.StorageError as exc:  # no storage price on that site: nothing is charged
                    report.skipped.append(f"{account.name}: {exc}")
                    continue
                except ledger.LedgerError as exc:  # charged already today with another figure
                    report.skipped.append(f"{account.name}: {day} charged already ({exc})")
                    continue
                if charge is not None:
                    report.charged[account.name] = Decimal(charge.amount) / 100
        return report

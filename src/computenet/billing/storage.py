"""Storage GB-days: what an account keeps on a site's storage, charged once per account, site and day.

The files service measures usage (issue 5's workspaces); this turns a day's
measurement into one idempotent ledger charge at the site's storage price
in force that day. A second measurement of the same day is the same charge.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal

from sqlalchemy.orm import Session

from ..domain.money import CENT
from ..store.models import Account, Transfer
from . import funds, ledger, pricebook
from .rating import ROUNDING

PRODUCT_LINE = "storage"


class StorageError(ValueError):
    pass


def charge_day(session: Session, account: Account, cluster_id: int, day: date, gb: Decimal,
               rounding: str = "half_up") -> Transfer | None:
    """Charge ``gb`` GB kept through ``day``; None when it rounds to nothing."""
    if not isinstance(gb, Decimal) or not gb.is_finite() or gb < 0:
        raise StorageError(f"storage used must be a non-negative Decimal of GB, not {gb!r}")
    at = datetime.combine(day, time(0), tzinfo=timezone.utc)
    price = pricebook.storage_price(session, cluster_id, at)
    if price is None:
        raise StorageError(f"cluster {cluster_id} has no storage price in force on {day}")
    amount = (gb * price).quantize(CENT, rounding=ROUNDING[rounding])
    if amount == 0:
        return None
    return ledger.transfer(
        session, f"storage:{account.id}:{cluster_id}:{day.isoformat()}", funds.customer(session, account),
        funds.revenue(session, PRODUCT_LINE, account.currency), ledger.cents(amount), "charge",
        memo=f"storage {day}: {gb} GB x {price}/GB-day")

"""The price book: versioned prices per cluster, partition, QOS, resource and GPU model.

A price applies from its ``effective_from`` until a newer one for the same
key; the most specific key wins (a partition over "*", a QOS over any, a
GPU model over any). Usage is priced at its start, so a price change never
reaches back into jobs that were already running.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..store.models import Contract, PriceItem
from ..store.types import utcnow
from .rating import Prices

RESOURCES = ("core_hour", "gpu_hour", "mem_gb_hour")
STORAGE = "storage_gb_day"  # priced per cluster (partition "*"), not per job
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class PriceError(ValueError):
    pass


def set_price(session: Session, cluster_id: int, partition: str, resource: str, unit_price: Decimal, *,
              effective_from: datetime | None = None, qos: str = "", gpu_model: str = "", actor: str = "",
              reason: str = "") -> PriceItem:
    """Add a new version of a price (never edits an old one)."""
    if resource not in RESOURCES + (STORAGE,):
        raise PriceError(f"unknown resource {resource!r} (use {', '.join(RESOURCES)})")
    if not isinstance(unit_price, Decimal):
        raise PriceError("a price must be a Decimal")
    if unit_price < 0:
        raise PriceError("a price cannot be negative")
    if unit_price != unit_price.quantize(Decimal("0.000001")):
        raise PriceError(f"price {unit_price} has more than 6 decimal places")
    key = (PriceItem.cluster_id == cluster_id, PriceItem.partition == partition, PriceItem.qos == qos,
           PriceItem.resource == resource, PriceItem.gpu_model == gpu_model)
    version = (session.scalar(select(func.max(PriceItem.version)).where(*key)) or 0) + 1
    item = PriceItem(cluster_id=cluster_id, partition=partition, qos=qos, resource=resource, gpu_model=gpu_model,
                     unit_price=unit_price, effective_from=effective_from or utcnow(), version=version,
                     actor=actor, reason=reason)
    session.add(item)
    session.flush()
    return item


def _price(session: Session, cluster_id: int, partition: str, resource: str, at: datetime, qos: str,
           gpu_model: str) -> Decimal | None:
    rows = session.scalars(
        select(PriceItem).where(
            PriceItem.cluster_id == cluster_id, PriceItem.resource == resource,
            PriceItem.partition.in_([partition, "*"]), PriceItem.qos.in_([qos, ""]),
            PriceItem.gpu_model.in_([gpu_model, ""]), PriceItem.effective_from <= at,
        )
    ).all()
    if not rows:
        return None
    # most specific key first, then the newest version of it
    best = max(rows, key=lambda r: (r.partition != "*", r.qos != "", r.gpu_model != "", r.effective_from, r.version))
    return best.unit_price


def prices_at(session: Session, cluster_id: int, partition: str, at: datetime, qos: str = "",
              gpu_model: str | None = None) -> Prices | None:
    """The prices in force at ``at``; None when the core-hour price is missing (one query for all three)."""
    rows = session.scalars(
        select(PriceItem).where(
            PriceItem.cluster_id == cluster_id, PriceItem.resource.in_(RESOURCES),
            PriceItem.partition.in_([partition, "*"]), PriceItem.qos.in_([qos, ""]),
            PriceItem.gpu_model.in_([gpu_model or "", ""]), PriceItem.effective_from <= at,
        )
    ).all()

    def best(resource: str, models: tuple[str, ...]) -> Decimal | None:
        mine = [r for r in rows if r.resource == resource and r.gpu_model in models]
        if not mine:
            return None
        return max(mine, key=lambda r: (r.partition != "*", r.qos != "", r.gpu_model != "", r.effective_from,
                                        r.version)).unit_price

    core = best("core_hour", ("",))
    if core is None:
        return None
    gpu = best("gpu_hour", (gpu_model or "", ""))
    mem = best("mem_gb_hour", ("",))
    return Prices(core, gpu or Decimal("0"), mem or Decimal("0"))


def storage_price(session: Session, cluster_id: int, at: datetime) -> Decimal | None:
    return _price(session, cluster_id, "*", STORAGE, at, "", "")


def current(session: Session, cluster_id: int, partition: str, resource: str, gpu_model: str = "") -> Decimal | None:
    """The exact item for this key in force now (no wildcards): what config sync compares with."""
    row = session.scalar(
        select(PriceItem).where(PriceItem.cluster_id == cluster_id, PriceItem.partition == partition,
                                PriceItem.qos == "", PriceItem.resource == resource, PriceItem.gpu_model == gpu_model,
                                PriceItem.effective_from <= utcnow())
        .order_by(PriceItem.effective_from.desc(), PriceItem.version.desc()).limit(1))
    return row.unit_price if row else None


def history(session: Session, cluster_id: int) -> list[PriceItem]:
    return list(session.scalars(select(PriceItem).where(PriceItem.cluster_id == cluster_id)
                                .order_by(PriceItem.partition, PriceItem.resource, PriceItem.effective_from)))


def with_contract(session: Session, prices: Prices, tenant_id: int | None, cluster_id: int, partition: str,
                  at: datetime) -> Prices:
    """A tenant's contract over list prices: its unit price replaces, its discount reduces.

    Per resource the most specific contract in force wins (a cluster over
    every cluster, a partition over "*", a resource over "*").
    """
    if tenant_id is None:
        return prices
    rows = session.scalars(select(Contract).where(
        Contract.tenant_id == tenant_id, or_(Contract.cluster_id.is_(None), Contract.cluster_id == cluster_id),
        Contract.partition.in_([partition, "*"]), Contract.effective_from <= at,
        or_(Contract.effective_to.is_(None), Contract.effective_to > at))).all()
    if not rows:
        return prices
    values = {}
    for resource in RESOURCES:
        listed = getattr(prices, resource)
        matching = [r for r in rows if r.resource in (resource, "*")]
        if not matching:
            values[resource] = listed
            continue
        best = max(matching, key=lambda r: (r.cluster_id is not None, r.partition != "*", r.resource != "*",
                                            r.effective_from, r.id))
        if best.unit_price is not None and best.resource != "*":
            values[resource] = best.unit_price
        elif best.discount_percent is not None:
            values[resource] = (listed * (Decimal(100) - best.discount_percent) / Decimal(100)).quantize(
                Decimal("0.000001"))
        else:
            values[resource] = listed
    return Prices(**values)

"""One way to price anything: holds, interim charges and final rating agree."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_UP, Decimal
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ...billing import pricebook
from ...billing.rating import Rated, Rules, Strategy, Usage, rate_usage
from ...config import BillingConfig
from ...domain.money import CENT
from ...domain.resources import JobSpec, ResourceRequest, allocation
from ...messages import msg
from ...store.models import Account, Job, Partition
from ...store.types import utcnow
from ..errors import InvalidRequest, Unavailable

if TYPE_CHECKING:  # platform.py imports clusters.py, which imports this module
    from ..platform import Platform


def rules_for(part: Partition, billing: BillingConfig) -> Rules:
    return Rules(
        strategy=Strategy(part.billing_strategy or "cores"),
        mem_per_core_mb=part.mem_per_node_mb // part.cores_per_node if part.cores_per_node else 0,
        cores_per_gpu=part.cores_per_node // part.gpus_per_node if part.gpus_per_node else 0,
        rounding=billing.rounding,
        minimum_charge=billing.minimum_charge,
    )


def prices_for(session: Session, part: Partition, at: datetime, tenant_id: int | None = None,
               gpu_model: str | None = None):
    """List prices at ``at``, with the tenant's contract applied; None when unpriced."""
    prices = pricebook.prices_at(session, part.cluster_id, part.name, at, gpu_model=gpu_model or part.gpu_type)
    if prices is None:
        return None
    return pricebook.with_contract(session, prices, tenant_id, part.cluster_id, part.name, at)


def quote(session: Session, part: Partition, usage: Usage, at: datetime, billing: BillingConfig,
          gpu_model: str | None = None, tenant_id: int | None = None) -> Rated | None:
    """The price of ``usage`` on ``part`` at ``at`` for a tenant; None when the partition has no price then."""
    prices = prices_for(session, part, at, tenant_id, gpu_model)
    if prices is None:
        return None
    return rate_usage(usage, prices, rules_for(part, billing))


def sync_prices(session: Session, part: Partition, price, strategy: str, bootstrap: bool,
                actor: str = "config") -> None:
    """Make the price book agree with the configured list price (a new version on change).

    ``bootstrap``: the cluster had no prices yet, so these cover all time
    before them; any later price applies from now, never backwards.
    """
    part.billing_strategy = strategy
    if price is None:
        return
    wanted = {("core_hour", ""): price.core_hour, ("gpu_hour", ""): price.gpu_hour,
              ("mem_gb_hour", ""): price.mem_gb_hour}
    wanted.update({("gpu_hour", model): value for model, value in price.gpu_hour_by_model.items()})
    for (resource, model), value in wanted.items():
        now = pricebook.current(session, part.cluster_id, part.name, resource, model)
        if now == value:
            continue
        if now is None and value == 0 and resource != "core_hour":
            continue  # nothing to say: no price is zero for optional resources
        pricebook.set_price(session, part.cluster_id, part.name, resource, value, gpu_model=model, actor=actor,
                            effective_from=pricebook.EPOCH if bootstrap else None,
                            reason="from configuration")


def job_memory_mb(job: Job) -> int:
    """Memory the job asked for on all its nodes (0 when it did not say)."""
    res = ResourceRequest(**(job.spec.get("resources") or {}))
    return res.mem_per_node_needed_mb() * res.nodes


MAX_QUOTE = Decimal(10) ** 12  # far above any account, far below what the ledger's integers hold


def max_cost(session: Session, platform: Platform, spec: JobSpec, minutes: int, part: Partition,
             account: Account, exact: bool = False) -> Decimal:
    """What the job costs if it runs to its time limit, at today's prices for this account: what
    Slurm allocates on this partition's nodes (whole nodes for --exclusive, GPUs however they are
    asked for), for every array task, rounded up to the cent so that the hold covers the charge."""
    res = spec.resources
    alloc = allocation(res, cores_per_node=part.cores_per_node, mem_per_node_mb=part.mem_per_node_mb,
                       gpus_per_node=part.gpus_per_node)
    usage = Usage(minutes * 60, alloc.cores, alloc.gpus, alloc.mem_mb)
    rated = quote(session, part, usage, utcnow(), platform.settings.billing, gpu_model=res.gpu_type,
                  tenant_id=account.tenant_id)
    if rated is None:
        raise Unavailable(msg("partition %(part)s has no price in force; an operator must set one",
                              part=part.name))
    cost = rated.exact_amount * spec.options.array_tasks
    if cost > MAX_QUOTE:
        raise InvalidRequest(msg("the job may cost %(value)s %(currency)s on %(part)s: more than any "
                                 "account can hold; ask for fewer resources, tasks or time",
                                 value=cost.quantize(CENT), currency=account.currency, part=part.name))
    return cost if exact else cost.quantize(CENT, rounding=ROUND_UP)

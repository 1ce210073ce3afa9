"""The router: feasibility, then price and predicted wait per candidate, then a
policy's ranking. Pure: prices and waits come from callables, so the live
service (price book, live queues) and the simulator (its own clusters) share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Callable

from ..domain.resources import ResourceRequest
from . import feasibility
from .model import Candidate, Constraints, Decision, Target
from .policies import POLICIES, RANKERS
from ..messages import Money, msg

PriceFn = Callable[[Target, int], "Decimal | None"]  # (target, time limit minutes) -> most the job can cost
WaitFn = Callable[[Target, int], "float | None"]  # (target, time limit minutes) -> predicted wait in seconds


@dataclass
class Router:
    policy: str = "earliest_start"
    options: dict = field(default_factory=dict)  # e.g. max_wait_s for owned_first, weights for weighted

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown routing policy {self.policy!r} (use {', '.join(POLICIES)})")

    def route(self, res: ResourceRequest, targets: list[Target], constraints: Constraints, price: PriceFn,
              wait: WaitFn, now: datetime | None = None) -> Decision:
        feasible: list[Candidate] = []
        rejected: list[Candidate] = []
        for target in targets:
            c = feasibility.check(res, target, constraints)
            if c.feasible:
                c.price = price(target, c.time_limit_minutes)
                if c.price is None:
                    c.refuse(msg("partition %(partition)s has no price in force", partition=target.partition))
                elif constraints.max_price is not None and c.price > constraints.max_price:
                    c.refuse(msg("may cost up to %(cost)s, above your maximum of %(most)s", cost=Money(c.held),
                                  most=Money(constraints.max_price)))
            if c.feasible:
                c.wait_s = wait(target, c.time_limit_minutes)
                if constraints.max_wait_s is not None and (c.wait_s is None or c.wait_s > constraints.max_wait_s):
                    most = format(constraints.max_wait_s / 60, ".0f")
                    c.refuse(msg("no start predicted, above your maximum of %(most)s min", most=most)
                             if c.wait_s is None else
                             msg("predicted wait %(wait)s min, above your maximum of %(most)s min",
                                 wait=format(c.wait_s / 60, ".0f"), most=most))
            (feasible if c.feasible else rejected).append(c)
        ranked = RANKERS[self.policy](feasible, **self.options)
        return Decision(self.policy, ranked, rejected, now)

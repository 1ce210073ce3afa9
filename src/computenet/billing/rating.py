"""Rate one accounting record: core-hours and GPU-hours x the partition's prices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..domain.money import round_money


@dataclass(frozen=True)
class Rated:
    core_seconds: int
    gpu_seconds: int
    amount: Decimal

    @property
    def core_hours(self) -> Decimal:
        return Decimal(self.core_seconds) / Decimal(3600)

    @property
    def gpu_hours(self) -> Decimal:
        return Decimal(self.gpu_seconds) / Decimal(3600)


def rate(elapsed_seconds: int, cpus: int, gpus: int, price_core_hour: Decimal, price_gpu_hour: Decimal) -> Rated:
    """Allocated (not used) resources x wall time, rounded once, to the cent."""
    if elapsed_seconds < 0 or cpus < 0 or gpus < 0:
        raise ValueError("usage cannot be negative")
    core_seconds = elapsed_seconds * cpus
    gpu_seconds = elapsed_seconds * gpus
    amount = (Decimal(core_seconds) * price_core_hour + Decimal(gpu_seconds) * price_gpu_hour) / Decimal(3600)
    return Rated(core_seconds, gpu_seconds, round_money(amount))

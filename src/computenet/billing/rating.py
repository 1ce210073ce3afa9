"""Rating: usage x prices under a partition's billing strategy. Pure, no I/O.

Strategies (what a job is billed for, per second of wall time):
  cores             allocated cores at the core-hour price, plus GPUs at the GPU price
  gpus              allocated GPUs at the GPU price; cores come with them
  max_cores_memory  max(cores, memory / memory-per-core) at the core-hour price, plus GPUs:
                    a job that takes a node's memory pays for the cores it blocks
  max_gpus_cores    max(GPUs, cores / cores-per-GPU) at the GPU price: a CPU-heavy job
                    on a GPU node pays for the GPUs it blocks
Memory GB-hours are added when the price book has a memory price. ``exact``
is the amount to a billionth (what the ledger charges: sub-cent usage is
carried per account, never rounded away, see ledger.usage_cents); ``amount``
is it rounded once, to the cent, by the configured rule (what a single charge
shows). Both are raised to the minimum charge for jobs that ran at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext
from enum import Enum

from ..domain.money import CENT

ROUNDING = {"half_up": ROUND_HALF_UP, "up": ROUND_UP, "down": ROUND_DOWN}
HOUR = Decimal(3600)
NANO = Decimal("0.000000001")  # what an exact amount keeps: a billion jobs drift less than half a unit


class Strategy(str, Enum):
    CORES = "cores"
    GPUS = "gpus"
    MAX_CORES_MEMORY = "max_cores_memory"
    MAX_GPUS_CORES = "max_gpus_cores"


@dataclass(frozen=True)
class Prices:
    core_hour: Decimal
    gpu_hour: Decimal = Decimal("0")
    mem_gb_hour: Decimal = Decimal("0")


@dataclass(frozen=True)
class Usage:
    elapsed_seconds: int
    cpus: int
    gpus: int = 0
    mem_mb: int = 0


@dataclass(frozen=True)
class Rules:
    strategy: Strategy = Strategy.CORES
    mem_per_core_mb: int = 0  # the node's memory / cores (max_cores_memory)
    cores_per_gpu: int = 0  # the node's cores / GPUs (max_gpus_cores)
    rounding: str = "half_up"
    minimum_charge: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDING:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDING)}")
        if self.minimum_charge < 0:
            raise ValueError("the minimum charge cannot be negative")


@dataclass(frozen=True)
class Rated:
    core_seconds: int  # billed core(-equivalent) seconds
    gpu_seconds: int  # billed GPU(-equivalent) seconds
    amount: Decimal  # to the cent
    exact: Decimal | None = None  # to a billionth; None only where built by hand

    @property
    def exact_amount(self) -> Decimal:
        return self.amount if self.exact is None else self.exact

    @property
    def core_hours(self) -> Decimal:
        return Decimal(self.core_seconds) / HOUR

    @property
    def gpu_hours(self) -> Decimal:
        return Decimal(self.gpu_seconds) / HOUR


def billed_units(usage: Usage, rules: Rules) -> tuple[Decimal, Decimal]:
    """(core units, GPU units) the strategy bills for."""
    cores, gpus = Decimal(usage.cpus), Decimal(usage.gpus)
    if rules.strategy is Strategy.GPUS:
        return Decimal(0), gpus
    if rules.strategy is Strategy.MAX_CORES_MEMORY and rules.mem_per_core_mb > 0:
        return max(cores, Decimal(usage.mem_mb) / Decimal(rules.mem_per_core_mb)), gpus
    if rules.strategy is Strategy.MAX_GPUS_CORES and rules.cores_per_gpu > 0:
        return Decimal(0), max(gpus, cores / Decimal(rules.cores_per_gpu))
    if rules.strategy is Strategy.MAX_GPUS_CORES:
        return Decimal(0), gpus
    return cores, gpus


def rate_usage(usage: Usage, prices: Prices, rules: Rules = Rules()) -> Rated:
    if min(usage.elapsed_seconds, usage.cpus, usage.gpus, usage.mem_mb) < 0:
        raise ValueError("usage cannot be negative")
    with localcontext() as ctx:
        ctx.prec = 60  # exact to a billionth for any usage a request can name
        return _rate(usage, prices, rules)


def _rate(usage: Usage, prices: Prices, rules: Rules) -> Rated:
    core_units, gpu_units = billed_units(usage, rules)
    seconds = Decimal(usage.elapsed_seconds)
    raw = (seconds * core_units * prices.core_hour + seconds * gpu_units * prices.gpu_hour
           + seconds * Decimal(usage.mem_mb) / Decimal(1024) * prices.mem_gb_hour) / HOUR
    amount = raw.quantize(CENT, rounding=ROUNDING[rules.rounding])
    exact = raw.quantize(NANO, rounding=ROUND_HALF_UP)
    if usage.elapsed_seconds > 0 and amount < rules.minimum_charge:
        amount = rules.minimum_charge.quantize(CENT)
    if usage.elapsed_seconds > 0 and exact < rules.minimum_charge:
        exact = rules.minimum_charge.quantize(CENT)
    return Rated(int((seconds * core_units).to_integral_value(ROUND_UP)),
                 int((seconds * gpu_units).to_integral_value(ROUND_UP)), amount, exact)


def rate(elapsed_seconds: int, cpus: int, gpus: int, price_core_hour: Decimal, price_gpu_hour: Decimal) -> Rated:
    """Allocated cores and GPUs x wall time at the given prices (the cores strategy)."""
    return rate_usage(Usage(elapsed_seconds, cpus, gpus), Prices(price_core_hour, price_gpu_hour))

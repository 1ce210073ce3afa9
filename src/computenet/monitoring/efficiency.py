"""What a job was given and paid for (:class:`JobFacts`, from accounting and
billing) against what it used (:class:`JobSeries`, from the node agent):
:func:`measure` turns the two into ratios (:class:`Efficiency`), the numbers
seff/reportseff and jobstats report. Pure code; money is Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from computenet.domain.money import CENT, to_decimal

from .series import JobSeries

# Parts of a price are rounded to the cent one by one, so they may miss the
# total by up to a cent each.
_PART_TOLERANCE = CENT * 3


@dataclass(frozen=True)
class JobFacts:
    """A finished (or running) job as accounting and billing know it.

    ``price`` is what the user paid for the job in total;
    ``price_cpu_part`` + ``price_gpu_part`` + ``price_mem_part`` is ``price``
    (to a cent per part). A price book that charges for memory but cannot say
    how much may fold that into the CPU part and leave ``price_mem_part`` 0.
    ``mem_requested_bytes`` 0 means unknown; ``time_limit_s`` None means none.
    ``cheaper_gpu_hour`` is what one GPU-hour of a smaller card would have
    cost (enables money on the smaller-GPU finding). ``started_at`` (unix
    seconds) lets :func:`computenet.monitoring.rules.bundle_advice` group jobs
    by day. Amounts may be given as Decimal, int or str; floats are refused.
    """

    job_id: str
    cores: int
    gpus: int
    gpu_type: str | None
    mem_requested_bytes: int
    time_limit_s: int | None
    runtime_s: float
    price: Decimal
    price_cpu_part: Decimal
    price_gpu_part: Decimal
    app: str | None
    user: str
    cluster: str
    price_mem_part: Decimal = Decimal("0")
    cheaper_gpu_hour: Decimal | None = None
    started_at: float | None = None

    def __post_init__(self) -> None:
        for name in ("price", "price_cpu_part", "price_gpu_part", "price_mem_part"):
            value = to_decimal(getattr(self, name))
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {value}")
            object.__setattr__(self, name, value)
        if self.cheaper_gpu_hour is not None:
            cheaper = to_decimal(self.cheaper_gpu_hour)
            if cheaper < 0:
                raise ValueError(f"cheaper_gpu_hour must not be negative, not {cheaper}")
            object.__setattr__(self, "cheaper_gpu_hour", cheaper)
        parts = self.price_cpu_part + self.price_gpu_part + self.price_mem_part
        if abs(parts - self.price) > _PART_TOLERANCE:
            raise ValueError(f"price parts (cpu {self.price_cpu_part} + gpu {self.price_gpu_part} + "
                             f"mem {self.price_mem_part} = {parts}) do not add up to price {self.price}")
        for name in ("cores", "gpus", "mem_requested_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if self.time_limit_s is not None and (isinstance(self.time_limit_s, bool)
                                              or not isinstance(self.time_limit_s, int) or self.time_limit_s < 0):
            raise ValueError(f"time_limit_s must be a non-negative integer or None, not {self.time_limit_s!r}")
        if isinstance(self.runtime_s, bool) or not isinstance(self.runtime_s, (int, float)) or self.runtime_s < 0:
            raise ValueError(f"runtime_s must be a non-negative number, not {self.runtime_s!r}")


@dataclass(frozen=True)
class Efficiency:
    """Ratios of use to allocation; None where the data cannot say.

    cpu_efficiency: CPU seconds used / (cores x runtime); may pass 1 slightly
      (counters vs. accounting clocks). None without covered time.
    mem_efficiency: peak RSS / memory requested; None when the request is unknown.
    gpu_utilisation: mean over the GPUs the agent saw of each one's mean util
      (0..1) over covered time; None without GPUs or GPU samples. Allocated
      GPUs the agent never saw are unknown, not idle.
    gpu_mem_peak_fraction: the highest peak memory / card memory of any GPU.
    time_limit_efficiency: runtime / time limit.
    io_bytes_per_core_hour: bytes read + written per allocated core-hour.
    covered_fraction: covered seconds / runtime, at most 1; what the rules'
      confidence comes from.
    gaps: how many gaps the series has.
    The rest are the raw figures the ratios come from.
    """

    cpu_efficiency: float | None
    mem_efficiency: float | None
    gpu_utilisation: float | None
    gpu_mem_peak_fraction: float | None
    time_limit_efficiency: float | None
    io_bytes_per_core_hour: float | None
    covered_fraction: float
    gaps: int
    cpu_seconds: float
    mean_cores: float | None
    idle_fraction: float | None  # share of covered time with < IDLE_CORES cores in use
    peak_rss: int
    peak_gpu_mem: int
    gpu_mem_total: int


IDLE_CORES = 0.05  # fewer cores than this in use: the job is asleep


def price_parts(price: Decimal, core_value: Decimal, gpu_value: Decimal) -> tuple[Decimal, Decimal]:
    """(CPU part, GPU part) of what a job paid, split in the proportion its charges' own rates give
    (core-hour price x core-seconds against card-hour price x card-seconds); the GPU part to the cent."""
    gpu_part = (price * gpu_value / (core_value + gpu_value)).quantize(CENT) if core_value + gpu_value > 0 \
        else Decimal(0)
    return price - gpu_part, gpu_part


def measure(facts: JobFacts, series: JobSeries) -> Efficiency:
    covered = series.covered_seconds()
    runtime = float(facts.runtime_s)
    core_seconds = facts.cores * runtime
    cpu_seconds = series.cpu_seconds()
    known = covered > 0
    # the CPU counters are cumulative up to the last sample: when the agent died before the job
    # ended, what came after is unknown (a gap), not idle, so efficiency is over the time observed
    observed = core_seconds
    if series.samples and facts.started_at is not None:
        window = min(runtime, series.samples[-1].t - float(facts.started_at))
        if window > 0:
            observed = facts.cores * window

    gpu_stats = series.gpu_stats() if facts.gpus > 0 else ()
    utils = [g.mean_util for g in gpu_stats if g.mean_util is not None]
    fractions = [(g.peak_mem_used / g.mem_total, g) for g in gpu_stats if g.mem_total > 0]
    top = max(fractions, key=lambda x: x[0], default=None)

    return Efficiency(
        cpu_efficiency=cpu_seconds / observed if known and observed > 0 else None,
        mem_efficiency=series.peak_rss() / facts.mem_requested_bytes
        if facts.mem_requested_bytes > 0 and series.samples else None,
        gpu_utilisation=sum(utils) / len(utils) if utils else None,
        gpu_mem_peak_fraction=top[0] if top else None,
        time_limit_efficiency=runtime / facts.time_limit_s if facts.time_limit_s else None,
        io_bytes_per_core_hour=series.io_bytes() / (core_seconds / 3600) if known and core_seconds > 0 else None,
        covered_fraction=min(covered / runtime, 1.0) if runtime > 0 else 0.0,
        gaps=len(series.gaps()),
        cpu_seconds=cpu_seconds,
        mean_cores=series.mean_cores(),
        idle_fraction=series.fraction_cores_below(IDLE_CORES),
        peak_rss=series.peak_rss(),
        peak_gpu_mem=top[1].peak_mem_used if top else 0,
        gpu_mem_total=top[1].mem_total if top else 0,
    )

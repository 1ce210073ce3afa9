"""Findings and the rule base class shared by the CPU/memory/time rules (rules.py) and the GPU rules
(rules_gpu.py): one place for how waste is put into words and money."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal

from computenet.domain.money import round_money
from computenet.messages import Money, msg

from .efficiency import Efficiency, JobFacts
from .series import JobSeries

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
GIB = 1024**3
ZERO = Decimal("0")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    title: str
    detail: str
    recommendation: str
    wasted: Decimal
    confidence: float

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if not isinstance(self.wasted, Decimal) or self.wasted < 0:
            raise ValueError(f"wasted must be a non-negative Decimal, not {self.wasted!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, not {self.confidence!r}")


# -- helpers ------------------------------------------------------------------


def _money(amount: Decimal) -> Money:
    return Money(round_money(amount), english=f"¥{round_money(amount)}")


def _share(amount: Decimal, fraction: float) -> Decimal:
    """``amount`` x a float fraction (clamped to 0..1), to the cent."""
    fraction = min(max(fraction, 0.0), 1.0)
    return round_money(amount * Decimal(f"{fraction:.6f}"))


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.1f} GiB"


def _ceil_gib(nbytes: int, headroom_percent: int) -> int:
    """ceil(nbytes x headroom / GiB), at least 1; headroom in percent (120 = 1.2x), exact in integers."""
    return max(1, -(-nbytes * headroom_percent // (100 * GIB)))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return msg("%(seconds)s s", seconds=format(seconds, ".0f"))
    if seconds < 2 * 3600:
        return msg("%(minutes)s min", minutes=format(seconds / 60, ".0f"))
    return msg("%(hours)s h", hours=format(seconds / 3600, ".1f"))


def _coverage(eff: Efficiency) -> float:
    return round(min(max(eff.covered_fraction, 0.0), 1.0), 3)


def _saves(amount: Decimal) -> str:
    return msg(" (saves about %(money)s per run)", money=_money(amount)) if amount > 0 else ""


class Rule:
    """A diagnosis rule. Subclasses set ``code`` and ``pool`` and implement ``check``."""

    code: ClassVar[str]
    pool: ClassVar[Literal["cpu", "gpu", "mem", "job", "none"]] = "none"
    supersedes: ClassVar[frozenset[str]] = frozenset()
    # what the rule needs to be fair: "full" (every process the job ran, as the agent sees a batch-only
    # job), "cpu_total" (only the job's total CPU seconds, which Slurm's step accounting also gives),
    # or "any" (GPUs, times: right even when the agent saw only the first node's batch processes)
    needs: ClassVar[Literal["full", "cpu_total", "any"]] = "full"

    def check(self, facts: JobFacts, eff: Efficiency, series: JobSeries) -> Finding | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- CPU ----------------------------------------------------------------------

"""GPU rules: idle cards, under-used cards, and jobs that would fit a smaller (cheaper) card."""

from __future__ import annotations

from decimal import Decimal

from computenet.domain.money import round_money

from computenet.messages import msg

from .efficiency import JobFacts
from .findings import GIB, ZERO, Finding, Rule, _coverage, _gib, _pct, _saves, _share
from .series import JobSeries


class GpuIdle(Rule):
    """GPUs allocated but idle: mean utilisation under MAX_UTIL. Critical when
    the samples cover at least MIN_COVERAGE of the runtime, a warning below
    (idle while watched, unknown otherwise). Wasted: the GPU part x
    (1 - utilisation). Supersedes gpu_underused and smaller_gpu: the advice
    is to drop the GPU, not to change it."""

    code = "gpu_idle"
    needs = "any"
    pool = "gpu"
    supersedes = frozenset({"gpu_underused", "smaller_gpu"})
    MAX_UTIL = 0.05
    MIN_COVERAGE = 0.8

    def check(self, facts, eff, series):
        u = eff.gpu_utilisation
        if facts.gpus < 1 or u is None or u >= self.MAX_UTIL:
            return None
        wasted = _share(facts.price_gpu_part, 1.0 - u)
        return Finding(
            code=self.code, severity="critical" if eff.covered_fraction >= self.MIN_COVERAGE else "warning",
            title=msg("The GPUs sat idle"),
            detail=(msg("%(gpus)s allocated GPU%(plural_s)s averaged %(u)s utilisation over "
                        "%(covered_fraction)s of the runtime observed.",
                        gpus=facts.gpus, plural_s='s' if facts.gpus > 1 else '', u=_pct(u),
                        covered_fraction=_pct(eff.covered_fraction))),
            recommendation=(msg("check that the program uses the GPU (a CUDA build, device='cuda', "
                                "CUDA_VISIBLE_DEVICES); if it does not need one, run it without "
                                "--gres=gpu on a CPU partition%(wasted)s.",
                                wasted=_saves(wasted))),
            wasted=wasted,
            confidence=_coverage(eff),
        )


class GpuUnderused(Rule):
    """GPUs busy less than they could be: utilisation within LOW..HIGH.
    Wasted: the GPU part x (1 - utilisation) x WASTE_SHARE. Only half the idle
    share counts because utilisation is the share of time *a* kernel ran, not
    of the card used, and data loading, host-side steps, checkpointing and
    communication leave gaps even in well-tuned jobs; the other half is
    headroom, not waste."""

    code = "gpu_underused"
    needs = "any"
    pool = "gpu"
    LOW = 0.05
    HIGH = 0.4
    WASTE_SHARE = 0.5

    def check(self, facts, eff, series):
        u = eff.gpu_utilisation
        if facts.gpus < 1 or u is None or not self.LOW <= u < self.HIGH:
            return None
        fewer = (msg(", or request fewer GPUs if it does not scale (--gres=gpu:%(half)s)", half=max(1, facts.gpus // 2))
                 if facts.gpus > 1 else "")
        return Finding(
            code=self.code, severity="warning",
            title=msg("The GPUs were mostly waiting"),
            detail=(msg("%(gpus)s GPU%(plural_s)s averaged %(u)s utilisation over the observed time.",
                        gpus=facts.gpus, plural_s='s' if facts.gpus > 1 else '', u=_pct(u))),
            recommendation=(msg("feed the GPU faster: more data-loader workers, pinned memory, larger "
                                "batches, data on local scratch%(fewer)s.",
                                fewer=fewer)),
            wasted=_share(facts.price_gpu_part, (1.0 - u) * self.WASTE_SHARE),
            confidence=_coverage(eff),
        )


class SmallerGpu(Rule):
    """A large card for a small job: peak GPU memory under MAX_MEM_FRACTION of
    the card, utilisation under MAX_UTIL, and the card (a GPU's name or
    facts.gpu_type) one of LARGE_CARDS. Suggests the smallest of
    SMALLER_CARDS_GIB that holds the peak x 1.2. Wasted: only with
    facts.cheaper_gpu_hour: the GPU part minus what the smaller cards would
    have cost for the same GPU-hours, never negative."""

    code = "smaller_gpu"
    needs = "any"
    pool = "gpu"
    MAX_MEM_FRACTION = 0.25
    MAX_UTIL = 0.5
    LARGE_CARDS = ("A100", "H100", "H800", "A800", "H200", "B100", "B200")
    SMALLER_CARDS_GIB = (24, 48)
    HEADROOM = 1.2

    def _large(self, facts: JobFacts, series: JobSeries) -> str | None:
        names = [facts.gpu_type or ""] + [g.name for g in series.gpu_stats()]
        for name in names:
            for card in self.LARGE_CARDS:
                if card in name.upper():
                    return card
        return None

    def check(self, facts, eff, series):
        u, frac = eff.gpu_utilisation, eff.gpu_mem_peak_fraction
        if facts.gpus < 1 or u is None or frac is None or frac >= self.MAX_MEM_FRACTION or u >= self.MAX_UTIL:
            return None
        card = self._large(facts, series)
        if card is None:
            return None
        fits = [size for size in self.SMALLER_CARDS_GIB
                if eff.peak_gpu_mem * self.HEADROOM <= size * GIB < eff.gpu_mem_total]
        if not fits:
            return None
        wasted = ZERO
        if facts.cheaper_gpu_hour is not None:
            gpu_hours = Decimal(facts.gpus) * Decimal(str(facts.runtime_s)) / Decimal(3600)
            wasted = round_money(max(ZERO, facts.price_gpu_part - facts.cheaper_gpu_hour * gpu_hours))
        return Finding(
            code=self.code, severity="info",
            title=msg("Would fit a smaller GPU"),
            detail=(msg("Peak GPU memory %(peak_gpu_mem)s of %(gpu_mem_total)s on %(card)s (%(frac)s), "
                        "utilisation %(u)s.",
                        peak_gpu_mem=_gib(eff.peak_gpu_mem), gpu_mem_total=_gib(eff.gpu_mem_total), card=card,
                        frac=_pct(frac), u=_pct(u))),
            recommendation=(msg("would fit a smaller GPU (e.g. a %(fits)s GB card): request one "
                                "(--gres=gpu:<type>:%(gpus)s or a partition with smaller "
                                "cards)%(wasted)s.",
                                fits=fits[0], gpus=facts.gpus, wasted=_saves(wasted))),
            wasted=wasted,
            confidence=_coverage(eff),
        )


# -- time ---------------------------------------------------------------------

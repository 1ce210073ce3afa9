"""Diagnosis rules: what a job wasted, what it cost, and what to change.

Each rule is a small class with a ``code``, documented thresholds as class
attributes and ``check(facts, eff, series) -> Finding | None``; no rule
strings, no eval. :func:`diagnose` runs :data:`RULES` and returns the
findings, largest waste first. After Princeton jobstats' alerts, seff /
reportseff and XDMoD SUPReMM's job efficiency.

Money: ``wasted`` is what the user paid for the share of an allocation that
went unused, a Decimal rounded to the cent (ROUND_HALF_UP); ``Decimal("0")``
where the finding is not about money (time limits, short jobs). Two rules
never count the same money twice:

* a rule may *supersede* others (``supersedes``): when it fires, they are
  dropped (single_threaded drops idle_cores; idle_job drops every per-resource
  waste finding; gpu_idle drops smaller_gpu and gpu_underused);
* each rule draws on one *pool* (the CPU, GPU or memory part of the price,
  or the whole job): findings left over are capped, largest first, so their
  sum never passes what the user paid for that part, nor the price.

``confidence`` is the share of the job's runtime the samples cover (gaps,
late start of the agent lower it); findings that rest on accounting alone
(time limit, short job) or on an observed fact (a peak that was reached)
have confidence 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from computenet.domain.money import round_money
from computenet.domain.resources import format_time_minutes

from computenet.messages import msg

from .efficiency import IDLE_CORES, Efficiency, JobFacts, measure
from .findings import (GIB, SEVERITIES, ZERO, Finding, Rule, Severity, _ceil_gib, _coverage, _duration, _gib,
                       _money, _pct, _saves, _share)

__all__ = ["Efficiency", "Finding", "GpuIdle", "GpuUnderused", "RULES", "Rule", "SEVERITIES", "Severity",
           "SmallerGpu", "bundle_advice", "diagnose"]
from .rules_gpu import GpuIdle, GpuUnderused, SmallerGpu
from .series import JobSeries


class IdleCores(Rule):
    """Most allocated cores idle: CPU efficiency under MAX_EFFICIENCY on a job
    with at least MIN_CORES cores. Wasted: the CPU part x (1 - efficiency).
    Suggests the cores actually used x HEADROOM, rounded up."""

    code = "idle_cores"
    needs = "cpu_total"
    pool = "cpu"
    MAX_EFFICIENCY = 0.2
    MIN_CORES = 2
    HEADROOM = 1.2

    def check(self, facts, eff, series):
        e = eff.cpu_efficiency
        if e is None or facts.cores < self.MIN_CORES or e >= self.MAX_EFFICIENCY:
            return None
        used = e * facts.cores
        suggest = min(max(1, math.ceil(used * self.HEADROOM)), facts.cores - 1)
        saved = round_money(facts.price_cpu_part * (facts.cores - suggest) / facts.cores)
        return Finding(
            code=self.code, severity="warning",
            title=msg("Most allocated cores sat idle"),
            detail=(msg("The job kept %(used)s of %(cores)s allocated cores busy on average (CPU "
                        "efficiency %(e)s) over %(runtime_s)s.",
                        used=format(used, '.1f'), cores=facts.cores, e=_pct(e),
                        runtime_s=_duration(facts.runtime_s))),
            recommendation=(msg("request %(suggest)s core%(plural_s)s (-c %(suggest)s, or -n %(suggest)s "
                                "for MPI)%(saved)s, or make the program use all %(cores)s (e.g. "
                                "OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK, srun/mpirun without a fixed -np).",
                                suggest=suggest, plural_s='s' if suggest > 1 else '', saved=_saves(saved),
                                cores=facts.cores)),
            wasted=_share(facts.price_cpu_part, 1.0 - e),
            confidence=_coverage(eff),
        )


class SingleThreaded(Rule):
    """Only one core busy: at least MIN_CORES cores allocated and the mean of
    cores in use over covered time within LOW..HIGH. Wasted: the CPU part x
    (cores - 1) / cores. Supersedes idle_cores (same idle cores, same money)."""

    code = "single_threaded"
    pool = "cpu"
    supersedes = frozenset({"idle_cores"})
    MIN_CORES = 2
    LOW = 0.8
    HIGH = 1.2

    def check(self, facts, eff, series):
        mean = eff.mean_cores
        if mean is None or facts.cores < self.MIN_CORES or not self.LOW <= mean <= self.HIGH:
            return None
        wasted = round_money(facts.price_cpu_part * (facts.cores - 1) / facts.cores)
        efficiency = (msg(" (CPU efficiency %(efficiency)s)", efficiency=_pct(eff.cpu_efficiency))
                      if eff.cpu_efficiency is not None else "")
        return Finding(
            code=self.code, severity="warning",
            title=msg("Only one core was busy"),
            detail=(msg("%(mean)s cores were in use on average of %(cores)s allocated%(efficiency)s: the "
                        "program ran single-threaded.",
                        mean=format(mean, '.2f'), cores=facts.cores, efficiency=efficiency)),
            recommendation=(msg("request -c 1 (or -n 1)%(wasted)s, unless the program can be told to use "
                                "%(cores)s threads or ranks (OMP_NUM_THREADS, a --threads option, srun "
                                "-n); then keep -c %(cores)s and pass it on.",
                                wasted=_saves(wasted), cores=facts.cores)),
            wasted=wasted,
            confidence=_coverage(eff),
        )


class IdleJob(Rule):
    """The job did nothing: fewer than IDLE_CORES cores in use for at least
    MIN_IDLE_FRACTION of covered time, and fewer than IDLE_CORES on average
    over the whole runtime (so a job that waited and then computed in a burst
    is not "nothing"); its GPUs, if any, idle too (below GpuIdle.MAX_UTIL;
    unknown GPU use never counts as idle). Wasted: the whole price.
    Supersedes every finding that claims a part of that price."""

    code = "idle_job"
    pool = "job"
    supersedes = frozenset({"idle_cores", "single_threaded", "gpu_idle", "gpu_underused", "smaller_gpu",
                            "memory_over_requested"})
    IDLE_CORES = IDLE_CORES
    MIN_IDLE_FRACTION = 0.9

    def check(self, facts, eff, series):
        if eff.idle_fraction is None or eff.idle_fraction < self.MIN_IDLE_FRACTION or facts.runtime_s <= 0:
            return None
        if eff.cpu_seconds / facts.runtime_s >= self.IDLE_CORES:
            return None
        if facts.gpus > 0 and (eff.gpu_utilisation is None or eff.gpu_utilisation >= GpuIdle.MAX_UTIL):
            return None
        gpu = msg("; its GPUs averaged %(use)s use", use=_pct(eff.gpu_utilisation)) if facts.gpus > 0 else ""
        return Finding(
            code=self.code, severity="critical",
            title=msg("The job did nothing"),
            detail=(msg("Fewer than %(idle_cores)s cores were in use for %(idle_fraction)s of the "
                        "observed time; %(cpu_seconds)s CPU seconds in %(runtime_s)s%(gpu)s. All of its "
                        "%(price)s paid for an allocation that slept.",
                        idle_cores=self.IDLE_CORES, idle_fraction=_pct(eff.idle_fraction),
                        cpu_seconds=format(eff.cpu_seconds, '.1f'), runtime_s=_duration(facts.runtime_s), gpu=gpu,
                        price=_money(facts.price))),
            recommendation=(msg("find out what it waited for (input files, a lock, a license server, a "
                                "hung MPI rank, a sleep left in the script) and cancel such jobs early "
                                "(scancel).")),
            wasted=round_money(facts.price),
            confidence=_coverage(eff),
        )


# -- memory -------------------------------------------------------------------


class MemoryOverRequested(Rule):
    """Memory requested far above use: peak RSS under MAX_EFFICIENCY of the
    request and the request at least MIN_REQUEST_BYTES. Suggests --mem of peak
    x 1.2 (HEADROOM_PERCENT) rounded up to a GiB. Wasted: the memory part of
    the price x (1 - efficiency); 0 when the price did not depend on memory."""

    code = "memory_over_requested"
    pool = "mem"
    MAX_EFFICIENCY = 0.25
    MIN_REQUEST_BYTES = 4 * GIB
    HEADROOM_PERCENT = 120

    def check(self, facts, eff, series):
        e = eff.mem_efficiency
        if e is None or e >= self.MAX_EFFICIENCY or facts.mem_requested_bytes < self.MIN_REQUEST_BYTES:
            return None
        suggest = _ceil_gib(eff.peak_rss, self.HEADROOM_PERCENT)
        saved = round_money(facts.price_mem_part * max(0, facts.mem_requested_bytes - suggest * GIB)
                            / facts.mem_requested_bytes)
        return Finding(
            code=self.code, severity="warning",
            title=msg("Much more memory requested than used"),
            detail=(msg("Peak memory %(peak_rss)s of %(mem_requested_bytes)s requested (%(e)s).",
                        peak_rss=_gib(eff.peak_rss), mem_requested_bytes=_gib(facts.mem_requested_bytes), e=_pct(e))),
            recommendation=(msg("request --mem=%(suggest)sG (the peak plus 20%% headroom)%(saved)s; "
                                "smaller requests start sooner and leave the node to others.",
                                suggest=suggest, saved=_saves(saved))),
            wasted=_share(facts.price_mem_part, 1.0 - e),
            confidence=_coverage(eff),
        )


class OomRisk(Rule):
    """Close to the memory limit: peak RSS at least MIN_EFFICIENCY of the
    request (critical at or above it). Suggests peak x 1.25 (HEADROOM_PERCENT)
    rounded up to a GiB, and at least a GiB more than the request.
    Confidence 1: the peak was observed; a missed spike only makes it worse."""

    code = "oom_risk"
    MIN_EFFICIENCY = 0.9
    HEADROOM_PERCENT = 125

    def check(self, facts, eff, series):
        e = eff.mem_efficiency
        if e is None or e < self.MIN_EFFICIENCY:
            return None
        suggest = max(_ceil_gib(eff.peak_rss, self.HEADROOM_PERCENT), -(-facts.mem_requested_bytes // GIB) + 1)
        return Finding(
            code=self.code, severity="critical" if e >= 1.0 else "warning",
            title=msg("Memory use close to the limit"),
            detail=(msg("Peak memory %(peak_rss)s of %(mem_requested_bytes)s requested (%(e)s): a larger "
                        "input or a spike between samples is killed (OOM).",
                        peak_rss=_gib(eff.peak_rss), mem_requested_bytes=_gib(facts.mem_requested_bytes), e=_pct(e))),
            recommendation=msg("request more memory: --mem=%(suggest)sG (the peak plus 25%%).", suggest=suggest),
            wasted=ZERO,
            confidence=1.0,
        )


# -- GPUs ---------------------------------------------------------------------


class TimeLimitTooLong(Rule):
    """Time limit far above the runtime: runtime under MAX_RATIO of a limit of
    at least MIN_LIMIT_S. Suggests --time of the runtime x HEADROOM rounded
    up to ROUND_MINUTES. Wasted 0: the charge is for the time used; a long
    limit costs queue time (backfill fits short jobs first) and holds more of
    the balance at submission, which is returned at the end."""

    code = "time_limit_too_long"
    needs = "any"
    MAX_RATIO = 0.1
    MIN_LIMIT_S = 2 * 3600
    HEADROOM = 1.5
    ROUND_MINUTES = 5

    def check(self, facts, eff, series):
        limit = facts.time_limit_s
        if not limit or limit < self.MIN_LIMIT_S or facts.runtime_s <= 0 or facts.runtime_s / limit >= self.MAX_RATIO:
            return None
        step = self.ROUND_MINUTES
        minutes = max(step, math.ceil(facts.runtime_s * self.HEADROOM / 60 / step) * step)
        suggested = format_time_minutes(minutes)
        return Finding(
            code=self.code, severity="info",
            title=msg("Time limit much longer than the run"),
            detail=(msg("The job ran %(runtime_s)s of a %(limit)s limit (%(value)s).",
                        runtime_s=_duration(facts.runtime_s), limit=_duration(limit),
                        value=_pct(facts.runtime_s / limit))),
            recommendation=(msg("request --time=%(suggested)s (the runtime plus 50%%): shorter limits "
                                "start sooner (backfill) and hold less of the balance at submission; the "
                                "charge is for the time used either way.",
                                suggested=suggested)),
            wasted=ZERO,
            confidence=1.0,
        )


class ShortJob(Rule):
    """A job shorter than MAX_RUNTIME_S: scheduling and start-up overhead
    weigh as much as the work. Wasted 0 (billing is for the time used)."""

    code = "short_job"
    needs = "any"
    MAX_RUNTIME_S = 60

    def check(self, facts, eff, series):
        if not 0 < facts.runtime_s < self.MAX_RUNTIME_S:
            return None
        return Finding(
            code=self.code, severity="info",
            title=msg("A very short job"),
            detail=msg("The job ran %(runtime_s)s s; queueing and start-up take about as long.",
                       runtime_s=format(facts.runtime_s, '.0f')),
            recommendation=(msg("bundle such runs: one job array (sbatch --array) or srun steps inside "
                                "one allocation (a loop, GNU parallel).")),
            wasted=ZERO,
            confidence=1.0,
        )


RULES: tuple[Rule, ...] = (
    IdleJob(), IdleCores(), SingleThreaded(), MemoryOverRequested(), OomRisk(),
    GpuIdle(), GpuUnderused(), SmallerGpu(), TimeLimitTooLong(), ShortJob(),
)

_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


VIEWS = {"full": ("full", "cpu_total", "any"), "cpu_total": ("cpu_total", "any"), "any": ("any",)}


def diagnose(facts: JobFacts, series: JobSeries, rules: Iterable[Rule] = RULES, *, eff: Efficiency | None = None,
             view: str = "full") -> list[Finding]:
    """Every finding for one job, largest waste first (then by severity).

    ``view`` is what is known of the job: "full" (the agent saw all its work), "cpu_total" (only its
    total CPU, from Slurm's step accounting; ``eff`` then carries that figure) or "any" (neither):
    rules that need more than that are not run. Superseded findings are dropped, and what is left is
    capped per price part so that no money is counted twice (see the module doc)."""
    rules = tuple(r for r in rules if r.needs in VIEWS[view])
    eff = eff if eff is not None else measure(facts, series)
    fired: list[tuple[Rule, Finding]] = []
    for rule in rules:
        finding = rule.check(facts, eff, series)
        if finding is not None:
            fired.append((rule, finding))
    dropped = set().union(*(rule.supersedes for rule, _ in fired)) if fired else set()
    kept = [(rule, f) for rule, f in fired if f.code not in dropped]
    kept.sort(key=lambda rf: (-rf[1].wasted, _SEVERITY_RANK[rf[1].severity], rf[1].code))

    left = {"cpu": facts.price_cpu_part, "gpu": facts.price_gpu_part, "mem": facts.price_mem_part,
            "job": facts.price}
    total_left = facts.price
    out = []
    for rule, f in kept:
        if f.wasted > 0:
            cap = min(total_left, left.get(rule.pool, total_left))
            if f.wasted > cap:
                f = replace(f, wasted=round_money(max(cap, ZERO)))
            total_left -= f.wasted
            if rule.pool in left:
                left[rule.pool] -= f.wasted
        out.append(f)
    out.sort(key=lambda f: (-f.wasted, _SEVERITY_RANK[f.severity], f.code))
    return out


# -- many jobs ----------------------------------------------------------------

BUNDLE_MIN_JOBS = 20  # short jobs of one user within BUNDLE_WINDOW_S for the finding
BUNDLE_WINDOW_S = 24 * 3600


def bundle_advice(jobs: Iterable[JobFacts], *, min_jobs: int = BUNDLE_MIN_JOBS,
                  window_s: float = BUNDLE_WINDOW_S) -> list[Finding]:
    """One ``many_short_jobs`` finding per user with at least ``min_jobs``
    short jobs (ShortJob.MAX_RUNTIME_S) within ``window_s``.

    Jobs with ``started_at`` are counted in a sliding window; jobs without
    count towards every window (the caller chose the day). Wasted 0."""
    by_user: dict[str, list[JobFacts]] = {}
    for job in jobs:
        if 0 < job.runtime_s < ShortJob.MAX_RUNTIME_S:
            by_user.setdefault(job.user, []).append(job)
    findings = []
    for user in sorted(by_user):
        short = by_user[user]
        untimed = sum(1 for j in short if j.started_at is None)
        times = sorted(j.started_at for j in short if j.started_at is not None)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        count = best + untimed
        if count < min_jobs:
            continue
        mean = sum(j.runtime_s for j in short) / len(short)
        clusters = ", ".join(sorted({j.cluster for j in short}))
        findings.append(Finding(
            code="many_short_jobs", severity="info",
            title=msg("%(count)s short jobs in a day", count=count),
            detail=(msg("User %(user)s ran %(count)s jobs of under %(max_runtime_s)s s within "
                        "%(window_s)s on %(clusters)s (mean %(mean)s s each); each one pays the queueing "
                        "and start-up overhead.",
                        user=user, count=count, max_runtime_s=ShortJob.MAX_RUNTIME_S, window_s=_duration(window_s),
                        clusters=clusters, mean=format(mean, '.0f'))),
            recommendation=(msg("bundle them: one job array (sbatch --array=1-%(count)s) or one "
                                "allocation running srun steps (a loop, GNU parallel).",
                                count=count)),
            wasted=ZERO,
            confidence=1.0,
        ))
    return findings

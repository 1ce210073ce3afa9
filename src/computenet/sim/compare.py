"""Policies side by side on one trace and one network, plus the pooled reference."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .engine import Rerouting, SimCluster, SimResult, simulate
from .policies import LeastLoaded, RoundRobin, RouterPolicy, Static, pooled
from .report import Summary, summarize
from .trace import Trace

POLICY_NAMES = ("static", "round_robin", "least_loaded", "earliest_start", "cheapest", "owned_first",
                "earliest_start+reroute", "earliest_start+sized")


class SpecError(ValueError):
    pass


def parse_clusters(text: str, total_cores: int, total_gpus: int = 0) -> list[SimCluster]:
    """``own-a:owned:0.5,own-b:owned:0.3,lease-c:leased:0.2`` -> clusters with those shares of the trace's
    machine; price and cost per core-hour default by ownership (owned 0.10/0.04, leased 0.12/0.08,
    partner 0.11/0.07)."""
    defaults = {"owned": ("0.10", "0.04"), "leased": ("0.12", "0.08"), "partner": ("0.11", "0.07")}
    clusters = []
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise SpecError("name at least one cluster (name:ownership:share)")
    for item in items:
        parts = item.strip().split(":")
        if len(parts) not in (3, 5):
            raise SpecError(f"cluster {item!r}: use name:ownership:share[:price:cost]")
        name, ownership, share = parts[:3]
        if ownership not in defaults:
            raise SpecError(f"cluster {name}: ownership must be owned, leased or partner")
        try:
            fraction = float(share)
            price, cost = (Decimal(parts[3]), Decimal(parts[4])) if len(parts) == 5 else map(Decimal,
                                                                                           defaults[ownership])
        except (ValueError, ArithmeticError):
            raise SpecError(f"cluster {name}: share, price and cost must be numbers") from None
        if not 0 < fraction <= 1:
            raise SpecError(f"cluster {name}: a share is above 0 and at most 1")
        clusters.append(SimCluster(name, max(1, round(total_cores * fraction)), round(total_gpus * fraction),
                                   ownership, price, cost))
    if abs(sum(float(i.split(":")[2]) for i in items) - 1) > 1e-6:
        raise SpecError("the shares must add up to 1")
    return clusters


def make_policy(name: str, clusters: list[SimCluster], owned_wait_s: float = 1800.0):
    """A policy by name; "<policy>+reroute" is that policy with waiting jobs moved as the live re-router does;
    "earliest_start+sized[N]" is earliest-start that takes the smallest cluster starting the job within N s
    (default 0: exact ties) of the earliest."""
    name = name.removesuffix("+reroute")
    base, plus, sized = name.partition("+sized")
    if plus:
        if base != "earliest_start":
            raise SpecError(f"unknown policy {name!r}: +sized goes with earliest_start")
        try:
            slack = float(sized or 0)
        except ValueError:
            raise SpecError(f"policy {name!r}: +sized takes a number of seconds (earliest_start+sized600)") from None
        if slack < 0:
            raise SpecError(f"policy {name!r}: the slack cannot be negative")
        return RouterPolicy("earliest_start", sized_slack_s=slack)
    total = sum(c.cores for c in clusters)
    if name == "static":
        return Static([c.cores / total for c in clusters])
    if name == "round_robin":
        return RoundRobin()
    if name == "least_loaded":
        return LeastLoaded()
    if name == "owned_first":
        return RouterPolicy("owned_first", {"max_wait_s": owned_wait_s})
    if name in ("earliest_start", "cheapest", "data_locality", "weighted"):
        return RouterPolicy(name)
    raise SpecError(f"unknown policy {name!r} (use {', '.join(POLICY_NAMES)}, pooled)")


def too_wide(trace: Trace, clusters: list[SimCluster]) -> int:
    """Jobs that fit no cluster of the network: every run leaves them out."""
    cores, gpus = max(c.cores for c in clusters), max(c.gpus for c in clusters)
    return sum(1 for j in trace.jobs if j.cores > cores or j.gpus > gpus)


def compare(trace: Trace, clusters: list[SimCluster], policies: list[str], with_pooled: bool = True,
            show_progress: bool = True, kill_at_limit: bool = False) -> list[tuple[SimResult, Summary]]:
    """Each policy's run and the pooled one; jobs that ran past their limits are replayed
    whole, or with ``kill_at_limit`` end at their limits (trace.replayed)."""
    # jobs larger than every cluster of the network cannot run there: leave them out of every run
    # (the pooled one included), so that all runs do the same work
    largest_cores = max(c.cores for c in clusters)
    largest_gpus = max(c.gpus for c in clusters)
    fitting = [j for j in trace.jobs if j.cores <= largest_cores and j.gpus <= largest_gpus]
    if len(fitting) != len(trace.jobs):
        trace = replace(trace, jobs=fitting, skipped=trace.skipped + len(trace.jobs) - len(fitting))
    runs = []
    for name in policies:
        policy = make_policy(name, clusters)
        if "+" in name:
            policy.name = name
        runs.append((name, clusters, policy))
    if with_pooled:
        pool = pooled(clusters)
        runs.append(("pooled", pool, RoundRobin(name="pooled")))
    out = []
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not show_progress, transient=False) as progress:
        for name, network, policy in runs:
            task = progress.add_task(name, total=len(trace.jobs))
            rerouting = Rerouting(every_s=300, margin_s=300, window=32) if name.endswith("+reroute") else None
            result = simulate(trace, network, policy, progress=lambda n, t=task: progress.advance(t, n),
                              rerouting=rerouting, kill_at_limit=kill_at_limit)
            progress.update(task, completed=len(trace.jobs))
            out.append((result, summarize(result)))
    return out

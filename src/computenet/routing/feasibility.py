"""Where a job can run at all: shape, time, GPU model, health, pins and entitlements.

Every refusal says why, so `cnet estimate` and `cnet job ID --why` can show
what ruled a partition out.
"""

from __future__ import annotations

from ..domain.resources import ResourceRequest, placed
from .model import Candidate, Constraints, Target


def time_limit(res: ResourceRequest, target: Target) -> int | None:
    if res.time_unlimited:  # -t UNLIMITED: Slurm gives the partition's maximum
        return target.max_time_minutes
    return res.time_limit_minutes or target.default_time_minutes or target.max_time_minutes


def check(res: ResourceRequest, target: Target, constraints: Constraints) -> Candidate:
    """A candidate for ``target``: feasible, or refused with every reason."""
    c = Candidate(target)
    where = f"partition {target.partition}"
    res = placed(res, target.cores_per_node, target.gpus_per_node)  # -n without -N spreads over nodes
    for kind, why in constraints.refused_kinds:
        if target.executor == kind:
            c.refuse(f"cluster {target.cluster} cannot honour {why}")
    if constraints.cluster and target.cluster != constraints.cluster:
        c.refuse(f"pinned to cluster {constraints.cluster}")
    if constraints.partition and target.partition != constraints.partition:
        c.refuse(f"pinned to partition {constraints.partition}")
    elif not constraints.partition and not target.is_default and res.total_gpus == 0 and target.gpus_per_node:
        c.refuse("a GPU partition, and the job asks for no GPU")
    if constraints.region and target.region != constraints.region:
        c.refuse(f"in region {target.region or 'unset'}, not {constraints.region}")
    if target.dedicated_to and constraints.tenant not in target.dedicated_to:
        c.refuse(f"{where} is dedicated to {', '.join(target.dedicated_to)}")
    if target.cluster in constraints.no_identity:
        c.refuse(f"you have no Unix identity on cluster {target.cluster} (an operator maps one)")
    if constraints.only_clusters is not None and target.cluster not in constraints.only_clusters:
        c.refuse(f"cluster {target.cluster} {constraints.only_reason}")
    if target.health == "offline":
        c.refuse(f"cluster {target.cluster} is offline")
    if target.breaker_open:
        c.refuse(f"cluster {target.cluster} failed recent submissions (circuit open)")
    if not target.priced:
        c.refuse(f"{where} has no price configured")
    if res.nodes > target.nodes:
        c.refuse(f"asks for {res.nodes} nodes; {where} has {target.nodes}")
    if res.max_cores_per_node() > target.cores_per_node:
        c.refuse(f"asks for {res.max_cores_per_node()} cores on a node; nodes of {where} have {target.cores_per_node}")
    elif res.total_cores > target.nodes * target.cores_per_node:
        c.refuse(f"asks for {res.total_cores} cores; {where} has {target.nodes * target.cores_per_node}")
    if res.total_gpus:
        if res.max_gpus_per_node() > target.gpus_per_node:
            c.refuse(f"asks for {res.max_gpus_per_node()} GPUs on a node; nodes of {where} have "
                     f"{target.gpus_per_node}")
        elif res.gpu_type and target.gpu_type and res.gpu_type != target.gpu_type:
            c.refuse(f"{where} has {target.gpu_type} GPUs, not {res.gpu_type}")
    missing = missing_features(res.constraint, target.features)
    if missing:
        c.refuse(f"nodes of {where} lack feature {missing}")
    mem = res.mem_per_node_needed_mb()
    if mem > target.mem_per_node_mb:
        c.refuse(f"asks for {mem} MB of memory on a node; nodes of {where} have {target.mem_per_node_mb} MB")
    limit = time_limit(res, target)
    if limit is None:
        c.refuse(f"{where} has no time limit: give one with --time")
    elif target.max_time_minutes is not None and limit > target.max_time_minutes:
        c.refuse(f"time limit {limit} min is above the maximum of {where} ({target.max_time_minutes} min)")
    c.time_limit_minutes = limit
    data = constraints.data_at
    c.has_data = bool(data) and (target.cluster in data or (bool(target.site) and target.site in data))
    return c


def missing_features(constraint: str | None, features: frozenset[str] | None) -> str | None:
    """A -C constraint the partition's nodes cannot meet: "a&b" needs both, "a|b" either.
    Brackets, counts and node-dependent forms are left to Slurm (None)."""
    if not constraint or features is None or any(ch in constraint for ch in "[]*()"):
        return None
    if "&" in constraint and "|" in constraint:
        return None
    if "|" in constraint:
        options = [f for f in constraint.split("|") if f]
        return None if any(f in features for f in options) else " or ".join(options)
    lacking = [f for f in constraint.split("&") if f and f not in features]
    return " and ".join(lacking) or None

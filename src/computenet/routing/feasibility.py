"""Where a job can run at all: shape, time, GPU model, health, pins and entitlements.

Every refusal says why, so `cnet estimate` and `cnet job ID --why` can show
what ruled a partition out.
"""

from __future__ import annotations

from ..domain.resources import ResourceRequest, placed
from .model import Candidate, Constraints, Target
from ..messages import msg


def time_limit(res: ResourceRequest, target: Target) -> int | None:
    if res.time_unlimited:  # -t UNLIMITED: Slurm gives the partition's maximum
        return target.max_time_minutes
    return res.time_limit_minutes or target.default_time_minutes or target.max_time_minutes


def check(res: ResourceRequest, target: Target, constraints: Constraints) -> Candidate:
    """A candidate for ``target``: feasible, or refused with every reason."""
    c = Candidate(target)
    res = placed(res, target.cores_per_node, target.gpus_per_node)  # -n without -N spreads over nodes
    for kind, why in constraints.refused_kinds:
        if target.executor == kind:
            c.refuse(msg("cluster %(cluster)s cannot honour %(why)s", cluster=target.cluster, why=why))
    if constraints.cluster and target.cluster != constraints.cluster:
        c.refuse(msg("pinned to cluster %(cluster)s", cluster=constraints.cluster))
    if constraints.partition and target.partition != constraints.partition:
        c.refuse(msg("pinned to partition %(partition)s", partition=constraints.partition))
    elif not constraints.partition and not target.is_default and res.total_gpus == 0 and target.gpus_per_node:
        c.refuse(msg("a GPU partition, and the job asks for no GPU"))
    if constraints.region and target.region != constraints.region:
        c.refuse(msg("in region %(region)s, not %(wanted)s", region=target.region or "unset",
                     wanted=constraints.region))
    if target.dedicated_to and constraints.tenant not in target.dedicated_to:
        c.refuse(msg("partition %(partition)s is dedicated to %(listed)s", partition=target.partition,
                     listed=", ".join(target.dedicated_to)))
    if target.cluster in constraints.no_identity:
        c.refuse(msg("you have no Unix identity on cluster %(cluster)s (an operator maps one)", cluster=target.cluster))
    if constraints.only_clusters is not None and target.cluster not in constraints.only_clusters:
        c.refuse(msg("cluster %(cluster)s %(why)s", cluster=target.cluster, why=constraints.only_reason))
    if target.health == "offline":
        c.refuse(msg("cluster %(cluster)s is offline", cluster=target.cluster))
    if target.breaker_open:
        c.refuse(msg("cluster %(cluster)s failed recent submissions (circuit open)", cluster=target.cluster))
    if not target.priced:
        c.refuse(msg("partition %(partition)s has no price configured", partition=target.partition))
    if res.nodes > target.nodes:
        c.refuse(msg("asks for %(asked)s nodes; partition %(partition)s has %(has)s", asked=res.nodes, partition=target.partition,
                     has=target.nodes))
    if res.max_cores_per_node() > target.cores_per_node:
        c.refuse(msg("asks for %(asked)s cores on a node; nodes of partition %(partition)s have %(has)s",
                     asked=res.max_cores_per_node(), partition=target.partition, has=target.cores_per_node))
    elif res.total_cores > target.nodes * target.cores_per_node:
        c.refuse(msg("asks for %(asked)s cores; partition %(partition)s has %(has)s", asked=res.total_cores,
                     partition=target.partition, has=target.nodes * target.cores_per_node))
    if res.total_gpus:
        if res.max_gpus_per_node() > target.gpus_per_node:
            c.refuse(msg("asks for %(asked)s GPUs on a node; nodes of partition %(partition)s have %(has)s",
                         asked=res.max_gpus_per_node(), partition=target.partition, has=target.gpus_per_node))
        elif res.gpu_type and target.gpu_type and res.gpu_type != target.gpu_type:
            c.refuse(msg("partition %(partition)s has %(has)s GPUs, not %(asked)s", partition=target.partition, has=target.gpu_type,
                         asked=res.gpu_type))
    missing = missing_features(res.constraint, target.features)
    if missing:
        c.refuse(msg("nodes of partition %(partition)s lack feature %(feature)s", partition=target.partition, feature=missing))
    mem = res.mem_per_node_needed_mb()
    if mem > target.mem_per_node_mb:
        c.refuse(msg("asks for %(asked)s MB of memory on a node; nodes of partition %(partition)s have %(has)s MB",
                     asked=mem, partition=target.partition, has=target.mem_per_node_mb))
    limit = time_limit(res, target)
    if limit is None:
        c.refuse(msg("partition %(partition)s has no time limit: give one with --time", partition=target.partition))
    elif target.max_time_minutes is not None and limit > target.max_time_minutes:
        c.refuse(msg("time limit %(limit)s min is above the maximum of partition %(partition)s (%(maximum)s min)",
                     limit=limit, partition=target.partition, maximum=target.max_time_minutes))
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

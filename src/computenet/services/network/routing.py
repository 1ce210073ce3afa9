"""The live side of routing: targets from the registry, queues from the clusters
(cached for a few seconds), history from past jobs, prices from the price book.
The decision itself is routing.Router's, the same code the simulator runs.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ...clusters.base import ClusterError, QueueEntry
from ...domain.resources import JobSpec
from ...domain.states import TERMINAL_STATES
from ...routing.easy import QueuePlan
from ...routing.estimate import History, plan, wait_on
from ...routing.model import Constraints, Decision, Target
from ...routing.router import Router
from ...store.models import Account, Cluster, Job, Partition, Tenant, User
from ...store.types import utcnow
from ..platform import Platform

log = logging.getLogger(__name__)
HISTORY_JOBS = 200
HISTORY_TTL_S = 60.0


class QueueCache:
    """One queue read per cluster serves every routing decision for a few seconds."""

    def __init__(self, platform: Platform, ttl_s: float) -> None:
        self.platform, self.ttl_s = platform, ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, list[QueueEntry] | None]] = {}
        # plans made on a snapshot serve every decision while the snapshot does
        self._plans: dict[tuple[int, str, History], QueuePlan] = {}
        self._history: dict[str, tuple[float, History]] = {}

    def get(self, cluster: str) -> list[QueueEntry] | None:
        """The cluster's live queue, or None when it cannot be read (the wait is then unknown)."""
        with self._lock:
            cached = self._entries.get(cluster)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        adapter = self.platform.adapters.get(cluster)
        entries = None
        if adapter is not None and hasattr(adapter, "queue"):
            try:
                entries = adapter.queue()
            except ClusterError as exc:
                log.warning("queue of %s unreadable: %s", cluster, exc)
        with self._lock:
            old = self._entries.get(cluster)
            self._entries[cluster] = (time.monotonic(), entries)
            if old and old[1] is not None:  # the old snapshot's plans go with it
                self._plans = {k: v for k, v in self._plans.items() if k[0] != id(old[1])}
        return entries

    def history(self, session: Session, cluster: str) -> History:
        """History changes slowly: computed at most once a minute per cluster."""
        with self._lock:
            cached = self._history.get(cluster)
        if cached and time.monotonic() - cached[0] < HISTORY_TTL_S:
            return cached[1]
        value = history(session, cluster)
        with self._lock:
            self._history[cluster] = (time.monotonic(), value)
        return value

    def plan(self, target: Target, entries: list[QueueEntry], history: History) -> QueuePlan:
        key = (id(entries), target.name, history)
        with self._lock:
            found = self._plans.get(key)
        if found is None:
            found = plan(target, entries, history)
            with self._lock:
                if len(self._plans) > 4096:
                    self._plans.clear()
                self._plans[key] = found
        return found

    def forget(self, cluster: str | None = None) -> None:
        with self._lock:
            if cluster is None:
                self._entries.clear()
                self._history.clear()
            else:
                self._entries.pop(cluster, None)


def queues(platform: Platform) -> QueueCache:
    cache = getattr(platform, "_queue_cache", None)
    if cache is None:
        cache = platform._queue_cache = QueueCache(platform, platform.settings.routing.queue_cache_seconds)
    return cache


def targets(session: Session, platform: Platform) -> list[Target]:
    now = utcnow()
    out = []
    for cluster in session.scalars(select(Cluster).options(selectinload(Cluster.partitions)).order_by(Cluster.name)):
        try:
            cfg = platform.cluster_config(cluster.name)
        except KeyError:
            continue  # no longer configured
        node_sets = {p.name: frozenset(p.node_names or ()) for p in cluster.partitions}
        for part in cluster.partitions:
            if not part.available:
                continue
            mine = node_sets[part.name]
            nested = frozenset(name for name, nodes in node_sets.items()
                               if name != part.name and nodes and mine and nodes <= mine)
            out.append(Target(
                cluster=cluster.name, partition=part.name, nodes=part.nodes, cores_per_node=part.cores_per_node,
                mem_per_node_mb=part.mem_per_node_mb, gpus_per_node=part.gpus_per_node, gpu_type=part.gpu_type,
                max_time_minutes=part.max_time_minutes, default_time_minutes=part.default_time_minutes,
                is_default=part.is_default, region=cluster.region, site=cluster.site, ownership=cluster.ownership,
                health=cluster.health, priced=part.price_core_hour is not None,
                breaker_open=cluster.breaker_open_until is not None and cluster.breaker_open_until > now,
                backfill=cluster.kind == "slurm", tags=tuple(cluster.tags or ()),
                dedicated_to=tuple(cfg.dedicated.get(part.name, ())), node_names=mine, nested_partitions=nested,
                executor=executor_kind(cfg),
                features=frozenset(part.features) if part.features is not None and part.node_names else None))
    return out


def executor_kind(cfg) -> str:
    """Which column of the sbatch option table a cluster follows."""
    if cfg.kind == "local":
        return "local"
    return "slurmrest" if cfg.transport == "rest" else "slurm"


def refused_kinds(spec) -> tuple[tuple[str, str], ...]:
    """The cluster kinds that cannot honour an option this job uses, each with the first such option."""
    from ...domain import sbatch_options

    out = []
    for kind in sbatch_options.KINDS:
        why = sbatch_options.refusal(kind, list(spec.options.used))
        if why is None and kind == "local" and any(p.startswith("--exclusive=") for p in spec.options.passthrough):
            why = "--exclusive=user|mcs: the local executor runs one job per slot set; use plain --exclusive"
        if why:
            out.append((kind, why))
    return tuple(out)


def history(session: Session, cluster_name: str) -> History:
    """How long jobs really run against their limits there, and how far off predictions were."""
    from ..tenancy.identities import unix_user_for

    cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
    if cluster is None:
        return History()
    rows = session.execute(
        select(Job.start_time, Job.end_time, Job.time_limit_minutes, Job.predicted_start, Job.routing,
               Job.owner_id, User.name)
        .join(User, User.id == Job.owner_id)
        .where(Job.cluster_id == cluster.id, Job.start_time.is_not(None))
        .order_by(Job.id.desc()).limit(HISTORY_JOBS)).all()
    ratios, errors = [], []
    by_user: dict[str, list[float]] = {}
    logins: dict[int, str] = {}
    for start, end, limit, predicted, routing, owner_id, owner_name in rows:
        if end is not None and limit:
            ratio = min(1.0, max(0.0, (end - start).total_seconds() / (limit * 60)))
            ratios.append(ratio)
            if owner_id not in logins:  # the name squeue shows: the user's login there, if mapped
                logins[owner_id] = unix_user_for(session, owner_id, cluster.id) or owner_name
            by_user.setdefault(logins[owner_id], []).append(ratio)
        if predicted is not None and (routing or {}).get("chosen", "").startswith(f"{cluster_name}/"):
            errors.append((start - predicted).total_seconds())
    ratio = statistics.median(ratios) if len(ratios) >= 5 else 1.0
    bias = statistics.median(errors) if len(errors) >= 5 else 0.0
    users = tuple(sorted((name, statistics.median(r) or ratio) for name, r in by_user.items() if len(r) >= 3))
    return History(runtime_ratio=ratio or 1.0, bias_s=bias, user_ratios=users)


def decide(session: Session, platform: Platform, spec: JobSpec, account: Account,
           constraints: Constraints, policy: str | None = None, exclude: tuple[str, ...] = (),
           user_id: int | None = None) -> Decision:
    """Rank every (cluster, partition) for this job; nothing is written."""
    from ..errors import InvalidRequest
    from ..billing.pricing import max_cost

    cfg = platform.settings.routing
    router = Router(policy or cfg.policy, {"max_wait_s": cfg.owned_first_max_wait_minutes * 60,
                                           "weights": cfg.weights})
    parts = {(name, p.name): p for p, name in session.execute(select(Partition, Cluster.name).join(Cluster))}
    tenant = session.get(Tenant, account.tenant_id) if account.tenant_id else None
    missing = frozenset()
    if user_id is not None:  # clusters that run jobs as the user need the user's identity there
        from ..tenancy.identities import unix_user_for

        missing = frozenset(c.name for c in session.scalars(select(Cluster))
                            if _runs_as_users(platform, c.name) and unix_user_for(session, user_id, c.id) is None)
    constraints = Constraints(**{**constraints.__dict__, "tenant": tenant.name if tenant else None,
                                 "no_identity": missing, "refused_kinds": refused_kinds(spec)})
    res = spec.resources
    histories: dict[str, History] = {}
    read: dict[str, list[QueueEntry] | None] = {}  # one queue read per cluster per decision

    def price(target: Target, minutes: int):
        part = parts[(target.cluster, target.partition)]
        try:
            # exact, not rounded to the cent: two cheap jobs a fraction of a cent apart still rank right
            return max_cost(session, platform, spec, minutes, part, account, exact=True)
        except InvalidRequest:
            raise  # the job itself cannot be held anywhere (its cost is beyond any account)
        except Exception:  # unpriced now: the candidate is refused with that reason
            return None

    def wait(target: Target, minutes: int):
        if target.cluster not in read:
            read[target.cluster] = queues(platform).get(target.cluster)
        entries = read[target.cluster]
        if entries is None:
            return None
        if target.cluster not in histories:
            found = queues(platform).history(session, target.cluster)
            by_app = app_ratios(session, target.cluster, entries)
            histories[target.cluster] = replace(found, job_ratios=by_app) if by_app else found
        queue_plan = queues(platform).plan(target, entries, histories[target.cluster])
        return wait_on(queue_plan, res.total_cores, res.total_gpus, minutes * 60, histories[target.cluster])

    candidates = [t for t in targets(session, platform) if t.cluster not in exclude]
    decision = router.route(res, candidates, constraints, price, wait, utcnow())
    decision.notes += [f"{name}: queue unreadable, start unknown (ranked last)"
                       for name, entries in sorted(read.items()) if entries is None]
    return decision


_PROFILE_KEYS: dict[tuple, str] = {}  # (job id, submitted) -> its characteristics key (monitoring.profile_key)


def app_ratios(session: Session, cluster_name: str, entries: list[QueueEntry]) -> tuple[tuple[str, float], ...]:
    """For the platform's jobs in this queue: their typical runtime / their limit, from the application
    characteristics, so their end is predicted from what such runs take. App-centre jobs go by their
    app (on that many cores when known); other jobs by their owner's earlier runs of the same
    application (inferred from the executable) or job name, once there are MIN_RUNS of them."""
    from ..monitoring.app_profiles import typical_runtimes

    ids = [e.native_id for e in entries]
    if not ids:
        return ()
    from ...monitoring.infer import profile_key

    jobs = session.execute(select(Job.id, Job.submitted_at, Job.native_id, Job.app, Job.owner_id, Job.cores,
                                  Job.time_limit_minutes).join(Cluster)
                           .where(Cluster.name == cluster_name, Job.native_id.in_(ids[:1000]),
                                  # Slurm reuses ids after losing state: only live rows are in its queue
                                  Job.state.not_in([s.value for s in TERMINAL_STATES]),
                                  Job.time_limit_minutes.is_not(None))).all()
    # a job's key never changes: scripts are read (and searched) once per job, not per routing decision
    # (id, submitted_at): an id SQLite hands out again after a refused job's row was removed is another job
    unknown = [row.id for row in jobs if (row.id, row.submitted_at) not in _PROFILE_KEYS]
    if unknown:
        if len(_PROFILE_KEYS) > 50_000:
            _PROFILE_KEYS.clear()
        for job_id, submitted, app, script, name in session.execute(
                select(Job.id, Job.submitted_at, Job.app, Job.script, Job.name).where(Job.id.in_(unknown))):
            _PROFILE_KEYS[(job_id, submitted)] = profile_key(app, script, name)
    keys = {row.native_id: (_PROFILE_KEYS[(row.id, row.submitted_at)], None if row.app else row.owner_id,
                            row.cores, row.time_limit_minutes) for row in jobs}
    typical = typical_runtimes(session, {(key, owner) for key, owner, _, _ in keys.values()})
    out = []
    for native_id, (key, owner, cores, limit) in keys.items():
        runtime = typical.get((key, owner, cores)) or typical.get((key, owner, None))
        if runtime:
            out.append((native_id, min(1.0, runtime / (limit * 60))))
    return tuple(sorted(out))


def _runs_as_users(platform: Platform, cluster_name: str) -> bool:
    try:
        return platform.cluster_config(cluster_name).run_as_users
    except KeyError:
        return False


def record_failure(session: Session, cluster_name: str, platform: Platform) -> None:
    """A submission failed: count it; too many in a row open the circuit for a while."""
    cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
    cluster.failures += 1
    cfg = platform.settings.routing
    if cluster.failures >= cfg.breaker_failures:
        cluster.breaker_open_until = utcnow() + timedelta(seconds=cfg.breaker_cooldown_seconds)
        log.warning("cluster %s: %d submission failures in a row; kept out for %.0f s", cluster_name,
                    cluster.failures, cfg.breaker_cooldown_seconds)


def record_success(session: Session, cluster_name: str) -> None:
    cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
    if cluster.failures or cluster.breaker_open_until:
        cluster.failures, cluster.breaker_open_until = 0, None

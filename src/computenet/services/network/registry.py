"""The cluster registry: clusters from the configuration file, and clusters an operator
registers, changes or removes through the API (kept in the database, loaded at start).

Where a cluster is defined is where it is changed: a file-configured cluster is
edited in the file; an API-registered one through the API.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import ClusterConfig
from ...store.models import Cluster, Partition, RegisteredCluster
from .. import audit
from .clusters import make_adapter, sync_cluster
from ..errors import Conflict, InvalidRequest, NotFound
from ...messages import msg

if TYPE_CHECKING:  # platform.py loads the registry
    from ..platform import Platform

log = logging.getLogger(__name__)
SECRETS = ("rest_token",)


def load(platform: Platform) -> None:
    """Add the API-registered clusters to the running platform (at start)."""
    with platform.db.session() as session:
        rows = list(session.scalars(select(RegisteredCluster)))
        configs = [(row.name, row.config) for row in rows]
    known = {c.name for c in platform.settings.clusters}
    for name, data in configs:
        if name in known:
            log.error("registered cluster %s clashes with a configured one: the file wins", name)
            continue
        try:
            _attach(platform, ClusterConfig.model_validate(data))
        except (ValidationError, ValueError) as exc:
            log.error("registered cluster %s cannot be loaded: %s", name, exc)


def _attach(platform: Platform, cfg: ClusterConfig) -> None:
    platform.adapters[cfg.name] = make_adapter(cfg, platform.settings)
    platform.settings.clusters = [c for c in platform.settings.clusters if c.name != cfg.name] + [cfg]


def _validated(data: dict) -> ClusterConfig:
    try:
        cfg = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "cluster"
        raise InvalidRequest(msg("%(where)s: %(problem)s", where=where, problem=first['msg'])) from None
    if cfg.kind == "local":
        raise InvalidRequest(msg("local executors are configured in the file, not registered"))
    return cfg


def public(cfg: ClusterConfig) -> dict:
    data = cfg.model_dump(mode="json")
    for key in SECRETS:
        if data.get(key):
            data[key] = "***"
    return data


def register(platform: Platform, data: dict, who: audit.Who) -> Cluster:
    cfg = _validated(data)
    with platform.db.session() as session:
        if cfg.name in {c.name for c in platform.settings.clusters} or session.scalar(
                select(RegisteredCluster).where(RegisteredCluster.name == cfg.name)):
            raise Conflict(msg("cluster %(name)r exists", name=cfg.name))
    _attach(platform, cfg)
    try:
        with platform.db.session() as session:
            session.add(RegisteredCluster(name=cfg.name, config=cfg.model_dump(mode="json"), actor=who.actor))
            audit.record(session, who, "cluster.register", f"cluster:{cfg.name}", **{
                k: v for k, v in public(cfg).items() if k in ("kind", "transport", "region", "ownership")})
            return sync_cluster(session, cfg, platform.adapters[cfg.name])
    except Exception:
        platform.adapters.pop(cfg.name, None)
        platform.settings.clusters = [c for c in platform.settings.clusters if c.name != cfg.name]
        raise


def update(platform: Platform, name: str, changes: dict, who: audit.Who) -> Cluster:
    with platform.db.session() as session:
        row = session.scalar(select(RegisteredCluster).where(RegisteredCluster.name == name))
        if row is None:
            if name in {c.name for c in platform.settings.clusters}:
                raise InvalidRequest(msg("cluster %(name)s is defined in the configuration file: change it there", name=name))
            raise NotFound(msg("no registered cluster %(name)r", name=name))
        if "name" in changes and changes["name"] != name:
            raise InvalidRequest(msg("a cluster cannot be renamed"))
        cfg = _validated({**row.config, **changes})
        row.config = cfg.model_dump(mode="json")
        audit.record(session, who, "cluster.update", f"cluster:{name}", fields=sorted(changes))
    _attach(platform, cfg)
    with platform.db.session() as session:
        return sync_cluster(session, cfg, platform.adapters[name])


def deregister(platform: Platform, name: str, who: audit.Who) -> None:
    """No new jobs go there; its jobs and history stay (and keep being tracked until it is gone)."""
    with platform.db.session() as session:
        row = session.scalar(select(RegisteredCluster).where(RegisteredCluster.name == name))
        if row is None:
            raise NotFound(msg("no registered cluster %(name)r", name=name))
        session.delete(row)
        cluster = session.scalar(select(Cluster).where(Cluster.name == name))
        if cluster is not None:
            for part in session.scalars(select(Partition).where(Partition.cluster_id == cluster.id)):
                part.available = False
            cluster.health, cluster.health_detail = "offline", "deregistered by an operator"
        audit.record(session, who, "cluster.deregister", f"cluster:{name}")
    platform.settings.clusters = [c for c in platform.settings.clusters if c.name != name]
    platform.adapters.pop(name, None)


def listing(session: Session, platform: Platform) -> list[dict]:
    registered = {r.name for r in session.scalars(select(RegisteredCluster))}
    out = []
    for cfg in platform.settings.clusters:
        cluster = session.scalar(select(Cluster).where(Cluster.name == cfg.name))
        out.append({"name": cfg.name, "source": "api" if cfg.name in registered else "file",
                    "health": cluster.health if cluster else "unknown", "failures": cluster.failures if cluster else 0,
                    "config": public(cfg)})
    return out

"""Bringing a cluster back as soon as it answers.

The full cluster sync runs once a minute; a cluster that is offline or
degraded, or whose circuit breaker is open, is probed far more often (one
cheap health call, ``[routing] probe_interval_seconds``). When it answers
it is synced at once and its breaker goes half-open: the next submission is
tried there, one more failure opens it again, a success closes it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from ...clusters.base import HealthState
from ...store.models import Cluster
from ...store.types import utcnow
from .clusters import sync_cluster
from ..platform import Platform

log = logging.getLogger(__name__)


def needs_probe(cluster: Cluster, now: datetime) -> bool:
    return cluster.health != HealthState.ONLINE.value or (
        cluster.breaker_open_until is not None and cluster.breaker_open_until > now)


def retry_at(cluster: Cluster, probe_interval_s: float, now: datetime | None = None) -> datetime | None:
    """When the network will next try a cluster that is out of service (None when it is in service)."""
    now = now or utcnow()
    if not needs_probe(cluster, now):
        return None
    checked = cluster.checked_at or now
    return max(now, checked + timedelta(seconds=probe_interval_s))


class ClusterProbe:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> list[str]:
        """Probe every cluster out of service; returns the names brought back."""
        now = utcnow()
        with self.platform.db.session() as session:
            names = [c.name for c in session.scalars(select(Cluster)) if needs_probe(c, now)]
        back = []
        for name in names:
            try:
                cfg = self.platform.cluster_config(name)
                adapter = self.platform.adapter(name)
            except KeyError:
                continue  # no longer configured
            health = adapter.health()
            with self.platform.db.session() as session:
                cluster = session.scalar(select(Cluster).where(Cluster.name == name))
                if health.state != HealthState.ONLINE:
                    cluster.health, cluster.health_detail = health.state.value, health.detail[:1000]
                    cluster.checked_at = utcnow()
                    continue
                sync_cluster(session, cfg, adapter)  # partitions and health as they are now
                if cluster.health != HealthState.ONLINE.value:
                    continue
                if cluster.breaker_open_until is not None:
                    # half-open: one more failure opens it again at once
                    cluster.breaker_open_until = None
                    cluster.failures = max(0, self.platform.settings.routing.breaker_failures - 1)
                back.append(name)
                log.info("cluster %s answers again: back in service", name)
        return back

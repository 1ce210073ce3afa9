"""The running platform: settings, database and one adapter per cluster."""

from __future__ import annotations

import logging

from ..clusters.base import ClusterAdapter
from ..config import ClusterConfig, Settings
from ..store.db import Database
from .clusters import make_adapter, sync_cluster

log = logging.getLogger(__name__)


class Platform:
    def __init__(self, settings: Settings, db: Database | None = None,
                 adapters: dict[str, ClusterAdapter] | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_url)
        self.adapters = adapters if adapters is not None else {
            c.name: make_adapter(c, settings) for c in settings.clusters
        }

    def start(self) -> None:
        """Migrate the schema, add the clusters registered through the API, sync every cluster."""
        from .registry import load

        self.db.migrate()
        load(self)
        self.sync_clusters()

    def sync_clusters(self) -> None:
        for cfg in self.settings.clusters:
            with self.db.session() as session:
                cluster = sync_cluster(session, cfg, self.adapters[cfg.name])
                if cluster.health != "online":
                    log.warning("cluster %s is %s: %s", cfg.name, cluster.health, cluster.health_detail)

    def adapter(self, name: str) -> ClusterAdapter:
        return self.adapters[name]

    def cluster_config(self, name: str) -> ClusterConfig:
        return self.settings.cluster(name)

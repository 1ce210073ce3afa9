"""The running platform: settings, database and one adapter per cluster."""

from __future__ import annotations

import logging

from ..clusters.base import ClusterAdapter
from ..config import ClusterConfig, Settings
from ..store.db import Database
from .network.clusters import make_adapter, sync_cluster

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
        from .network.registry import load

        self.db.migrate()
        load(self)
        self.sync_clusters()

    def sync_clusters(self) -> None:
        from sqlalchemy.exc import IntegrityError

        for cfg in self.settings.clusters:
            for attempt in range(3):
                try:
                    with self.db.session() as session:
                        cluster = sync_cluster(session, cfg, self.adapters[cfg.name])
                        health, detail = cluster.health, cluster.health_detail
                    break
                except IntegrityError:  # replicas starting at once on an empty database: one wrote the
                    if attempt == 2:     # cluster's rows first; the next pass finds them there
                        raise
            if health != "online":
                log.warning("cluster %s is %s: %s", cfg.name, health, detail)

    def adapter(self, name: str) -> ClusterAdapter:
        return self.adapters[name]

    def cluster_config(self, name: str) -> ClusterConfig:
        return self.settings.cluster(name)

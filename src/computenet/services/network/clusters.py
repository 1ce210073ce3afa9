"""Building adapters from configuration and keeping the cluster table in sync."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...clusters.base import ClusterAdapter, ClusterError, HealthState
from ...clusters.local.adapter import LocalCluster
from ...clusters.slurm.adapter import SlurmCluster
from ...clusters.slurm.transport import LocalTransport
from ...config import OWNED_COST_FIELDS, ClusterConfig, Settings
from ...store.models import Cluster, Partition
from ...store.types import utcnow
from ...billing import pricebook
from ..billing.pricing import sync_prices

log = logging.getLogger(__name__)


def make_adapter(cfg: ClusterConfig, settings: Settings) -> ClusterAdapter:
    if cfg.kind == "local":
        return LocalCluster(
            cfg.name,
            settings.data_dir / "spool" / cfg.name,
            slots=cfg.slots,
            mem_mb=cfg.mem_mb,
            gpus=cfg.gpus,
            partition=cfg.partition,
            max_time_minutes=cfg.max_time_minutes,
            data_dir=settings.data_dir,
            workdir_root=settings.workdir_root(cfg),
            isolation_mode=cfg.isolation,
            job_uids=(cfg.job_uid_min, cfg.job_uid_max),
        )
    tz = ZoneInfo(cfg.timezone) if cfg.timezone else None
    if cfg.transport == "rest":
        from ...clusters.slurmrest.adapter import RestCluster, TokenSource, scontrol_minter

        if not cfg.rest_url:
            raise ValueError(f"cluster {cfg.name}: transport rest needs rest_url")
        tokens = TokenSource(cfg.rest_user, None if cfg.rest_token else scontrol_minter(cfg.slurm_conf),
                             cfg.rest_token)
        return RestCluster(cfg.name, cfg.rest_url, tokens, slurm_cluster=cfg.slurm_cluster, tz=tz,
                           job_tag=cfg.job_tag)
    if cfg.transport == "ssh":
        from ...clusters.slurm.ssh import SshTransport

        if not cfg.ssh_host:
            raise ValueError(f"cluster {cfg.name}: transport ssh needs ssh_host")
        transport = SshTransport(cfg.ssh_host, port=cfg.ssh_port, username=cfg.ssh_user,
                                 client_keys=[cfg.ssh_key] if cfg.ssh_key else [], known_hosts=cfg.ssh_known_hosts,
                                 accept_any_host_key=cfg.ssh_accept_any_host_key, slurm_conf=cfg.slurm_conf,
                                 bin_dir=cfg.bin_dir, user_key_template=cfg.ssh_user_key)
    else:
        transport = LocalTransport(cfg.slurm_conf, cfg.bin_dir)
    return SlurmCluster(cfg.name, transport, tz=tz, slurm_cluster=cfg.slurm_cluster, job_tag=cfg.job_tag)


def sync_cluster(session: Session, cfg: ClusterConfig, adapter: ClusterAdapter) -> Cluster:
    """Upsert the cluster, its health and its partitions with their prices.

    A partition without a price is kept but marked unpriced (price None):
    submissions to it are refused and the problem is logged at start-up.
    """
    cluster = session.scalar(select(Cluster).where(Cluster.name == cfg.name))
    if cluster is None:
        cluster = Cluster(name=cfg.name, kind=cfg.kind)
        session.add(cluster)
        session.flush()
    cluster.region, cluster.site, cluster.ownership = cfg.region, cfg.site, cfg.ownership
    cluster.cost_core_hour, cluster.cost_gpu_hour, cluster.tags = cfg.cost_core_hour, cfg.cost_gpu_hour, list(cfg.tags)
    for name in OWNED_COST_FIELDS:  # what owned capacity costs every hour (operator reports)
        setattr(cluster, name, getattr(cfg, name))
    health = adapter.health()
    cluster.health = health.state.value
    cluster.health_detail = health.detail
    cluster.checked_at = utcnow()
    if health.state == HealthState.OFFLINE:
        return cluster
    try:
        infos = adapter.partitions()
    except ClusterError as exc:
        cluster.health, cluster.health_detail = HealthState.DEGRADED.value, f"sinfo failed: {exc}"
        return cluster
    existing = {p.name: p for p in session.scalars(select(Partition).where(Partition.cluster_id == cluster.id))}
    bootstrap = not pricebook.history(session, cluster.id)
    for info in infos:
        part = existing.pop(info.name, None) or Partition(cluster_id=cluster.id, name=info.name)
        part.nodes = info.nodes
        part.cores_per_node = info.cores_per_node
        part.mem_per_node_mb = info.mem_per_node_mb
        part.gpus_per_node = info.gpus_per_node
        part.gpu_type = info.gpu_type
        part.max_time_minutes = info.max_time_minutes
        part.default_time_minutes = info.default_time_minutes
        part.is_default = info.is_default
        part.available = info.available
        part.product_line = cfg.product_line(info.name)
        part.node_names = list(info.node_names)
        part.features = list(info.features)
        price = cfg.price_for(info.name)
        if price is None:
            log.error("cluster %s partition %s has no price: jobs there are refused until one is configured",
                      cfg.name, info.name)
            part.price_core_hour = part.price_gpu_hour = None
        else:
            part.price_core_hour, part.price_gpu_hour = price.core_hour, price.gpu_hour
        session.add(part)
        session.flush()
        sync_prices(session, part, price, cfg.billing_strategy(info.name), bootstrap)
    for gone in existing.values():
        gone.available = False  # kept for history; no new jobs
    if cfg.storage_gb_day is not None and pricebook.current(session, cluster.id, "*", pricebook.STORAGE) \
            != cfg.storage_gb_day:
        pricebook.set_price(session, cluster.id, "*", pricebook.STORAGE, cfg.storage_gb_day, actor="config",
                            effective_from=None if pricebook.storage_price(session, cluster.id, utcnow())
                            is not None else pricebook.EPOCH, reason="from configuration")
    session.flush()
    return cluster

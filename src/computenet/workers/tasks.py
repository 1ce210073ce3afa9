"""Every background task, as one table: its name, how often it is due and the run_once() it calls.

A table and not a file per task: each entry is one line naming an existing service's run_once()
(a file per task would hold those three lines and an import). Per-cluster tasks are named
poller:<cluster>; the rest are platform-wide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select

from ..services.platform import Platform

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 60.0
DELIVERY_INTERVAL_S = 10.0
REROUTE_INTERVAL_S = 60.0
ENFORCE_INTERVAL_S = 30.0  # how soon a top-up lifts a block, and a lost block returns
COLLECT_INTERVAL_S = 2.0  # how soon an ended job's outputs are in the workspace
METER_INTERVAL_S = 3600.0  # storage is charged per day; an hourly pass catches the new day early


@dataclass(frozen=True)
class TaskSpec:
    name: str
    interval_s: float
    run: Callable[..., object]
    # run(guard=...): the task checks its lease (services/lease_guard.py) before effects outside the database
    guarded: bool = False


def _reader_language(platform: Platform):
    """A stored notice in its reader's language, as the portal says it (the catalogues are the portal's)."""
    def say(text: str, language: str) -> str:
        from ..services.integration.notifications import said
        from ..web import i18n

        return i18n.localise(said(text), language, i18n.Formats(language, platform.settings.currency,
                                                                platform.settings.display_timezone))
    return say


def poller_task(platform: Platform, cluster: str) -> TaskSpec:
    from ..services.jobs.poller import ClusterPoller

    return TaskSpec(f"poller:{cluster}", platform.cluster_config(cluster).poll_interval_s,
                    ClusterPoller(platform, cluster).run_once)


def submitter_task(platform: Platform, cluster: str) -> TaskSpec:
    """Sends the cluster's accepted jobs (services/jobs/submitter.py); a run keeps looking for a moment,
    so it is due again at once."""
    from ..services.jobs.submitter import Submitter

    return TaskSpec(f"submitter:{cluster}", 0.0, Submitter(platform, cluster).run_once)


def cluster_tasks(platform: Platform, cluster: str) -> list[TaskSpec]:
    return [poller_task(platform, cluster), submitter_task(platform, cluster)]


def platform_tasks(platform: Platform) -> list[TaskSpec]:
    """The platform-wide tasks (what services/loops.py ran as bare threads)."""
    from ..services.network.cluster_probe import ClusterProbe
    from ..services.integration.delivery import Deliverer
    from ..services.billing.enforcement import Enforcer
    from ..services.billing.exhaustion import ExhaustionWatch
    from ..services.files.job_files import OutputCollector
    from ..services.monitoring.monitoring import SampleCollector
    from ..services.integration.notifications import BalanceWatch
    from ..services.jobs.reroute import Rerouter
    from ..services.monitoring.sample_retention import SampleCompactor
    from ..services.sessions.watch import SessionWatch
    from ..services.monitoring.step_usage import StepUsageCollector
    from ..services.billing.storage_meter import StorageMeter

    tasks = [
        TaskSpec("cluster-sync", SYNC_INTERVAL_S, platform.sync_clusters),
        TaskSpec("cluster-probe", platform.settings.routing.probe_interval_seconds, ClusterProbe(platform).run_once),
        TaskSpec("enforcement", ENFORCE_INTERVAL_S, Enforcer(platform).run_once),
        TaskSpec("balance-watch", ENFORCE_INTERVAL_S, BalanceWatch(platform).run_once),
        TaskSpec("exhaustion", ENFORCE_INTERVAL_S, ExhaustionWatch(platform).run_once),
        TaskSpec("delivery", DELIVERY_INTERVAL_S, Deliverer(platform, say=_reader_language(platform)).run_once,
                 guarded=True),
        TaskSpec("re-routing", REROUTE_INTERVAL_S, Rerouter(platform).run_once, guarded=True),
        TaskSpec("outputs", COLLECT_INTERVAL_S, OutputCollector(platform).run_once),
        TaskSpec("storage-meter", METER_INTERVAL_S, StorageMeter(platform).run_once),
        TaskSpec("samples", COLLECT_INTERVAL_S, SampleCollector(platform).run_once),
        TaskSpec("sample-retention", METER_INTERVAL_S, SampleCompactor(platform).run_once),
        # interactive sessions: queued -> starting -> running -> ended (services/sessions/watch.py)
        TaskSpec("sessions", platform.settings.sessions.watch_interval_s, SessionWatch(platform).run_once),
    ]
    if platform.settings.events.nats_url:  # domain events out of the outbox (services/integration/event_publisher.py)
        from ..services.integration.event_publisher import EventPublisher

        tasks.append(TaskSpec("events", platform.settings.events.publish_every_s, EventPublisher(platform).run_once,
                              guarded=True))
        from ..services.jobs.job_requests import JobRequests  # jobs by message over the same broker

        tasks.append(TaskSpec("job-requests", platform.settings.events.requests_every_s, JobRequests(platform).run_once))
    # webhook endpoints fed from the outbox, and the outbox's clean-up (services/integration/webhook_sender.py, outbox_cleanup.py)
    from ..services.integration.outbox_cleanup import OutboxCleaner
    from ..services.integration.webhook_sender import WebhookDispatcher

    tasks.append(TaskSpec("webhooks", platform.settings.webhooks.every_s, WebhookDispatcher(platform).run_once,
                          guarded=True))
    tasks.append(TaskSpec("outbox-cleanup", platform.settings.events.cleanup_every_s, OutboxCleaner(platform).run_once))
    monitoring = platform.settings.monitoring
    if monitoring.enabled and monitoring.step_usage:
        tasks.append(TaskSpec("sstat", monitoring.collect_every_s, StepUsageCollector(platform).run_once))
    return tasks


def attach_registered(platform: Platform) -> list[str]:
    """Clusters registered through the API (by any replica) since this process started: added to
    this process, so that its workers poll them too. The names added."""
    from ..config import ClusterConfig
    from ..services.network import registry
    from ..store.models import RegisteredCluster

    with platform.db.session() as session:
        rows = [(r.name, r.config) for r in session.scalars(select(RegisteredCluster))]
    added = []
    for name, data in rows:
        if name in platform.adapters:
            continue
        try:
            registry._attach(platform, ClusterConfig.model_validate(data))  # the registry's own way in
            added.append(name)
        except ValueError as exc:  # pydantic's ValidationError is one
            log.error("registered cluster %s cannot be loaded: %s", name, exc)
    return added

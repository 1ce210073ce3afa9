"""The `outbox-cleanup` task: deletes what the events outbox no longer needs, in batches.

An event goes once it is older than [events] retention_hours and done with: published to the
broker (when one is configured; without one nothing would ever mark it), fanned out to the
webhook endpoints, and no delivery of it still pending (the delivery's body is read from it).
Finished webhook deliveries (delivered or dead) go after the same retention, so `cnet webhooks
deliveries` shows a week of history by default. Each batch is its own short transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, select

from ...store.event_models import OutboxEvent
from ...store.types import utcnow
from ...store.webhook_models import WebhookDelivery
from ..platform import Platform


@dataclass
class CleanupReport:
    events: int = 0
    deliveries: int = 0


class OutboxCleaner:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cfg = platform.settings.events

    def run_once(self) -> CleanupReport:
        report = CleanupReport()
        cutoff = utcnow() - timedelta(hours=self.cfg.retention_hours)
        finished = select(WebhookDelivery.id).where(WebhookDelivery.status.in_(("delivered", "dead")),
                                                    WebhookDelivery.finished_at < cutoff)
        report.deliveries = self._in_batches(WebhookDelivery, WebhookDelivery.id, finished)
        pending = exists().where(WebhookDelivery.event_id == OutboxEvent.id, WebhookDelivery.status == "pending")
        done = select(OutboxEvent.seq).where(OutboxEvent.fanned_out_at.is_not(None), ~pending)
        if self.cfg.nats_url:
            done = done.where(OutboxEvent.published_at < cutoff)
        else:
            done = done.where(OutboxEvent.occurred_at < cutoff)
        report.events = self._in_batches(OutboxEvent, OutboxEvent.seq, done)
        return report

    def _in_batches(self, table, key, query) -> int:
        gone = 0
        while True:
            with self.platform.db.session() as session:
                ids = session.scalars(query.order_by(key).limit(self.cfg.cleanup_batch)).all()
                if ids:
                    session.execute(delete(table).where(key.in_(ids)))
            gone += len(ids)
            if len(ids) < self.cfg.cleanup_batch:
                return gone

"""Publishes the outbox (store/event_models.py) to NATS JetStream, then marks the rows published.

At least once: a publisher killed after publishing and before marking sends the rows again next
time; JetStream drops the repeat (the event id is the Nats-Msg-Id, within the stream's duplicate
window), and a consumer can drop any later repeat by the same id. Rows go out in commit order
(seq), one acknowledged publish at a time, so a broker that is down only delays them: nothing is
marked unless JetStream stored it.

Under a worker's lease each publish is preceded by a lease check (services/lease_guard.py): a
publisher that stalled past its lease stops rather than racing the new holder (whose repeats
JetStream would drop anyway, within its duplicate window).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from sqlalchemy import select, update

from ...config import EventsConfig
from ...store.event_models import OutboxEvent
from ...store.types import utcnow
from ..lease_guard import UNGUARDED, LeaseGuard, LeaseLost
from ..platform import Platform

log = logging.getLogger(__name__)
SCHEMA = "computenet.event/1"


def envelope(row: OutboxEvent) -> dict:
    """The message body (docs/events.md)."""
    return {"schema": SCHEMA, "id": row.id, "type": row.type,
            "time": row.occurred_at.isoformat(), "tenant": row.tenant,
            "subject": row.subject, "data": row.data}


def subject_of(cfg: EventsConfig, row: OutboxEvent) -> str:
    return f"{cfg.subject_prefix}.{row.tenant}.events.{row.type}"


@dataclass
class PublishReport:
    published: list[str] = field(default_factory=list)
    duplicates: int = 0  # JetStream had them already (a publisher stopped before marking them)
    error: str = ""


async def ensure_stream(js, cfg: EventsConfig) -> None:
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(cfg.stream)
    except NotFoundError:
        await js.add_stream(name=cfg.stream, subjects=[f"{cfg.subject_prefix}.*.events.>"])


class EventPublisher:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cfg = platform.settings.events

    def pending(self) -> list[OutboxEvent]:
        with self.platform.db.session() as session:
            rows = list(session.scalars(select(OutboxEvent).where(OutboxEvent.published_at.is_(None))
                                        .order_by(OutboxEvent.seq).limit(self.cfg.batch)))
            session.expunge_all()
            return rows

    def run_once(self, guard: LeaseGuard = UNGUARDED) -> PublishReport:
        report = PublishReport()
        if not self.cfg.nats_url:
            return report
        rows = self.pending()
        if not rows:
            return report
        try:
            asyncio.run(self._publish(rows, report, guard))
        except LeaseLost:
            self.mark(report.published, rows, "")  # what JetStream stored is published, whoever marks it
            raise
        except Exception as exc:  # the broker is down or refused: the rest waits for the next pass
            said = str(exc) or f"no answer from {self.cfg.nats_url} within {self.cfg.timeout_s:g} s"
            report.error = f"{type(exc).__name__}: {said}"[:500]
            log.warning("publishing events stopped after %d of %d: %s", len(report.published), len(rows),
                        report.error)
        self.mark(report.published, rows, report.error)
        return report

    async def _publish(self, rows: list[OutboxEvent], report: PublishReport, guard: LeaseGuard) -> None:
        import nats

        # bounded from outside too: nats-py keeps retrying a server that refuses the first connection
        nc = await asyncio.wait_for(nats.connect(self.cfg.nats_url, connect_timeout=self.cfg.timeout_s,
                                                 allow_reconnect=False, max_reconnect_attempts=0),
                                    self.cfg.timeout_s)
        try:
            js = nc.jetstream(timeout=self.cfg.timeout_s)
            await ensure_stream(js, self.cfg)
            for row in rows:
                guard.check()  # one short UPDATE; blocking the loop for it is fine (it runs nothing else)
                ack = await js.publish(subject_of(self.cfg, row), json.dumps(envelope(row)).encode(),
                                       headers={"Nats-Msg-Id": row.id})
                report.duplicates += bool(ack.duplicate)
                report.published.append(row.id)
        finally:
            await nc.close()

    def mark(self, published: list[str], rows: list[OutboxEvent], error: str) -> None:
        with self.platform.db.session() as session:
            if published:
                session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(published))
                                .values(published_at=utcnow(), last_error=""))
            if error and len(published) < len(rows):
                stuck = rows[len(published)].id  # the one that failed; the rest were not tried
                session.execute(update(OutboxEvent).where(OutboxEvent.id == stuck)
                                .values(attempts=OutboxEvent.attempts + 1, last_error=error))

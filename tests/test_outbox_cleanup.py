"""The outbox clean-up: only events that are old and done with (published, fanned out, no delivery
pending) go, and finished webhook deliveries after the same retention; in batches."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from computenet.config import EventsConfig
from computenet.services.tenancy import accounts
from computenet.services.integration.outbox_cleanup import OutboxCleaner
from computenet.store.event_models import OutboxEvent
from computenet.store.types import utcnow
from computenet.store.webhook_models import WebhookDelivery, WebhookEndpoint

DAY = timedelta(days=1)


def _event(session, name: str, age: timedelta, published: bool = True, fanned: bool = True) -> str:
    at = utcnow() - age
    session.add(OutboxEvent(id=str(uuid.uuid4()), type="account.notice", occurred_at=at, tenant="_platform",
                            subject=name, data={"account": "lab"}, published_at=at if published else None,
                            fanned_out_at=at if fanned else None))
    return name


def _setup(platform) -> dict[str, int]:
    with platform.db.session() as session:
        lab = accounts.create_account(session, "lab")
        for name, age, published, fanned in (
                ("old", 10 * DAY, True, True), ("old2", 9 * DAY, True, True), ("old3", 8 * DAY, True, True),
                ("recent", DAY, True, True), ("unpublished", 10 * DAY, False, True),
                ("not-fanned-out", 10 * DAY, True, False), ("pending-delivery", 10 * DAY, True, True)):
            _event(session, name, age, published, fanned)
        session.flush()
        ep = WebhookEndpoint(account_id=lab.id, url="https://93.184.215.14/h", event_types=["*"],
                             secret="whsec_" + "A" * 32)
        session.add(ep)
        session.flush()
        ids = dict(session.execute(select(OutboxEvent.subject, OutboxEvent.id)).all())
        now = utcnow()
        for event, status, finished in (("old", "delivered", now - 10 * DAY), ("old2", "dead", now - 9 * DAY),
                                        ("recent", "delivered", now - DAY), ("pending-delivery", "pending", None)):
            session.add(WebhookDelivery(endpoint_id=ep.id, event_id=ids[event], event_type="account.notice",
                                        status=status, finished_at=finished))
        return ids


def test_only_old_published_rows_go_in_batches(make_platform):
    platform = make_platform(events=EventsConfig(nats_url="nats://127.0.0.1:4222", retention_hours=7 * 24,
                                                 cleanup_batch=2))
    _setup(platform)
    report = OutboxCleaner(platform).run_once()
    assert (report.events, report.deliveries) == (3, 2)
    with platform.db.session() as session:
        left = set(session.scalars(select(OutboxEvent.subject))) - {"cluster/local"}  # the platform's own, new
        kept = set(session.scalars(select(WebhookDelivery.status)))
    assert left == {"recent", "unpublished", "not-fanned-out", "pending-delivery"}
    assert kept == {"delivered", "pending"}  # the recent one, and the one still to send
    assert OutboxCleaner(platform).run_once() == report.__class__(0, 0)  # nothing more


def test_without_a_broker_old_fanned_out_events_go(make_platform):
    platform = make_platform(events=EventsConfig(retention_hours=7 * 24))  # nothing is ever published
    _setup(platform)
    assert OutboxCleaner(platform).run_once().events == 4
    with platform.db.session() as session:
        assert set(session.scalars(select(OutboxEvent.subject))) - {"cluster/local"} == {"recent", "not-fanned-out",
                                                                     "pending-delivery"}


def test_both_are_worker_tasks(make_platform):
    from computenet.services.integration.webhook_sender import WebhookDispatcher
    from computenet.workers.tasks import platform_tasks

    tasks = {t.name: t for t in platform_tasks(make_platform(events=EventsConfig(cleanup_every_s=600)))}
    assert tasks["outbox-cleanup"].interval_s == 600
    assert tasks["outbox-cleanup"].run.__self__.__class__ is OutboxCleaner
    assert tasks["webhooks"].run.__self__.__class__ is WebhookDispatcher

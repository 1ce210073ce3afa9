"""The `webhooks` task: fans outbox events out to the endpoints that want them, then sends what is due.

At least once, deduplicated by event id: a delivery is marked only after a 2xx; a task stopped
between the POST and the mark sends it again with the same `webhook-id` (the event id).

One endpoint cannot hold up another, nor the platform: endpoints are sent to in parallel (at most
[webhooks] parallel at once), each endpoint's deliveries one at a time in event order, every POST
bounded by timeout_s, and an endpoint's first failure ends its turn (the rest wait, untried, until
that delivery's back-off is over: the endpoint backs off as a whole). The pass runs in the worker's
own thread, never in a request.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from ...store.event_models import OutboxEvent, tenant_token
from ...store.models import Account, Tenant
from ...store.types import utcnow
from ...store.webhook_models import WebhookDelivery, WebhookEndpoint
from .delivery import _pinned, check_webhook_url, sign
from .event_publisher import envelope
from ..lease_guard import UNGUARDED, LeaseGuard, LeaseLost
from ..platform import Platform
from .webhooks import matches, signature

log = logging.getLogger(__name__)
RECORD_EVERY = 50  # deliveries marked per transaction (a stopped task repeats at most these, same ids)


@dataclass(frozen=True)
class _Item:
    id: int  # the delivery
    event_id: str
    event_type: str
    url: str
    secret: str
    body: bytes


@dataclass
class WebhookReport:
    fanned_out: int = 0  # events looked at
    queued: int = 0  # deliveries written
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)


class WebhookDispatcher:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cfg = platform.settings.webhooks

    def run_once(self, guard: LeaseGuard = UNGUARDED) -> WebhookReport:
        """``guard``: the worker's lease, checked before each POST (a stalled worker that lost it stops;
        the receiver drops a repeat that still happens by its webhook-id)."""
        report = WebhookReport()
        self.fan_out(report)
        self.send(report, guard)
        return report

    # -- fan-out ----------------------------------------------------------------------

    def fan_out(self, report: WebhookReport, batch: int = 1000) -> None:
        """A delivery per (endpoint, event) for events not yet fanned out (any commit order)."""
        with self.platform.db.session() as session:
            events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.fanned_out_at.is_(None))
                                          .order_by(OutboxEvent.seq).limit(batch)))
            if not events:
                return
            wanted: dict[str, list[tuple[WebhookEndpoint, str]]] = defaultdict(list)
            for endpoint, account, tenant in session.execute(
                    select(WebhookEndpoint, Account.name, Tenant.name).join(Account, Account.id ==
                                                                            WebhookEndpoint.account_id)
                    .outerjoin(Tenant, Tenant.id == Account.tenant_id)):
                wanted[account].append((endpoint, tenant_token(tenant)))
            # a tenant's endpoints hear every event of the tenant, by the event's tenant alone
            tenant_wide: dict[str, list[WebhookEndpoint]] = defaultdict(list)
            for endpoint, tenant in session.execute(
                    select(WebhookEndpoint, Tenant.name).join(Tenant, Tenant.id == WebhookEndpoint.tenant_id)):
                tenant_wide[tenant_token(tenant)].append(endpoint)
            now = utcnow()
            for event in events:
                account = event.data.get("account") if isinstance(event.data, dict) else None
                targets = [endpoint for endpoint, tenant in (wanted.get(account, ()) if account else ())
                           # the event's tenant too: an account's endpoint never hears another tenant's events
                           if tenant == event.tenant] + tenant_wide.get(event.tenant, [])
                for endpoint in targets:
                    if matches(endpoint.event_types, event.type):
                        session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id,
                                                    event_type=event.type, next_attempt_at=now))
                        report.queued += 1
                event.fanned_out_at = now
            report.fanned_out = len(events)

    # -- sending ----------------------------------------------------------------------

    def due(self) -> dict[int, list[_Item]]:
        """Per endpoint, its due deliveries in event order (at most per_endpoint each)."""
        now = utcnow()
        out: dict[int, list[_Item]] = {}
        with self.platform.db.session() as session:
            # an endpoint backs off as a whole: while one delivery waits for its retry, the later ones
            # wait behind it (in order; and a receiver that is down is not tried once per event)
            backing_off = select(WebhookDelivery.endpoint_id).where(WebhookDelivery.status == "pending",
                                                                    WebhookDelivery.next_attempt_at > now)
            ids = session.scalars(select(WebhookDelivery.endpoint_id).where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                WebhookDelivery.endpoint_id.not_in(backing_off))
                .group_by(WebhookDelivery.endpoint_id).order_by(func.min(WebhookDelivery.next_attempt_at))).all()
            for endpoint_id in ids:
                rows = session.execute(
                    select(WebhookDelivery, OutboxEvent, WebhookEndpoint)
                    .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending",
                           WebhookDelivery.next_attempt_at <= now)
                    .order_by(OutboxEvent.seq).limit(self.cfg.per_endpoint)).all()
                out[endpoint_id] = [
                    _Item(d.id, e.id, e.type, ep.url, ep.secret,
                          json.dumps(envelope(e), ensure_ascii=False, separators=(",", ":")).encode())
                    for d, e, ep in rows]
        return out

    def send(self, report: WebhookReport, guard: LeaseGuard = UNGUARDED) -> None:
        due = self.due()
        if not due:
            return
        with ThreadPoolExecutor(max_workers=min(self.cfg.parallel, len(due)),
                                thread_name_prefix="webhook") as pool:
            for done in pool.map(lambda items: self._endpoint_turn(items, guard), due.values()):
                for delivery_id, outcome in done:
                    getattr(report, outcome).append(delivery_id)

    def _endpoint_turn(self, items: list[_Item], guard: LeaseGuard = UNGUARDED) -> list[tuple[int, str]]:
        done: list[tuple[int, str]] = []
        sent: list[tuple[int, int]] = []  # (delivery, status) delivered, marked RECORD_EVERY at a time
        with httpx.Client(timeout=self.cfg.timeout_s, follow_redirects=False, trust_env=False) as client:
            for item in items:
                try:
                    guard.check()
                except LeaseLost:  # what was sent is marked; the rest is the new holder's
                    self._delivered(sent)
                    raise
                try:
                    status, error = self.post(client, item.url, item.secret, item.event_id, item.event_type,
                                              item.body)
                except Exception as exc:  # any failure is retried later; the reason is kept
                    status, error = None, f"{type(exc).__name__}: {exc}"[:500]
                if not error:
                    sent.append((item.id, status))
                    if len(sent) >= RECORD_EVERY:
                        done += self._delivered(sent)
                        sent = []
                    continue
                done += self._delivered(sent)
                sent = []
                done.append((item.id, self._failed(item, status, error)))
                break  # this endpoint's turn ends: the rest wait for its back-off, untried
        return done + self._delivered(sent)

    def post(self, client: httpx.Client, url: str, secret: str, event_id: str, event_type: str,
             body: bytes) -> tuple[int, str]:
        """One signed POST; (HTTP status, "" or why it does not count as delivered)."""
        notifications = self.platform.settings.notifications
        # again at send time (the rules or DNS may have changed), and sent to the address checked
        target, host_header, extensions = _pinned(url, check_webhook_url(url, notifications)[0])
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "ComputeNet",
                   "webhook-id": event_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": signature(secret, event_id, timestamp, body),
                   "X-ComputeNet-Event": event_type, "X-ComputeNet-Delivery": event_id, **host_header}
        if notifications.webhook_secret:  # the older header, for receivers that check it
            headers["X-ComputeNet-Signature"] = sign(notifications.webhook_secret, body)
        response = client.post(target, content=body, headers=headers, extensions=extensions)
        ok = 200 <= response.status_code < 300
        return response.status_code, "" if ok else f"HTTP {response.status_code}"

    def _delivered(self, sent: list[tuple[int, int]]) -> list[tuple[int, str]]:
        """Marks them delivered, in one transaction (a task stopped before it sends them again, same ids)."""
        if not sent:
            return []
        now = utcnow()
        with self.platform.db.session() as session:
            for status in {s for _, s in sent}:
                session.execute(update(WebhookDelivery).where(
                    WebhookDelivery.id.in_([i for i, s in sent if s == status]), WebhookDelivery.status == "pending")
                    .values(status="delivered", finished_at=now, last_error="", last_status=status,
                            attempts=WebhookDelivery.attempts + 1))
        return [(i, "sent") for i, _ in sent]

    def _failed(self, item: _Item, status: int | None, error: str) -> str:
        log.warning("webhook delivery %s (event %s to %s) failed: %s", item.id, item.event_id, item.url, error)
        with self.platform.db.session() as session:
            row = session.get(WebhookDelivery, item.id)
            if row is None or row.status != "pending":
                return "failed"  # the endpoint was removed meanwhile
            row.attempts += 1
            row.last_status = status
            now = utcnow()
            if row.attempts >= self.cfg.max_attempts:
                row.status, row.finished_at = "dead", now
                row.last_error = f"{error} (gave up after {row.attempts} tries)"
                return "dead"
            row.last_error = error
            row.next_attempt_at = now + timedelta(seconds=min(self.cfg.backoff_s * 2 ** (row.attempts - 1),
                                                              self.cfg.max_backoff_s))
            return "failed"


def send_test(platform: Platform, endpoint: WebhookEndpoint, account: Account | Tenant) -> dict:
    """A `webhook.test` event to one endpoint, now, signed as any other; what the endpoint answered.
    (Asked for by a person waiting for the answer, so it is not queued; bounded by timeout_s.)"""
    event_id = str(uuid.uuid4())
    body = json.dumps({"schema": "computenet.event/1", "id": event_id, "type": "webhook.test",
                       "time": utcnow().isoformat(),
                       "tenant": tenant_token(account.name if isinstance(account, Tenant) else
                                              account.tenant.name if account.tenant else None),
                       "subject": f"{'tenant' if isinstance(account, Tenant) else 'account'}/{account.name}",
                       "data": {"tenant" if isinstance(account, Tenant) else "account": account.name,
                                "endpoint": endpoint.id}}, separators=(",", ":")).encode()
    sender = WebhookDispatcher(platform)
    try:
        with httpx.Client(timeout=sender.cfg.timeout_s, follow_redirects=False, trust_env=False) as client:
            status, error = sender.post(client, endpoint.url, endpoint.secret, event_id, "webhook.test", body)
    except Exception as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"[:500]
    return {"endpoint": endpoint.id, "event_id": event_id, "ok": not error, "status": status, "error": error}

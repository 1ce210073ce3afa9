"""Webhook endpoints of a project account or of a whole tenant, fed from the events outbox
(docs/webhooks.md).

Who: an account's managers (the `webhook` rule of services/tenancy/roles.py: its PI, its tenant's admin,
finance, operators); a tenant's endpoints, its admins and operators (`tenant_webhook`); through the
API, CLI and portal alike. What: every outbox event whose type matches one of the endpoint's
patterns and that is about the account (an account's endpoint) or of the tenant (a tenant's
endpoint: every account of the tenant, and the tenant's own events); events of another account or
tenant never match (the event's tenant must be the endpoint's, or its account's).

How (services/integration/webhook_sender.py): a task writes one delivery row per (endpoint, event) after the
event's commit, never in the request that caused it; the same task sends what is due, at least
once, signed the Standard Webhooks way, retried with back-off and given up ("dead") after
[webhooks] max_attempts with the reason kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ...config import NotificationsConfig, WebhooksConfig
from ...messages import msg
from ...store.event_models import EVENT_TYPES
from ...store.models import Account, Tenant, User
from ...store.webhook_models import WebhookDelivery, WebhookEndpoint
from ..tenancy import roles
from ..tenancy.accounts import get_account
from ..errors import InvalidRequest, NotFound

LEGACY_TYPES = ["balance.*", "account.notice"]  # what the per-account webhook was sent before
MAX_PATTERNS = 20
DELIVERY_STATES = ("pending", "delivered", "dead")
_PATTERN = re.compile(r"\*|[a-z_]{1,30}\.(\*|[a-z_]{1,30})")


def managed_account(session: Session, viewer: User, name: str) -> Account:
    """The account, if ``viewer`` may manage its webhooks (NotFound for one they may not see)."""
    account = get_account(session, name)
    roles.require(session, viewer, "webhook", account)
    return account


def managed_tenant(session: Session, viewer: User, name: str) -> Tenant:
    """The tenant, if ``viewer`` may manage its webhooks (NotFound otherwise: which tenants exist is not told)."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None or not roles.allowed(session, viewer, "tenant_webhook", tenant_id=tenant.id):
        raise NotFound(msg("no tenant %(name)r", name=name))
    return tenant


Owner = Account | Tenant  # whose endpoints: one account's, or a whole tenant's


def _owned_by(owner: Owner):
    if isinstance(owner, Tenant):
        return WebhookEndpoint.tenant_id == owner.id
    return WebhookEndpoint.account_id == owner.id


def _no_endpoint(owner: Owner, endpoint_id: int) -> NotFound:
    if isinstance(owner, Tenant):
        return NotFound(msg("tenant %(tenant)s has no webhook endpoint %(id)s", tenant=owner.name, id=endpoint_id))
    return NotFound(msg("account %(account)s has no webhook endpoint %(id)s", account=owner.name, id=endpoint_id))


def check_types(patterns: list[str]) -> list[str]:
    """The patterns, each a known type, `<prefix>.*` of a known prefix, or `*`; else InvalidRequest."""
    cleaned = list(dict.fromkeys(p.strip() for p in patterns if p.strip()))
    if not cleaned:
        raise InvalidRequest(msg("name the event types the endpoint wants (e.g. job.* or *)"))
    if len(cleaned) > MAX_PATTERNS:
        raise InvalidRequest(msg("at most %(n)s event type patterns per endpoint", n=MAX_PATTERNS))
    for p in cleaned:
        known = p == "*" or p in EVENT_TYPES or (p.endswith(".*") and any(t.startswith(p[:-1]) for t in EVENT_TYPES))
        if not _PATTERN.fullmatch(p) or not known:
            raise InvalidRequest(msg("unknown event type %(pattern)r: use one of %(known)s, a prefix such as job.*, "
                                     "or *", pattern=p[:60], known=", ".join(EVENT_TYPES)))
    return cleaned


def matches(patterns: list[str], type_: str) -> bool:
    return any(p == "*" or p == type_ or (p.endswith(".*") and type_.startswith(p[:-1])) for p in patterns)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed by the secret's bytes>."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def add_endpoint(session: Session, account: Owner, url: str, event_types: list[str],
                 notifications: NotificationsConfig, created_by: str, description: str = "", legacy: bool = False,
                 max_endpoints: int = WebhooksConfig().max_endpoints) -> WebhookEndpoint:
    from .delivery import check_webhook_url  # the address rules of every webhook

    url = (url or "").strip()
    if len(url) > 2000:
        raise InvalidRequest(msg("a webhook URL is at most 2000 characters"))
    check_webhook_url(url, notifications)
    types = check_types(event_types)
    if len(description) > 200:
        raise InvalidRequest(msg("a webhook description is at most 200 characters"))
    count = session.scalar(select(func.count()).select_from(WebhookEndpoint).where(_owned_by(account)))
    if count >= max_endpoints:
        if isinstance(account, Tenant):
            raise InvalidRequest(msg("tenant %(tenant)s has %(n)s webhook endpoints already, the most allowed; "
                                     "remove one first", tenant=account.name, n=count))
        raise InvalidRequest(msg("account %(account)s has %(n)s webhook endpoints already, the most allowed; "
                                 "remove one first", account=account.name, n=count))
    tenant = isinstance(account, Tenant)
    endpoint = WebhookEndpoint(account_id=None if tenant else account.id, tenant_id=account.id if tenant else None,
                               url=url, event_types=types, secret=new_secret(),
                               description=description, legacy=legacy, created_by=created_by[:64])
    session.add(endpoint)
    session.flush()
    return endpoint


def endpoints(session: Session, account: Owner) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).where(_owned_by(account)).order_by(WebhookEndpoint.id)))


def get_endpoint(session: Session, account: Owner, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, _owned_by(account)))
    if endpoint is None:
        raise _no_endpoint(account, endpoint_id)
    return endpoint


def remove_endpoint(session: Session, account: Owner, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint and its deliveries (pending ones are not sent)."""
    endpoint = get_endpoint(session, account, endpoint_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()
    return endpoint


def replace_legacy(session: Session, account: Account, url: str | None, notifications: NotificationsConfig,
                   by: str) -> None:
    """The older per-account setting (`cnet admin webhook`, PUT /accounts/{name}/webhook): one endpoint
    for the account's notices, replaced or removed."""
    olds = list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.account_id == account.id,
                                                              WebhookEndpoint.legacy.is_(True))))
    if url and [e.url for e in olds] == [url]:
        return  # set again as it was: the endpoint, its secret and its pending deliveries stay
    for old in olds:
        remove_endpoint(session, account, old.id)
    if url:
        add_endpoint(session, account, url, LEGACY_TYPES, notifications, by, "account webhook", legacy=True)


def deliveries(session: Session, account: Owner, endpoint_id: int | None = None, status: str | None = None,
               limit: int = 50) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
    if status is not None and status not in DELIVERY_STATES:
        raise InvalidRequest(msg("status is one of %(states)s, not %(status)r", states=", ".join(DELIVERY_STATES),
                                 status=status[:20]))
    query = (select(WebhookDelivery, WebhookEndpoint).join(WebhookEndpoint,
                                                           WebhookEndpoint.id == WebhookDelivery.endpoint_id)
             .where(_owned_by(account)))
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == get_endpoint(session, account, endpoint_id).id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return [tuple(r) for r in session.execute(query.order_by(WebhookDelivery.id.desc())
                                              .limit(max(1, min(limit, 500))))]


def endpoint_json(endpoint: WebhookEndpoint, account: str | None, with_secret: bool = False,
                  tenant: str | None = None) -> dict:
    """``account`` for an account's endpoint, ``tenant`` for a tenant's (the other is None)."""
    out = {"id": endpoint.id, "account": account, "tenant": tenant, "url": endpoint.url, "event_types": list(endpoint.event_types),
           "description": endpoint.description, "legacy": endpoint.legacy, "created_by": endpoint.created_by,
           "created_at": endpoint.created_at.isoformat()}
    if with_secret:  # shown once, when made: the receiver verifies signatures with it
        out["secret"] = endpoint.secret
    return out


def delivery_json(d: WebhookDelivery, endpoint: WebhookEndpoint) -> dict:
    return {"id": d.id, "endpoint": endpoint.id, "url": endpoint.url, "event_id": d.event_id,
            "event_type": d.event_type, "status": d.status, "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
            "last_status": d.last_status, "last_error": d.last_error, "created_at": d.created_at.isoformat(),
            "finished_at": d.finished_at.isoformat() if d.finished_at else None}

"""/accounts/{name}/webhooks: a project's webhook endpoints and their deliveries (docs/webhooks.md);
/tenants/{tenant}/webhooks: a tenant's endpoints, which hear the events of every account of the tenant.

The account's managers only (the `webhook` rule); another tenant's account answers as a missing one.
A tenant's endpoints: its admins and operators (`tenant_webhook`); to anyone else the tenant is missing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as ApiPath
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...schemas import MAX_ROW_ID
from ...services import audit
from ...services.integration import webhooks
from ...services.platform import Platform
from ...store.models import User
from ..deps import current_user, get_platform, get_session
from ..responses import errors

router = APIRouter(prefix="/accounts/{name}/webhooks", tags=["webhooks"],
                   responses=errors(400, 401, 403, 404, 422))
EndpointId = ApiPath(ge=1, le=MAX_ROW_ID)


class EndpointIn(BaseModel):
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(min_length=1, max_length=webhooks.MAX_PATTERNS,
                                   description='patterns: "job.charged", "job.*", "*"')
    description: str = Field("", max_length=200)


def _who(request: Request, user: User) -> audit.Who:
    return audit.Who.api(user.name, request.client.host if request.client else None)


@router.get("")
def list_endpoints(name: str, user: User = Depends(current_user), session: Session = Depends(get_session)):
    account = webhooks.managed_account(session, user, name)
    return [webhooks.endpoint_json(e, name) for e in webhooks.endpoints(session, account)]


@router.post("", status_code=201)
def add_endpoint(name: str, body: EndpointIn, request: Request, user: User = Depends(current_user),
                 session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    """The secret is in this answer only: the receiver verifies signatures with it."""
    account = webhooks.managed_account(session, user, name)
    endpoint = webhooks.add_endpoint(session, account, body.url, body.event_types, platform.settings.notifications,
                                     user.name, body.description,
                                     max_endpoints=platform.settings.webhooks.max_endpoints)
    audit.record(session, _who(request, user), "webhook.add", f"account:{name}", endpoint=endpoint.id,
                 url=endpoint.url, event_types=endpoint.event_types)
    out = webhooks.endpoint_json(endpoint, name, with_secret=True)
    session.commit()  # before the response: the next request must see it
    return out


@router.delete("/{endpoint_id}")
def remove_endpoint(name: str, request: Request, endpoint_id: int = EndpointId, user: User = Depends(current_user),
                    session: Session = Depends(get_session)):
    account = webhooks.managed_account(session, user, name)
    endpoint = webhooks.remove_endpoint(session, account, endpoint_id)
    audit.record(session, _who(request, user), "webhook.remove", f"account:{name}", endpoint=endpoint_id,
                 url=endpoint.url)
    session.commit()
    return {"account": name, "removed": endpoint_id}


@router.post("/{endpoint_id}/test")
def test_endpoint(name: str, endpoint_id: int = EndpointId, user: User = Depends(current_user),
                  session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    """A signed `webhook.test` event to the endpoint now; what it answered."""
    from ...services.integration.webhook_sender import send_test

    account = webhooks.managed_account(session, user, name)
    return send_test(platform, webhooks.get_endpoint(session, account, endpoint_id), account)


@router.get("/deliveries")
def list_deliveries(name: str, endpoint: int | None = Query(None, ge=1, le=MAX_ROW_ID),
                    status: str | None = Query(None, max_length=20), limit: int = Query(50, ge=1, le=500),
                    user: User = Depends(current_user), session: Session = Depends(get_session)):
    account = webhooks.managed_account(session, user, name)
    return [webhooks.delivery_json(d, e) for d, e in webhooks.deliveries(session, account, endpoint, status, limit)]


# -- a tenant's endpoints: every account of the tenant ------------------------------------------

tenant_router = APIRouter(prefix="/tenants/{tenant}/webhooks", tags=["webhooks"],
                          responses=errors(400, 401, 403, 404, 422))


@tenant_router.get("")
def list_tenant_endpoints(tenant: str, user: User = Depends(current_user), session: Session = Depends(get_session)):
    owner = webhooks.managed_tenant(session, user, tenant)
    return [webhooks.endpoint_json(e, None, tenant=tenant) for e in webhooks.endpoints(session, owner)]


@tenant_router.post("", status_code=201)
def add_tenant_endpoint(tenant: str, body: EndpointIn, request: Request, user: User = Depends(current_user),
                        session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    """The secret is in this answer only: the receiver verifies signatures with it."""
    owner = webhooks.managed_tenant(session, user, tenant)
    endpoint = webhooks.add_endpoint(session, owner, body.url, body.event_types, platform.settings.notifications,
                                     user.name, body.description,
                                     max_endpoints=platform.settings.webhooks.max_endpoints)
    audit.record(session, _who(request, user), "webhook.add", f"tenant:{tenant}", endpoint=endpoint.id,
                 url=endpoint.url, event_types=endpoint.event_types)
    out = webhooks.endpoint_json(endpoint, None, with_secret=True, tenant=tenant)
    session.commit()  # before the response: the next request must see it
    return out


@tenant_router.delete("/{endpoint_id}")
def remove_tenant_endpoint(tenant: str, request: Request, endpoint_id: int = EndpointId,
                           user: User = Depends(current_user), session: Session = Depends(get_session)):
    owner = webhooks.managed_tenant(session, user, tenant)
    endpoint = webhooks.remove_endpoint(session, owner, endpoint_id)
    audit.record(session, _who(request, user), "webhook.remove", f"tenant:{tenant}", endpoint=endpoint_id,
                 url=endpoint.url)
    session.commit()
    return {"tenant": tenant, "removed": endpoint_id}


@tenant_router.post("/{endpoint_id}/test")
def test_tenant_endpoint(tenant: str, endpoint_id: int = EndpointId, user: User = Depends(current_user),
                         session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    """A signed `webhook.test` event to the endpoint now; what it answered."""
    from ...services.integration.webhook_sender import send_test

    owner = webhooks.managed_tenant(session, user, tenant)
    return send_test(platform, webhooks.get_endpoint(session, owner, endpoint_id), owner)


@tenant_router.get("/deliveries")
def list_tenant_deliveries(tenant: str, endpoint: int | None = Query(None, ge=1, le=MAX_ROW_ID),
                           status: str | None = Query(None, max_length=20), limit: int = Query(50, ge=1, le=500),
                           user: User = Depends(current_user), session: Session = Depends(get_session)):
    owner = webhooks.managed_tenant(session, user, tenant)
    return [webhooks.delivery_json(d, e) for d, e in webhooks.deliveries(session, owner, endpoint, status, limit)]

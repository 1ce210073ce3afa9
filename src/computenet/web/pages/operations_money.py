"""Operations: the price book (each cluster's partitions with the list prices in force now, as the
rating uses them: services/billing/pricing.prices_for, billing/pricebook.storage_price) and the reconcile
queue (services/jobs/reconcile.needing and resolve, as GET/POST /admin/reconcile and `cnet admin
reconcile`). Prices come from the clusters' configuration (there is no `cnet admin price`), so the
price book is read here, not changed.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...billing import pricebook
from ...services.billing import pricing
from ...services.jobs import reconcile
from ...services.tenancy import roles
from ...services.errors import InvalidRequest, NotFound, ServiceError
from ...store.models import Cluster, Partition
from ...store.types import utcnow
from ..i18n import N_
from ..render import Viewer
from ..viewer import check_csrf, viewer
from .operations import _ops_page
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
ACTION_WORDS = {"adopt": N_("adopt"), "withdraw": N_("withdraw"), "release": N_("release"), "charge": N_("charge")}


@router.get("/portal/operations/prices")
def price_book(request: Request):
    who = viewer(request)
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        try:
            roles.require(session, me, "reports")
        except ServiceError as exc:
            return refused(request, who, exc)
        now, clusters = utcnow(), []
        for cluster in session.scalars(select(Cluster).order_by(Cluster.name)):
            parts = session.scalars(select(Partition).where(Partition.cluster_id == cluster.id)
                                    .order_by(Partition.name)).all()
            clusters.append({"name": cluster.name, "storage": pricebook.storage_price(session, cluster.id, now),
                             "partitions": [{"part": p, "prices": pricing.prices_for(session, p, now)} for p in parts]})
        return _ops_page(request, who, session, me, "operations/prices.html", clusters=clusters,
                         currency=platform_of(request).settings.currency)


def _queue_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = ""):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        try:
            roles.require(session, me, "cluster_admin")
        except ServiceError as exc:
            return refused(request, who, exc)
        return _ops_page(request, who, session, me, "operations/reconcile.html", status=status, error=error,
                         done=done, jobs=reconcile.needing(session), words=ACTION_WORDS)


@router.get("/portal/operations/reconcile")
def reconcile_queue(request: Request, done: str = ""):
    return _queue_page(request, viewer(request), done=done[:1])


@router.post("/portal/operations/reconcile/{job_id}")
def resolve(request: Request, job_id: int, action: str = Form("", max_length=16),
            native_id: str = Form("", max_length=20), amount: str = Form("", max_length=40),
            note: str = Form("", max_length=500), csrf_token: str = Form("", max_length=100)):
    """One decision on a flagged job: its hold is posted or voided once, audited (``reconcile``)."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            roles.require(session, signed_in_user(session, who), "cluster_admin")
            if not 1 <= job_id < 2**63:
                raise InvalidRequest(f"no job {job_id}")
            reconcile.resolve(session, job_id, action, portal_who(request, who), native_id.strip() or None,
                              amount.strip() or None, note.strip())
    except ServiceError as exc:
        if exc.status_code in (403, 404) or isinstance(exc, NotFound):
            return refused(request, who, exc)
        return _queue_page(request, who, status=409 if exc.status_code == 409 else 400, error=who.say(exc))
    return RedirectResponse("/portal/operations/reconcile?done=1", status_code=303)

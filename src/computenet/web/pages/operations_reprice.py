"""Operations: re-pricing settled jobs (`cnet admin reprice`, POST /admin/reprice) and every user's API
tokens (`cnet admin tokens list | revoke`).

Re-pricing is shown before it is applied: the preview runs services/billing/repricing.reprice and rolls it
back (ledger_admin.preview_reprice), so the differences shown are the very ones applying moves. The
preview carries a batch key; applying is once per key (a form sent twice moves the differences once).
Tokens are services/tenancy/tokens.py's listing and revoke, for the ``token_admin`` role, audited as the CLI.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from ...services.tenancy import accounts, roles, tokens
from ...services import audit
from ...services.billing import ledger_admin
from ...services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from ..i18n import N_
from ..render import Viewer
from ..viewer import check_csrf, viewer
from .operations import _ops_page
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
STATE_WORDS = {"active": N_("active"), "expired": N_("expired"), "revoked": N_("revoked")}
SCOPE_WORDS = {"full": N_("full"), "read": N_("read only")}


def _reprice_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, **context):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "reprice"):
            return refused(request, who, Forbidden(roles.refusal("reprice")))
        context.setdefault("job_text", "")
        context.setdefault("reason", "")
        return _ops_page(request, who, session, me, "ledger/reprice.html", status=status, error=error, **context)


@router.get("/portal/operations/reprice")
def reprice_form(request: Request):
    return _reprice_page(request, viewer(request))


def _reprice(request: Request, csrf_token: str, job_text: str, reason: str, work, applying: bool = False):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            me = signed_in_user(session, who)
            roles.require(session, me, "reprice")
            if not reason.strip():
                raise InvalidRequest("reason: re-pricing needs a reason (it is kept with every adjustment)")
            outcome, batch = work(session, me, ledger_admin.job_ids(job_text), reason.strip())
    except Forbidden as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        return _reprice_page(request, who, status=exc.status_code if exc.status_code in (404, 409) else 400,
                             error=who.say(exc),
                             job_text=job_text, reason=reason)
    chart = {"aria": {"enabled": True}, "tooltip": {"trigger": "axis"}, "grid": {"left": 70, "right": 20, "bottom": 40,
                                                                                   "top": 40},
             "xAxis": {"type": "category", "data": [who.gettext("job %(id)s", id=r.job_id) for r in outcome.rows]},
             "yAxis": {"type": "value", "name": who.gettext("Difference")},
             "series": [{"type": "bar", "name": who.gettext("Difference"),
                         "data": [float(r.difference) for r in outcome.rows]}]}
    mode = "applied" if outcome.applied else "again" if applying else "preview"
    return _reprice_page(request, who, outcome=outcome, batch=batch, chart=chart, mode=mode,
                         job_text=" ".join(str(i) for i in sorted({r.job_id for r in outcome.rows})), reason=reason)


@router.post("/portal/operations/reprice/preview")
def preview(request: Request, job_ids: str = Form("", max_length=200_000), reason: str = Form("", max_length=1000),
            csrf_token: str = Form("", max_length=100)):
    """The differences re-pricing would move; nothing is written."""
    billing = platform_of(request).settings.billing

    def work(session, me, ids, why):
        return ledger_admin.preview_reprice(session, me, ids, why, billing), uuid.uuid4().hex
    return _reprice(request, csrf_token, job_ids, reason, work)


@router.post("/portal/operations/reprice/apply")
def apply(request: Request, job_ids: str = Form("", max_length=200_000), reason: str = Form("", max_length=1000),
          batch: str = Form("", max_length=100), csrf_token: str = Form("", max_length=100)):
    """Apply a previewed re-pricing, once per batch key."""
    platform, who = platform_of(request), viewer(request)

    def work(session, me, ids, why):
        if not batch.strip():
            raise InvalidRequest("batch: preview the re-pricing first (its batch key applies it once)")
        return (ledger_admin.apply_reprice(session, me, portal_who(request, who), ids, why, batch.strip(),
                                           platform.settings.billing), batch.strip())
    return _reprice(request, csrf_token, job_ids, reason, work, applying=True)


# -- every user's API tokens -------------------------------------------------------------

def _tokens_page(request: Request, who: Viewer, user: str = "", everything: bool = False, status: int = 200,
                 error: str | None = None, done: bool = False):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        try:
            roles.require(session, me, "token_admin")
            owner = accounts.get_user(session, user) if user else None
        except ServiceError as exc:
            return refused(request, who, exc)
        rows = [tokens.to_json(t) for t in tokens.listing(session, owner, everything)[:2000]]
        return _ops_page(request, who, session, me, "ledger/tokens.html", status=status, error=error, rows=rows,
                         user=user, everything=everything, states=STATE_WORDS, scopes=SCOPE_WORDS,
                         done=who.gettext("The token was revoked: it no longer signs anyone in.") if done else None)


@router.get("/portal/operations/tokens")
def token_list(request: Request, user: str = "", all: str = "", done: str = ""):  # noqa: A002 (the query's name)
    return _tokens_page(request, viewer(request), user.strip()[:64], all == "1", done=done == "1")


@router.post("/portal/operations/tokens/{token_id}/revoke")
def revoke(request: Request, token_id: int, csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            roles.require(session, signed_in_user(session, who), "token_admin")
            if not 1 <= token_id < 2**63:
                raise NotFound(f"no token {token_id}")
            row = tokens.find(session, token_id)
            if row.revoked_at is None:
                tokens.revoke(session, row)
                audit.record(session, portal_who(request, who), "token.revoke", f"user:{row.user.name}", token=row.id)
    except ServiceError as exc:
        return refused(request, who, exc)
    return RedirectResponse("/portal/operations/tokens?done=1", status_code=303)

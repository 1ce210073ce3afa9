"""Operations: people and tenants, what `cnet admin user add|password|unlock` and `cnet admin tenant-add`
do: add a person (users.add), add a tenant (tenants.create_tenant, operators only: roles.py
``tenant_add``), give someone a temporary password (shown once, as POST /admin/users/{name}/password)
and end a lockout (as POST /admin/users/{name}/unlock). Every change is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...services import audit
from ...services.tenancy import roles, tenants, users
from ...services.errors import Conflict, Forbidden, NotFound, ServiceError
from ...services.signin import attempts, passwords, web_sessions
from ...store.models import Tenant
from ..i18n import N_
from ..render import Viewer
from ..viewer import check_csrf, viewer
from .operations import _ops_page
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
DONE = {"user": N_("The user was added."), "tenant": N_("The tenant was added, with its wallet account."),
        "unlock": N_("The lockout was ended: they may sign in again.")}
SEGMENT_WORDS = [N_("university"), N_("research_institute"), N_("enterprise"), N_("government"),
                 N_("individual")]


def _people_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = "",
                 secret: dict | None = None):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        managed = {t for t in {None, *roles.admin_tenants(me)} if roles.allowed(session, me, "user_manage", tenant_id=t)}
        if not managed:
            return refused(request, who, Forbidden(roles.refusal("user_manage")))
        query = select(Tenant.name).order_by(Tenant.name)
        if None not in managed:  # a tenant admin adds people to their own tenant only
            query = query.where(Tenant.id.in_(managed))
        response = _ops_page(request, who, session, me, "operations/people.html", status=status, error=error,
                             done=who.gettext(DONE[done]) if done in DONE else None, secret=secret,
                             tenant_names=list(session.scalars(query)), segments=tenants.SEGMENTS,
                             user_languages=users.LANGUAGES, may_add_tenant=roles.allowed(session, me, "tenant_add"))
    if secret:
        response.headers["Cache-Control"] = "no-store"  # the password is shown once, never kept
    return response


@router.get("/portal/operations/people")
def people(request: Request, done: str = ""):
    return _people_page(request, viewer(request), done=done[:8])


def _change(request: Request, csrf_token: str, work):
    """Check the form, do ``work(session, me, by)``; a refusal is a page and nothing is written."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            return work(session, signed_in_user(session, who), portal_who(request, who)), who
    except (NotFound, Forbidden) as exc:
        return refused(request, who, exc), who
    except ServiceError as exc:
        return _people_page(request, who, status=409 if exc.status_code == 409 else 400, error=who.say(exc)), who


@router.post("/portal/operations/people/users")
def add_user(request: Request, name: str = Form("", max_length=64), display_name: str = Form("", max_length=200),
             email: str = Form("", max_length=300), language: str = Form("en", max_length=8),
             tenant: str = Form("", max_length=64), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        users.add(session, me, by, name.strip(), display_name=display_name, email=email.strip() or None,
                  language=language, tenant=tenant.strip() or None)
        return RedirectResponse("/portal/operations/people?done=user", status_code=303)
    return _change(request, csrf_token, work)[0]


@router.post("/portal/operations/people/tenants")
def add_tenant(request: Request, name: str = Form("", max_length=64), segment: str = Form("", max_length=32),
               csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        roles.require(session, me, "tenant_add")
        tenants.create_tenant(session, name.strip(), segment)
        audit.record(session, by, "tenant.add", f"tenant:{name.strip()}", segment=segment)
        return RedirectResponse("/portal/operations/people?done=tenant", status_code=303)
    return _change(request, csrf_token, work)[0]


@router.post("/portal/operations/people/password")
def temporary_password(request: Request, user: str = Form("", max_length=64),
                       csrf_token: str = Form("", max_length=100)):
    """A temporary password, to be changed at first sign-in; their browser sessions end. It is shown
    in this answer only (not a redirect: it never sits in a URL or the history)."""
    platform = platform_of(request)

    def work(session, me, by):
        target = users.find(session, me, user.strip(), "user_manage")
        if target.status != "active":
            raise Conflict(f"user {target.name} is {target.status}")
        secret = passwords.temporary_password()
        passwords.set_password(session, by, target, secret, platform.settings.auth, must_change=True)
        web_sessions.revoke_all(session, target)
        return {"user": target.name, "password": secret}
    answer, who = _change(request, csrf_token, work)
    return _people_page(request, who, secret=answer) if isinstance(answer, dict) else answer


@router.post("/portal/operations/people/unlock")
def unlock(request: Request, user: str = Form("", max_length=64), csrf_token: str = Form("", max_length=100)):
    def work(session, me, by):
        target = users.find(session, me, user.strip(), "user_manage")
        attempts.unlock(session, target.name)
        audit.record(session, by, "user.unlock", f"user:{target.name}")
        return RedirectResponse("/portal/operations/people?done=unlock", status_code=303)
    return _change(request, csrf_token, work)[0]

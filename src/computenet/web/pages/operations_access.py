"""Operations: what `cnet admin map-account | map-user | enforce | permissions` do, for operators.

* Slurm accounts (services/billing/enforcement.py ``map_account``): jobs under a cluster's Slurm account, direct
  sbatch too, are charged to a platform account, which is blocked there when its funds run out;
* Unix logins (services/tenancy/identities.py ``map_user``): whom a user's jobs run as on run_as_users clusters;
* enforcement: the reconciler's pass (``Enforcer.run_once``), run now, and what it did;
* permissions: roles.py's table (``ACTIONS``, ``ROLE_MEANINGS``), translated, for anyone on an operations page.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from ...services.tenancy import accounts, identities, roles
from ...services.billing import enforcement
from ...services.errors import Forbidden, NotFound, ServiceError
from ...store.models import Account, Cluster, SlurmAccount, UnixIdentity, User
from ..i18n import N_
from ..render import Viewer
from ..viewer import check_csrf, viewer
from .operations import _ops_page, _sections
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
DONE = {"account": N_("The Slurm account was mapped."), "user": N_("The Unix login was mapped.")}
SCOPE_WORDS = {"any": N_("any"), "tenant": N_("own tenant"), "project": N_("own project")}
ROLE_HELD = {"platform": N_("a grant"), "tenant": N_("a grant for one tenant"), "project": N_("a project membership"),
             "user": N_("signing in")}


def _access_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = "",
                 report=None):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "cluster_admin"):
            return refused(request, who, Forbidden(roles.refusal("cluster_admin")))
        mapped = session.execute(select(Cluster.name, SlurmAccount.slurm_account, Account.name, SlurmAccount.blocked,
                                        SlurmAccount.checked_at).join(Cluster, Cluster.id == SlurmAccount.cluster_id)
                                 .join(Account, Account.id == SlurmAccount.account_id)
                                 .order_by(Cluster.name, SlurmAccount.slurm_account)).all()
        logins = session.execute(select(User.name, UnixIdentity.unix_user, Cluster.name)
                                 .join(User, User.id == UnixIdentity.user_id)
                                 .outerjoin(Cluster, Cluster.id == UnixIdentity.cluster_id)
                                 .order_by(User.name, Cluster.name)).all()
        cluster_names = list(session.scalars(select(Cluster.name).order_by(Cluster.name)))
        return _ops_page(request, who, session, me, "network/access.html", status=status, error=error,
                         done=who.gettext(DONE[done]) if done in DONE else None, mapped=mapped, logins=logins,
                         cluster_names=cluster_names, report=report)


@router.get("/portal/operations/access")
def access(request: Request, done: str = ""):
    return _access_page(request, viewer(request), done=done[:8])


def _change(request: Request, csrf_token: str, work, done: str):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with platform_of(request).db.session() as session:
            me = signed_in_user(session, who)
            roles.require(session, me, "cluster_admin")
            work(session, portal_who(request, who))
    except Forbidden as exc:
        return refused(request, who, exc)
    except ServiceError as exc:  # an unknown cluster, account or user is the form's mistake: shown with it
        return _access_page(request, who, status=409 if exc.status_code == 409 else 400, error=who.say(exc))
    return RedirectResponse(f"/portal/operations/access?done={done}", status_code=303)


@router.post("/portal/operations/access/accounts")
def map_account(request: Request, cluster: str = Form("", max_length=64), slurm_account: str = Form("", max_length=64),
                account: str = Form("", max_length=64), csrf_token: str = Form("", max_length=100)):
    def work(session, by):
        enforcement.map_account(session, cluster.strip(), slurm_account.strip(),
                                accounts.get_account(session, account.strip()), by)
    return _change(request, csrf_token, work, "account")


@router.post("/portal/operations/access/users")
def map_user(request: Request, user: str = Form("", max_length=64), unix_user: str = Form("", max_length=64),
             cluster: str = Form("", max_length=64), csrf_token: str = Form("", max_length=100)):
    def work(session, by):
        identities.map_user(session, accounts.get_user(session, user.strip()), unix_user.strip(),
                            cluster.strip() or None, by)
    return _change(request, csrf_token, work, "user")


@router.post("/portal/operations/access/enforce")
async def enforce(request: Request, csrf_token: str = Form("", max_length=100)):
    """One pass of the reconciler, now (it also runs every 30 s with the server): the page says what it did."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    platform = platform_of(request)

    def run():
        with platform.db.session() as session:
            roles.require(session, signed_in_user(session, who), "cluster_admin")
        return enforcement.Enforcer(platform).run_once()
    try:
        report = await run_in_threadpool(run)
    except (Forbidden, NotFound) as exc:
        return refused(request, who, exc)
    return await run_in_threadpool(_access_page, request, who, 200, None, "", report)


# -- the role table ------------------------------------------------------------------------------

@router.get("/portal/operations/permissions")
def permissions(request: Request):
    """roles.py's table (what `cnet admin permissions` prints), with its words translated."""
    who = viewer(request)
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not _sections(session, me):  # as the operations pages: staff and tenant admins
            return refused(request, who, Forbidden(roles.refusal("user_view")))
        held = {r: ("tenant" if r == "tenant_admin" else "platform") if r in roles.PLATFORM_ROLES
                else "project" if r in roles.PROJECT_ROLES else "user" for r in roles.ROLES}
        return _ops_page(request, who, session, me, "network/permissions.html", role_names=roles.ROLES,
                         meanings=roles.ROLE_MEANINGS, held=held, held_words=ROLE_HELD, actions=roles.ACTIONS,
                         scope_words=SCOPE_WORDS)

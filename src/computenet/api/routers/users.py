"""/admin/users: people's accounts and their roles (operators: everyone; tenant admins: their tenant's).

Who may do what is decided in services/tenancy/roles.py (through services/tenancy/users.py and grants.py); every
change writes an audit row naming the caller and their address, in the same transaction.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...services import audit
from ...services.tenancy import grants, users
from ...store.models import User
from ..deps import current_user, get_session
from ..responses import errors

router = APIRouter(tags=["users"], responses=errors(400, 401, 403, 404, 409, 413, 422))
UserName = Path(max_length=64, description="the user's login name")
Reason = Field(min_length=1, max_length=users.MAX_REASON, description="why (kept in the audit log)")
Language = Literal["en", "zh-CN"]


class UserIn(BaseModel):
    name: str = Field(max_length=64, description="login name: lower-case letters, digits, - and _")
    display_name: str = Field("", max_length=users.MAX_DISPLAY_NAME)
    email: str | None = Field(None, max_length=255)
    email_verified: bool = False
    language: Language | None = Field(None, description="default: none chosen (the portal follows the browser)")
    tenant: str | None = Field(None, max_length=64, description="default: a tenant admin's own tenant")


class UserPatch(BaseModel):
    display_name: str | None = Field(None, max_length=users.MAX_DISPLAY_NAME)
    email: str | None = Field(None, max_length=255, description="\"\" removes it")
    email_verified: bool | None = None
    language: Language | None = None
    tenant: str | None = Field(None, max_length=64, description="operators only; \"\" takes the user out")


class ReasonIn(BaseModel):
    reason: str = Reason


class GrantIn(BaseModel):
    role: str = Field(max_length=32, description="operator, finance, vendor, tenant_admin, pi or member")
    tenant: str | None = Field(None, max_length=64, description="tenant_admin: the tenant (default: the user's)")
    project: str | None = Field(None, max_length=64, description="pi and member: the project")
    reason: str = Reason


def _who(request: Request, user: User) -> audit.Who:
    return audit.Who.api(user.name, request.client.host if request.client else None)


def _me(session: Session, user: User) -> User:
    return session.get(User, user.id)


@router.get("/admin/users")
def list_users(tenant: str | None = Query(None, max_length=64), status: str | None = Query(None, max_length=16),
               limit: int = Query(1000, ge=1, le=10_000), user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    """Everyone (operators, finance) or your tenant's users (tenant admins)."""
    return [users.to_json(session, u) for u in users.listing(session, _me(session, user), tenant, status, limit)]


@router.post("/admin/users", status_code=201)
def add_user(body: UserIn, request: Request, user: User = Depends(current_user),
             session: Session = Depends(get_session)):
    """A new person (no token: they get one from an operator, or sign in once that exists)."""
    added = users.add(session, _me(session, user), _who(request, user), body.name, display_name=body.display_name,
                      email=body.email, email_verified=body.email_verified, language=body.language,
                      tenant=body.tenant)
    out = users.to_json(session, added)
    session.commit()  # before the response: the next request must see it
    return out


@router.get("/admin/users/{name}")
def show_user(name: str = UserName, user: User = Depends(current_user), session: Session = Depends(get_session)):
    return users.to_json(session, users.find(session, _me(session, user), name))


@router.patch("/admin/users/{name}")
def change_user(body: UserPatch, request: Request, name: str = UserName, user: User = Depends(current_user),
                session: Session = Depends(get_session)):
    me = _me(session, user)
    target = users.find(session, me, name, "user_manage")
    users.update(session, me, _who(request, user), target, **body.model_dump(exclude_unset=True))
    out = users.to_json(session, target)
    session.commit()
    return out


def _status(change: str):
    def handler(body: ReasonIn, request: Request, name: str = UserName, user: User = Depends(current_user),
                session: Session = Depends(get_session)):
        me = _me(session, user)
        target = users.set_status(session, me, _who(request, user), users.find(session, me, name, "user_manage"),
                                  change, body.reason)
        out = users.to_json(session, target)
        session.commit()  # at once: the user's tokens stop (or start again) working
        return out

    handler.__name__ = f"{change}_user"
    handler.__doc__ = {"suspend": "No sign-in and no token works until reinstated.",
                       "reinstate": "A suspended user may sign in and use their tokens again.",
                       "delete": "For good: tokens revoked, memberships ended; the ledger's history stays."}[change]
    return handler


router.post("/admin/users/{name}/suspend")(_status("suspend"))
router.post("/admin/users/{name}/reinstate")(_status("reinstate"))
router.post("/admin/users/{name}/delete")(_status("delete"))


@router.post("/admin/users/{name}/roles", status_code=201)
def grant_role(body: GrantIn, request: Request, name: str = UserName, user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    """Grant a role, with a reason; it counts from the next request on."""
    me = _me(session, user)
    target = users.find(session, me, name, "user_view")
    out = grants.grant(session, me, _who(request, user), target, body.role, body.reason, body.tenant, body.project)
    session.commit()
    return out


@router.delete("/admin/users/{name}/roles/{role}")
def revoke_role(request: Request, name: str = UserName, role: str = Path(max_length=32),
                reason: str = Query(min_length=1, max_length=users.MAX_REASON, description="why (audited)"),
                tenant: str | None = Query(None, max_length=64), project: str | None = Query(None, max_length=64),
                user: User = Depends(current_user), session: Session = Depends(get_session)):
    """Revoke a role, with a reason; it no longer counts from the next request on."""
    me = _me(session, user)
    target = users.find(session, me, name, "user_view")
    out = grants.revoke(session, me, _who(request, user), target, role, reason, tenant, project)
    session.commit()
    return out

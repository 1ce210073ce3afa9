"""People's accounts: profile, tenant, status (active, suspended, deleted), listing, with an audit row
for every change.

Operators manage every user; a tenant admin the users of their tenant (not those holding a
platform-wide role); the checks are services/tenancy/roles.py's. ``actor`` None is an operator at the
server's shell (`cnet admin user ...`). A user another may not see answers as a missing one.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...store.models import Account, AccountMember, Cluster, Tenant, UnixIdentity, User
from .. import audit
from . import roles, tokens
from .accounts import create_user
from ...messages import msg
from ..errors import Conflict, Forbidden, InvalidRequest, NotFound
from .tenants import get_tenant

LANGUAGES = ("en", "zh-CN")
STATUSES = ("active", "suspended", "deleted")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
MAX_DISPLAY_NAME = 128
MAX_REASON = 1000


def _display_name(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_DISPLAY_NAME or not value.isprintable():
        raise InvalidRequest(msg("a display name is at most %(max_display_name)s printable characters",
                                 max_display_name=MAX_DISPLAY_NAME))
    return value


def _email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 255 or not value.isprintable() or not EMAIL.match(value):
        raise InvalidRequest(msg("invalid e-mail address %(value)r", value=value[:80]))
    return value


def _language(value: str) -> str:
    if value not in LANGUAGES:
        raise InvalidRequest(msg("unknown language %(value)r (use %(listed)s)",
                                 value=value[:20], listed=' or '.join(LANGUAGES)))
    return value


def reason_text(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest(msg("a reason is needed (it is kept in the audit log)"))
    if len(reason) > MAX_REASON:
        raise InvalidRequest(msg("a reason is at most %(max_reason)s characters", max_reason=MAX_REASON))
    return reason


def _may(actor: User | None, action: str) -> None:
    """The actor holds the action somewhere (a tenant admin: on some tenant), or Forbidden."""
    if actor is not None and not any(roles.allowed(None, actor, action, tenant_id=t)
                                     for t in {None, *roles.admin_tenants(actor)}):
        raise Forbidden(roles.refusal(action))


def _tenant_for(session: Session, actor: User | None, name: str | None) -> Tenant | None:
    """The tenant a new user joins: named, or (for a tenant admin of one tenant) their own."""
    if name is None:
        if actor is None or roles.is_operator(actor):
            return None
        mine = roles.admin_tenants(actor)
        if len(mine) != 1:
            raise InvalidRequest(msg("name the tenant the user joins"))
        return session.get(Tenant, next(iter(mine)))
    tenant = get_tenant(session, name)
    if actor is not None and not roles.allowed(None, actor, "user_manage", tenant_id=tenant.id):
        raise NotFound(msg("no tenant %(name)r", name=name))  # another tenant's answers as a missing one
    return tenant


def find(session: Session, actor: User | None, name: str, action: str = "user_view") -> User:
    """The user called ``name``, if the actor may see (user_view) or change (user_manage) them."""
    _may(actor, action)
    user = session.scalar(select(User).where(User.name == name))
    if user is None or (actor is not None and not roles.manages_user(actor, user, "user_view")):
        raise NotFound(msg("no user %(name)r", name=name))
    if actor is not None and not roles.manages_user(actor, user, action):
        raise Forbidden(msg("%(user)s holds a platform-wide role: only an operator changes their account",
                            user=user.name))
    return user


def add(session: Session, actor: User | None, who: audit.Who, name: str, *, display_name: str = "",
        email: str | None = None, email_verified: bool = False, language: str | None = None,
        tenant: str | None = None) -> User:
    _may(actor, "user_manage")
    joined = _tenant_for(session, actor, tenant)
    # no language: "" (not chosen), so the portal follows the person's browser until they choose
    display, mail, lang = _display_name(display_name), _email(email), _language(language) if language else ""
    if session.scalar(select(User.status).where(User.name == name)) == "deleted":
        raise Conflict(msg("user %(name)r was deleted: the name stays with their history", name=name))
    user = create_user(session, name, email=mail)
    user.display_name, user.email_verified, user.language = display, bool(email_verified and mail), lang
    user.tenant_id = joined.id if joined else None
    session.flush()
    audit.record(session, who, "user.add", f"user:{name}", tenant=joined.name if joined else None,
                 email=mail, language=lang)
    return user


def update(session: Session, actor: User | None, who: audit.Who, user: User, *, display_name: str | None = None,
           email: str | None = None, email_verified: bool | None = None, language: str | None = None,
           tenant: str | None = None) -> User:
    """Change the given fields; a new e-mail address is unverified unless said otherwise."""
    if user.status == "deleted":
        raise Conflict(msg("user %(user)s was deleted", user=user.name))
    changes: dict[str, list] = {}

    def put(field: str, value) -> None:
        if getattr(user, field) != value:
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)

    if tenant is not None:
        if actor is not None and not roles.is_operator(actor):
            raise Forbidden(msg("moving a user to another tenant needs the operator role"))
        old_tenant = user.tenant_id
        put("tenant_id", None if tenant == "" else get_tenant(session, tenant).id)
        if "tenant_id" in changes:  # administering the tenant they left ends with it
            ended = [g for g in user.grants if g.role == "tenant_admin" and g.tenant_id == old_tenant]
            for g in ended:
                user.grants.remove(g)
            if user.role == "tenant_admin":
                user.role, ended = "user", ended + ["users.role"]
            if ended:
                changes["tenant_admin_ended"] = [True, False]
    if display_name is not None:
        put("display_name", _display_name(display_name))
    if email is not None:
        put("email", _email(email))
        if "email" in changes and email_verified is None:
            email_verified = False
    if email_verified is not None:
        put("email_verified", bool(email_verified and user.email))
    if language is not None:
        put("language", _language(language))
    if changes:
        session.flush()
        audit.record(session, who, "user.set", f"user:{user.name}", **changes)
    return user


TRANSITIONS = {"suspend": ("suspended", ("active",)), "reinstate": ("active", ("suspended",)),
               "delete": ("deleted", ("active", "suspended"))}


def set_status(session: Session, actor: User | None, who: audit.Who, user: User, change: str,
               reason: str | None) -> User:
    """Suspend (no sign-in, no tokens), reinstate, or delete (the same for good; the history stays)."""
    status, from_ = TRANSITIONS[change]
    why = reason_text(reason)
    if actor is not None and actor.id == user.id:
        raise InvalidRequest(msg("you cannot %(change)s yourself", change=change))
    if user.status not in from_:
        raise Conflict(msg("user %(user)s is %(status)s: a deleted user stays deleted", user=user.name, status=user.status)
                       if user.status == "deleted" else
                       msg("user %(user)s is %(status)s", user=user.name, status=user.status))
    user.status, user.status_reason = status, why
    detail: dict = {"reason": why}
    if change == "delete":
        revoked = [tokens.revoke(session, t).id for t in tokens.listing(session, user)]
        projects = []
        for member in session.scalars(select(AccountMember).where(AccountMember.user_id == user.id)):
            projects.append(session.get(Account, member.account_id).name)
            session.delete(member)
        user.default_account_id = None
        detail |= {"tokens_revoked": len(revoked), "memberships_removed": projects}
    session.flush()
    audit.record(session, who, f"user.{change}", f"user:{user.name}", **detail)
    return user


def listing(session: Session, actor: User | None, tenant: str | None = None, status: str | None = None,
            limit: int = 1000) -> list[User]:
    _may(actor, "user_view")
    query = select(User).order_by(User.name).limit(max(1, min(limit, 10_000)))
    if status is not None:
        if status not in STATUSES:
            raise InvalidRequest(msg("unknown status %(status)r (use %(listed)s)",
                                     status=status[:20], listed=', '.join(STATUSES)))
        query = query.where(User.status == status)
    if tenant is not None:
        query = query.where(User.tenant_id == _tenant_for(session, None, tenant).id)
    if actor is not None and not roles.is_staff(actor):
        query = query.where(User.tenant_id.in_(roles.admin_tenants(actor)))
    return [u for u in session.scalars(query) if actor is None or roles.manages_user(actor, u, "user_view")]


def to_json(session: Session, user: User) -> dict:
    tenant_names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
    projects = session.execute(select(Account.name, AccountMember.role).join(
        AccountMember, AccountMember.account_id == Account.id).where(AccountMember.user_id == user.id)
        .order_by(Account.name)).all()
    identities = session.execute(select(Cluster.name, UnixIdentity.unix_user).outerjoin(
        Cluster, Cluster.id == UnixIdentity.cluster_id).where(UnixIdentity.user_id == user.id)).all()
    return {"name": user.name, "display_name": user.display_name, "email": user.email,
            "email_verified": user.email_verified, "language": user.language,
            "tenant": tenant_names.get(user.tenant_id), "status": user.status, "status_reason": user.status_reason,
            "created_at": user.created_at.isoformat() if user.created_at else None,
            "roles": [{"role": r, "tenant": tenant_names.get(t)} for r, t in sorted(
                roles.platform_roles(user, even_inactive=True), key=lambda p: (p[0], p[1] or 0))],
            "projects": [{"account": a, "role": r} for a, r in projects],
            "unix_identities": [{"cluster": c or "*", "unix_user": u} for c, u in identities]}

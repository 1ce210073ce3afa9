"""Granting and revoking roles, each with a reason kept in the audit log.

Platform roles (operator, finance, vendor, tenant admin of a tenant) are RoleGrant rows; project
roles (PI, member) are memberships of the project's account. What a grant allows is decided by
services/tenancy/roles.py, which reads the grants on every request: a grant or revoke counts at once.
``actor`` None is an operator at the server's shell.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ...store.models import AccountMember, Tenant, User
from ...store.admin_models import RoleGrant
from .. import audit
from . import roles, tenants
from .accounts import get_account
from ...messages import msg
from ..errors import Conflict, Forbidden, InvalidRequest, NotFound
from .users import reason_text


def _role(role: str) -> str:
    if role == "user":
        raise InvalidRequest(msg("everyone signed in is a user: there is nothing to grant or revoke"))
    if role not in roles.ROLES:
        raise InvalidRequest(msg("unknown role %(role)r (use %(listed)s)",
                                 role=role[:32], listed=', '.join((r for r in roles.ROLES if r != 'user'))))
    return role


def _scope(session: Session, user: User, role: str, tenant: str | None, project: str | None) -> int | None:
    """The tenant id a platform role is held for (tenant admins: their own tenant; others: none)."""
    if project is not None:
        raise InvalidRequest(msg("%(role)s is not a project role: no project", role=role))
    if role != "tenant_admin":
        if tenant is not None:
            raise InvalidRequest(msg("%(role)s is platform-wide: no tenant", role=role))
        return None
    if tenant is None:
        if user.tenant_id is None:
            raise InvalidRequest(msg("%(user)s belongs to no tenant: name the tenant (and put them in it)",
                                     user=user.name))
        return user.tenant_id
    tenant_id = tenants.get_tenant(session, tenant).id
    if tenant_id != user.tenant_id:
        raise InvalidRequest(msg("%(user)s is not in tenant %(tenant)s: a tenant admin administers their "
                                 "own tenant",
                                 user=user.name, tenant=tenant))
    return tenant_id


def _check_actor(actor: User | None, role: str, tenant_id: int | None) -> None:
    if actor is None or roles.is_operator(actor):
        return
    if not roles.allowed(None, actor, "role_grant", tenant_id=tenant_id) or role != "tenant_admin":
        raise Forbidden(msg("granting or revoking %(role)s needs the operator role (a tenant admin grants the tenant "
                            "admin role of their own tenant)", role=role) if roles.admin_tenants(actor) else
                        msg("granting or revoking %(role)s needs the operator role", role=role))


def _project(session: Session, actor: User | None, user: User, project: str | None, tenant: str | None):
    if project is None:
        raise InvalidRequest(msg("pi and member are roles in a project: name the project"))
    if tenant is not None:
        raise InvalidRequest(msg("a project role names its project, not a tenant"))
    account = get_account(session, project)
    if actor is not None:
        roles.require(session, actor, "member_set", account)
    return account, session.get(AccountMember, (account.id, user.id))


def _name(session: Session, tenant_id: int | None) -> str | None:
    return None if tenant_id is None else session.get(Tenant, tenant_id).name


def grant(session: Session, actor: User | None, who: audit.Who, user: User, role: str, reason: str | None,
          tenant: str | None = None, project: str | None = None) -> dict:
    role, why = _role(role), reason_text(reason)
    if user.status != "active":
        raise Conflict(msg("user %(user)s is %(status)s: reinstate them first",
                           user=user.name, status=user.status))
    if role in roles.PROJECT_ROLES:
        account, member = _project(session, actor, user, project, tenant)
        if member is not None and (member.role == role or role == "member"):
            raise Conflict(msg("%(user)s is already %(role)s of %(account)s",
                               user=user.name, role=member.role, account=account.name))
        tenants.set_member(session, account, user, role, None if member is None else member.spend_limit)
        audit.record(session, who, "role.grant", f"user:{user.name}", role=role, project=account.name, reason=why)
        return {"user": user.name, "role": role, "tenant": None, "project": account.name}
    tenant_id = _scope(session, user, role, tenant, project)
    _check_actor(actor, role, tenant_id)
    if (role, tenant_id) in roles.platform_roles(user):
        raise Conflict(msg("%(user)s already holds the %(role)s role of %(tenant)s", user=user.name, role=role, tenant=tenant)
                       if tenant else msg("%(user)s already holds the %(role)s role", user=user.name, role=role))
    user.grants.append(RoleGrant(role=role, tenant_id=tenant_id, granted_by=who.actor[:64], reason=why))
    session.flush()
    audit.record(session, who, "role.grant", f"user:{user.name}", role=role, tenant=_name(session, tenant_id),
                 reason=why)
    return {"user": user.name, "role": role, "tenant": _name(session, tenant_id), "project": None}


def revoke(session: Session, actor: User | None, who: audit.Who, user: User, role: str, reason: str | None,
           tenant: str | None = None, project: str | None = None) -> dict:
    """Take the role away: a PI becomes a member, a member leaves the project; a platform role is gone."""
    role, why = _role(role), reason_text(reason)
    if role in roles.PROJECT_ROLES:
        account, member = _project(session, actor, user, project, tenant)
        if member is None or (role == "pi" and member.role != "pi"):
            raise NotFound(msg("%(user)s is not %(role)s of %(account)s",
                               user=user.name, role=role, account=account.name))
        if role == "pi":
            tenants.set_member(session, account, user, "member", member.spend_limit)
        else:
            tenants.remove_member(session, account, user)
        audit.record(session, who, "role.revoke", f"user:{user.name}", role=role, project=account.name, reason=why)
        return {"user": user.name, "role": role, "tenant": None, "project": account.name}
    if project is not None:
        raise InvalidRequest(msg("%(role)s is not a project role: no project", role=role))
    tenant_id = None if tenant is None else tenants.get_tenant(session, tenant).id
    held = {t for r, t in roles.platform_roles(user, even_inactive=True) if r == role}
    if tenant is not None:
        held &= {tenant_id}
    if not held:
        raise NotFound(msg("%(user)s does not hold the %(role)s role of %(tenant)s", user=user.name, role=role, tenant=tenant)
                       if tenant else msg("%(user)s does not hold the %(role)s role", user=user.name, role=role))
    for t in held:
        _check_actor(actor, role, t)
    if actor is not None and actor.id == user.id and role == "operator":
        raise InvalidRequest(msg("you cannot revoke your own operator role: another operator can"))
    for g in [g for g in user.grants if g.role == role and g.tenant_id in held]:
        user.grants.remove(g)
    if user.role == role and (role != "tenant_admin" or user.tenant_id in held):
        user.role = "user"  # the older single-role column (services/tenancy/roles.py reads it as a grant)
    if role == "operator":
        user.is_admin = False
    session.flush()
    names = sorted(filter(None, (_name(session, t) for t in held)))
    audit.record(session, who, "role.revoke", f"user:{user.name}", role=role, tenant=names or None, reason=why)
    return {"user": user.name, "role": role, "tenant": names[0] if len(names) == 1 else None, "project": None}

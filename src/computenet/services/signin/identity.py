"""From an identity a directory or OIDC provider vouches for to a platform user (found, linked or
created just in time), with the tenant and roles its groups map to (auth.ldap.groups, auth.oidc.groups).

Roles that came from a mapping are granted with ``granted_by`` naming the provider and are taken
back at the next sign-in when the group is gone; roles people granted are never touched here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import GroupMapping
from ...store.models import ExternalIdentity, PasswordCredential, RoleGrant, Tenant, User
from ...store.types import utcnow
from .. import audit
from ...messages import msg
from ..tenancy.accounts import USER_NAME, create_user


class SignInRefused(Exception):
    """Sign-in refused; ``reason`` is a short code kept with the attempt (bad_password, suspended ...)."""

    def __init__(self, message: str, reason: str = "refused") -> None:
        super().__init__(message)
        self.reason = reason


def account_is(user: User) -> str:
    """Why an account that is not active cannot sign in (its status, and the operator's reason if any)."""
    if user.status_reason:
        return msg("the account %(user)s is %(status)s: %(reason)s", user=user.name, status=user.status,
                   reason=user.status_reason)
    return msg("the account %(user)s is %(status)s", user=user.name, status=user.status)


class ProviderDown(Exception):
    """The directory or OIDC provider cannot be reached or answered nonsense; the message says which."""


@dataclass(frozen=True)
class ExternalUser:
    provider: str  # "ldap" or "oidc:<name>"
    subject: str  # stable at the provider: the directory's login, the OIDC "sub"
    login: str  # the wanted platform login name
    display_name: str = ""
    email: str | None = None
    email_verified: bool = False
    groups: tuple[str, ...] = field(default_factory=tuple)


def platform_login(name: str) -> str:
    """A provider's login name as a platform login: lower-case, or SignInRefused naming the problem."""
    login = name.strip().lower()
    if not USER_NAME.match(login):
        raise SignInRefused(msg("the login name %(name)r cannot be a platform login (lower-case letters, digits, "
                                "'-' and '_', up to 32, starting with a letter): ask an operator", name=name[:64]),
                            "bad_login")
    return login


def mapped(groups: tuple[str, ...], mappings: list[GroupMapping], default_tenant: str | None
           ) -> tuple[str | None, set[str]]:
    """The tenant (of the first mapping, in configuration order, that names one) and the roles."""
    held = [m for m in mappings if m.group in groups]
    tenant = next((m.tenant for m in held if m.tenant), default_tenant)
    return tenant, {role for m in held for role in m.roles}


def _tenant(session: Session, name: str | None) -> Tenant | None:
    if name is None:
        return None
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:  # checked at start-up (check_mappings); a tenant deleted since is a config error
        raise ProviderDown(f"the group mapping names tenant {name!r}, which does not exist: tell an operator")
    return tenant


def _find(session: Session, who: ExternalUser, create: bool, login: str) -> tuple[User | None, bool]:
    link = session.scalar(select(ExternalIdentity).where(ExternalIdentity.provider == who.provider,
                                                         ExternalIdentity.subject == who.subject))
    if link is not None:
        link.last_seen_at = utcnow()
        return session.get(User, link.user_id), False
    user = session.scalar(select(User).where(User.name == login))
    if user is not None:
        # an account an operator made beforehand is taken over by its first sign-in; one that signs in
        # otherwise (a local password, another identity at this provider) is not: a name is not proof
        taken = session.get(PasswordCredential, user.id) is not None or session.scalar(
            select(ExternalIdentity.id).where(ExternalIdentity.user_id == user.id,
                                              ExternalIdentity.provider == who.provider)) is not None
        if taken:
            raise SignInRefused(msg("the login name %(login)r belongs to another account here: ask an operator "
                                    "to link them", login=login), "name_taken")
        return user, True
    if not create:
        raise SignInRefused(msg("there is no account for %(login)r here and accounts are not created on "
                                "first sign-in: ask an operator", login=login), "no_account")
    return None, True


def provision(session: Session, who: ExternalUser, mappings: list[GroupMapping], *, create_users: bool,
              default_tenant: str | None = None, client: str = "") -> User:
    """The platform user for ``who``: refreshed from what the provider says, roles synced to the groups."""
    login = platform_login(who.login)
    source = audit.Who(who.provider, f"{who.provider} sign-in {client}".strip())
    tenant_name, roles_wanted = mapped(who.groups, mappings, default_tenant)
    tenant = _tenant(session, tenant_name)
    user, new_link = _find(session, who, create_users, login)
    if user is None:
        if session.scalar(select(User.id).where(User.name == login)) is not None:
            raise SignInRefused(msg("the login name %(login)r belongs to another account here", login=login),
                                "name_taken")
        user = create_user(session, login, email=who.email)
        user.tenant_id = tenant.id if tenant else None
        user.display_name = who.display_name[:128]
        user.email_verified = bool(who.email and who.email_verified)
        session.flush()
        audit.record(session, source, "user.add", f"user:{login}", tenant=tenant_name, email=who.email,
                     just_in_time=True, groups=list(who.groups)[:50])
    if user.status != "active":
        raise SignInRefused(account_is(user), user.status)
    if new_link:
        session.add(ExternalIdentity(user_id=user.id, provider=who.provider, subject=who.subject))
        audit.record(session, source, "user.link", f"user:{user.name}", provider=who.provider, subject=who.subject)
    _refresh_profile(session, source, user, who, tenant)
    _sync_roles(session, source, user, roles_wanted, who.provider)
    session.flush()
    return user


def _refresh_profile(session: Session, source: audit.Who, user: User, who: ExternalUser,
                     tenant: Tenant | None) -> None:
    changes: dict[str, list] = {}
    wanted = {"display_name": who.display_name[:128] or user.display_name,
              "email": who.email or user.email,
              "email_verified": bool(who.email and who.email_verified) if who.email else user.email_verified}
    if tenant is not None:
        wanted["tenant_id"] = tenant.id
    for field_name, value in wanted.items():
        if getattr(user, field_name) != value:
            changes[field_name] = [getattr(user, field_name), value]
            setattr(user, field_name, value)
    if "tenant_id" in changes:  # administering the tenant they left ends with it (as services/tenancy/users.py)
        for grant in [g for g in user.grants if g.role == "tenant_admin" and g.tenant_id != tenant.id]:
            user.grants.remove(grant)
    if changes:
        audit.record(session, source, "user.set", f"user:{user.name}", **changes)


def _sync_roles(session: Session, source: audit.Who, user: User, wanted: set[str], provider: str) -> None:
    """Grant the mapped roles this provider's grants lack; take back its grants no group maps to now."""
    scope = {role: (user.tenant_id if role == "tenant_admin" else None) for role in wanted}
    if "tenant_admin" in scope and scope["tenant_admin"] is None:
        scope.pop("tenant_admin")
    by_provider = [g for g in user.grants if g.granted_by == provider]
    for grant in by_provider:
        if scope.get(grant.role, -1) != grant.tenant_id:
            user.grants.remove(grant)
            audit.record(session, source, "role.revoke", f"user:{user.name}", role=grant.role,
                         reason=f"no longer in a group {provider} maps to {grant.role}")
    held = {(g.role, g.tenant_id) for g in user.grants}
    for role, tenant_id in scope.items():
        if (role, tenant_id) not in held:
            user.grants.append(RoleGrant(role=role, tenant_id=tenant_id, granted_by=provider,
                                         reason=f"group mapping of {provider}"))
            audit.record(session, source, "role.grant", f"user:{user.name}", role=role,
                         reason=f"group mapping of {provider}")


def configured_mappings(policy) -> list[tuple[str, list[GroupMapping], str | None]]:
    """(config section, mappings, default tenant) of every configured directory and OIDC provider."""
    found = [("auth.ldap", policy.ldap.groups, policy.ldap.default_tenant)] if policy.ldap else []
    return found + [(f"auth.oidc {p.name!r}", p.groups, p.default_tenant) for p in policy.oidc]


def check_mappings(session: Session, config_text: str | None, providers: list[tuple[str, list[GroupMapping],
                                                                                      str | None]]) -> None:
    """Every tenant a mapping (or default_tenant) names exists, or ValueError naming the config line.

    ``providers``: (config section, mappings, default tenant). ``config_text``: the TOML file, to find lines.
    """
    known = set(session.scalars(select(Tenant.name)))
    for section, mappings, default in providers:
        names = [(m.tenant, f"group {m.group!r}") for m in mappings if m.tenant] + \
                ([(default, "default_tenant")] if default else [])
        for name, what in names:
            if name not in known:
                raise ValueError(f"{section}: {what} names tenant {name!r}, which does not exist"
                                 + _line_of(config_text, name) + " (create it with `cnet admin tenant-add`)")


def _line_of(text: str | None, tenant: str) -> str:
    if not text:
        return ""
    pattern = re.compile(r"""(tenant|default_tenant)\s*=\s*["']""" + re.escape(tenant) + """["']""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            return f" (configuration line {number}: {line.strip()})"
    return ""

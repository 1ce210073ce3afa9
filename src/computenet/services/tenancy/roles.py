"""Who may do what: the one place role checks are decided (API, CLI and, later, the portal).

The roles:

* platform roles, held as grants (store ``RoleGrant``; granted and revoked in services/tenancy/users.py):
  ``operator`` and ``finance`` act on everything, ``vendor`` publishes apps (an ISV),
  ``tenant_admin`` acts on one tenant (the grant names it);
* project roles, held as account memberships: a project's ``pi`` and its ``member`` s;
* ``user``: anyone signed in, on their own things.

Two older forms are read here as grants too, so that nothing that held a role loses it: the
``users.role`` column (a ``tenant_admin`` there administers the user's own tenant) and
``users.is_admin`` (the operator role). ``ACTIONS`` says which role may do each action and on
what (any object, its own tenant's, its own project's); ``require`` and ``allowed`` answer from
it, and docs/permissions.md is generated from it (``cnet admin permissions --markdown``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ...store.models import Account, AccountMember, User
from ...messages import msg
from ..errors import Forbidden, NotFound

PLATFORM_ROLES = ("operator", "finance", "vendor", "tenant_admin")
PROJECT_ROLES = ("pi", "member")
ROLES = PLATFORM_ROLES + PROJECT_ROLES + ("user",)
ROLE_MEANINGS = {
    "operator": "runs the platform: clusters, users, roles, money, everything",
    "finance": "the platform's money: top-ups, credit, prices, month closing, reports, the audit log",
    "vendor": "an ISV: publishes apps, which an operator reviews",
    "tenant_admin": "administers one tenant: its users, its projects' settings, moving its money",
    "pi": "leads one project: its members, budget and notices",
    "member": "runs jobs on one project and uses its workspace",
    "user": "anyone signed in: their own jobs, tokens, notices",
}
SCOPES = {"any": "any", "tenant": "own tenant", "project": "own project"}
STAFF = (("operator", "any"), ("finance", "any"))
PROJECT_MANAGERS = STAFF + (("tenant_admin", "tenant"), ("pi", "project"))


@dataclass(frozen=True)
class Rule:
    what: str  # what the action does, in words (refusals and the docs say it)
    who: tuple[tuple[str, str], ...]  # (role, scope): scope is any, tenant (its own) or project (its own)


ACTIONS: dict[str, Rule] = {
    "cluster_admin": Rule("running clusters (register, change, remove, reconcile lost jobs, /metrics)",
                          (("operator", "any"),)),
    "token_admin": Rule("managing other users' API tokens", (("operator", "any"),)),
    "topup": Rule("crediting money to an account", STAFF),
    "credit_limit": Rule("setting a credit limit", STAFF),
    "exhaustion_policy": Rule("setting what happens when an account runs dry", STAFF),
    "storage_quota": Rule("setting a workspace quota", STAFF),
    "reprice": Rule("re-pricing settled jobs", STAFF),
    "close_month": Rule("closing a month", STAFF),
    "audit": Rule("reading the audit log", STAFF),
    "reports": Rule("reading finance and usage reports", STAFF),
    "low_balance": Rule("setting a project's low-balance notice", PROJECT_MANAGERS),
    "budget": Rule("setting a project's budget", PROJECT_MANAGERS),
    "webhook": Rule("setting a project's webhook", PROJECT_MANAGERS),
    "tenant_webhook": Rule("setting a tenant's webhooks (every project's events)",
                           (("operator", "any"), ("tenant_admin", "tenant"))),
    "member_set": Rule("adding a project member or changing their role or limit", PROJECT_MANAGERS),
    "member_remove": Rule("removing a project member", PROJECT_MANAGERS),
    "move": Rule("moving money between a tenant's accounts", STAFF + (("tenant_admin", "tenant"),)),
    "project_add": Rule("adding a project account under a tenant", (("operator", "any"), ("tenant_admin", "tenant"))),
    "contract_add": Rule("giving a tenant contract prices", STAFF),
    "see_account": Rule("seeing an account, its statements and efficiency",
                        PROJECT_MANAGERS + (("member", "project"),)),
    "user_view": Rule("seeing people's accounts (profile, status, roles)", STAFF + (("tenant_admin", "tenant"),)),
    "user_manage": Rule("adding, changing, suspending, reinstating and deleting people",
                        (("operator", "any"), ("tenant_admin", "tenant"))),
    "tenant_add": Rule("adding a tenant (a customer organisation with its wallet)", (("operator", "any"),)),
    "role_grant": Rule("granting and revoking roles (tenant admins: the tenant admin role of their tenant)",
                       (("operator", "any"), ("tenant_admin", "tenant"))),
    "app_publish_platform": Rule("publishing a platform app", (("operator", "any"),)),
    "app_publish_vendor": Rule("publishing a vendor app (an operator reviews it)",
                               (("operator", "any"), ("vendor", "any"))),
    "app_publish_tenant": Rule("publishing a tenant's own app", (("operator", "tenant"), ("tenant_admin", "tenant"))),
    "app_review": Rule("reviewing apps", (("operator", "any"),)),
}


# -- which roles a user holds --------------------------------------------------------

def active(user: User) -> bool:
    return (user.status or "active") == "active"


def platform_roles(user: User, even_inactive: bool = False) -> set[tuple[str, int | None]]:
    """(role, tenant id) for each platform role the user holds; none while not active (unless asked)."""
    if not (active(user) or even_inactive):
        return set()
    held = {(g.role, g.tenant_id) for g in user.grants}
    if user.is_admin:
        held.add(("operator", None))
    if user.role in ("operator", "finance", "vendor"):
        held.add((user.role, None))
    elif user.role == "tenant_admin" and user.tenant_id is not None:
        held.add(("tenant_admin", user.tenant_id))
    return held


def has_role(user: User, role: str) -> bool:
    return any(r == role for r, _ in platform_roles(user))


def admin_tenants(user: User) -> set[int]:
    """The tenants the user administers."""
    return {t for r, t in platform_roles(user) if r == "tenant_admin" and t is not None}


def is_operator(user: User) -> bool:
    return has_role(user, "operator")


def is_staff(user: User) -> bool:
    return has_role(user, "operator") or has_role(user, "finance")


# -- the checks ------------------------------------------------------------------------

def allowed(session: Session | None, user: User, action: str, account: Account | None = None,
            tenant_id: int | None = None) -> bool:
    """Whether the user may do the action on the account (or on something of tenant ``tenant_id``)."""
    rule = ACTIONS.get(action)
    if rule is None:
        raise ValueError(f"unknown action {action!r}")
    if not active(user):
        return False
    held = platform_roles(user)
    tenant = account.tenant_id if account is not None else tenant_id
    for role, scope in rule.who:
        if role in PROJECT_ROLES:
            if account is not None and session is not None:
                member = session.get(AccountMember, (account.id, user.id))
                if member is not None and (role == "member" or member.role == role):
                    return True
        elif scope == "any" and any(r == role for r, _ in held):
            return True
        elif scope == "tenant" and tenant is not None and (
                (role, tenant) in held or (role != "tenant_admin" and (role, None) in held)):
            return True
    return False


def require(session: Session, user: User, action: str, account: Account | None = None,
            tenant_id: int | None = None) -> None:
    """Raise Forbidden (or NotFound for an account the user may not even see)."""
    if account is not None and not allowed(session, user, "see_account", account):
        # the very words a missing account gets (accounts.get_account): which names exist is not told
        raise NotFound(msg("no account %(account)r", account=account.name))
    if not allowed(session, user, action, account, tenant_id):
        raise Forbidden(refusal(action))


def refusal(action: str) -> str:
    rule = ACTIONS[action]
    names = [f"{r.replace('_', ' ')}" + ("" if s == "any" else f" ({SCOPES[s]})") for r, s in rule.who]
    return f"{rule.what} needs the {' or '.join(names)} role"


def can_see_account(session: Session, user: User, account: Account) -> bool:
    """Members see their accounts; tenant admins their tenant's; finance and operators all."""
    return allowed(session, user, "see_account", account)


def manages_project(session: Session, user: User, account: Account) -> bool:
    """Finance and operators, the account's tenant admin, or its PI: who sets and sees all of a project."""
    return allowed(session, user, "budget", account)


def sees_user(viewer: User, other: User) -> bool:
    """Whose jobs one may look at: one's own; a tenant admin their tenant's users; finance and operators all."""
    if other.id == viewer.id or is_staff(viewer):
        return True
    return other.tenant_id is not None and other.tenant_id in admin_tenants(viewer)


def manages_user(viewer: User, other: User, action: str = "user_manage") -> bool:
    """Whether ``viewer`` may see (user_view) or change (user_manage) ``other``'s account.

    A tenant admin acts on their tenant's users, but not on anyone holding a platform-wide role.
    """
    if not allowed(None, viewer, action, tenant_id=other.tenant_id):
        return False
    if is_staff(viewer):
        return action == "user_view" or is_operator(viewer)
    return not any(r in ("operator", "finance", "vendor") for r, _ in platform_roles(other))


# -- the permissions table, for the docs ----------------------------------------------

def permissions_markdown() -> str:
    """docs/permissions.md: generated from ACTIONS (tests/test_people.py fails when it is stale)."""
    lines = ["# Permissions", "",
             "Generated from `ACTIONS` in `src/computenet/services/tenancy/roles.py` by "
             "`cnet admin permissions --markdown > docs/permissions.md`; do not edit by hand.", "",
             "## Roles", "", "| role | held as | what it is for |", "|---|---|---|"]
    for role in ROLES:
        held = ("a grant" + (" for one tenant" if role == "tenant_admin" else "") if role in PLATFORM_ROLES
                else "a project membership" if role in PROJECT_ROLES else "signing in")
        lines.append(f"| {role} | {held} | {ROLE_MEANINGS[role]} |")
    lines += ["", "## Actions", "",
              "`any`: on everything; `tenant`: on its own tenant's things; `project`: on its own projects.", "",
              "| action | what | " + " | ".join(ROLES) + " |", "|---|---|" + "---|" * len(ROLES)]
    for action, rule in ACTIONS.items():
        scopes = dict(rule.who)
        cells = [scopes.get(role, "") for role in ROLES]
        lines.append(f"| `{action}` | {rule.what} | " + " | ".join(cells) + " |")
    lines += ["", "Everyone signed in may also use their own jobs, API tokens, notices and the apps they see. "
              "A suspended or deleted user holds no role and cannot sign in or use a token. "
              "A superuser (`cnet admin user-add --admin`) holds the operator role and also sees every "
              "user's jobs and project workspaces.", ""]
    return "\n".join(lines)

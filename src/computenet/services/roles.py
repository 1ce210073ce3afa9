"""Who may do what to an account: the one place role checks are decided.

Roles: a platform ``operator`` (or an admin user) and ``finance`` act on every
account; a ``tenant_admin`` on the accounts of their tenant; a project's
``pi`` on that project. Members only use their accounts.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..store.models import Account, AccountMember, User
from .errors import Forbidden, NotFound
from .tenants import can_see_account

# the network itself: operators only
OPERATOR_ONLY = frozenset({"cluster_admin"})
# money coming in, credit, policy and corrections: the platform's own staff
STAFF_ONLY = frozenset({"topup", "credit_limit", "exhaustion_policy", "reprice", "close_month", "audit",
                        "storage_quota"})
# the project's own settings: also its tenant's admin and its PI
PROJECT_SETTINGS = frozenset({"low_balance", "budget", "webhook", "member_set", "member_remove"})
# moving money between a tenant's accounts: also the tenant's admin
TENANT_MONEY = frozenset({"move"})


def is_staff(user: User) -> bool:
    return user.is_admin or user.role in ("operator", "finance")


def require(session: Session, user: User, action: str, account: Account | None = None) -> None:
    """Raise Forbidden (or NotFound for an account the user may not even see)."""
    if account is not None and not can_see_account(session, user, account):
        # the very words a missing account gets (accounts.get_account): which names exist is not told
        raise NotFound(f"no account {account.name!r}")
    if action in OPERATOR_ONLY:
        if user.is_admin or user.role == "operator":
            return
        raise Forbidden(f"{action.replace('_', ' ')} needs the operator role")
    if is_staff(user):
        return
    if action in STAFF_ONLY:
        raise Forbidden(f"{action.replace('_', ' ')} needs the finance or operator role")
    tenant_admin = (account is not None and user.role == "tenant_admin" and user.tenant_id is not None
                    and user.tenant_id == account.tenant_id)
    if action in TENANT_MONEY:
        if tenant_admin:
            return
        raise Forbidden(f"{action} needs the tenant admin, finance or operator role")
    if action in PROJECT_SETTINGS:
        if account is not None and manages_project(session, user, account):
            return
        raise Forbidden(f"{action.replace('_', ' ')} on {account.name if account else 'an account'} needs its PI, "
                        "its tenant admin, finance or an operator")
    raise Forbidden(f"unknown action {action!r}")


def manages_project(session: Session, user: User, account: Account) -> bool:
    """Finance and operators, the account's tenant admin, or its PI: who sets and sees all of a project."""
    if is_staff(user):
        return True
    if user.role == "tenant_admin" and user.tenant_id is not None and user.tenant_id == account.tenant_id:
        return True
    member = session.get(AccountMember, (account.id, user.id))
    return member is not None and member.role == "pi"


def sees_user(viewer: User, other: User) -> bool:
    """Whose jobs one may look at: one's own; a tenant admin their tenant's users; finance and operators all."""
    if other.id == viewer.id or is_staff(viewer):
        return True
    return viewer.role == "tenant_admin" and viewer.tenant_id is not None and viewer.tenant_id == other.tenant_id

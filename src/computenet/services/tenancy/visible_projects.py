"""Which projects (accounts) a person may open in the portal's project pages: roles.py decides.

Candidates are narrowed by the role first (staff: every account; a tenant admin: their tenants'
accounts and their own memberships; anyone else: their memberships), and each one is then kept
only when ``roles.can_see_account`` says so, so no rule is written twice.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...store.models import Account, AccountMember, User
from . import roles


def visible_projects(session: Session, user: User, limit: int = 500) -> list[Account]:
    query = select(Account).order_by(Account.name).limit(max(1, min(limit, 5000)))
    if not roles.is_staff(user):
        mine = select(AccountMember.account_id).where(AccountMember.user_id == user.id)
        tenants = roles.admin_tenants(user)
        query = query.where(or_(Account.id.in_(mine), Account.tenant_id.in_(tenants)) if tenants
                            else Account.id.in_(mine))
    return [a for a in session.scalars(query) if roles.can_see_account(session, user, a)]

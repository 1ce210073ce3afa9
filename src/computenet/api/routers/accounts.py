"""/accounts/me: the caller's accounts, balances, holds and recent ledger entries."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ...billing import funds
from ...schemas import AccountOut, LedgerEntryOut, MeOut
from ...services.tenancy.accounts import accounts_of
from ...store.models import User
from ..deps import current_user, get_session
from ..responses import errors

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=errors(401, 422))


@router.get("/me", response_model=MeOut)
def me(entries: int = Query(20, ge=0, le=500), user: User = Depends(current_user), session=Depends(get_session)):
    out = []
    for account in accounts_of(session, user):
        f = funds.funds(session, account)
        out.append(
            AccountOut(
                name=account.name, currency=account.currency, balance=f.balance, reserved=f.held,
                credit_limit=f.credit_limit, available=f.available, is_default=account.id == user.default_account_id,
                entries=[LedgerEntryOut(id=e.id, amount=e.amount, kind=e.kind, pending=e.pending, job_id=e.job_id,
                                        memo=e.memo, created_at=e.created_at)
                         for e in funds.entries(session, account, entries)],
            )
        )
    return MeOut(user=user.name, accounts=out)

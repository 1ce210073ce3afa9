"""/accounts/me: the caller's accounts, balances, reservations, recent entries."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from ...schemas import AccountOut, LedgerEntryOut, MeOut
from ...services.accounts import accounts_of
from ...services.jobs import reserved
from ...store.models import LedgerEntry, User
from ..deps import current_user, get_session

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("/me", response_model=MeOut)
def me(entries: int = Query(20, ge=0, le=500), user: User = Depends(current_user), session=Depends(get_session)):
    out = []
    for account in accounts_of(session, user):
        held = reserved(session, account)
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id.desc()).limit(entries)
        )
        out.append(
            AccountOut(
                name=account.name, currency=account.currency, balance=account.balance, reserved=held,
                available=account.balance - held, is_default=account.id == user.default_account_id,
                entries=[LedgerEntryOut(id=e.id, amount=e.amount, kind=e.kind, job_id=e.job_id, memo=e.memo,
                                        created_at=e.created_at) for e in rows],
            )
        )
    return MeOut(user=user.name, accounts=out)

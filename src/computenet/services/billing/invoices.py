"""Issuing invoices: one per account and closed month, numbered once, the same every time asked.

Numbers run per year of the period without gaps, ``<prefix>-<year>-<six digits>``. Issuing is
idempotent: a second request finds the invoice already issued (the unique (account, month)
decides a race; the loser reads the winner's invoice) and returns it unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...billing.invoice import Invoice, Party, build_invoice
from ...billing.statements import month_bounds, statement
from ...config import Settings
from ...messages import msg
from ...store.models import Account, ClosedPeriod, IssuedInvoice, Tenant
from ..errors import Conflict, InvalidRequest


def issued(session: Session, account: Account, month: str) -> Invoice | None:
    row = session.scalar(select(IssuedInvoice).where(IssuedInvoice.account_id == account.id,
                                                     IssuedInvoice.month == month))
    return Invoice.from_json(row.document) if row else None


def _check_month(session: Session, month: str) -> None:
    try:
        month_bounds(month)
    except ValueError:
        raise InvalidRequest(msg("month %(month)r is not YYYY-MM (e.g. 2026-11)", month=month)) from None
    if session.get(ClosedPeriod, month) is None:
        raise Conflict(msg("%(month)s is not closed: an invoice is issued for a closed month only "
                           "(an operator closes it with `cnet admin close-month %(month)s`)", month=month))


def issue(session: Session, account: Account, month: str, settings: Settings, actor: str,
          today: datetime | None = None) -> Invoice:
    """The account's invoice for a closed month: issued now if it has not been, else as it was issued."""
    _check_month(session, month)
    found = issued(session, account, month)
    if found is not None:
        return found
    config, issuer = settings.billing.invoice, settings.billing.issuer
    tenant = session.get(Tenant, account.tenant_id) if account.tenant_id else None
    day = (today or datetime.now(ZoneInfo(settings.display_timezone))).date()
    st = statement(session, account, month)
    for attempt in range(5):
        number = _next_number(session, config.number_prefix, month)
        invoice = build_invoice(st, number=number, customer=tenant.name if tenant else account.name,
                                issued=day.isoformat(), due=(day + timedelta(days=config.due_days)).isoformat(),
                                issuer=Party(issuer.name, issuer.address, issuer.tax_id, issuer.payment, issuer.logo),
                                discount_percent=config.discounts.get(account.name, Decimal(0)),
                                tax_rates=config.tax_rates, prices_include_tax=config.prices_include_tax)
        try:
            with session.begin_nested():
                session.add(IssuedInvoice(number=number, account_id=account.id, month=month, actor=actor,
                                          document=invoice.to_json()))
            return invoice
        except IntegrityError:  # another request issued this invoice, or took this number, first
            found = issued(session, account, month)
            if found is not None:
                return found
    raise Conflict(msg("could not number the invoice: too many invoices issued at once; try again"))


def _next_number(session: Session, prefix: str, month: str) -> str:
    head = f"{prefix}-{month[:4]}-"
    taken = session.scalar(select(func.max(IssuedInvoice.number)).where(IssuedInvoice.number.like(f"{head}%")))
    return f"{head}{int(taken[len(head):]) + 1 if taken else 1:06d}"

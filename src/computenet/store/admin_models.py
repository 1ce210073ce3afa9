"""Audit trail, closed periods, charge adjustments (re-pricing) and Slurm account mappings
(re-exported by store.models)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base
from .types import Money, UTCDateTime, utcnow


class AuditEvent(Base):
    """Who did what, when, from where: every admin action and money movement a person started."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # a user name, or "system"
    source: Mapped[str] = mapped_column(String(128))  # "api 10.1.2.3", "cli root@host", "service"
    action: Mapped[str] = mapped_column(String(48), index=True)  # e.g. topup, move, price.set, reprice
    target: Mapped[str] = mapped_column(String(128))  # e.g. account:md-lab
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class ClosedPeriod(Base):
    """A month whose statements are issued: its charges are final, re-pricing is refused."""

    __tablename__ = "closed_periods"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))


class ChargeAdjustment(Base):
    """A re-pricing of one charge: the charge stays as it was, the difference moves."""

    __tablename__ = "charge_adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    charge_id: Mapped[int] = mapped_column(ForeignKey("charges.id"), index=True)
    batch: Mapped[str] = mapped_column(String(64))
    old_amount: Mapped[Decimal] = mapped_column(Money)
    new_amount: Mapped[Decimal] = mapped_column(Money)
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlurmAccount(Base):
    """A platform account's Slurm account on one cluster: jobs under it are charged to the account,
    and the account is blocked there when its funds run out."""

    __tablename__ = "slurm_accounts"
    __table_args__ = (UniqueConstraint("cluster_id", "slurm_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"))
    slurm_account: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)  # as last applied
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RoleGrant(Base):
    """A platform role held by a user: operator, finance, vendor, or tenant_admin (of ``tenant_id``).

    Granted and revoked with a reason (services/tenancy/roles.py; the audit log keeps both). Project roles
    (PI, member) are account memberships (AccountMember), not rows here.
    """

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", "tenant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    granted_by: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssuedInvoice(Base):
    """An invoice of an account's closed month, as issued: its number and the document, frozen (a later
    change of prices, discounts, tax rates or the issuer's details leaves it as it was sent)."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("account_id", "month", name="uq_invoices_account_id_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, a closed period
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict] = mapped_column(JSON)  # Invoice.to_json()

"""Webhook endpoints of an account or of a whole tenant, and the deliveries of outbox events to them (services/integration/webhooks.py).

A delivery row is written per (endpoint, event) by the fan-out task, never in a request; the
unique pair makes the fan-out safe to repeat. The body sent is the event's envelope, read from
the outbox row at send time, so the outbox clean-up keeps an event while any delivery of it is
pending.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base
from .types import UTCDateTime, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # one of the two: an account's endpoint, or a tenant's (every account of the tenant)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list] = mapped_column(JSON)  # patterns: "job.charged", "job.*", "*"
    secret: Mapped[str] = mapped_column(String(100))  # whsec_<base64>: Standard Webhooks signing key
    description: Mapped[str] = mapped_column(String(200), default="")
    # made by the older per-account setting (PUT /accounts/{name}/webhook, `cnet admin webhook`)
    legacy: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)  # outbox_events.id; the webhook-id header
    event_type: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the last HTTP status, if one came
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # delivered or dead

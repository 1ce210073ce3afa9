"""Notices out of the platform: e-mail to each member, a signed webhook per account.

An outbox: each notice writes its deliveries in the same transaction
(notify_members), and this loop sends what is due, outside any transaction,
retrying with exponential back-off. A receiver sees each delivery id at
least once (X-ComputeNet-Delivery), so it can drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import NotificationsConfig
from ..store.models import Account, Delivery, Notification, User
from ..store.types import utcnow
from .errors import InvalidRequest
from .platform import Platform

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=6)


def check_webhook_url(url: str, cfg: NotificationsConfig) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"webhook URL {url!r} must be http(s)://host/...")
    if parts.username or parts.password:
        raise InvalidRequest("a webhook URL must not carry a user or password (the body is signed instead)")
    if cfg.webhook_allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror:
        raise InvalidRequest(f"webhook host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
            raise InvalidRequest(f"webhook host {parts.hostname!r} is a private address ({address}); "
                                 "an operator can allow that with notifications.webhook_allow_private")


def set_webhook(session: Session, account: Account, url: str | None, cfg: NotificationsConfig) -> None:
    if url:
        check_webhook_url(url, cfg)
    account.webhook_url = url or None
    session.flush()


def enqueue(session: Session, notification: Notification, user: User, account: Account | None,
            first_of_event: bool) -> None:
    """Deliveries for a new notice (called in the notice's transaction)."""
    if user.email:
        session.add(Delivery(notification_id=notification.id, channel="email", target=user.email))
    if first_of_event and account is not None and account.webhook_url:
        session.add(Delivery(notification_id=notification.id, channel="webhook", target=account.webhook_url))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Due:
    id: int
    channel: str
    target: str
    attempts: int
    kind: str
    message: str
    account: str | None
    notification_id: int
    created_at: str


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    waiting: int = 0  # e-mail with no SMTP server configured


class Deliverer:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cfg = platform.settings.notifications

    def run_once(self, limit: int = 200) -> DeliveryReport:
        report = DeliveryReport()
        with self.platform.db.session() as session:
            query = (select(Delivery, Notification).join(Notification, Notification.id == Delivery.notification_id)
                     .where(Delivery.delivered_at.is_(None), Delivery.next_attempt_at <= utcnow(),
                            Delivery.attempts < self.cfg.max_attempts)
                     .order_by(Delivery.next_attempt_at).limit(limit))
            due = []
            for d, n in session.execute(query):
                account = session.get(Account, n.account_id) if n.account_id else None
                due.append(_Due(d.id, d.channel, d.target, d.attempts, n.kind, n.message,
                                account.name if account else None, n.id, n.created_at.isoformat()))
        for item in due:
            if item.channel == "email" and not self.cfg.smtp_host:
                report.waiting += 1
                continue
            try:
                self._email(item) if item.channel == "email" else self._webhook(item)
                error = None
            except Exception as exc:  # any failure is retried later; the reason is kept
                error = f"{type(exc).__name__}: {exc}"[:500]
            with self.platform.db.session() as session:
                row = session.get(Delivery, item.id)
                row.attempts += 1
                if error is None:
                    row.delivered_at, row.last_error = utcnow(), ""
                    report.sent.append(item.id)
                else:
                    row.last_error = error
                    row.next_attempt_at = utcnow() + min(timedelta(seconds=30 * 2 ** row.attempts), MAX_BACKOFF)
                    report.failed.append(item.id)
                    log.warning("delivery %s (%s to %s) failed: %s", item.id, item.channel, item.target, error)
        return report

    def _email(self, item: _Due) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"] = self.cfg.mail_from, item.target
        msg["Subject"] = f"[ComputeNet] {item.kind.replace('_', ' ')}" + (f": {item.account}" if item.account else "")
        msg["X-ComputeNet-Delivery"] = str(item.id)
        msg.set_content(item.message + "\n")
        with smtplib.SMTP(self.cfg.smtp_host, self.cfg.smtp_port, timeout=self.cfg.timeout_s) as smtp:
            if self.cfg.smtp_starttls:
                smtp.starttls()
            if self.cfg.smtp_user:
                smtp.login(self.cfg.smtp_user, self.cfg.smtp_password or "")
            smtp.send_message(msg)

    def _webhook(self, item: _Due) -> None:
        check_webhook_url(item.target, self.cfg)  # again at send time: DNS may have changed
        body = json.dumps({"delivery": item.id, "notification": item.notification_id, "kind": item.kind,
                           "account": item.account, "message": item.message, "created_at": item.created_at},
                          ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "ComputeNet",
                   "X-ComputeNet-Event": item.kind, "X-ComputeNet-Delivery": str(item.id)}
        if self.cfg.webhook_secret:
            headers["X-ComputeNet-Signature"] = sign(self.cfg.webhook_secret, body)
        response = httpx.post(item.target, content=body, headers=headers, timeout=self.cfg.timeout_s,
                              follow_redirects=False)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code}")

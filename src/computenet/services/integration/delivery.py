"""Notices out of the platform by e-mail to each member; the address rules of every webhook.

An outbox: each notice writes its e-mail deliveries in the same transaction
(notify_members), and this loop sends what is due, outside any transaction,
retrying with exponential back-off. A receiver sees each delivery id at
least once (X-ComputeNet-Delivery), so it can drop repeats.

Webhooks go out from the events outbox (services/integration/webhooks.py, webhook_sender.py): a notice is an
event (balance.*, account.notice), and the per-account webhook URL set here is one endpoint there.

Under a worker's lease (workers/) each send is preceded by a lease check: a
worker that stalled past its lease (its due list read before the takeover)
stops instead of sending what the new holder sends too. Repeats still happen
when a sender dies between sending and marking, hence the id to drop them by.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Callable
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...config import NotificationsConfig
from ...store.models import Account, Delivery, Notification, User
from ...store.types import utcnow
from ..errors import InvalidRequest
from ..lease_guard import UNGUARDED, LeaseGuard
from ..platform import Platform
from ...messages import msg

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=6)
JOB_ENDED_KIND = "job_ended"  # its e-mails are grouped per reader (NotificationsConfig.job_ended_group_s)


def _batches(due: list[_Due]) -> list[list[_Due]]:
    """What goes as one message: job-ended notices to one address together, anything else alone."""
    out: list[list[_Due]] = []
    together: dict[tuple[str, str], list[_Due]] = {}
    for item in due:
        if item.kind != JOB_ENDED_KIND:
            out.append([item])
        elif (item.target, item.language) in together:
            together[(item.target, item.language)].append(item)
        else:
            together[(item.target, item.language)] = batch = [item]
            out.append(batch)
    return out


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64): it is where packets go."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _allowed(address: IPAddress, cfg: NotificationsConfig) -> bool:
    if cfg.webhook_allow_private:
        return True
    if any(address in ipaddress.ip_network(n, strict=False) for n in cfg.webhook_allow_networks):
        return True
    inner = _embedded_ipv4(address)
    return address.is_global and (inner is None or _allowed(inner, cfg))


def check_webhook_url(url: str, cfg: NotificationsConfig) -> list[IPAddress]:
    """The addresses the URL's host resolves to, every one allowed; else InvalidRequest naming why."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [IPv6 literal, ...
        raise InvalidRequest(msg("webhook URL %(url)r is not a valid URL", url=url[:200])) from None
    try:
        port = parts.port
    except ValueError:
        raise InvalidRequest(msg("webhook URL %(url)r has an invalid port", url=url)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(msg("webhook URL %(url)r must be http(s)://host/...", url=url))
    if parts.username or parts.password:
        raise InvalidRequest(msg("a webhook URL must not carry a user or password (the body is signed instead)"))
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidRequest(msg("webhook host %(host)r does not resolve", host=parts.hostname)) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for address in addresses:
        if not _allowed(address, cfg):
            raise InvalidRequest(
                f"webhook host {parts.hostname!r} is a private address ({address}): only globally routable "
                "addresses are allowed; an operator can allow more with notifications.webhook_allow_networks "
                "(or webhook_allow_private)")
    if not addresses:
        raise InvalidRequest(msg("webhook host %(host)r does not resolve", host=parts.hostname))
    return addresses


def _pinned(url: str, address: IPAddress) -> tuple[str, dict, dict]:
    """The URL aimed at the checked address (DNS is not asked twice), the Host header and TLS name."""
    parts = urlsplit(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = host + (f":{parts.port}" if parts.port else "")
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # an IPv6 literal
    headers = {"Host": name + (f":{parts.port}" if parts.port else "")}
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), headers, extensions


def set_webhook(session: Session, account: Account, url: str | None, cfg: NotificationsConfig, by: str = "") -> None:
    """The account's notices to URL (None: off): its legacy endpoint (services/integration/webhooks.py)."""
    from .webhooks import replace_legacy

    if url:
        check_webhook_url(url, cfg)
    account.webhook_url = url or None
    replace_legacy(session, account, url, cfg, by)
    session.flush()


def enqueue(session: Session, notification: Notification, user: User, account: Account | None,
            first_of_event: bool, channels: tuple[str, ...] | None = None) -> None:
    """Deliveries for a new notice (called in the notice's transaction); ``channels`` limits them."""
    if user.email and (channels is None or "email" in channels):
        session.add(Delivery(notification_id=notification.id, channel="email", target=user.email))
    # the account's webhooks hear of it through the notice's event (store/event_models.py)


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
    language: str = "en"  # the reader's, for e-mail


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    waiting: int = 0  # e-mail with no SMTP server configured


def send_email(cfg: NotificationsConfig, to: str, subject: str, body: str, headers: dict | None = None) -> None:
    """One message through the configured SMTP server, now (errors are the caller's to handle)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.mail_from, to, subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body + "\n")
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s) as smtp:
        if cfg.smtp_starttls:
            smtp.starttls()
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, cfg.smtp_password or "")
        smtp.send_message(msg)


class Deliverer:
    """``say(text, language)`` puts a stored notice into its reader's language for e-mail; the process
    that runs the task passes it (workers/tasks.py: the portal's catalogues), so this layer knows none."""

    def __init__(self, platform: Platform, say: Callable[[str, str], str] | None = None) -> None:
        self.platform = platform
        self.cfg = platform.settings.notifications
        self.say = say

    def run_once(self, limit: int = 200, guard: LeaseGuard = UNGUARDED) -> DeliveryReport:
        report = DeliveryReport()
        now = utcnow()
        pending = (select(Delivery, Notification).join(Notification, Notification.id == Delivery.notification_id)
                   .where(Delivery.channel == "email",  # webhooks: services/integration/webhook_sender.py
                          Delivery.delivered_at.is_(None), Delivery.next_attempt_at <= now,
                          Delivery.attempts < self.cfg.max_attempts))
        with self.platform.db.session() as session:
            # a job-ended e-mail waits out the grouping window; when it goes, those of the same reader
            # that came meanwhile go with it (quiet grouping: one message for a burst of jobs)
            settled = now - timedelta(seconds=self.cfg.job_ended_group_s)
            query = pending.where(or_(Notification.kind != JOB_ENDED_KIND, Delivery.created_at <= settled))
            rows = list(session.execute(query.order_by(Delivery.next_attempt_at).limit(limit)))
            grouped = {d.target for d, n in rows if n.kind == JOB_ENDED_KIND}
            if grouped:
                seen = {d.id for d, _ in rows}
                rows += [(d, n) for d, n in session.execute(
                    pending.where(Notification.kind == JOB_ENDED_KIND, Delivery.target.in_(grouped))
                    .order_by(Delivery.id).limit(limit)) if d.id not in seen]
            due = []
            for d, n in rows:
                account = session.get(Account, n.account_id) if n.account_id else None
                reader = session.get(User, n.user_id) if n.user_id else None
                due.append(_Due(d.id, d.channel, d.target, d.attempts, n.kind, n.message,
                                account.name if account else None, n.id, n.created_at.isoformat(),
                                (reader.language if reader else "") or "en"))
        for batch in _batches(due):
            if not self.cfg.smtp_host:
                report.waiting += len(batch)
                continue
            guard.check()  # LeaseLost ends the pass: the rest is the new holder's
            try:
                if len(batch) == 1:
                    self._email(batch[0])
                else:
                    self._grouped_email(batch)
                error = None
            except Exception as exc:  # any failure is retried later; the reason is kept
                error = f"{type(exc).__name__}: {exc}"[:500]
            with self.platform.db.session() as session:
                for item in batch:  # one message: its notices are sent, or retried, together
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

    def _grouped_email(self, batch: list[_Due]) -> None:
        """One message for many job-ended notices to one reader: a count, then each job's line."""
        from .notifications import JOBS_ENDED

        head = str(msg(JOBS_ENDED, count=len(batch)))
        lines = [item.message for item in batch]
        language = batch[0].language
        if self.say is not None and language != "en":
            head, lines = self.say(head, language), [self.say(line, language) for line in lines]
        body = head + "\n\n" + "\n".join(f"- {line}" for line in lines)
        send_email(self.cfg, batch[0].target, f"[ComputeNet] {head}", body,
                   {"X-ComputeNet-Delivery": ",".join(str(item.id) for item in batch)})

    def _email(self, item: _Due) -> None:
        if self.say is not None and item.language != "en":
            body = self.say(item.message, item.language)
            subject = "[ComputeNet] " + (body if len(body) <= 70 else body[:69] + "…")
        else:
            body = item.message
            subject = f"[ComputeNet] {item.kind.replace('_', ' ')}" + (f": {item.account}" if item.account else "")
        send_email(self.cfg, item.target, subject, body, {"X-ComputeNet-Delivery": str(item.id)})

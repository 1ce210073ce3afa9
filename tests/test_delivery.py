"""Notices by e-mail (a real SMTP conversation) and signed webhooks (a real HTTP server), with retries."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from computenet.config import NotificationsConfig
from computenet.services import accounts, delivery, notifications
from computenet.services.delivery import Deliverer, sign
from computenet.services.errors import InvalidRequest
from computenet.services.notifications import BalanceWatch
from computenet.store.models import Delivery
from computenet.store.types import utcnow

from conftest import local_cluster
from mail_server import smtp_server  # noqa: F401 (a fixture)


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        self.send_response(self.server.answers.pop(0) if self.server.answers else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    server.received, server.answers = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _low_balance_notice(platform, webhook: str | None = None) -> None:
    """Two members with e-mail addresses; available falls below the threshold."""
    with platform.db.session() as session:
        ann = accounts.create_user(session, "ann", email="ann@uni.example")
        ben = accounts.create_user(session, "ben", email="ben@uni.example")
        lab = accounts.create_account(session, "ann-lab", owner=ann)
        accounts.add_member(session, lab, ben)
        accounts.top_up(session, lab, "5.00", key="ann:1")
        notifications.set_threshold(session, lab, "10.00")
        if webhook:
            delivery.set_webhook(session, lab, webhook, platform.settings.notifications)
    assert BalanceWatch(platform).run_once().notices == 2


def test_signed_webhook_once_per_event_with_retries(make_platform, hook_server):
    platform = make_platform([local_cluster()], notifications=NotificationsConfig(
        webhook_secret="s3cret", webhook_allow_private=True))
    url = f"http://127.0.0.1:{hook_server.server_port}/hooks/computenet"
    hook_server.answers = [500]  # the receiver is down the first time
    _low_balance_notice(platform, webhook=url)
    deliverer = Deliverer(platform)
    first = deliverer.run_once()
    assert len(first.failed) == 1 and first.waiting == 2  # e-mail waits: no SMTP server configured
    with platform.db.session() as session:
        (hook,) = session.scalars(select(Delivery).where(Delivery.channel == "webhook"))
        assert (hook.attempts, hook.last_error, hook.delivered_at) == (1, "RuntimeError: HTTP 500", None)
        assert hook.next_attempt_at > utcnow() + timedelta(seconds=30)  # backing off
        hook.next_attempt_at = utcnow()  # time passes
    second = deliverer.run_once()
    assert second.sent == [hook.id]
    assert deliverer.run_once().sent == []  # delivered once
    headers, body = hook_server.received[-1]
    assert headers["X-ComputeNet-Signature"] == sign("s3cret", body)
    payload = json.loads(body)
    assert payload["kind"] == "low_balance" and payload["account"] == "ann-lab" and "5.00" in payload["message"]
    assert headers["X-ComputeNet-Delivery"] == str(hook.id)
    assert len(hook_server.received) == 2  # one event, one webhook (not one per member), tried twice


def test_email_to_each_member_through_smtp(make_platform, smtp_server):
    platform = make_platform([local_cluster()], notifications=NotificationsConfig(
        smtp_host="127.0.0.1", smtp_port=smtp_server.server_address[1], mail_from="billing@centre.example"))
    _low_balance_notice(platform)
    report = Deliverer(platform).run_once()
    assert len(report.sent) == 2 and report.failed == []
    assert Deliverer(platform).run_once().sent == []
    recipients = sorted(line for m in smtp_server.messages for line in m.splitlines() if line.startswith("To: "))
    assert recipients == ["To: ann@uni.example", "To: ben@uni.example"]
    message = smtp_server.messages[0]
    assert "Subject: [ComputeNet] low balance: ann-lab" in message and "From: billing@centre.example" in message


def test_unreachable_smtp_is_retried_not_lost(make_platform):
    platform = make_platform([local_cluster()], notifications=NotificationsConfig(smtp_host="127.0.0.1",
                                                                                   smtp_port=1, timeout_s=2))
    _low_balance_notice(platform)
    report = Deliverer(platform).run_once()
    assert len(report.failed) == 2 and report.sent == []
    with platform.db.session() as session:
        rows = session.scalars(select(Delivery)).all()
        assert all(r.delivered_at is None and r.attempts == 1 and "Connection refused" in r.last_error for r in rows)


def test_webhook_urls_are_checked(platform):
    cfg = platform.settings.notifications  # private addresses not allowed (the default)
    with platform.db.session() as session:
        account = accounts.create_account(session, "hooked")
        for url, fragment in (("ftp://example.com/x", "http(s)"), ("http:///nohost", "http(s)"),
                              ("http://user:pw@example.com/", "user or password"),
                              ("http://127.0.0.1:8080/", "private address"), ("http://10.1.2.3/", "private address"),
                              ("http://[::1]/", "private address")):
            with pytest.raises(InvalidRequest) as err:
                delivery.set_webhook(session, account, url, cfg)
            assert fragment in str(err.value), url
        assert account.webhook_url is None
        delivery.set_webhook(session, account, None, cfg)

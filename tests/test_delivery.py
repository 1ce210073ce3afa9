"""Notices by e-mail (a real SMTP conversation), with retries; webhooks: test_webhooks.py."""

import pytest
from sqlalchemy import select

from computenet.config import NotificationsConfig
from computenet.services.tenancy import accounts
from computenet.services.integration import delivery, notifications
from computenet.services.integration.delivery import Deliverer
from computenet.services.errors import InvalidRequest
from computenet.services.integration.notifications import BalanceWatch
from computenet.store.models import Delivery

from conftest import local_cluster
from mail_server import smtp_server  # noqa: F401 (a fixture)


def _low_balance_notice(platform) -> None:
    """Two members with e-mail addresses; available falls below the threshold."""
    with platform.db.session() as session:
        ann = accounts.create_user(session, "ann", email="ann@uni.example")
        ben = accounts.create_user(session, "ben", email="ben@uni.example")
        lab = accounts.create_account(session, "ann-lab", owner=ann)
        accounts.add_member(session, lab, ben)
        accounts.top_up(session, lab, "5.00", key="ann:1")
        notifications.set_threshold(session, lab, "10.00")
    assert BalanceWatch(platform).run_once().notices == 2


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

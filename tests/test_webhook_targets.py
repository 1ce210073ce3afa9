"""Webhook targets: only globally routable addresses (ipaddress' is_global), unless the operator
allows more; checked when set and again when sent, names included (issue 13, item 7)."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from computenet.config import NotificationsConfig
from computenet.services.tenancy import accounts
from computenet.services.integration import delivery, notifications
from computenet.services.integration.delivery import check_webhook_url
from computenet.services.errors import InvalidRequest
from computenet.services.integration.webhook_sender import WebhookDispatcher
from computenet.store.webhook_models import WebhookDelivery, WebhookEndpoint

NOT_GLOBAL = ("http://100.64.0.1/", "http://100.100.100.200/latest/meta-data/", "http://169.254.169.254/",
              "http://0.0.0.0/", "http://192.0.0.170/", "http://[::ffff:100.64.0.1]/", "http://[::ffff:127.0.0.1]/",
              "http://[2002:7f00:1::]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[fd00:ec2::254]/",
              "http://[2001:db8::1]/", "http://198.18.0.1/", "http://localhost/")


@pytest.mark.parametrize("url", NOT_GLOBAL)
def test_addresses_that_are_not_globally_routable_are_refused(url):
    with pytest.raises(InvalidRequest) as err:
        check_webhook_url(url, NotificationsConfig())
    assert "private address" in str(err.value) and "webhook_allow_networks" in str(err.value)


def test_a_globally_routable_address_is_accepted():
    assert [str(a) for a in check_webhook_url("https://93.184.215.14/hooks", NotificationsConfig())] == \
        ["93.184.215.14"]


def test_the_operator_allows_more_by_network_or_everything():
    narrow = NotificationsConfig(webhook_allow_networks=["100.64.0.0/16", "fd00:ec2::/32"])
    check_webhook_url("http://100.64.0.1/", narrow)
    check_webhook_url("http://[fd00:ec2::254]/", narrow)
    with pytest.raises(InvalidRequest):
        check_webhook_url("http://100.100.100.200/", narrow)  # outside the allowed network
    check_webhook_url("http://100.100.100.200/", NotificationsConfig(webhook_allow_private=True))
    with pytest.raises(ValueError):
        NotificationsConfig(webhook_allow_networks=["not-a-network"])


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(dict(self.headers))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _notice_to(platform, url: str) -> None:
    with platform.db.session() as session:
        owner = accounts.create_user(session, "hooked", email=None)
        lab = accounts.create_account(session, "hooked-lab", owner=owner)
        session.add(WebhookEndpoint(account_id=lab.id, url=url, event_types=["*"],  # stored while allowed
                                    secret="whsec_" + "A" * 32, legacy=True))
        session.flush()
        notifications.notify_members(session, lab, "low_balance", "balance is low", "low:1")


def test_checked_again_at_send_time_by_name(make_platform, hook_server):
    """A target stored while allowed is refused when sent, once the rules no longer allow it."""
    platform = make_platform()  # the default: only global addresses
    _notice_to(platform, f"http://localhost:{hook_server.server_port}/hook")
    report = WebhookDispatcher(platform).run_once()
    assert report.sent == [] and len(report.failed) == 1
    with platform.db.session() as session:
        (row,) = session.scalars(select(WebhookDelivery))
        assert "private address (127.0.0.1)" in row.last_error
    assert hook_server.received == []  # nothing was sent there


def test_sent_to_the_address_that_was_checked_with_the_name_as_host(make_platform, hook_server):
    platform = make_platform(notifications=NotificationsConfig(webhook_allow_networks=["127.0.0.0/8"]))
    _notice_to(platform, f"http://localhost:{hook_server.server_port}/hook")
    report = WebhookDispatcher(platform).run_once()
    assert len(report.sent) == 1, report
    (headers,) = hook_server.received
    assert headers["Host"] == f"localhost:{hook_server.server_port}"


def test_an_ipv6_literal_keeps_its_brackets_in_the_host_header():
    url, headers, extensions = delivery._pinned("https://[2606:4700::1]:8443/h?x=1",
                                                 check_webhook_url("https://[2606:4700::1]:8443/h?x=1",
                                                                   NotificationsConfig())[0])
    assert (url, headers["Host"], extensions) == ("https://[2606:4700::1]:8443/h?x=1", "[2606:4700::1]:8443",
                                                  {"sni_hostname": "2606:4700::1"})


def test_set_webhook_refuses_the_metadata_address(platform):
    with platform.db.session() as session:
        account = accounts.create_account(session, "meta")
        with pytest.raises(InvalidRequest):
            delivery.set_webhook(session, account, "http://100.100.100.200/", platform.settings.notifications)
        assert account.webhook_url is None

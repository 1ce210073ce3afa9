"""Webhook endpoints fed from the events outbox, against a real HTTP receiver on loopback: each event
once per endpoint (repeats only on retry, with the same id), signed the Standard Webhooks way,
retried with back-off, dead after max_attempts, a failing or hanging endpoint not holding up another,
and a tenant's endpoint hearing nothing of another tenant's events."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from computenet.config import NotificationsConfig, WebhooksConfig
from computenet.services.tenancy import accounts, tenants
from computenet.services.integration import notifications, webhooks
from computenet.services.integration.delivery import sign
from computenet.services.errors import InvalidRequest
from computenet.services.integration.webhook_sender import WebhookDispatcher
from computenet.store.event_models import OutboxEvent
from computenet.store.models import AuditEvent
from computenet.store.types import utcnow
from computenet.store.webhook_models import WebhookDelivery

NOTIFY = NotificationsConfig(webhook_allow_private=True)  # the receiver is on loopback


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        path = self.path.strip("/")
        with self.server.lock:
            self.server.received.append((path, dict(self.headers), body))
            answers = self.server.answers.get(path)
            code = answers.pop(0) if answers else 204
        if code == "hang":
            time.sleep(self.server.hang_s)
            code = 204
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.received, server.answers, server.lock, server.hang_s = [], {}, threading.Lock(), 5.0
    server.url = lambda path: f"http://127.0.0.1:{server.server_port}/{path}"
    server.ids = lambda path: [json.loads(b)["id"] for p, _, b in server.received if p == path]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _project(platform, tenant: str, user: str) -> None:
    with platform.db.session() as session:
        t = tenants.create_tenant(session, tenant, "enterprise")
        u = accounts.create_user(session, user)
        u.tenant_id = t.id
        project = tenants.create_project(session, t, f"{user}-lab", pi=u)
        accounts.top_up(session, project, "100.00", key=f"test:{uuid.uuid4()}")


def _endpoint(platform, account: str, url: str, types: list[str]) -> tuple[int, str]:
    with platform.db.session() as session:
        ep = webhooks.add_endpoint(session, accounts.get_account(session, account), url, types, NOTIFY, "test")
        return ep.id, ep.secret


def _notices(platform, account: str, user: str, n: int) -> list[str]:
    """n notices to one member: n account.notice events; their event ids in order."""
    with platform.db.session() as session:
        acc, u = accounts.get_account(session, account), accounts.get_user(session, user)
        for i in range(n):
            notifications.notify_user(session, u, acc, "job_lost", f"job {i} was lost", f"job_lost:{i}:{u.id}")
    with platform.db.session() as session:
        return list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "account.notice")
                                    .order_by(OutboxEvent.seq)))


def _due_now(platform) -> None:
    with platform.db.session() as session:  # time passes: every back-off is over
        session.execute(update(WebhookDelivery).where(WebhookDelivery.status == "pending")
                        .values(next_attempt_at=utcnow()))


def test_each_event_once_per_endpoint_signed_and_scoped_to_its_tenant(make_platform, receiver):
    platform = make_platform(notifications=NOTIFY)
    _project(platform, "acme", "ann")
    _project(platform, "beta.corp", "bob")
    jobs_id, jobs_secret = _endpoint(platform, "ann-lab", receiver.url("jobs"), ["job.*"])
    all_id, all_secret = _endpoint(platform, "ann-lab", receiver.url("all"), ["*"])
    _endpoint(platform, "bob-lab", receiver.url("beta"), ["*"])  # another tenant's: hears none of ann's
    from test_events import _run_job  # a real job on the local cluster: its states and its charge

    with platform.db.session() as session:
        ann = accounts.get_user(session, "ann").id
    job_id = _run_job(platform, ann)
    notice_ids = _notices(platform, "ann-lab", "ann", 2)

    dispatcher = WebhookDispatcher(platform)
    report = dispatcher.run_once()
    assert report.failed == [] and len(report.sent) == report.queued > 0
    assert dispatcher.run_once().sent == []  # delivered: nothing twice

    with platform.db.session() as session:
        acme = list(session.scalars(select(OutboxEvent).where(OutboxEvent.tenant == "acme")
                                    .order_by(OutboxEvent.seq)))
    job_events = [e.id for e in acme if e.type.startswith("job.")]
    assert {e.type for e in acme if e.id in job_events} == {"job.state_changed", "job.charged"}
    assert receiver.ids("jobs") == job_events  # each once, in commit order
    assert receiver.ids("all") == [e.id for e in acme]  # everything of the account, notices included
    assert set(notice_ids) <= set(receiver.ids("all"))
    assert receiver.ids("beta") == []  # tenant scoping

    for path, secret in (("jobs", jobs_secret), ("all", all_secret)):
        for _, headers, body in (r for r in receiver.received if r[0] == path):
            payload = Webhook(secret).verify(body, headers)  # as a receiver would (the reference library)
            assert headers["webhook-id"] == payload["id"] == headers["X-ComputeNet-Delivery"]
            assert headers["X-ComputeNet-Event"] == payload["type"] and payload["tenant"] == "acme"
            assert headers["webhook-signature"] == webhooks.signature(secret, payload["id"],
                                                                      int(headers["webhook-timestamp"]), body)
            assert "X-ComputeNet-Signature" not in headers  # no platform-wide secret configured
    with pytest.raises(Exception):  # another endpoint's secret does not verify
        _, headers, body = next(r for r in receiver.received if r[0] == "jobs")
        Webhook(all_secret).verify(body, headers)
    charged = next(json.loads(b) for p, _, b in receiver.received if p == "jobs" and b'"job.charged"' in b)
    assert charged["data"]["job"] == job_id and charged["data"]["account"] == "ann-lab"
    with platform.db.session() as session:
        assert session.scalar(select(OutboxEvent.seq).where(OutboxEvent.fanned_out_at.is_(None))) is None


def test_a_failing_endpoint_backs_off_then_dies_and_never_holds_up_another(make_platform, receiver):
    platform = make_platform(notifications=NOTIFY, webhooks=WebhooksConfig(max_attempts=3, backoff_s=30))
    _project(platform, "acme", "ann")
    _endpoint(platform, "ann-lab", receiver.url("ok"), ["account.notice"])
    _endpoint(platform, "ann-lab", receiver.url("down"), ["account.notice"])
    receiver.answers["down"] = [500, 503]  # down twice, then up
    first, second, third = _notices(platform, "ann-lab", "ann", 3)
    dispatcher = WebhookDispatcher(platform)

    report = dispatcher.run_once()
    assert receiver.ids("ok") == [first, second, third]  # the healthy endpoint got everything at once
    assert receiver.ids("down") == [first]  # the failing one: its first failure ends its turn
    with platform.db.session() as session:
        down = {d.event_id: d for d in session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.status != "delivered"))}
    assert set(down) == {first, second, third} and len(report.failed) == 1
    assert (down[first].attempts, down[first].last_status, down[first].last_error) == (1, 500, "HTTP 500")
    assert down[first].next_attempt_at > utcnow() + timedelta(seconds=20)  # backing off
    assert down[second].attempts == down[third].attempts == 0  # untried, not failed

    assert dispatcher.run_once().sent == [] and receiver.ids("down") == [first]  # not due yet
    _due_now(platform)
    dispatcher.run_once()
    with platform.db.session() as session:
        retried = session.scalar(select(WebhookDelivery).where(WebhookDelivery.event_id == first,
                                                               WebhookDelivery.status == "pending"))
        assert retried.attempts == 2 and retried.last_error == "HTTP 503"
        assert retried.next_attempt_at > utcnow() + timedelta(seconds=50)  # doubled
    _due_now(platform)
    assert len(dispatcher.run_once().sent) == 3  # up again: the first, then the ones that waited
    # repeats only on retry, each with the same id; every event reached the endpoint
    assert Counter(receiver.ids("down")) == {first: 3, second: 1, third: 1}
    assert Counter(receiver.ids("ok")) == {first: 1, second: 1, third: 1}

    # an endpoint that never recovers is given up after max_attempts, with the reason kept
    receiver.answers["down"] = [500] * 10
    (fourth,) = _notices(platform, "ann-lab", "ann", 4)[3:]
    for _ in range(3):
        dispatcher.run_once()
        _due_now(platform)
    with platform.db.session() as session:
        dead = session.scalar(select(WebhookDelivery).where(WebhookDelivery.event_id == fourth,
                                                            WebhookDelivery.status == "dead"))
        assert dead.attempts == 3 and dead.last_error == "HTTP 500 (gave up after 3 tries)" and dead.finished_at
        account = accounts.get_account(session, "ann-lab")
        listed = webhooks.deliveries(session, account, status="dead")
        assert [d.event_id for d, _ in listed] == [fourth]
    assert dispatcher.run_once().dead == [] and receiver.ids("down").count(fourth) == 3


def test_a_hanging_endpoint_times_out_without_holding_up_another(make_platform, receiver):
    platform = make_platform(notifications=NOTIFY, webhooks=WebhooksConfig(timeout_s=0.5))
    _project(platform, "acme", "ann")
    _endpoint(platform, "ann-lab", receiver.url("hangs"), ["*"])
    _endpoint(platform, "ann-lab", receiver.url("ok"), ["*"])
    receiver.answers["hangs"] = ["hang"]
    ids = _notices(platform, "ann-lab", "ann", 3)
    report = WebhookDispatcher(platform).run_once()
    assert receiver.ids("ok") == ids and len(report.sent) == 3  # the same pass, all of them
    with platform.db.session() as session:
        (hung,) = session.scalars(select(WebhookDelivery).where(WebhookDelivery.attempts == 1,
                                                                WebhookDelivery.status == "pending"))
        assert hung.event_id == ids[0] and "Timeout" in hung.last_error


def test_endpoints_are_checked(make_platform):
    platform = make_platform()  # private addresses not allowed (the default)
    _project(platform, "acme", "ann")
    cfg = platform.settings.notifications
    with platform.db.session() as session:
        lab = accounts.get_account(session, "ann-lab")
        for url, types, fragment in (
                ("http://127.0.0.1:8080/", ["*"], "private address"),
                ("ftp://example.com/", ["*"], "http(s)"),
                ("http://[::1/", ["*"], "not a valid URL"),
                ("https://93.184.215.14/", [], "name the event types"),
                ("https://93.184.215.14/", ["job.finished"], "unknown event type"),
                ("https://93.184.215.14/", ["nope.*"], "unknown event type"),
                ("https://93.184.215.14/", ["job.**"], "unknown event type")):
            with pytest.raises(InvalidRequest) as err:
                webhooks.add_endpoint(session, lab, url, types, cfg, "test")
            assert fragment in str(err.value), (url, types)
        assert webhooks.endpoints(session, lab) == []
        ep = webhooks.add_endpoint(session, lab, "https://93.184.215.14/h", ["job.*", "job.*", " balance.low "],
                                   cfg, "test")
        assert ep.event_types == ["job.*", "balance.low"] and ep.secret.startswith("whsec_")
    assert webhooks.matches(["job.*"], "job.charged") and not webhooks.matches(["job.*"], "jobs.x")
    assert webhooks.matches(["*"], "statement.issued") and not webhooks.matches(["balance.low"], "balance.lowest")


def test_the_account_webhook_setting_is_an_endpoint_on_the_outbox(make_platform, receiver):
    """The older per-account webhook (cnet admin webhook): one delivery per happening however many
    members are told, the older X-ComputeNet-Signature header kept when a platform secret is set."""
    from computenet.services.integration import delivery

    platform = make_platform(notifications=NotificationsConfig(webhook_allow_private=True, webhook_secret="s3cret"))
    with platform.db.session() as session:
        ann, ben = accounts.create_user(session, "ann"), accounts.create_user(session, "ben")
        lab = accounts.create_account(session, "ann-lab", owner=ann)
        accounts.add_member(session, lab, ben)
        accounts.top_up(session, lab, "5.00", key="ann:1")
        notifications.set_threshold(session, lab, "10.00")
        delivery.set_webhook(session, lab, receiver.url("legacy"), platform.settings.notifications, by="ops")
        (ep,) = webhooks.endpoints(session, lab)
        assert ep.legacy and ep.event_types == webhooks.LEGACY_TYPES
    assert notifications.BalanceWatch(platform).run_once().notices == 2
    assert len(WebhookDispatcher(platform).run_once().sent) == 1
    ((_, headers, body),) = receiver.received
    assert headers["X-ComputeNet-Signature"] == sign("s3cret", body)
    payload = json.loads(body)
    assert payload["type"] == "balance.low" and payload["data"]["account"] == "ann-lab"
    assert "5.00" in payload["data"]["message"]
    with platform.db.session() as session:  # set again as it was: the same endpoint
        lab = accounts.get_account(session, "ann-lab")
        delivery.set_webhook(session, lab, receiver.url("legacy"), platform.settings.notifications)
        assert [e.id for e in webhooks.endpoints(session, lab)] == [ep.id]
    with platform.db.session() as session:  # switched off: the endpoint goes
        lab = accounts.get_account(session, "ann-lab")
        delivery.set_webhook(session, lab, None, platform.settings.notifications)
        assert webhooks.endpoints(session, lab) == [] and lab.webhook_url is None


def test_the_api_and_cnet_webhooks_for_a_projects_managers(make_platform, receiver, tmp_path):
    """`cnet webhooks add|list|test|deliveries|remove` over the real API; a plain member is refused,
    another tenant's PI does not even see the account, bad input is a clear 400."""
    from typer.testing import CliRunner

    from computenet.cli.embedded import EmbeddedServer
    from computenet.cli.main import app
    from computenet.client import ApiError, ComputeNetClient

    platform = make_platform(notifications=NOTIFY)
    _project(platform, "acme", "ann")
    _project(platform, "beta", "bob")
    with platform.db.session() as session:
        lab, ann, bob = (accounts.get_account(session, "ann-lab"), accounts.get_user(session, "ann"),
                         accounts.get_user(session, "bob"))
        mia = accounts.create_user(session, "mia")
        mia.tenant_id = ann.tenant_id
        accounts.add_member(session, lab, mia)  # a plain member
        tokens = {u.name: accounts.issue_token(session, u, "test") for u in (ann, bob, mia)}
    with EmbeddedServer(platform, run_services=False) as srv:
        env = {"COMPUTENET_URL": srv.url, "COMPUTENET_TOKEN": tokens["ann"], "XDG_CONFIG_HOME": str(tmp_path),
               "COLUMNS": "200"}
        cnet = lambda *args: CliRunner().invoke(app, list(args), env=env)  # noqa: E731
        made = cnet("webhooks", "add", receiver.url("cli"), "-A", "ann-lab", "-e", "account.*", "-e", "balance.low")
        assert made.exit_code == 0, made.output
        secret = made.output.split()[-1]
        assert secret.startswith("whsec_")
        listed = cnet("webhooks", "list", "-A", "ann-lab")
        assert receiver.url("cli") in listed.output and "account.*, balance.low" in listed.output
        assert secret not in listed.output  # shown once only
        endpoint_id = int(made.output.split()[1])

        tested = cnet("webhooks", "test", str(endpoint_id), "-A", "ann-lab")
        assert tested.exit_code == 0 and "answered HTTP 204" in tested.output, tested.output
        ((_, headers, body),) = receiver.received
        assert Webhook(secret).verify(body, headers)["type"] == "webhook.test"

        _notices(platform, "ann-lab", "ann", 1)
        WebhookDispatcher(platform).run_once()
        shown = cnet("webhooks", "deliveries", "-A", "ann-lab")
        assert "account.notice" in shown.output and "delivered" in shown.output, shown.output

        bad = cnet("webhooks", "add", "ftp://example.com/x", "-A", "ann-lab")
        assert bad.exit_code == 1 and "must be http(s)" in bad.output
        bad = cnet("webhooks", "add", receiver.url("x"), "-A", "ann-lab", "-e", "job.done")
        assert bad.exit_code == 1 and "unknown event type 'job.done'" in bad.output
        for who, status in (("mia", 403), ("bob", 404)):
            with ComputeNetClient(srv.url, tokens[who]) as other:
                for call in (lambda: other.webhooks("ann-lab"), lambda: other.webhook_deliveries("ann-lab"),
                             lambda: other.add_webhook("ann-lab", receiver.url("x"), ["*"]),
                             lambda: other.remove_webhook("ann-lab", endpoint_id)):
                    with pytest.raises(ApiError) as err:
                        call()
                    assert err.value.status == status, who
        with ComputeNetClient(srv.url, tokens["ann"]) as client:
            with pytest.raises(ApiError) as err:
                client.webhook_deliveries("ann-lab", status="lost")
            assert err.value.status == 400 and "pending, delivered, dead" in err.value.detail

        assert cnet("webhooks", "remove", str(endpoint_id), "-A", "ann-lab").exit_code == 0
        assert "cli" not in cnet("webhooks", "list", "-A", "ann-lab").output
        gone = cnet("webhooks", "remove", str(endpoint_id), "-A", "ann-lab")
        assert gone.exit_code == 1 and "no webhook endpoint" in gone.output
    with platform.db.session() as session:
        assert {e.action for e in session.scalars(select(AuditEvent))} >= {"webhook.add", "webhook.remove"}


def test_migration_0019_turns_each_account_webhook_into_an_endpoint(tmp_path):
    """An account's webhook URL set before becomes its legacy endpoint; events written before are not
    sent again (their notices went out by the older path)."""
    import sqlalchemy

    from conftest import database_at
    from computenet.store.webhook_models import WebhookEndpoint

    db = database_at(tmp_path, "0018")
    with db.engine.begin() as conn:
        conn.execute(sqlalchemy.text(
            "INSERT INTO accounts (id, name, currency, kind, low_balance_notified, exhaustion_policy, "
            "exhaustion_grace_minutes, budget_period, webhook_url, created_at) VALUES "
            "(1, 'hooked', 'CNY', 'project', 0, 'block', 60, 'month', 'https://93.184.215.14/h', '2026-01-01'),"
            "(2, 'quiet', 'CNY', 'project', 0, 'block', 60, 'month', NULL, '2026-01-01')"))
        conn.execute(sqlalchemy.text(
            "INSERT INTO outbox_events (id, type, occurred_at, tenant, subject, data, schema_version, attempts, "
            "last_error) VALUES ('e1', 'balance.low', '2026-01-01', '_platform', 'account/hooked', "
            "'{\"account\": \"hooked\"}', 1, 0, '')"))
    db.migrate()
    with db.session() as session:
        (endpoint,) = session.scalars(select(WebhookEndpoint))
        assert (endpoint.account_id, endpoint.url, endpoint.legacy) == (1, "https://93.184.215.14/h", True)
        assert endpoint.event_types == webhooks.LEGACY_TYPES and endpoint.secret.startswith("whsec_")
        assert session.scalar(select(OutboxEvent.fanned_out_at)) is not None
    db.engine.dispose()

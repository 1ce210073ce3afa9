"""Tenant-wide webhook endpoints (issue 20 item 2): an endpoint of a tenant hears the events of every
account of the tenant, never another tenant's; its admins manage it over the API and `cnet webhooks
--tenant`, and no one else even sees that the tenant exists."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from computenet.services.tenancy import accounts, tenants
from computenet.services.integration import webhooks
from computenet.services.errors import NotFound
from computenet.services.integration.webhook_sender import WebhookDispatcher
from computenet.store.event_models import OutboxEvent
from computenet.store.models import AuditEvent

from test_webhooks import NOTIFY, _notices, _project, receiver  # noqa: F401 (receiver: a fixture)


def _second_project(platform, tenant: str, user: str) -> None:
    with platform.db.session() as session:
        t = tenants.get_tenant(session, tenant)
        u = accounts.create_user(session, user)
        u.tenant_id = t.id
        tenants.create_project(session, t, f"{user}-lab", pi=u)


def _tenant_endpoint(platform, tenant: str, url: str, types: list[str]) -> tuple[int, str]:
    with platform.db.session() as session:
        ep = webhooks.add_endpoint(session, tenants.get_tenant(session, tenant), url, types, NOTIFY, "test")
        return ep.id, ep.secret


def _events_of(platform, tenant: str) -> list[str]:
    with platform.db.session() as session:
        return list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.tenant == tenant)
                                    .order_by(OutboxEvent.seq)))


def test_a_tenants_endpoint_hears_every_account_of_the_tenant_and_no_other_tenant(make_platform, receiver):  # noqa: F811
    platform = make_platform(notifications=NOTIFY)
    _project(platform, "acme", "ann")
    _second_project(platform, "acme", "cid")
    _project(platform, "beta", "bob")
    _, acme_secret = _tenant_endpoint(platform, "acme", receiver.url("acme"), ["*"])
    _tenant_endpoint(platform, "acme", receiver.url("acme-jobs"), ["job.*"])
    _tenant_endpoint(platform, "beta", receiver.url("beta"), ["*"])
    from test_events import _run_job  # a real job on the local cluster: its states and its charge

    with platform.db.session() as session:
        ann = accounts.get_user(session, "ann").id
    job_id = _run_job(platform, ann)
    ann_notices = _notices(platform, "ann-lab", "ann", 1)
    cid_notices = [n for n in _notices(platform, "cid-lab", "cid", 2) if n not in ann_notices]
    bob_notices = [n for n in _notices(platform, "bob-lab", "bob", 1) if n not in ann_notices + cid_notices]
    assert len(cid_notices) == 2 and len(bob_notices) == 1

    report = WebhookDispatcher(platform).run_once()
    assert report.failed == [] and len(report.sent) == report.queued > 0
    acme, beta = _events_of(platform, "acme"), _events_of(platform, "beta")
    assert receiver.ids("acme") == acme  # each once, in commit order, from both projects
    assert set(ann_notices + cid_notices) <= set(acme)
    with platform.db.session() as session:
        job_events = list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.subject == f"job/{job_id}")
                                          .order_by(OutboxEvent.seq)))
    assert job_events and receiver.ids("acme-jobs") == job_events
    assert receiver.ids("beta") == beta and not set(beta) & set(acme)  # scoping both ways
    bodies = [json.loads(b) for p, _, b in receiver.received if p == "acme"]
    assert {b["data"].get("account") for b in bodies if b["type"] == "account.notice"} == {"ann-lab", "cid-lab"}
    for _, headers, body in (r for r in receiver.received if r[0] == "acme"):
        assert Webhook(acme_secret).verify(body, headers)["tenant"] == "acme"
    assert WebhookDispatcher(platform).run_once().sent == []  # delivered: nothing twice


def test_tenant_endpoints_are_their_own(make_platform):
    """A tenant's endpoint is not an account's (nor another tenant's): not listed, found nor removed there."""
    platform = make_platform(notifications=NOTIFY)
    _project(platform, "acme", "ann")
    _project(platform, "beta", "bob")
    endpoint_id, _ = _tenant_endpoint(platform, "acme", "http://127.0.0.1:9/x", ["*"])
    with platform.db.session() as session:
        acme, beta = tenants.get_tenant(session, "acme"), tenants.get_tenant(session, "beta")
        lab = accounts.get_account(session, "ann-lab")
        assert [e.id for e in webhooks.endpoints(session, acme)] == [endpoint_id]
        assert webhooks.endpoints(session, lab) == [] and webhooks.endpoints(session, beta) == []
        for owner in (lab, beta):
            with pytest.raises(NotFound):
                webhooks.remove_endpoint(session, owner, endpoint_id)
        assert webhooks.endpoint_json(webhooks.get_endpoint(session, acme, endpoint_id), None,
                                      tenant="acme")["tenant"] == "acme"


def test_the_api_and_cnet_webhooks_tenant_for_its_admins(make_platform, receiver, tmp_path):  # noqa: F811
    """`cnet webhooks ... --tenant` over the real API by the tenant's admin; a project's PI of the tenant
    and another tenant's admin get a missing tenant; the CLI wants one of --account and --tenant."""
    from typer.testing import CliRunner

    from computenet.cli.embedded import EmbeddedServer
    from computenet.cli.main import app
    from computenet.client import ApiError, ComputeNetClient

    platform = make_platform(notifications=NOTIFY)
    _project(platform, "acme", "ann")
    _project(platform, "beta", "bob")
    with platform.db.session() as session:
        admins = {}
        for name, tenant in (("tia", "acme"), ("tom", "beta")):
            admin = accounts.create_user(session, name)
            admin.tenant_id, admin.role = tenants.get_tenant(session, tenant).id, "tenant_admin"
            admins[name] = admin
        ann = accounts.get_user(session, "ann")
        tokens = {u.name: accounts.issue_token(session, u, "test") for u in (*admins.values(), ann)}
    with EmbeddedServer(platform, run_services=False) as srv:
        env = {"COMPUTENET_URL": srv.url, "COMPUTENET_TOKEN": tokens["tia"], "XDG_CONFIG_HOME": str(tmp_path),
               "COLUMNS": "200"}
        cnet = lambda *args: CliRunner().invoke(app, list(args), env=env)  # noqa: E731
        made = cnet("webhooks", "add", receiver.url("t"), "--tenant", "acme", "-e", "account.*", "-e", "job.*")
        assert made.exit_code == 0 and "for tenant acme" in made.output, made.output
        secret = made.output.split()[-1]
        assert secret.startswith("whsec_")
        endpoint_id = int(made.output.split()[1])
        listed = cnet("webhooks", "list", "-T", "acme")
        assert receiver.url("t") in listed.output and "account.*, job.*" in listed.output
        assert secret not in listed.output

        tested = cnet("webhooks", "test", str(endpoint_id), "-T", "acme")
        assert tested.exit_code == 0 and "answered HTTP 204" in tested.output, tested.output
        ((_, headers, body),) = receiver.received
        sent = Webhook(secret).verify(body, headers)
        assert sent["type"] == "webhook.test" and sent["tenant"] == "acme" and sent["subject"] == "tenant/acme"

        _notices(platform, "ann-lab", "ann", 1)  # a project's event reaches the tenant's endpoint
        WebhookDispatcher(platform).run_once()
        shown = cnet("webhooks", "deliveries", "-T", "acme")
        assert "account.notice" in shown.output and "delivered" in shown.output, shown.output
        assert "account.notice" not in cnet("webhooks", "deliveries", "-A", "ann-lab").output  # not the project's

        neither = cnet("webhooks", "list")
        assert neither.exit_code == 1 and "--account" in neither.output and "--tenant" in neither.output
        both = cnet("webhooks", "list", "-A", "ann-lab", "-T", "acme")
        assert both.exit_code == 1 and "one of them" in both.output
        bad = cnet("webhooks", "add", receiver.url("x"), "-T", "acme", "-e", "job.done")
        assert bad.exit_code == 1 and "unknown event type 'job.done'" in bad.output

        for who in ("ann", "tom"):  # the PI of a project of acme; beta's admin
            with ComputeNetClient(srv.url, tokens[who]) as other:
                for call in (lambda: other.webhooks(tenant="acme"), lambda: other.webhook_deliveries(tenant="acme"),
                             lambda: other.add_webhook(None, receiver.url("x"), ["*"], tenant="acme"),
                             lambda: other.test_webhook(None, endpoint_id, tenant="acme"),
                             lambda: other.remove_webhook(None, endpoint_id, tenant="acme")):
                    with pytest.raises(ApiError) as err:
                        call()
                    assert err.value.status == 404 and "no tenant 'acme'" in err.value.detail, who
        with ComputeNetClient(srv.url, tokens["tom"]) as tom:  # beta's admin: beta's endpoints only
            assert tom.webhooks(tenant="beta") == []
            with pytest.raises(ApiError) as err:
                tom.remove_webhook(None, endpoint_id, tenant="beta")
            assert err.value.status == 404 and "tenant beta has no webhook endpoint" in err.value.detail
        with ComputeNetClient(srv.url, tokens["tia"]) as tia:
            with pytest.raises(ApiError) as err:
                tia.add_webhook(None, "ftp://example.com/x", ["*"], tenant="acme")
            assert err.value.status == 400 and "http(s)" in err.value.detail

        assert cnet("webhooks", "remove", str(endpoint_id), "-T", "acme").exit_code == 0
        assert receiver.url("t") not in cnet("webhooks", "list", "-T", "acme").output
    with platform.db.session() as session:
        audit = {(e.action, e.target) for e in session.scalars(select(AuditEvent))}
    assert {("webhook.add", "tenant:acme"), ("webhook.remove", "tenant:acme")} <= audit

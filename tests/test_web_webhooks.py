"""The project page's webhook endpoints: a PI adds one (its secret shown once), sees its deliveries
and removes it, by the same service and role rule as the API; a plain member sees no such section
and is refused; bad input is a 400 naming it; both languages in a real browser."""

from __future__ import annotations

from sqlalchemy import select

from computenet.config import NotificationsConfig
from computenet.services.tenancy import accounts
from computenet.services.integration import notifications
from computenet.services.integration.webhook_sender import WebhookDispatcher
from computenet.store.webhook_models import WebhookEndpoint

from test_web_admin import GOOD, browser, csrf, org  # noqa: F401 (org is a fixture)
from test_webhooks import receiver  # noqa: F401 (a fixture)


def test_a_pi_adds_sees_and_removes_an_endpoint_a_member_cannot(org, receiver):
    org.settings.notifications = NotificationsConfig(webhook_allow_private=True)  # the receiver is on loopback
    pi = browser(org, "pi")
    page = pi.post("/portal/projects/md/webhooks", data={"url": receiver.url("portal"),
                                                        "event_types": "account.*, job.*", "description": "ops",
                                                        "csrf_token": csrf(pi)})
    assert page.status_code == 200 and 'id="webhook-secret"' in page.text
    with org.db.session() as session:
        (endpoint,) = session.scalars(select(WebhookEndpoint))
        assert endpoint.event_types == ["account.*", "job.*"] and endpoint.secret in page.text
        md, mem = accounts.get_account(session, "md"), accounts.get_user(session, "mem")
        notifications.notify_user(session, mem, md, "job_lost", "job 1 was lost", "job_lost:1:x")
    assert len(WebhookDispatcher(org).run_once().sent) == 1
    shown = pi.get("/portal/projects/md").text
    assert "Webhook endpoints" in shown and receiver.url("portal") in shown and "account.notice" in shown
    assert endpoint.secret not in shown  # shown once only

    bad = pi.post("/portal/projects/md/webhooks", data={"url": receiver.url("x"), "event_types": "jobs.*",
                                                       "csrf_token": csrf(pi)})
    assert bad.status_code == 400 and "unknown event type" in bad.text

    mem = browser(org, "mem")  # a plain member: no section, and refused
    assert "Webhook endpoints" not in mem.get("/portal/projects/md").text
    refused = mem.post(f"/portal/projects/md/webhooks/{endpoint.id}/remove", data={"csrf_token": csrf(mem)})
    assert refused.status_code == 403
    other = browser(org, "other")  # another tenant's PI: as if there were no such project
    assert other.post(f"/portal/projects/md/webhooks/{endpoint.id}/remove",
                      data={"csrf_token": csrf(other)}).status_code == 404

    gone = pi.post(f"/portal/projects/md/webhooks/{endpoint.id}/remove", data={"csrf_token": csrf(pi)})
    assert gone.status_code == 303
    with org.db.session() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


def test_the_webhooks_section_in_a_browser_in_both_languages(org, chromium):
    from browser import axe, new_page, shot, sign_in

    from computenet.cli.embedded import EmbeddedServer

    with org.db.session() as session:
        md = accounts.get_account(session, "md")
        org.settings.notifications = NotificationsConfig(webhook_allow_private=True)
        from computenet.services.integration import webhooks

        webhooks.add_endpoint(session, md, "http://127.0.0.1:9/hook", ["job.*", "balance.low"],
                              org.settings.notifications, "pi", "our CI")
    with EmbeddedServer(org, run_services=False) as server:
        for language, heading in (("en", "Webhook endpoints"), ("zh-CN", "Webhook 端点")):
            with org.db.session() as session:
                accounts.get_user(session, "pi").language = language
            page = new_page(chromium, server.url, locale="zh-CN" if language == "zh-CN" else "en-US")
            sign_in(page, "pi", GOOD)
            page.goto("/portal/projects/md")
            section = page.locator("section[aria-labelledby=webhooks-h]")
            assert heading in section.inner_text() and "job.*, balance.low" in section.inner_text()
            shot(page, f"project-webhooks-{language}")
            assert axe(page) == []
            page.context.close()

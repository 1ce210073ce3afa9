"""The portal's frame (issue 15): sign-in by form, the dashboard, the profile, languages, and what
guards every page (security headers, CSRF on forms, escaping, redirects only on this site)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from computenet.api.app import create_app
from computenet.services.tenancy import accounts, users
from computenet.services import audit
from computenet.services.signin import passwords

GOOD = "Correct-Horse-7"


@pytest.fixture
def portal(platform):
    with platform.db.session() as session:
        user = accounts.create_user(session, "li")
        user.display_name = "<script>alert(1)</script>李"
        account = accounts.create_account(session, "md-lab", owner=user)
        accounts.top_up(session, account, "100.00", key="portal")
        passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
    return TestClient(create_app(platform), follow_redirects=False)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _sign_in(client, password=GOOD, next_path="/"):
    return client.post("/login", data={"login": "li", "password": password, "next": next_path})


def test_pages_need_a_sign_in_and_come_back_after_it(portal):
    answer = portal.get("/portal/profile")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Fportal%2Fprofile"
    signed = _sign_in(portal, next_path="/portal/profile")
    assert signed.status_code == 303 and signed.headers["location"] == "/portal/profile"
    assert "HttpOnly" in signed.headers["set-cookie"]
    assert portal.get("/portal/profile").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_after_sign_in_only_a_path_on_this_site_is_followed(portal, target):
    assert _sign_in(portal, next_path=target).headers["location"] == "/"


def test_a_wrong_password_is_said_in_the_page_language_and_recorded(portal):
    answer = portal.post("/login", data={"login": "li", "password": "nope", "next": "/"},
                         headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert answer.status_code == 401 and "用户不存在或密码错误。" in answer.text
    assert portal.get("/login", headers={"Accept-Language": "en"}).text.count("Sign in") >= 2


def test_every_page_carries_the_security_headers(portal):
    for url in ("/login", "/password/reset?token=x"):
        headers = portal.get(url).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "same-origin"
    _sign_in(portal)
    page = portal.get("/").text
    assert "<script>" not in page.split("</head>")[1]  # no inline script: the CSP would refuse it


def test_user_text_is_escaped_not_rendered_as_markup(portal):
    _sign_in(portal)
    page = portal.get("/").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;李" in page


def test_forms_without_the_csrf_token_change_nothing(portal, platform):
    _sign_in(portal)
    refused = portal.post("/portal/profile", data={"display_name": "Mallory", "email": ""})
    assert refused.status_code == 403
    forged = portal.post("/portal/profile", data={"display_name": "Mallory", "email": "", "csrf_token": "x" * 43})
    assert forged.status_code == 403
    with platform.db.session() as session:
        assert accounts.get_user(session, "li").display_name != "Mallory"
    token = _csrf(portal.get("/portal/profile").text)
    saved = portal.post("/portal/profile", data={"display_name": "Li Wei", "email": "li@uni.example",
                                                 "csrf_token": token})
    assert saved.status_code == 303
    with platform.db.session() as session:
        assert accounts.get_user(session, "li").display_name == "Li Wei"


def test_the_language_switch_is_kept_in_the_profile(portal, platform):
    _sign_in(portal)
    token = _csrf(portal.get("/").text)
    assert portal.post("/lang", data={"language": "zh-CN", "next": "/", "csrf_token": token}).status_code == 303
    with platform.db.session() as session:
        assert accounts.get_user(session, "li").language == "zh-CN"
    page = portal.get("/", headers={"Accept-Language": "en"}).text  # the profile wins over the browser
    assert '<html lang="zh-CN">' in page and "余额" in page and "¥100.00" in page


def test_a_personal_token_is_made_in_the_profile_and_shown_once(portal, platform):
    _sign_in(portal)
    token = _csrf(portal.get("/portal/profile").text)
    made = portal.post("/portal/profile/tokens", data={"name": "laptop", "scope": "read", "days": "30",
                                                       "csrf_token": token})
    secret = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)
    assert portal.get("/accounts/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in portal.get("/portal/profile").text


def test_sign_out_ends_the_session(portal):
    _sign_in(portal)
    token = _csrf(portal.get("/").text)
    assert portal.post("/logout", data={"csrf_token": token}).headers["location"] == "/login"
    assert portal.get("/").status_code == 303


def test_an_operator_set_password_is_changed_in_the_portal_before_use(portal, platform):
    with platform.db.session() as session:
        passwords.set_password(session, audit.SYSTEM, accounts.get_user(session, "li"), "Temp-Pass-1234",
                               platform.settings.auth, must_change=True)
    refused = _sign_in(portal, password="Temp-Pass-1234")
    assert refused.status_code == 403 and "/password/change?login=li" in refused.text
    changed = portal.post("/password/change", data={"login": "li", "current_password": "Temp-Pass-1234",
                                                    "new_password": "Battery-Staple-8"})
    assert changed.status_code == 200
    assert _sign_in(portal, password="Battery-Staple-8").status_code == 303


def test_the_api_page_serves_its_assets_itself(portal):
    page = portal.get("/docs").text
    assert "/static/vendor/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert portal.get("/static/vendor/swagger-ui-bundle.js").status_code == 200
    assert portal.get("/static/vendor/htmx.min.js").status_code == 200


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}])
def test_a_sign_in_form_sent_from_another_site_is_refused(portal, headers):
    """Login CSRF: another site may not sign a visitor in to an account of its choosing."""
    answer = portal.post("/login", data={"login": "li", "password": GOOD, "next": "/"}, headers=headers)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    same = portal.post("/login", data={"login": "li", "password": GOOD, "next": "/"},
                       headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303 and "cnet_session=" in same.headers["set-cookie"]

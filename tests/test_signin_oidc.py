"""OIDC sign-in against a real provider (oidc-provider-mock, an Authlib-based Flask app on loopback).

A browser is played by an httpx client that follows the real redirects: to the platform's start URL,
to the provider's authorize page, whose form it submits as a person picking a user would, and back to
the platform's callback. ID-token checks are tested directly on validate_id_token, each bad token
differing from a good one in one respect.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import pytest
import werkzeug.serving
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from sqlalchemy import select

from computenet.cli.embedded import EmbeddedServer
from computenet.config import AuthConfig, GroupMapping, OidcConfig
from computenet.services.tenancy import tenants
from computenet.services.signin import oidc
from computenet.services.signin.identity import SignInRefused
from computenet.store.auth_models import OidcLogin, SignInAttempt, WebSession
from computenet.store.models import User
from computenet.store.types import utcnow

CLIENT_ID = "computenet"
MAPPINGS = [GroupMapping(group="physics", tenant="phys"),
            GroupMapping(group="physics-admins", tenant="phys", roles=["tenant_admin"])]


@pytest.fixture(scope="session")
def provider() -> str:
    """The provider's issuer URL; it accepts any client id and secret and any redirect URI."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its access log is noise here
    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True),
                                          threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="oidc-provider",
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def person(provider: str, sub: str, **claims) -> None:
    """Who the provider says ``sub`` is."""
    answer = httpx.put(f"{provider}/users/{sub}", json=claims, timeout=10)
    assert answer.status_code == 204, answer.text


def campus(issuer: str, **extra) -> OidcConfig:
    return OidcConfig(name="campus", title="Campus SSO", issuer=issuer, client_id=CLIENT_ID, client_secret="s3cret",
                      groups=MAPPINGS, **extra)


@pytest.fixture
def site(make_platform, provider):
    """A platform with the provider configured as "campus", served over HTTP, and a browser."""
    def build(**extra):
        oidc.clear_cache()
        platform = make_platform(auth=AuthConfig(oidc=[campus(provider, **extra)]))
        with platform.db.session() as session:
            tenants.create_tenant(session, "phys", "university")
        server = EmbeddedServer(platform, run_services=False).start()
        made.append(server)
        return platform, server.url, httpx.Client(timeout=10, follow_redirects=False)

    made: list[EmbeddedServer] = []
    yield build
    for server in made:
        server.stop()


def to_callback(browser: httpx.Client, base: str, sub: str, query: str = "", action: dict | None = None) -> str:
    """Start signing in at the platform and pick ``sub`` on the provider's page: the callback URL the
    provider sends the browser back to (not yet visited)."""
    start = browser.get(f"{base}/auth/oidc/campus/start{query}")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    page = browser.get(authorize)
    assert page.status_code == 200 and 'name="sub"' in page.text, page.text[:500]
    # the form has no action: a browser posts it to the page's own URL
    back = browser.post(authorize, data=action or {"sub": sub})
    assert back.status_code == 302, back.text[:500]
    callback = back.headers["location"]
    assert callback.startswith(f"{base}/auth/oidc/campus/callback?"), callback
    return callback


def attempts(platform) -> list[tuple[str, bool, str]]:
    with platform.db.session() as session:
        return [(a.login, a.ok, a.reason) for a in session.scalars(select(SignInAttempt).order_by(SignInAttempt.id))]


# -- the browser --------------------------------------------------------------

def test_the_providers_are_listed_with_where_to_start(site):
    _, base, browser = site()
    answer = browser.get(f"{base}/auth/oidc")
    assert answer.status_code == 200
    assert answer.json() == [{"name": "campus", "title": "Campus SSO",
                              "start_url": f"{base}/auth/oidc/campus/start"}]


def test_signing_in_in_a_browser_creates_the_user_with_mapped_tenant_and_roles_and_a_session(site, provider):
    platform, base, browser = site()
    person(provider, "sub-carol-1", preferred_username="Carol", name="Carol Chen", email="carol@uni.example",
           email_verified=True, groups=["physics", "physics-admins", "chess-club"])
    start = browser.get(f"{base}/auth/oidc/campus/start?next=/jobs%3Fstate%3Drunning")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [f"{base}/auth/oidc/campus/callback"]

    done = browser.get(to_callback(browser, base, "sub-carol-1", "?next=/jobs%3Fstate%3Drunning"))
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/jobs?state=running"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("cnet_session=") and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    me = browser.get(f"{base}/auth/session")  # the cookie signs the browser in
    assert me.status_code == 200 and me.json()["user"] == "carol", me.text

    with platform.db.session() as session:
        carol = session.scalar(select(User).where(User.name == "carol"))
        assert (carol.display_name, carol.email, carol.email_verified) == ("Carol Chen", "carol@uni.example", True)
        assert carol.tenant_id == tenants.get_tenant(session, "phys").id
        assert [(g.role, g.granted_by) for g in carol.grants] == [("tenant_admin", "oidc:campus")]
        assert session.scalar(select(WebSession.method).where(WebSession.user_id == carol.id)) == "oidc"
        assert session.scalar(select(OidcLogin.user_id).where(OidcLogin.used_at.is_not(None))) == carol.id
    assert attempts(platform) == [("carol", True, "")]


def test_a_single_group_string_and_a_missing_login_claim_are_understood(site, provider):
    platform, base, browser = site(login_claim="nickname")
    person(provider, "dave", groups="physics", email="dave@uni.example", email_verified="true")
    done = browser.get(to_callback(browser, base, "dave"))
    assert done.status_code == 303, done.text
    with platform.db.session() as session:
        dave = session.scalar(select(User).where(User.name == "dave"))  # the login fell back to "sub"
        assert dave.tenant_id == tenants.get_tenant(session, "phys").id and not dave.grants
        assert dave.email_verified is False  # only a JSON true counts


def test_an_unknown_provider_is_404(site):
    _, base, browser = site()
    for path in ("start", "callback?state=x&code=y"):
        answer = browser.get(f"{base}/auth/oidc/nosuch/{path}")
        assert answer.status_code == 404 and "nosuch" in answer.json()["detail"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "jobs",
                                    "/a\r\nSet-Cookie:x=y"])
def test_next_must_be_a_path_on_this_site(site, target):
    platform, base, browser = site()
    answer = browser.get(f"{base}/auth/oidc/campus/start", params={"next": target})
    assert answer.status_code == 400 and "next must be" in answer.json()["detail"], answer.text
    with platform.db.session() as session:
        assert session.scalar(select(OidcLogin)) is None  # nothing half-written


def test_a_cli_port_without_a_challenge_is_refused(site):
    _, base, browser = site()
    answer = browser.get(f"{base}/auth/oidc/campus/start?cli_port=40000")
    assert answer.status_code == 400 and "cli_challenge" in answer.json()["detail"]


def test_a_replayed_callback_is_refused(site, provider):
    platform, base, browser = site()
    person(provider, "erin", preferred_username="erin")
    callback = to_callback(browser, base, "erin")
    assert browser.get(callback).status_code == 303
    again = browser.get(callback)
    assert again.status_code == 400
    assert again.json()["detail"].startswith("this sign-in link expired or was already used")
    assert attempts(platform)[-1] == ("oidc:campus", False, "bad_state")


def test_an_unknown_state_is_refused(site):
    platform, base, browser = site()
    answer = browser.get(f"{base}/auth/oidc/campus/callback?state=forged&code=whatever")
    assert answer.status_code == 400 and "expired or was already used" in answer.json()["detail"]
    assert attempts(platform) == [("oidc:campus", False, "bad_state")]


def test_a_state_older_than_ten_minutes_is_refused(site, provider):
    platform, base, browser = site()
    person(provider, "fay", preferred_username="fay")
    callback = to_callback(browser, base, "fay")
    with platform.db.session() as session:
        session.scalar(select(OidcLogin)).created_at = utcnow() - timedelta(minutes=11)
    answer = browser.get(callback)
    assert answer.status_code == 400 and "expired" in answer.json()["detail"]
    with platform.db.session() as session:
        assert session.scalar(select(User).where(User.name == "fay")) is None


def test_a_refusal_at_the_provider_is_a_clear_400(site):
    platform, base, browser = site()
    callback = to_callback(browser, base, "", action={"action": "deny"})
    answer = browser.get(callback)
    assert answer.status_code == 400 and "access_denied" in answer.json()["detail"], answer.text
    assert attempts(platform) == [("oidc:campus", False, "provider_error")]


def test_a_provider_that_cannot_be_reached_is_503(make_platform):
    oidc.clear_cache()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    platform = make_platform(auth=AuthConfig(oidc=[campus(f"http://127.0.0.1:{closed}")]))
    with EmbeddedServer(platform, run_services=False) as server:
        answer = httpx.get(f"{server.url}/auth/oidc/campus/start", timeout=10)
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("the sign-in provider campus cannot be reached: discovery at ")


def test_no_account_is_made_when_the_provider_does_not_create_users(site, provider):
    platform, base, browser = site(create_users=False)
    person(provider, "gus", preferred_username="gus", groups=["physics"])
    answer = browser.get(to_callback(browser, base, "gus"))
    assert answer.status_code == 403 and "there is no account for 'gus'" in answer.json()["detail"]
    assert "set-cookie" not in answer.headers
    with platform.db.session() as session:
        assert session.scalar(select(User).where(User.name == "gus")) is None
        assert session.scalar(select(OidcLogin.used_at)) is not None  # the state is spent all the same
    assert attempts(platform) == [("gus", False, "no_account")]


def test_rotated_provider_keys_are_fetched_again(site, provider):
    _, base, browser = site()
    person(provider, "hal", preferred_username="hal")
    stale = KeySet([RSAKey.generate_key(2048, parameters={"kid": "retired"}, private=False)])
    uri = oidc.discovery(campus(provider))["jwks_uri"]
    oidc._cache["jwks " + uri] = oidc._Cached(stale, time.monotonic())  # what we held before the rotation
    assert browser.get(to_callback(browser, base, "hal")).status_code == 303
    assert oidc.keys(campus(provider)) is not stale


# -- `cnet login` ---------------------------------------------------------------

VERIFIER = "v" * 20 + "-cli-verifier-of-enough-length-0123456789"


def cli_code(browser, base, provider, sub: str) -> tuple[str, httpx.Response]:
    person(provider, sub, preferred_username=sub)
    query = f"?cli_port=45678&cli_challenge={oidc.s256(VERIFIER)}"
    answer = browser.get(to_callback(browser, base, sub, query))
    assert answer.status_code == 303, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0], answer


def test_a_cli_sign_in_gives_its_loopback_listener_a_code_redeemed_once_with_the_right_verifier(site, provider):
    platform, base, browser = site()
    code, answer = cli_code(browser, base, provider, "ivy")
    assert answer.headers["location"].startswith("http://127.0.0.1:45678/callback?code=")
    assert "set-cookie" not in answer.headers  # no browser session for a CLI sign-in
    with platform.db.session() as session:
        with pytest.raises(SignInRefused, match="verifier does not match"):
            oidc.redeem_cli_code(session, code, "w" * 50)
    with platform.db.session() as session:
        assert oidc.redeem_cli_code(session, code, VERIFIER).name == "ivy"
    with platform.db.session() as session:
        with pytest.raises(SignInRefused, match="unknown, expired or already used"):
            oidc.redeem_cli_code(session, code, VERIFIER)


def test_a_cli_code_is_traded_for_tokens_at_auth_token(site, provider):
    _, base, browser = site()
    code, _ = cli_code(browser, base, provider, "jon")
    tokens = httpx.post(f"{base}/auth/token", json={"grant_type": "cli_code", "code": code,
                                                     "code_verifier": VERIFIER}, timeout=10)
    assert tokens.status_code == 200, tokens.text
    who = httpx.get(f"{base}/auth/session", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert who.json()["user"] == "jon"


def test_a_cli_code_older_than_five_minutes_is_refused(site, provider):
    platform, base, browser = site()
    code, _ = cli_code(browser, base, provider, "kim")
    with platform.db.session() as session:
        session.scalar(select(OidcLogin)).used_at = utcnow() - timedelta(minutes=6)
    with platform.db.session() as session:
        with pytest.raises(SignInRefused, match="expired"):
            oidc.redeem_cli_code(session, code, VERIFIER)


def test_an_unknown_cli_code_is_refused(platform):
    with platform.db.session() as session:
        with pytest.raises(SignInRefused, match="unknown"):
            oidc.redeem_cli_code(session, "made-up", VERIFIER)


# -- the ID token, checked directly -------------------------------------------------

ISSUER = "https://sso.uni.example"
NONCE = "n-0123456789"


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture(scope="module")
def published(signing_key) -> dict:
    """The provider's JWKS: the public half of its key."""
    return {"keys": [signing_key.as_dict(private=False)]}


def token(key, header: dict | None = None, **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": NONCE} | changes
    return jwt.encode({"alg": "RS256", "kid": "k1"} | (header or {}), {k: v for k, v in claims.items()
                                                                        if v is not None}, key)


def check(value: str, jwks, nonce: str = NONCE, issuer: str = ISSUER) -> dict:
    return oidc.validate_id_token(value, jwks, issuer=issuer, client_id=CLIENT_ID, nonce=nonce)


def refused(value: str, jwks, match: str, **options) -> None:
    with pytest.raises(SignInRefused, match=match) as caught:
        check(value, jwks, **options)
    assert caught.value.reason == "bad_token"


def test_a_well_formed_token_is_accepted(signing_key, published):
    assert check(token(signing_key), published)["sub"] == "u-1"
    several = token(signing_key, aud=[CLIENT_ID, "other"], azp=CLIENT_ID)
    assert check(several, published)["azp"] == CLIENT_ID


def test_a_token_signed_with_a_key_the_provider_does_not_publish_is_refused(published):
    impostor = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    refused(token(impostor), published, "signature does not match")


def test_a_token_naming_an_unpublished_key_is_refused(signing_key, published):
    refused(token(signing_key, header={"kid": "k2"}), published, "signing key 'k2'")


def provider_id_token(provider: str, nonce: str) -> str:
    """An ID token as the provider issues it, fetched as a client would (authorize, then the token endpoint)."""
    person(provider, "tess", preferred_username="tess")
    meta = httpx.get(f"{provider}/.well-known/openid-configuration", timeout=10).json()
    back = "http://127.0.0.1:9/callback"
    picked = httpx.post(meta["authorization_endpoint"], data={"sub": "tess"}, timeout=10, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": back, "scope": "openid profile",
        "state": "s", "nonce": nonce})
    code = parse_qs(urlsplit(picked.headers["location"]).query)["code"][0]
    tokens = httpx.post(meta["token_endpoint"], auth=(CLIENT_ID, "s3cret"), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": back})
    return tokens.json()["id_token"]


def test_a_real_token_passes_and_the_same_token_tampered_with_is_refused(provider):
    jwks = httpx.get(f"{provider}/jwks", timeout=10).json()
    real = provider_id_token(provider, NONCE)
    assert check(real, jwks, issuer=provider)["sub"] == "tess"
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(f"{header}.{forged}.{signature}", jwks, "signature does not match", issuer=provider)


def test_a_token_from_another_issuer_is_refused(signing_key, published):
    refused(token(signing_key, iss="https://evil.example"), published, "issued by 'https://evil.example'")


def test_a_token_for_another_client_is_refused(signing_key, published):
    refused(token(signing_key, aud="someone-else"), published, "meant for 'someone-else'")


def test_a_token_for_several_audiences_without_us_as_authorized_party_is_refused(signing_key, published):
    refused(token(signing_key, aud=[CLIENT_ID, "other"], azp="other"), published, "authorized party")


def test_a_token_with_another_nonce_is_refused(signing_key, published):
    refused(token(signing_key, nonce="replayed"), published, "nonce")


def test_a_token_without_a_nonce_is_refused(signing_key, published):
    refused(token(signing_key, nonce=None), published, "nonce")


def test_an_expired_token_is_refused(signing_key, published):
    refused(token(signing_key, exp=int(time.time()) - 1), published, "expired")


def test_a_token_without_an_expiry_is_refused(signing_key, published):
    refused(token(signing_key, exp=None), published, "'exp' claim")


def test_a_token_issued_in_the_future_is_refused(signing_key, published):
    refused(token(signing_key, iat=int(time.time()) + 600), published, "issued in the future")


def test_an_unsigned_token_is_refused(published):
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": NONCE}
    unsigned = f"{part({'alg': 'none'})}.{part(claims)}."
    refused(unsigned, published, "signed with 'none'")


def test_a_token_signed_with_a_shared_secret_is_refused_even_when_listed(published):
    secret = OctKey.generate_key(256)
    hs256 = jwt.encode({"alg": "HS256"}, {"iss": ISSUER, "sub": "u-1", "aud": CLIENT_ID, "nonce": NONCE,
                                           "exp": int(time.time()) + 300, "iat": int(time.time())}, secret)
    with pytest.raises(SignInRefused, match="signed with 'HS256'"):
        oidc.validate_id_token(hs256, published, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE,
                               algorithms=["RS256", "HS256"])


def test_a_token_that_is_not_a_jwt_is_refused(published):
    refused("not-a-token", published, "not a signed JWT")


# -- what else the provider may answer ----------------------------------------------

def test_a_code_the_provider_does_not_know_is_refused_and_spends_the_state(site, provider):
    platform, base, browser = site()
    person(provider, "lea", preferred_username="lea")
    callback = to_callback(browser, base, "lea")
    forged = re.sub(r"code=[^&]+", "code=forged", callback)
    answer = browser.get(forged)
    assert answer.status_code == 400 and "refused the code: invalid_grant" in answer.json()["detail"], answer.text
    assert browser.get(callback).status_code == 400  # the real code comes too late: the state was spent
    assert [a[2] for a in attempts(platform)] == ["bad_code", "bad_state"]


def test_a_provider_naming_another_issuer_than_configured_is_refused(make_platform, provider):
    oidc.clear_cache()
    platform = make_platform(auth=AuthConfig(oidc=[campus(provider + "/")]))  # one character off
    with EmbeddedServer(platform, run_services=False) as server:
        answer = httpx.get(f"{server.url}/auth/oidc/campus/start", timeout=10)
    assert answer.status_code == 503 and "names its issuer" in answer.json()["detail"]


def test_claims_become_the_external_user_with_only_a_real_address_kept(provider):
    who = oidc.external_user(campus(provider), {"sub": "s-1", "preferred_username": "Mia", "name": " Mia M ",
                                                "email": "not-an-address", "email_verified": True,
                                                "groups": ["physics", 7, "chess"]})
    assert (who.provider, who.subject, who.login, who.display_name) == ("oidc:campus", "s-1", "Mia", "Mia M")
    assert who.email is None and who.groups == ("physics", "chess")


def test_no_usable_algorithm_means_no_token_is_accepted(signing_key, published):
    with pytest.raises(SignInRefused, match="no usable algorithm"):
        oidc.validate_id_token(token(signing_key), published, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE,
                               algorithms=["HS256"])


def test_behind_a_proxy_the_public_url_is_the_callback_the_provider_is_given(make_platform, provider):
    oidc.clear_cache()
    platform = make_platform(auth=AuthConfig(oidc=[campus(provider)], public_url="https://hpc.uni.example/"))
    with EmbeddedServer(platform, run_services=False) as server:
        listed = httpx.get(f"{server.url}/auth/oidc", timeout=10).json()
        start = httpx.get(f"{server.url}/auth/oidc/campus/start", timeout=10)
    assert listed[0]["start_url"] == "https://hpc.uni.example/auth/oidc/campus/start"
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["redirect_uri"] == ["https://hpc.uni.example/auth/oidc/campus/callback"]


def _cnet_login_sso(monkeypatch, tmp_path, base, provider_action):
    """`cnet login BASE --sso campus` with the browser it opens played by httpx: the result, and the file."""
    import webbrowser

    from typer.testing import CliRunner

    from computenet.cli.main import app

    def open_in_browser(url):
        def drive():
            browser = httpx.Client(timeout=10, follow_redirects=False)
            page = browser.get(url)
            authorize = page.headers["location"]
            back = browser.post(authorize, data=provider_action)
            answer = browser.get(back.headers["location"])  # the platform's callback
            browser.get(answer.headers["location"])  # on to the CLI's loopback listener
        threading.Thread(target=drive, daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", open_in_browser)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COMPUTENET_URL": "", "COMPUTENET_TOKEN": "", "COLUMNS": "300",
           "COMPUTENET_LOGIN_WAIT_S": "60"}  # the browser is quick here: a failure should not wait 5 minutes
    result = CliRunner().invoke(app, ["login", base, "--sso", "campus"], env=env)
    return result, tmp_path / "cfg" / "computenet" / "login.json"


def test_cnet_login_sso_signs_the_cli_in_through_the_browser(site, provider, monkeypatch, tmp_path):
    _, base, _ = site()
    person(provider, "sub-lin", preferred_username="lin", groups=["physics"])
    result, saved = _cnet_login_sso(monkeypatch, tmp_path, base, {"sub": "sub-lin"})
    assert result.exit_code == 0, result.output
    stored = json.loads(saved.read_text())
    assert stored["user"] == "lin" and stored["refresh_token"].startswith("cnr_")
    assert oct(saved.stat().st_mode & 0o777) == "0o600"


def test_cnet_login_sso_hears_a_refusal_at_once(site, provider, monkeypatch, tmp_path):
    _, base, _ = site(create_users=False)
    person(provider, "sub-max", preferred_username="max")
    result, saved = _cnet_login_sso(monkeypatch, tmp_path, base, {"sub": "sub-max"})
    assert result.exit_code == 1 and "there is no account for 'max'" in " ".join(result.output.split())
    assert not saved.exists()

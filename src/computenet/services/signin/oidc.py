"""Sign-in with an OpenID Connect provider: authorization code with PKCE (S256), the ID token checked here.

``begin`` stores the state, nonce and PKCE verifier of one sign-in (an OidcLogin row) and gives the
provider's authorize URL; ``finish`` takes the browser's way back (state, code), trades the code for
tokens and checks the ID token (``validate_id_token``), giving the ExternalUser the provider vouches for.
For `cnet login`, the callback then gives the CLI's loopback listener a one-time code that
``redeem_cli_code`` trades, with the CLI's own PKCE verifier, for the user.

The provider's discovery document and keys are cached per process for a few minutes; a token signed
with a key not in the cached set makes one fresh fetch (the provider rotated its keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...config import OidcConfig
from ...store.auth_models import OidcLogin
from ...store.models import User
from ...store.types import utcnow
from ...messages import msg
from ..errors import InvalidRequest
from .identity import ExternalUser, ProviderDown, SignInRefused

CACHE_S = 300.0  # discovery and keys: long enough to spare the provider, short enough to follow a rotation
STATE_MINUTES = 10  # a sign-in left at the provider's page longer than this starts again
CLI_CODE_MINUTES = 5
SKEW_S = 60  # an "iat" this far ahead of our clock is still accepted
# signed with the provider's private key only: symmetric (HS*) would need the client secret as key,
# and "none" is no signature at all
ASYMMETRIC_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
                   "Ed25519"}
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 section 4.1
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256, unpadded
MAX_NEXT = 512


@dataclass
class _Cached:
    value: object
    at: float


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(key: str, fetch, refresh: bool = False):
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and not refresh and time.monotonic() - hit.at < CACHE_S:
            return hit.value
    value = fetch()
    with _cache_lock:
        _cache[key] = _Cached(value, time.monotonic())
    return value


def _down(config: OidcConfig, why: str) -> ProviderDown:
    return ProviderDown(f"the sign-in provider {config.name} cannot be reached: {why}")


def _get_json(config: OidcConfig, url: str, what: str) -> dict:
    try:
        answer = httpx.get(url, timeout=config.timeout_s, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _down(config, f"{what} at {url}: {exc or type(exc).__name__}") from None
    if answer.status_code != 200:
        raise _down(config, f"{what} at {url} answered HTTP {answer.status_code}")
    try:
        data = answer.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _down(config, f"{what} at {url} is not a JSON object")
    return data


def discovery(config: OidcConfig) -> dict:
    """The provider's metadata (<issuer>/.well-known/openid-configuration), checked to name this issuer."""
    def fetch() -> dict:
        doc = _get_json(config, config.issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery")
        if doc.get("issuer") != config.issuer:
            raise ProviderDown(f"the sign-in provider {config.name} names its issuer {str(doc.get('issuer'))[:200]!r}, "
                               f"not the configured {config.issuer!r}: tell an operator")
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(needed), str):
                raise ProviderDown(f"the sign-in provider {config.name} publishes no {needed}: tell an operator")
        return doc
    return _cached("discovery " + config.issuer, fetch)


def keys(config: OidcConfig, refresh: bool = False) -> KeySet:
    """The provider's signing keys (its JWKS); ``refresh`` fetches them anew."""
    uri = discovery(config)["jwks_uri"]

    def fetch() -> KeySet:
        data = _get_json(config, uri, "the signing keys")
        try:
            return KeySet.import_key_set(data)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderDown(f"the sign-in provider {config.name} publishes unusable signing keys: {exc}") from None
    return _cached("jwks " + uri, fetch, refresh)


def signing_algorithms(config: OidcConfig) -> list[str]:
    """What the provider says it signs ID tokens with, of the asymmetric ones (RS256 by default, per spec)."""
    listed = discovery(config).get("id_token_signing_alg_values_supported") or ["RS256"]
    return [alg for alg in listed if isinstance(alg, str) and alg in ASYMMETRIC_ALGS]


# -- starting a sign-in -----------------------------------------------------

def safe_next_path(next_path: str) -> str:
    """Where to go after signing in: a path on this site, or InvalidRequest naming what is wrong."""
    if not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        raise InvalidRequest(msg("next must be a path on this site starting with a single '/', not %(next)r",
                                 next=next_path[:80]))
    if len(next_path) > MAX_NEXT or any(ord(c) < 0x20 or ord(c) == 0x7f for c in next_path):
        raise InvalidRequest(msg("next must be a plain path of at most %(most)s characters", most=MAX_NEXT))
    return next_path


def s256(verifier: str) -> str:
    return create_s256_code_challenge(verifier)


def begin(session: Session, config: OidcConfig, redirect_uri: str, next_path: str = "/",
          cli_port: int | None = None, cli_challenge: str | None = None) -> str:
    """Store a sign-in under way and give the provider's authorize URL to send the browser to."""
    next_path = safe_next_path(next_path)
    if (cli_port is None) != (cli_challenge is None):
        raise InvalidRequest(msg("cli_port and cli_challenge come together (`cnet login` sends both)"))
    if cli_port is not None and not 1024 <= cli_port <= 65535:
        raise InvalidRequest(msg("cli_port must be 1024-65535, not %(port)s", port=cli_port))
    if cli_challenge is not None and not CHALLENGE.match(cli_challenge):
        raise InvalidRequest(msg("cli_challenge must be the S256 PKCE challenge: 43 characters of base64url"))
    endpoint = discovery(config)["authorization_endpoint"]
    login = OidcLogin(state=secrets.token_urlsafe(32), provider=f"oidc:{config.name}",
                      nonce=secrets.token_urlsafe(32), code_verifier=secrets.token_urlsafe(64),
                      next_path=next_path, cli_port=cli_port, cli_challenge=cli_challenge)
    session.add(login)
    session.flush()
    return add_params_to_uri(endpoint, [
        ("response_type", "code"), ("client_id", config.client_id), ("redirect_uri", redirect_uri),
        ("scope", " ".join(config.scopes)), ("state", login.state), ("nonce", login.nonce),
        ("code_challenge", s256(login.code_verifier)), ("code_challenge_method", "S256")])


# -- the way back -------------------------------------------------------------

def pending(session: Session, config: OidcConfig, state: str) -> OidcLogin:
    """The unused sign-in of this provider that ``state`` names, started less than STATE_MINUTES ago."""
    login = session.scalar(select(OidcLogin).where(OidcLogin.state == state,
                                                   OidcLogin.provider == f"oidc:{config.name}"))
    if login is None or login.used_at is not None or \
            login.created_at < utcnow() - timedelta(minutes=STATE_MINUTES):
        raise SignInRefused(msg("this sign-in link expired or was already used: start signing in again"), "bad_state")
    return login


def spend(session: Session, config: OidcConfig, state: str) -> None:
    """Mark the sign-in ``state`` names as used (after a failed way back too: one try per state)."""
    session.execute(update(OidcLogin).where(OidcLogin.state == state, OidcLogin.provider == f"oidc:{config.name}",
                                            OidcLogin.used_at.is_(None)).values(used_at=utcnow()))


def _exchange(config: OidcConfig, redirect_uri: str, code: str, verifier: str) -> dict:
    endpoint = discovery(config)["token_endpoint"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": config.client_id}
    # RFC 6749 section 2.3.1: the id and secret are form-encoded before they are joined
    auth = httpx.BasicAuth(quote(config.client_id, safe=""), quote(config.client_secret, safe="")) \
        if config.client_secret else None
    try:
        answer = httpx.post(endpoint, data=form, auth=auth, timeout=config.timeout_s,
                            headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _down(config, f"the token endpoint {endpoint}: {exc or type(exc).__name__}") from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _down(config, f"the token endpoint {endpoint} answered HTTP {answer.status_code} without JSON")
    if answer.status_code != 200 or "error" in body:
        error = str(body.get("error", f"HTTP {answer.status_code}"))[:100]
        detail = str(body.get("error_description", ""))[:200]
        said = dict(provider=config.name, error=error, detail=detail)
        raise SignInRefused(msg("the sign-in provider %(provider)s refused the code: %(error)s (%(detail)s)", **said)
                            if detail else msg("the sign-in provider %(provider)s refused the code: %(error)s",
                                               **said), "bad_code")
    if not isinstance(body.get("id_token"), str):
        raise SignInRefused(msg("the sign-in provider %(provider)s gave no ID token (is 'openid' in its scopes?)",
                                provider=config.name), "bad_token")
    return body


def finish(session: Session, config: OidcConfig, redirect_uri: str, state: str, code: str
           ) -> tuple[ExternalUser, OidcLogin]:
    """Check the way back from the provider and the ID token; the sign-in's row is marked used."""
    login = pending(session, config, state)
    # spent before anything else, and only by one of two racing requests with the same state
    if session.execute(update(OidcLogin).where(OidcLogin.id == login.id, OidcLogin.used_at.is_(None))
                       .values(used_at=utcnow())).rowcount != 1:
        raise SignInRefused(msg("this sign-in link expired or was already used: start signing in again"), "bad_state")
    tokens = _exchange(config, redirect_uri, code, login.code_verifier)
    options = dict(issuer=config.issuer, client_id=config.client_id, nonce=login.nonce,
                   algorithms=signing_algorithms(config))
    try:
        claims = validate_id_token(tokens["id_token"], keys(config), **options)
    except KeyMismatch:  # the provider may have rotated its keys since we fetched them: once more, fresh
        claims = validate_id_token(tokens["id_token"], keys(config, refresh=True), **options)
    return external_user(config, claims), login


def external_user(config: OidcConfig, claims: dict) -> ExternalUser:
    """Who the checked claims describe, as identity.provision takes them."""
    def text(name: str) -> str:
        value = claims.get(name)
        return value.strip() if isinstance(value, str) else ""

    groups = claims.get(config.groups_claim)
    if isinstance(groups, str):
        groups = [groups]
    groups = tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else ()
    email = text("email")
    email = email if "@" in email and len(email) <= 254 else None  # not an address: as if none were given
    return ExternalUser(provider=f"oidc:{config.name}", subject=claims["sub"],
                        login=text(config.login_claim) or claims["sub"], display_name=text("name"),
                        email=email, email_verified=claims.get("email_verified") is True, groups=groups)


# -- the ID token -----------------------------------------------------------

class KeyMismatch(SignInRefused):
    """No key of the set verifies the token: it names one the set lacks, or (without a key id) the one
    key there does not fit. After a key rotation both happen until the keys are fetched again."""


def _bad(what: str) -> SignInRefused:
    return SignInRefused(f"the ID token from the sign-in provider is not valid: {what}", "bad_token")


def validate_id_token(token: str, jwks: KeySet | dict, *, issuer: str, client_id: str, nonce: str,
                      now: float | None = None, algorithms: list[str] | None = None) -> dict:
    """The claims of an ID token whose signature, issuer, audience, times and nonce are right.

    ``jwks``: the provider's keys (a KeySet or its JSON); ``algorithms``: what it signs with (RS256 when
    not given); anything not asymmetric ("none", HS256) is refused whatever the list says.
    """
    now = time.time() if now is None else now
    key_set = jwks if isinstance(jwks, KeySet) else KeySet.import_key_set(jwks)
    allowed = [alg for alg in (["RS256"] if algorithms is None else algorithms) if alg in ASYMMETRIC_ALGS]
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise _bad("it is not a signed JWT") from None
    alg = header.get("alg")
    if alg not in allowed:
        raise _bad(f"it is signed with {str(alg)[:20]!r}, not one of {', '.join(allowed) or 'no usable algorithm'}")
    kid = header.get("kid")
    try:
        key = key_set.get_by_kid(kid if isinstance(kid, str) else None)
    except (JoseError, ValueError):
        raise KeyMismatch(f"the ID token from the sign-in provider is not valid: it names the signing key "
                         f"{str(kid)[:64]!r}, which the provider does not publish", "bad_token") from None
    try:
        claims = jwt.decode(token, key, algorithms=[alg]).claims
    except BadSignatureError:
        raise KeyMismatch("the ID token from the sign-in provider is not valid: its signature does not match "
                          "the provider's key", "bad_token") from None
    except (JoseError, ValueError, TypeError):
        raise _bad("it cannot be read as a signed JWT") from None
    _check_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce, now=now)
    return claims


def _number(claims: dict, name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"its {name!r} claim is missing or not a number")
    return value


def _check_claims(claims: dict, *, issuer: str, client_id: str, nonce: str, now: float) -> None:
    if claims.get("iss") != issuer:
        raise _bad(f"it was issued by {str(claims.get('iss'))[:200]!r}, not {issuer!r}")
    audience = claims.get("aud")
    audience = [audience] if isinstance(audience, str) else audience
    if not isinstance(audience, list) or client_id not in audience:
        raise _bad(f"it is meant for {str(claims.get('aud'))[:200]!r}, not this platform ({client_id!r})")
    if len(audience) > 1 and claims.get("azp") != client_id:
        raise _bad(f"it names several audiences and its authorized party (azp) is "
                   f"{str(claims.get('azp'))[:100]!r}, not {client_id!r}")
    if _number(claims, "exp") <= now:
        raise _bad("it has expired")
    if _number(claims, "iat") > now + SKEW_S:
        raise _bad("it was issued in the future (are the clocks right?)")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise _bad("its nonce is not the one this sign-in sent (a replayed token?)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"] or len(claims["sub"]) > 255:
        raise _bad("its subject (sub) is missing or not a short string")


# -- `cnet login` -----------------------------------------------------------

def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_cli_code(login: OidcLogin, user: User) -> str:
    """The one-time code for the CLI's loopback listener; only its hash is kept."""
    code = secrets.token_urlsafe(32)
    login.cli_code_hash = _hash(code)
    login.user_id = user.id
    return code


def redeem_cli_code(session: Session, code: str, code_verifier: str) -> User:
    """The user a CLI sign-in vouched for, once: the code unused and fresh, the CLI's PKCE verifier right.

    The code's time is the sign-in's used_at (when the provider's answer came back and the code was made);
    redeeming clears its hash, so a second try finds nothing.
    """
    refused = SignInRefused(msg("this sign-in code is unknown, expired or already used: run `cnet login` again"),
                            "bad_code")
    login = session.scalar(select(OidcLogin).where(OidcLogin.cli_code_hash == _hash(code)))
    if login is None or login.user_id is None or login.cli_challenge is None or login.used_at is None:
        raise refused
    if login.used_at < utcnow() - timedelta(minutes=CLI_CODE_MINUTES):
        raise refused
    if not VERIFIER.match(code_verifier) or not hmac.compare_digest(s256(code_verifier), login.cli_challenge):
        raise SignInRefused(msg("the code verifier does not match the challenge this sign-in started with"),
                            "bad_verifier")
    user = session.get(User, login.user_id)
    if user is None or user.status != "active":
        raise SignInRefused(msg("the account is %(status)s", status=user.status if user else "gone"),
                            user.status if user else "gone")
    # cleared only by the one of two racing redemptions that still finds it
    if session.execute(update(OidcLogin).where(OidcLogin.id == login.id, OidcLogin.cli_code_hash == _hash(code))
                       .values(cli_code_hash=None)).rowcount != 1:
        raise refused
    return user

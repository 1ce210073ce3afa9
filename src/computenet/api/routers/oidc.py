"""/auth/oidc: signing in with an OpenID Connect provider (auth.oidc), in a browser or for `cnet login`.

The browser goes to /auth/oidc/<name>/start, on to the provider, and back to .../callback: a browser
gets a session cookie and is sent on to where it started; `cnet login` (cli_port and cli_challenge
given at the start) gets a one-time code at its loopback listener, traded at POST /auth/token.

A refused sign-in is recorded (and its state spent) in a unit of work of its own, after the one that
failed was rolled back: nothing half-written stays, the record does.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...config import AuthConfig, OidcConfig
from ...services.errors import NotFound, ServiceError, Unavailable
from ...services.platform import Platform
from ...services.signin import attempts, oidc, web_sessions
from ...services.signin.identity import ProviderDown, SignInRefused, provision
from ...store.models import OidcLogin
from ..deps import client_address, get_platform
from ..responses import errors

router = APIRouter(tags=["sign-in"], responses=errors(400, 403, 404, 422, 503))
ProviderName = Path(max_length=64, description="the provider's name in auth.oidc")
# refusals that are about the link or the provider's answer, not about the person
BAD_REQUEST = {"bad_state", "bad_code", "provider_error"}


def _provider(platform: Platform, name: str) -> OidcConfig:
    for config in platform.settings.auth.oidc:
        if config.name == name:
            return config
    raise NotFound(f"no sign-in provider named {name[:64]!r} here")


def _url(request: Request, policy: AuthConfig, route: str, name: str) -> str:
    """On auth.public_url when set (behind a proxy the request's own address may not be the one people
    use), else on the address this request came to."""
    if policy.public_url:
        return policy.public_url.rstrip("/") + request.app.url_path_for(route, name=name)
    return str(request.url_for(route, name=name))


def redirect_uri(request: Request, config: OidcConfig, policy: AuthConfig) -> str:
    """The callback URL, which the provider must have registered for this platform."""
    return _url(request, policy, "oidc_callback", config.name)


@router.get("/auth/oidc")
def providers(request: Request, platform: Platform = Depends(get_platform)):
    """The OIDC providers people can sign in with here, each with the URL that starts a sign-in."""
    policy = platform.settings.auth
    return [{"name": p.name, "title": p.title or p.name, "start_url": _url(request, policy, "oidc_start", p.name)}
            for p in policy.oidc]


@router.get("/auth/oidc/{name}/start", name="oidc_start", status_code=302, response_class=RedirectResponse,
            responses={302: {"description": "to the provider's sign-in page"}})
def start(request: Request, name: str = ProviderName,
          next_path: str = Query("/", alias="next", max_length=oidc.MAX_NEXT,
                                 description="where to go after signing in: a path on this site"),
          cli_port: int | None = Query(None, ge=1024, le=65535, description="`cnet login`: its loopback port"),
          cli_challenge: str | None = Query(None, min_length=43, max_length=43, pattern=oidc.CHALLENGE.pattern,
                                            description="`cnet login`: its PKCE challenge (S256)"),
          platform: Platform = Depends(get_platform)):
    """Start signing in: off to the provider, which sends the browser back to .../callback."""
    config = _provider(platform, name)
    try:
        with platform.db.session() as session:
            url = oidc.begin(session, config, redirect_uri(request, config, platform.settings.auth), next_path,
                             cli_port, cli_challenge)
    except ProviderDown as exc:
        raise Unavailable(str(exc)) from None
    return RedirectResponse(url, status_code=302)


@router.get("/auth/oidc/{name}/callback", name="oidc_callback", status_code=303, response_class=RedirectResponse,
            responses={303: {"description": "signed in: to where the sign-in started (with a session cookie), "
                                            "or for `cnet login` to its loopback listener with a one-time code"}})
def callback(request: Request, name: str = ProviderName,
             state: str | None = Query(None, max_length=128), code: str | None = Query(None, max_length=2048),
             error: str | None = Query(None, max_length=200),
             error_description: str | None = Query(None, max_length=500),
             platform: Platform = Depends(get_platform)):
    """Where the provider sends the browser back: the sign-in is checked and completed."""
    config = _provider(platform, name)
    policy, client = platform.settings.auth, client_address(request)
    who = None
    try:
        with platform.db.session() as session:
            if error:
                raise SignInRefused(f"the sign-in provider {config.name} did not sign you in: {error}"
                                    + (f" ({error_description})" if error_description else ""), "provider_error")
            if not state or not code:
                raise SignInRefused("the provider's answer lacks its state or code: start signing in again",
                                    "bad_state")
            who, login = oidc.finish(session, config, redirect_uri(request, config, policy), state, code)
            user = provision(session, who, config.groups, create_users=config.create_users,
                             default_tenant=config.default_tenant, client=client)
            attempts.record(session, user.name, client, "oidc", True)
            if login.cli_port is not None:
                one_time = oidc.issue_cli_code(login, user)
                return RedirectResponse(f"http://127.0.0.1:{login.cli_port}/callback?{urlencode({'code': one_time})}",
                                        status_code=303)
            login.user_id = user.id
            _, secret = web_sessions.start(session, user, "oidc", client, request.headers.get("user-agent", ""),
                                           policy)
            response = RedirectResponse(login.next_path, status_code=303)
            web_sessions.set_cookie(response, request, secret, policy)
            return response  # the unit of work commits as the block ends, before the answer goes
    except (SignInRefused, ProviderDown, ServiceError) as exc:
        refused = exc
    cli_port = None
    with platform.db.session() as session:
        if state:
            oidc.spend(session, config, state)
            cli_port = session.scalar(select(OidcLogin.cli_port).where(OidcLogin.state == state,
                                                                       OidcLogin.provider == f"oidc:{config.name}"))
        reason = "provider_down" if isinstance(refused, ProviderDown) else getattr(refused, "reason", "invalid")
        attempts.record(session, who.login if who else f"oidc:{config.name}", client, "oidc", False, reason)
    if cli_port is not None:  # `cnet login` waits at its listener: tell it, rather than let it time out
        return RedirectResponse(f"http://127.0.0.1:{cli_port}/callback?{urlencode({'error': str(refused)[:500]})}",
                                status_code=303)
    if isinstance(refused, ServiceError):  # a service's own refusal, answered as the app answers those
        raise refused
    if isinstance(refused, ProviderDown):
        raise HTTPException(503, str(refused))
    raise HTTPException(400 if refused.reason in BAD_REQUEST else 403, str(refused))

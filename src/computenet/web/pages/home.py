"""Signing in and out, the language switch, the dashboard, the profile (e-mail, language, API tokens,
signed-in browsers), and the pages behind the links that are mailed (password reset, e-mail check).

Every rule is the services': sign-in is services/signin/login.py (lockout included), sessions are
services/signin/web_sessions.py, tokens services/tenancy/tokens.py, profile changes services/tenancy/users.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from ...billing import funds
from ...services import audit
from ...services.integration import notifications
from ...services.tenancy import tokens, users
from ...services.files import workspaces
from ...services.tenancy.accounts import accounts_of
from ...services.errors import ServiceError
from ...services.jobs.job_actions import list_jobs
from ...services.platform import Platform
from ...services.signin import login_tokens, passwords, web_sessions
from ...services.signin.identity import ProviderDown, SignInRefused
from ...services.signin.login import change_password, with_password
from ...store.models import User
from .. import i18n
from ..i18n import N_
from ..render import page
from ..viewer import LANGUAGE_COOKIE, check_csrf, check_same_site, safe_next, viewer

router = APIRouter(include_in_schema=False)

# what a refused sign-in says, by the service's reason (the service's own words for the rest)
REFUSALS = {
    "bad_password": N_("Unknown user or wrong password."),
    "locked": N_("Too many failed sign-ins: wait a few minutes, or ask an operator to unlock the account."),
    "suspended": N_("This account is suspended. Ask your centre's support."),
    "deleted": N_("This account was closed."),
    "must_change": N_("Your password was set by an operator: choose your own first."),
    "no_account": N_("There is no account for you here yet. Ask your centre's support."),
    "name_taken": N_("That login name belongs to another account here. Ask your centre's support."),
}


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _who(request: Request, name: str) -> audit.Who:
    return audit.Who(name, f"portal {request.client.host if request.client else 'unknown'}")


@router.get("/login")
def login_page(request: Request, next: str = "/"):
    who = viewer(request, required=False)
    if who.user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, who, "login.html", next=safe_next(next), methods=_platform(request).settings.auth)


@router.post("/login")
def login(request: Request, login: str = Form("", max_length=255), password: str = Form("", max_length=256),
          next: str = Form("/", max_length=512)):
    """The sign-in form: the same check, lockout and record as POST /auth/login."""
    check_same_site(request)
    platform, who = _platform(request), viewer(request, required=False)
    client = request.client.host if request.client else ""
    refused = error = None
    with platform.db.session() as session:
        try:
            signed_in = with_password(session, platform.settings.auth, login, password, client)
            if signed_in.must_change_password:
                raise SignInRefused("must change", "must_change")
            row, secret = web_sessions.start(session, signed_in.user, signed_in.method, client,
                                             request.headers.get("user-agent", ""), platform.settings.auth)
        except SignInRefused as exc:
            refused = exc
        except ProviderDown:
            error = who.gettext("The centre's directory cannot be reached. Try again later; people with a local "
                                "password can still sign in.")
    if refused is not None or error is not None:
        if refused is not None:
            error = who.gettext(REFUSALS[refused.reason]) if refused.reason in REFUSALS else who.say(refused)
        return page(request, who, "login.html", status=401 if refused and refused.reason == "bad_password" else 403,
                    next=safe_next(next), methods=platform.settings.auth, error=error, login=login,
                    must_change=refused is not None and refused.reason == "must_change")
    response = RedirectResponse(safe_next(next), status_code=303)
    web_sessions.set_cookie(response, request, secret, platform.settings.auth)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    platform = _platform(request)
    with platform.db.session() as session:
        web_sessions.revoke(session, who.user, who.session_id)
    response = RedirectResponse("/login", status_code=303)
    web_sessions.clear_cookie(response, request, platform.settings.auth)
    return response


@router.post("/lang")
def language(request: Request, language: str = Form(..., max_length=8), next: str = Form("/", max_length=512),
             csrf_token: str = Form("", max_length=100)):
    """Switch the language: kept in a cookie, and in the profile when signed in."""
    if language not in i18n.LANGUAGES:
        language = i18n.DEFAULT
    who = viewer(request, required=False)
    if who.user is not None:
        check_csrf(who, csrf_token)
        with _platform(request).db.session() as session:
            users.update(session, None, _who(request, who.user.name), session.get(User, who.user.id), language=language)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.get("/")
def dashboard(request: Request):
    who = viewer(request)
    platform = _platform(request)
    with platform.db.session() as session:
        user = session.get(User, who.user.id)
        active = list_jobs(session, user, active_only=True, limit=20)
        recent = list_jobs(session, user, limit=10)
        money = [(account, funds.funds(session, account), funds.entries(session, account, 5))
                 for account in accounts_of(session, user)]
        notices = notifications.for_user(session, user, unread_only=False, limit=5)
        quota = workspaces.quota_report(session, platform, user)
        return page(request, who, "dashboard.html", active=active, recent=recent, money=money, notices=notices,
                    quota=quota)


@router.get("/portal/profile")
def profile(request: Request):
    return _profile_with(request, viewer(request))


def _profile_with(request: Request, who, status: int = 200, **extra):
    with _platform(request).db.session() as session:
        user = session.get(User, who.user.id)
        return page(request, who, "profile.html", status=status, me=users.to_json(session, user),
                    tokens=[tokens.to_json(t) for t in tokens.listing(session, user)],
                    sessions=[web_sessions.to_json(s, who.session_id) for s in web_sessions.listing(session, user)],
                    has_password=passwords.has_password(session, user), **({"new_token": None} | extra))


@router.post("/portal/profile")
def update_profile(request: Request, display_name: str = Form("", max_length=128), email: str = Form("", max_length=255),
                   csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with _platform(request).db.session() as session:
            users.update(session, None, _who(request, who.user.name), session.get(User, who.user.id),
                         display_name=display_name, email=email)
    except ServiceError as exc:
        return _profile_with(request, who, 400, error=who.say(exc))
    return RedirectResponse("/portal/profile", status_code=303)


@router.post("/portal/profile/tokens")
def create_token(request: Request, name: str = Form("", max_length=64), scope: str = Form("full", max_length=8),
                 days: int = Form(90, ge=1, le=100_000), csrf_token: str = Form("", max_length=100)):
    """A personal API token for scripts: shown once, on the page that follows."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    platform = _platform(request)
    try:
        with platform.db.session() as session:
            row, secret = tokens.issue(session, session.get(User, who.user.id), name, scope, days,
                                       platform.settings.auth)
            audit.record(session, _who(request, who.user.name), "token.issue", f"user:{who.user.name}",
                         token=row.id, scope=row.scope)
    except ServiceError as exc:
        return _profile_with(request, who, 400, error=who.say(exc))
    return _profile_with(request, who, new_token=secret)


@router.post("/portal/profile/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with _platform(request).db.session() as session:
            tokens.revoke(session, tokens.find(session, token_id, session.get(User, who.user.id)))
            audit.record(session, _who(request, who.user.name), "token.revoke", f"user:{who.user.name}",
                         token=token_id)
    except ServiceError as exc:
        return _profile_with(request, who, 404, error=who.say(exc))
    return RedirectResponse("/portal/profile", status_code=303)


@router.post("/portal/profile/sessions/{session_id}/revoke")
def revoke_session(request: Request, session_id: int, csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        with _platform(request).db.session() as session:
            web_sessions.revoke(session, who.user, session_id)
    except ServiceError as exc:
        return _profile_with(request, who, 404, error=who.say(exc))
    return RedirectResponse("/portal/profile" if session_id != who.session_id else "/login", status_code=303)


@router.post("/portal/profile/sessions/revoke-all")
def revoke_all(request: Request, csrf_token: str = Form("", max_length=100)):
    """Sign out everywhere: every browser and every `cnet login`."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    with _platform(request).db.session() as session:
        me = session.get(User, who.user.id)
        web_sessions.revoke_all(session, me)
        login_tokens.revoke_access_tokens(session, me)
    response = RedirectResponse("/login", status_code=303)
    web_sessions.clear_cookie(response, request, _platform(request).settings.auth)
    return response


@router.get("/password/change")
def change_page(request: Request, login: str = ""):
    return page(request, viewer(request, required=False), "password_change.html", login=login[:255])


@router.post("/password/change")
def change(request: Request, login: str = Form("", max_length=255), current_password: str = Form("", max_length=256),
           new_password: str = Form("", max_length=256)):
    """Also for a password an operator set: the current password is the proof, as for signing in."""
    check_same_site(request)
    who, platform = viewer(request, required=False), _platform(request)
    error = None
    with platform.db.session() as session:
        try:
            change_password(session, platform.settings.auth, login, current_password, new_password,
                            request.client.host if request.client else "", "portal")
        except SignInRefused as exc:
            error = who.gettext(REFUSALS[exc.reason]) if exc.reason in REFUSALS else who.say(exc)
        except (ServiceError, ProviderDown) as exc:
            error = str(exc)
    if error is not None:
        return page(request, who, "password_change.html", status=400, login=login, error=error)
    return page(request, who, "password_reset.html", done=True)


@router.get("/password/reset")
def reset_page(request: Request, token: str = ""):
    return page(request, viewer(request, required=False), "password_reset.html", token=token[:200])


@router.post("/password/reset")
def reset(request: Request, token: str = Form("", max_length=200), new_password: str = Form("", max_length=256)):
    """The mailed link's form: the token is the proof, so no session (and no CSRF token) is needed."""
    check_same_site(request)
    who, platform = viewer(request, required=False), _platform(request)
    try:
        with platform.db.session() as session:
            user = passwords.redeem_link(session, token, "reset")
            passwords.set_password(session, _who(request, user.name), user, new_password, platform.settings.auth)
            web_sessions.revoke_all(session, user)
    except ServiceError as exc:
        return page(request, who, "password_reset.html", status=400, token=token, error=who.say(exc))
    return page(request, who, "password_reset.html", done=True)


@router.get("/email/verify")
def verify_email(request: Request, token: str = ""):
    who, platform = viewer(request, required=False), _platform(request)
    try:
        with platform.db.session() as session:
            user = passwords.redeem_link(session, token[:200], "verify")
            users.update(session, None, _who(request, user.name), user, email_verified=True)
            address = user.email
    except ServiceError as exc:
        return page(request, who, "error.html", status=400, title=who.gettext("This link does not work"),
                    message=who.say(exc))
    return page(request, who, "error.html", title=who.gettext("E-mail address confirmed"),
                message=who.gettext("%(address)s is now your confirmed address.", address=address))

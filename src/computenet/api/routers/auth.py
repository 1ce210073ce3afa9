"""/auth: signing in with a password (local or the directory), browser sessions, `cnet login`'s tokens,
password changes and resets, e-mail address checks. OIDC sign-in is api/routers/oidc.py.

A refused sign-in is recorded (lockout counts it) even though the answer is an error, so these routes
open their own database units of work and raise only after the record is committed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from ...schemas import MAX_ROW_ID
from ...services import audit
from ...services.tenancy import users
from ...services.integration.delivery import send_email
from ...services.platform import Platform
from ...services.signin import attempts, login_tokens, passwords, web_sessions
from ...services.signin.identity import ProviderDown, SignInRefused
from ...services.signin.login import change_password, with_password
from ...store.auth_models import PasswordReset
from ...store.models import User
from ...store.types import utcnow
from ..deps import client_address, current_user, get_platform
from ..responses import errors

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-in"], responses=errors(400, 401, 403, 404, 409, 413, 422, 429, 503))
SessionId = Path(ge=1, le=MAX_ROW_ID)
# how a refusal's reason becomes an HTTP status: wrong credentials 401, an account that may not
# sign in 403, too many tries 429
STATUS = {"locked": 429, "suspended": 403, "deleted": 403, "must_change": 403, "name_taken": 403,
          "no_account": 403, "bad_login": 422, "no_password": 422}
LINK_EVERY = timedelta(minutes=1)  # one reset or verification mail a minute per user at most


class LoginIn(BaseModel):
    login: str = Field(max_length=255)
    password: str = Field(max_length=passwords.MAX_PASSWORD)


class TokenIn(BaseModel):
    grant_type: Literal["password", "refresh_token", "cli_code"]
    login: str | None = Field(None, max_length=255)
    password: str | None = Field(None, max_length=passwords.MAX_PASSWORD)
    refresh_token: str | None = Field(None, max_length=200)
    code: str | None = Field(None, max_length=200)
    code_verifier: str | None = Field(None, max_length=200)


class PasswordChangeIn(BaseModel):
    login: str = Field(max_length=255)
    current_password: str = Field(max_length=passwords.MAX_PASSWORD)
    new_password: str = Field(max_length=passwords.MAX_PASSWORD)


class ForgotIn(BaseModel):
    login: str = Field(max_length=255)


class ResetIn(BaseModel):
    token: str = Field(max_length=200)
    new_password: str = Field(max_length=passwords.MAX_PASSWORD)


class LinkIn(BaseModel):
    token: str = Field(max_length=200)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(None, max_length=200)


def _refuse(exc: Exception) -> HTTPException:
    if isinstance(exc, ProviderDown):
        return HTTPException(503, f"{exc} (people with a local password can still sign in)")
    status = STATUS.get(getattr(exc, "reason", ""), 401)
    return HTTPException(status, str(exc), headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def _password_sign_in(platform: Platform, login: str, password: str, client: str, then):
    """Check the credentials, then ``then(session, signed_in)`` in the same unit of work."""
    refused = None
    with platform.db.session() as session:
        try:
            signed_in = with_password(session, platform.settings.auth, login, password, client)
            if signed_in.must_change_password:
                raise SignInRefused("this password was set by an operator and must be changed first "
                                    "(POST /auth/password, or `cnet passwd`)", "must_change")
            result = then(session, signed_in)
        except (SignInRefused, ProviderDown) as exc:
            refused = exc  # the attempt's record is committed when the block ends
    if refused is not None:
        raise _refuse(refused)
    return result


@router.post("/auth/login")
def login(body: LoginIn, request: Request, response: Response, platform: Platform = Depends(get_platform)):
    """Sign in a browser: a session cookie (HttpOnly) and the CSRF token to send with every change."""
    policy = platform.settings.auth

    def start(session, signed_in):
        row, secret = web_sessions.start(session, signed_in.user, signed_in.method, client_address(request),
                                         request.headers.get("user-agent", ""), policy)
        web_sessions.set_cookie(response, request, secret, policy)
        return {"user": signed_in.user.name, "method": signed_in.method, "csrf_token": row.csrf_token,
                "session": web_sessions.to_json(row, row.id)}

    return _password_sign_in(platform, body.login, body.password, client_address(request), start)


@router.post("/auth/token")
def token(body: TokenIn, request: Request, platform: Platform = Depends(get_platform)):
    """`cnet login`: a short-lived API token and a refresh token, for a password, a refresh token
    (rotated: each works once) or the one-time code of an OIDC sign-in in the browser."""
    policy, client = platform.settings.auth, client_address(request)
    if body.grant_type == "password":
        if body.login is None or body.password is None:
            raise HTTPException(422, "grant_type password needs login and password")
        return _password_sign_in(platform, body.login, body.password, client,
                                 lambda s, signed: login_tokens.issue(s, signed.user, signed.method, client, policy))
    refused = None
    with platform.db.session() as session:
        try:
            if body.grant_type == "refresh_token":
                if not body.refresh_token:
                    raise HTTPException(422, "grant_type refresh_token needs refresh_token")
                return login_tokens.refresh(session, body.refresh_token, client, policy)
            if not body.code or not body.code_verifier:
                raise HTTPException(422, "grant_type cli_code needs code and code_verifier")
            from ...services.signin import oidc

            user = oidc.redeem_cli_code(session, body.code, body.code_verifier)
            return login_tokens.issue(session, user, "oidc", client, policy)
        except SignInRefused as exc:
            refused = exc
    raise _refuse(refused)


@router.get("/auth/session")
def current_session(request: Request, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Who is signed in; for a browser session also its CSRF token (a reloaded page needs it again)."""
    out = {"user": user.name, "display_name": user.display_name, "language": user.language}
    session_id = getattr(request.state, "session_id", None)
    if session_id is not None:
        with platform.db.session() as session:
            row = session.get(web_sessions.WebSession, session_id)
            out |= {"csrf_token": row.csrf_token, "session": web_sessions.to_json(row, row.id)}
    return out


@router.get("/auth/sessions")
def sessions(request: Request, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Your signed-in browsers; ``current`` marks this one."""
    with platform.db.session() as session:
        return [web_sessions.to_json(r, getattr(request.state, "session_id", None))
                for r in web_sessions.listing(session, user)]


@router.delete("/auth/sessions/{session_id}")
def end_session(request: Request, session_id: int = SessionId, user: User = Depends(current_user),
                platform: Platform = Depends(get_platform)):
    """Sign one of your browsers out."""
    with platform.db.session() as session:
        row = web_sessions.revoke(session, user, session_id)
        audit.record(session, _who(request, user), "session.revoke", f"user:{user.name}", session_id=row.id)
        return web_sessions.to_json(row)


@router.post("/auth/logout")
def logout(request: Request, response: Response, body: LogoutIn | None = None, user: User = Depends(current_user),
           platform: Platform = Depends(get_platform)):
    """End this browser session (and clear its cookie), or with ``refresh_token`` a `cnet login`."""
    with platform.db.session() as session:
        ended = {"session": False, "refresh": False}
        session_id = getattr(request.state, "session_id", None)
        if session_id is not None:
            web_sessions.revoke(session, user, session_id)
            ended["session"] = True
        if body is not None and body.refresh_token:
            ended["refresh"] = login_tokens.end(session, body.refresh_token)
    web_sessions.clear_cookie(response, request, platform.settings.auth)
    return ended


@router.post("/auth/logout-everywhere")
def logout_everywhere(request: Request, response: Response, user: User = Depends(current_user),
                      platform: Platform = Depends(get_platform)):
    """Sign out every browser and every `cnet login` of yours (personal API tokens stay: revoke
    those under /tokens)."""
    with platform.db.session() as session:
        me = session.get(User, user.id)
        ended = web_sessions.revoke_all(session, me) | {"login_tokens": login_tokens.revoke_access_tokens(session, me)}
        audit.record(session, _who(request, user), "session.revoke_all", f"user:{user.name}", **ended)
    web_sessions.clear_cookie(response, request, platform.settings.auth)
    return ended


@router.post("/auth/password")
def change_own_password(body: PasswordChangeIn, request: Request, platform: Platform = Depends(get_platform)):
    """Change a local password (also one an operator set, which must be changed before signing in);
    the current password is checked like a sign-in, lockout included. Other sessions are signed out."""
    refused = None
    with platform.db.session() as session:
        try:
            user = change_password(session, platform.settings.auth, body.login, body.current_password,
                                   body.new_password, client_address(request), "api")
            return {"user": user.name, "changed": True}
        except (SignInRefused, ProviderDown) as exc:
            refused = exc
    raise _refuse(refused)


def _link_url(platform: Platform, path: str, token: str) -> str:
    settings = platform.settings
    base = settings.auth.public_url or f"http://{settings.server.host}:{settings.server.port}"
    return f"{base.rstrip('/')}{path}?token={token}"


def _mail_link(platform: Platform, session, user: User, purpose: str, path: str, subject: str, text: str) -> bool:
    """Make a one-time link and mail it; False when no mail can go (no address, no SMTP, too soon)."""
    recent = session.query(PasswordReset).filter(PasswordReset.user_id == user.id, PasswordReset.purpose == purpose,
                                                 PasswordReset.created_at > utcnow() - LINK_EVERY).first()
    cfg = platform.settings.notifications
    if recent is not None or not user.email or not cfg.smtp_host:
        return False
    token = passwords.make_link(session, user, purpose, platform.settings.auth)
    minutes = platform.settings.auth.reset_link_minutes
    try:
        send_email(cfg, user.email, subject, f"{text}\n\n{_link_url(platform, path, token)}\n\n"
                   f"The link works once, for {minutes} minutes. If you did not ask for it, ignore this mail.")
    except OSError as exc:  # smtplib's errors are OSErrors; the link is useless unsent
        log.warning("mail to %s for %s failed: %s", user.email, user.name, exc)
        session.rollback()
        return False
    return True


@router.post("/auth/password/forgot", status_code=202)
def forgot_password(body: ForgotIn, request: Request, platform: Platform = Depends(get_platform)):
    """Mail a reset link to the user's address, if they have a local password and an address. The
    answer is the same whether or not they exist, so it tells nobody who has an account."""
    with platform.db.session() as session:
        user = session.query(User).filter(User.name == body.login.strip().lower()).first()
        if user is not None and user.status == "active" and passwords.has_password(session, user):
            sent = _mail_link(platform, session, user, "reset", "/password/reset", "[ComputeNet] password reset",
                              f"Someone (from {client_address(request) or 'an unknown address'}) asked to reset "
                              f"the ComputeNet password of {user.name}. To choose a new one, open:")
            if sent:
                audit.record(session, _who(request, user), "password.reset_mailed", f"user:{user.name}")
    return {"detail": "if that account has a local password and an e-mail address, a reset link is on its way"}


@router.post("/auth/password/reset")
def reset_password(body: ResetIn, request: Request, platform: Platform = Depends(get_platform)):
    """Set a new password with a mailed reset link; every session of the user is signed out."""
    with platform.db.session() as session:
        user = passwords.redeem_link(session, body.token, "reset")
        passwords.set_password(session, _who(request, user), user, body.new_password, platform.settings.auth)
        web_sessions.revoke_all(session, user)
        attempts.unlock(session, user.name)
        return {"user": user.name, "changed": True}


@router.post("/auth/email/verify", status_code=202)
def send_verification(request: Request, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    """Mail a link to your address; opening it marks the address verified (notices go only there)."""
    with platform.db.session() as session:
        me = session.get(User, user.id)
        if not me.email:
            raise HTTPException(409, "you have no e-mail address to verify: set one in your profile")
        if me.email_verified:
            return {"detail": f"{me.email} is already verified"}
        if not platform.settings.notifications.smtp_host:
            raise HTTPException(503, "this platform sends no e-mail (notifications.smtp_host is not set)")
        if not _mail_link(platform, session, me, "verify", "/email/verify", "[ComputeNet] check your e-mail address",
                          f"To confirm that {me.email} is the address of {me.name} on ComputeNet, open:"):
            raise HTTPException(429, "a link was sent less than a minute ago, or the mail server refused it: "
                                     "try again in a minute")
        return {"detail": f"a link is on its way to {me.email}"}


@router.post("/auth/email/confirm")
def confirm_email(body: LinkIn, request: Request, platform: Platform = Depends(get_platform)):
    """Mark the address the link was sent to as verified."""
    with platform.db.session() as session:
        user = passwords.redeem_link(session, body.token, "verify")
        users.update(session, None, _who(request, user), user, email_verified=True)
        return {"user": user.name, "email": user.email, "email_verified": user.email_verified}


def _who(request: Request, user: User) -> audit.Who:
    return audit.Who.api(user.name, client_address(request))


# -- operators and tenant admins: a user's password and lockout -------------------------------------

class PasswordSetIn(BaseModel):
    how: Literal["temporary", "link"] = Field("temporary", description="temporary: a password shown once, "
                                              "to be changed at first sign-in; link: a reset link mailed to them")


@router.post("/admin/users/{name}/password", tags=["users"])
def admin_password(name: str, body: PasswordSetIn, request: Request, actor: User = Depends(current_user),
                   platform: Platform = Depends(get_platform)):
    """Give a user a local password (shown once, must be changed at first sign-in) or mail them a
    reset link. Needs user_manage over them (operators; tenant admins for their tenant)."""
    with platform.db.session() as session:
        user = users.find(session, session.get(User, actor.id), name, "user_manage")
        if user.status != "active":
            raise HTTPException(409, f"user {user.name} is {user.status}")
        who = _who(request, actor)
        if body.how == "temporary":
            secret = passwords.temporary_password()
            passwords.set_password(session, who, user, secret, platform.settings.auth, must_change=True)
            web_sessions.revoke_all(session, user)
            return {"user": user.name, "temporary_password": secret, "must_change": True}
        if not user.email:
            raise HTTPException(409, f"{user.name} has no e-mail address: give a temporary password instead")
        if not _mail_link(platform, session, user, "reset", "/password/reset", "[ComputeNet] set your password",
                          f"An operator asked for you ({user.name}) to set a ComputeNet password. Open:"):
            raise HTTPException(503, "the link could not be mailed (no mail server configured, it refused, or "
                                     "one was sent less than a minute ago)")
        audit.record(session, who, "password.reset_mailed", f"user:{user.name}")
        return {"user": user.name, "mailed_to": user.email}


@router.post("/admin/users/{name}/unlock", tags=["users"])
def admin_unlock(name: str, request: Request, actor: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)):
    """End a lockout after too many failed sign-ins."""
    with platform.db.session() as session:
        user = users.find(session, session.get(User, actor.id), name, "user_manage")
        attempts.unlock(session, user.name)
        audit.record(session, _who(request, actor), "user.unlock", f"user:{user.name}")
        return {"user": user.name, "locked_until": None}


@router.get("/auth/methods")
def methods(platform: Platform = Depends(get_platform)):
    """How people sign in here (for a sign-in page and `cnet login`): no secret is shown."""
    policy = platform.settings.auth
    return {"password": True, "ldap": policy.ldap is not None,
            "oidc": [{"name": p.name, "title": p.title or p.name} for p in policy.oidc],
            "password_policy": {"min_length": policy.password_min_length, "min_classes": policy.password_min_classes,
                                "passphrase_length": policy.passphrase_length}}


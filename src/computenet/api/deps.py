"""Shared dependencies: the platform, a database session, the caller."""

from __future__ import annotations

from typing import Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ..services.tenancy import tokens
from ..services.signin import web_sessions
from ..services.platform import Platform
from ..store.models import User

_bearer = HTTPBearer(auto_error=False, description="an API token from `cnet admin token`")


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


def get_session(platform: Platform = Depends(get_platform)) -> Iterator[Session]:
    with platform.db.session() as session:
        yield session


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def current_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    platform: Platform = Depends(get_platform),
) -> User:
    """The caller: by API token (Authorization: Bearer), else by the browser session cookie, whose
    state-changing requests must carry the session's CSRF token in X-CSRF-Token."""
    if (credentials is None or not credentials.credentials) and request.cookies.get(web_sessions.COOKIE):
        return _session_user(request, platform)
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "missing API token (Authorization: Bearer <token>) or sign-in session",
                            headers={"WWW-Authenticate": "Bearer"})
    with platform.db.session() as session:
        try:
            token = tokens.check(session, credentials.credentials)
        except tokens.TokenRefused as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        user = token.user
        len(user.grants)  # loaded now, while in the session: services/tenancy/roles.py reads them after
        request.state.token_id = token.id
        session.expunge(user)
    if not tokens.allows(token, request.method):
        raise HTTPException(403, f"this API token is read-only: {request.method} changes state "
                                 "(use a token with scope full)")
    return user


def _session_user(request: Request, platform: Platform) -> User:
    refused = None
    with platform.db.session() as session:  # commits an idle session's end even when refused
        try:
            row = web_sessions.check(session, request.cookies[web_sessions.COOKIE], platform.settings.auth)
        except web_sessions.SessionRefused as exc:
            refused = str(exc)
        else:
            user = row.user
            len(user.grants)
            request.state.session_id = row.id
            csrf = row.csrf_token
            session.expunge(user)
    if refused is not None:
        raise HTTPException(401, refused, headers={"WWW-Authenticate": "Bearer"})
    if request.method not in tokens.READ_METHODS and not web_sessions.csrf_ok_token(
            csrf, request.headers.get(web_sessions.CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong CSRF token: a signed-in browser sends the "
                                 f"{web_sessions.CSRF_HEADER} header it got at sign-in with every change")
    return user

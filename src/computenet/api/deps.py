"""Shared dependencies: the platform, a database session, the caller."""

from __future__ import annotations

from typing import Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ..services import tokens
from ..services.platform import Platform
from ..store.models import User

_bearer = HTTPBearer(auto_error=False, description="an API token from `cnet admin token`")


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


def get_session(platform: Platform = Depends(get_platform)) -> Iterator[Session]:
    with platform.db.session() as session:
        yield session


def current_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    platform: Platform = Depends(get_platform),
) -> User:
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "missing API token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    with platform.db.session() as session:
        try:
            token = tokens.check(session, credentials.credentials)
        except tokens.TokenRefused as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        user = token.user
        len(user.grants)  # loaded now, while in the session: services/roles.py reads them after
        request.state.token_id = token.id
        session.expunge(user)
    if not tokens.allows(token, request.method):
        raise HTTPException(403, f"this API token is read-only: {request.method} changes state "
                                 "(use a token with scope full)")
    return user

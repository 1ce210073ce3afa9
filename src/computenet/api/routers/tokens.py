"""/tokens: the caller's API tokens (issue, list, revoke); /admin/tokens: everyone's, for operators."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...services import audit
from ...services.tenancy import roles, tokens
from ...services.tenancy.accounts import get_user
from ...services.errors import Forbidden
from ...services.platform import Platform
from ...store.models import User
from ..deps import current_user, get_platform, get_session
from ...schemas import MAX_ROW_ID
from ..responses import errors

router = APIRouter(tags=["tokens"], responses=errors(400, 401, 403, 404, 413, 422))
TokenId = Path(ge=1, le=MAX_ROW_ID)


class TokenIn(BaseModel):
    name: str = Field("", max_length=tokens.MAX_NAME)
    scope: Literal["full", "read"] = "full"
    expires_in_days: int | None = Field(None, ge=1, le=100_000, description="default: auth.token_default_days")


def _who(request: Request, user: User) -> audit.Who:
    return audit.Who.api(user.name, request.client.host if request.client else None)


def _operator(user: User) -> None:
    if not roles.allowed(None, user, "token_admin"):
        raise Forbidden("other users' tokens are managed by operators")


@router.get("/tokens")
def list_own(request: Request, include_revoked: bool = False, user: User = Depends(current_user),
             session: Session = Depends(get_session)):
    """Your tokens (never the secrets): scope, expiry, last use; ``current`` marks the one in use."""
    in_use = getattr(request.state, "token_id", None)
    return [tokens.to_json(t) | {"current": t.id == in_use}
            for t in tokens.listing(session, session.get(User, user.id), include_revoked)]


@router.post("/tokens", status_code=201)
def create(body: TokenIn, request: Request, user: User = Depends(current_user),
           session: Session = Depends(get_session), platform: Platform = Depends(get_platform)):
    """A new token for yourself; the token is in the answer and never shown again."""
    me = session.get(User, user.id)
    row, secret = tokens.issue(session, me, body.name, body.scope, body.expires_in_days, platform.settings.auth)
    audit.record(session, _who(request, user), "token.issue", f"user:{user.name}", token=row.id, scope=row.scope,
                 expires_at=row.expires_at.isoformat())
    out = tokens.to_json(row) | {"token": secret}
    session.commit()  # before the answer: the token must work at once
    return out


@router.delete("/tokens/{token_id}")
def revoke_own(request: Request, token_id: int = TokenId, user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    """Revoke one of your tokens (the one in use too); someone else's answers as a missing one."""
    row = tokens.revoke(session, tokens.find(session, token_id, owner=user))
    audit.record(session, _who(request, user), "token.revoke", f"user:{user.name}", token=row.id)
    session.commit()
    return tokens.to_json(row)


@router.get("/admin/tokens")
def list_all(user_name: str | None = Query(None, alias="user", max_length=64), include_revoked: bool = False,
             user: User = Depends(current_user), session: Session = Depends(get_session)):
    """Operators: every user's tokens, or one user's."""
    _operator(user)
    owner = get_user(session, user_name) if user_name else None
    return [tokens.to_json(t) for t in tokens.listing(session, owner, include_revoked)]


@router.delete("/admin/tokens/{token_id}")
def revoke_any(request: Request, token_id: int = TokenId, user: User = Depends(current_user),
               session: Session = Depends(get_session)):
    """Operators: revoke anyone's token."""
    _operator(user)
    row = tokens.revoke(session, tokens.find(session, token_id))
    audit.record(session, _who(request, user), "token.revoke", f"user:{row.user.name}", token=row.id)
    session.commit()
    return tokens.to_json(row)

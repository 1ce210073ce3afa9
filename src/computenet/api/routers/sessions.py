"""/sessions: interactive sessions (JupyterLab, ...) — start, list, show, extend, stop.

The session itself is served under /sessions/<id>/ by the proxy (api/session_proxy.py), on the sessions'
own origin (api/session_origin.py): "url" is the session there, and POST /sessions/<id>/ticket gives a
one-time connect URL that lets a browser (or a script) in."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ...services import sessions
from ...services.sessions import access
from ...services.platform import Platform
from ...store.models import User
from ...store.types import utcnow
from ..deps import current_user, get_platform, get_session
from ..responses import errors

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=errors(400, 401, 402, 403, 404, 409, 422, 503))


class SessionStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app: str = Field(min_length=1, max_length=48)
    cores: int | None = Field(None, ge=1, le=4096)
    hours: float | None = Field(None, gt=0, le=sessions.MAX_HOURS)
    params: dict = Field(default_factory=dict)
    account: str | None = Field(None, max_length=64)
    cluster: str | None = Field(None, max_length=64)
    partition: str | None = Field(None, max_length=64)


class SessionChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extend_minutes: int = Field(ge=1, le=sessions.MAX_HOURS * 60)


def _out(request: Request, shown: dict) -> dict:
    """A session as the API shows it: its url absolute, on the sessions' own origin."""
    if shown.get("url"):
        shown["url"] = request.app.state.origins.session_url(shown["id"])
    return shown


@router.get("")
def list_sessions(request: Request, all: bool = True, user: User = Depends(current_user),
                  session=Depends(get_session)):
    return [_out(request, sessions.to_json(session, row))
            for row in sessions.listing(session, user, include_ended=all)]


@router.post("", status_code=201)
async def start(request: Request, body: SessionStartIn, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    session_id = await run_in_threadpool(sessions.start, platform, user.id, body.app, body.cores, body.hours,
                                         body.params, body.account, body.cluster, body.partition)
    with platform.db.session() as session:
        return _out(request, sessions.to_json(session, sessions.owned(session, session.get(User, user.id),
                                                                      session_id)))


@router.get("/{session_id}")
def show(request: Request, session_id: int, user: User = Depends(current_user), session=Depends(get_session)):
    return _out(request, sessions.to_json(session, sessions.owned(session, user, session_id)))


@router.post("/{session_id}/ticket", status_code=201)
def ticket(request: Request, session_id: int, user: User = Depends(current_user),
           platform: Platform = Depends(get_platform)):
    """A one-time connect URL on the session origin (good for sessions.ticket_seconds, used once): opening
    it gives the browser (or an HTTP client's cookie jar) the session's cookie there."""
    with platform.db.session() as session:
        secret = access.issue_ticket(session, session.get(User, user.id), session_id, platform.settings,
                                     web_session_id=getattr(request.state, "session_id", None))
    seconds = platform.settings.sessions.ticket_seconds
    return {"connect_url": request.app.state.origins.enter_url(session_id, secret),
            "expires_in_s": seconds, "expires_at": (utcnow() + timedelta(seconds=seconds)).isoformat()}


@router.patch("/{session_id}")
async def change(request: Request, session_id: int, body: SessionChangeIn, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)):
    await run_in_threadpool(sessions.extend, platform, user.id, session_id, body.extend_minutes)
    with platform.db.session() as session:
        return _out(request, sessions.to_json(session, sessions.owned(session, session.get(User, user.id),
                                                                      session_id)))


@router.delete("/{session_id}")
async def stop(request: Request, session_id: int, user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    await run_in_threadpool(sessions.stop, platform, user.id, session_id)
    with platform.db.session() as session:
        return _out(request, sessions.to_json(session, sessions.owned(session, session.get(User, user.id),
                                                                      session_id)))

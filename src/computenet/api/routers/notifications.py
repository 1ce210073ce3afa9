"""/notifications: what the platform has told the caller (low balance, blocks, jobs that ended), and how
the caller wants to hear that a job ended (``/notifications/preferences``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ...schemas import MAX_ROW_ID, NotificationOut
from ...services.integration import job_notices
from ...services.integration import notifications as service
from ...store.models import User
from ..deps import current_user, get_session
from ..responses import errors

router = APIRouter(prefix="/notifications", tags=["notifications"], responses=errors(400, 401, 404, 422))


def _out(n) -> NotificationOut:
    return NotificationOut(id=n.id, kind=n.kind, message=n.message, created_at=n.created_at, read=n.read_at is not None)


@router.get("", response_model=list[NotificationOut])
def list_notifications(unread: bool = Query(False), limit: int = Query(50, ge=1, le=500),
                       user: User = Depends(current_user), session=Depends(get_session)):
    return [_out(n) for n in service.for_user(session, user, unread, limit)]


@router.post("/{notification_id}/read", response_model=NotificationOut)
def read(notification_id: int = Path(ge=1, le=MAX_ROW_ID), user: User = Depends(current_user),
         session=Depends(get_session)):
    return _out(service.mark_read(session, user, notification_id))


class PreferencesOut(BaseModel):
    job_ended: Literal["off", "app", "email"] = Field(
        description="off; app: a notice here and in the portal; email: that, and an e-mail to your address")
    email: str | None = Field(None, description="where e-mail goes (set by your administrator or sign-in)")


class PreferencesIn(BaseModel):
    job_ended: Literal["off", "app", "email"]


@router.get("/preferences", response_model=PreferencesOut)
def preferences(user: User = Depends(current_user)):
    return PreferencesOut(job_ended=user.notify_job_ended, email=user.email)


@router.put("/preferences", response_model=PreferencesOut)
def set_preferences(body: PreferencesIn, user: User = Depends(current_user), session=Depends(get_session)):
    me = session.get(User, user.id)
    job_notices.set_choice(session, me, body.job_ended)
    return PreferencesOut(job_ended=me.notify_job_ended, email=me.email)

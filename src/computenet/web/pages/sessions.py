"""Interactive sessions: start JupyterLab (or another interactive app) with cores and hours, see
each session's state, time left and cost so far, connect once its server answers, extend, stop.
The same services as the API's /sessions (services/sessions); the session opens at /sessions/<id>/."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse

from ...schemas import MAX_ROW_ID
from ...services import apps, sessions
from ...services.errors import NotFound, ServiceError
from ..i18n import N_
from ..render import CSP, Viewer, page
from ..viewer import check_csrf, viewer
from .projects import platform_of, refused, signed_in_user

router = APIRouter(include_in_schema=False)
NAV_LABEL = N_("Sessions")  # (viewer._nav)
STATE_WORDS = [N_("queued"), N_("starting"), N_("running"), N_("ended")]
REASON_WORDS = {"stopped": N_("stopped by you"), "idle": N_("stopped: not used for a while"),
                "timeout": N_("its server did not start in time"), "time_limit": N_("its time was up"),
                "ended": N_("its job ended"), "refused": N_("refused: it reported another address"),
                "node_failed": N_("its node stopped")}
DONE = {"started": N_("The session was started. It opens here once its server answers."),
        "extended": N_("The session was extended."), "stopped": N_("The session was stopped.")}
# where each kind opens (under the session's base URL; a shell opens in a portal page of its own)
OPEN_AT = {"jupyterlab": "lab"}
# xterm.js measures glyphs and sets its colours in <style> elements it makes: the shell page alone
# allows styles so made (scripts stay 'self' only)
SHELL_CSP = CSP.replace("style-src 'self';", "style-src 'self' 'unsafe-inline';")


def _page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = ""):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        rows = [sessions.to_json(session, row) for row in sessions.listing(session, me)]
        offered = [ref for ref in apps.visible(session, me) if ref.spec.interactive]
        choices = [{"name": ref.spec.name, "title": ref.spec.title.get("zh" if who.language == "zh-CN" else "en"),
                    "max_cores": (ref.spec.resources.get("maximum") or {}).get("cores", 64),
                    "max_hours": (ref.spec.resources.get("maximum") or {}).get("time_minutes", 1440) // 60,
                    "available": any(apps.availability(session, platform_of(request), ref.spec).values())}
                   for ref in offered]
    for row in rows:  # the page formats times itself (the API's are ISO text)
        row["predicted_start"] = datetime.fromisoformat(row["predicted_start"]) if row["predicted_start"] else None
        row["open_at"] = f"{row['url']}{OPEN_AT.get(row['kind'], '')}" if row["url"] else None
        if row["url"] and row["kind"] == "shell":
            row["open_at"] = f"/portal/sessions/{row['id']}/shell"
    live = any(r["state"] in ("queued", "starting") for r in rows)
    return page(request, who, "sessions/index.html", status=status, error=error, sessions=rows, apps=choices,
                done=who.gettext(DONE[done]) if done in DONE else None, reasons=REASON_WORDS, live=live)


@router.get("/portal/sessions")
def sessions_page(request: Request, done: str = ""):
    return _page(request, viewer(request), done=done[:10])


def _change(request: Request, csrf_token: str, work, done: str):
    who = viewer(request)
    check_csrf(who, csrf_token)
    try:
        work(who.user.id)
    except NotFound as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        status = exc.status_code if exc.status_code in (402, 409) else 400
        return _page(request, who, status=status, error=who.say(exc))
    return RedirectResponse(f"/portal/sessions?done={done}", status_code=303)


@router.post("/portal/sessions")
def start(request: Request, app: str = Form("", max_length=48), cores: int = Form(2, ge=1, le=4096),
          hours: float = Form(2.0, gt=0, le=sessions.MAX_HOURS), csrf_token: str = Form("", max_length=100)):
    platform = platform_of(request)
    return _change(request, csrf_token, lambda user_id: sessions.start(platform, user_id, app.strip(), cores, hours),
                   "started")


@router.get("/portal/sessions/{session_id}/shell")
def shell_page(request: Request, session_id: int = Path(ge=1, le=MAX_ROW_ID)):
    """A shell session's terminal: xterm.js talking to the node's terminal through the proxy."""
    who = viewer(request)
    with platform_of(request).db.session() as session:
        try:
            row = sessions.owned(session, signed_in_user(session, who), session_id)
        except NotFound as exc:
            return refused(request, who, exc)
        if row.kind != "shell":
            return refused(request, who, NotFound(f"no shell session {session_id}"))
        state, cluster = row.state, row.job.cluster.name if row.job else ""
    if state != "running":
        return _page(request, who, status=409, error=who.gettext(
            "Session %(id)s is not running, so its shell cannot open.", id=session_id))
    response = page(request, who, "sessions/shell.html", socket=f"{sessions.base_url(session_id)}websocket",
                    title=who.gettext("Shell, session %(id)s", id=session_id),
                    lead=who.gettext("A terminal on a compute node of %(cluster)s, run by the session's job. "
                                     "It closes when the session ends.", cluster=cluster))
    response.headers["Content-Security-Policy"] = SHELL_CSP
    return response


@router.post("/portal/sessions/{session_id}/extend")
def extend(request: Request, session_id: int = Path(ge=1, le=MAX_ROW_ID),
           minutes: int = Form(60, ge=1, le=sessions.MAX_HOURS * 60), csrf_token: str = Form("", max_length=100)):
    platform = platform_of(request)
    return _change(request, csrf_token, lambda user_id: sessions.extend(platform, user_id, session_id, minutes),
                   "extended")


@router.post("/portal/sessions/{session_id}/stop")
def stop(request: Request, session_id: int = Path(ge=1, le=MAX_ROW_ID), csrf_token: str = Form("", max_length=100)):
    platform = platform_of(request)
    return _change(request, csrf_token, lambda user_id: sessions.stop(platform, user_id, session_id), "stopped")

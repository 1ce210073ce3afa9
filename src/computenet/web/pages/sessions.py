"""Interactive sessions: start JupyterLab (or another interactive app) with cores and hours, see
each session's state, time left and cost so far, connect once its server answers, extend, stop.
The same services as the API's /sessions (services/sessions); the session opens at /sessions/<id>/ on
the sessions' own origin (api/session_origin.py), through a one-time ticket that "connect" makes."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse

from ...api.session_origin import NEXT_PATH, TICKET_PARAM
from ...schemas import MAX_ROW_ID
from ...services.apps import apps
from ...services import sessions
from ...services.errors import NotFound, ServiceError
from ...services.sessions import access, base_url
from ...store.models import InteractiveSession
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


def desktop_url(base: str) -> str:
    """noVNC's page on the node (relative to the session's base URL ``base``), connecting at once to the
    VNC WebSocket under the same base URL (noVNC's path is relative to the site's root) and setting the
    desktop's size to the window's."""
    return f"vnc.html?autoconnect=true&resize=remote&reconnect=true&path={base.lstrip('/')}websockify"


def _open_at(kind: str, session_id: int) -> str:
    if kind == "desktop":
        return desktop_url(base_url(session_id))
    return OPEN_AT.get(kind, "")


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
        row["open_at"] = f"/portal/sessions/{row['id']}/connect" if row["url"] else None
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


def _ticket(request: Request, who: Viewer, session_id: int):
    """A one-time ticket to the viewer's own running session, bound to this sign-in; or the refusal page."""
    platform = platform_of(request)
    with platform.db.session() as session:
        try:
            ticket = access.issue_ticket(session, signed_in_user(session, who), session_id, platform.settings,
                                         web_session_id=who.session_id)
        except NotFound as exc:
            return None, None, refused(request, who, exc)
        except ServiceError as exc:
            return None, None, _page(request, who, status=exc.status_code, error=who.say(exc))
        kind = session.get(InteractiveSession, session_id).kind
    return ticket, kind, None


@router.get("/portal/sessions/{session_id}/connect")
def connect(request: Request, session_id: int = Path(ge=1, le=MAX_ROW_ID), next: str = Query("", max_length=200)):
    """Open the session: a ticket, taken by the browser to the session's origin, becomes its cookie there.
    The session origin sends a browser without that cookie here (``next``: the page it wanted)."""
    who = viewer(request)
    ticket, kind, answer = _ticket(request, who, session_id)
    if answer is not None:
        return answer
    if kind == "shell":  # a terminal in a portal page of its own (which gets a ticket of its own)
        return RedirectResponse(f"/portal/sessions/{session_id}/shell", status_code=303)
    wanted = next if next and NEXT_PATH.match(next) else _open_at(kind, session_id)
    response = RedirectResponse(request.app.state.origins.enter_url(session_id, ticket, wanted), status_code=303)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


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
    # the terminal's socket is on the session origin, opened with a one-time ticket (no cookie there)
    ticket, _, answer = _ticket(request, who, session_id)
    if answer is not None:
        return answer
    origins = request.app.state.origins
    socket = origins.socket_url(session_id, "websocket") + "?" + urlencode({TICKET_PARAM: ticket})
    response = page(request, who, "sessions/shell.html", socket=socket,
                    title=who.gettext("Shell, session %(id)s", id=session_id),
                    lead=who.gettext("A terminal on a compute node of %(cluster)s, run by the session's job. "
                                     "It closes when the session ends.", cluster=cluster))
    where = socket.split("/sessions/", 1)[0]
    response.headers["Content-Security-Policy"] = SHELL_CSP.replace("connect-src 'self';", f"connect-src 'self' {where};")
    response.headers["Referrer-Policy"] = "no-referrer"
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

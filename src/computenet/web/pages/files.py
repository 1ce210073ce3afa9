"""Files: a browser over the user's own workspace (~) and their projects' (@project), with new folder,
rename/move, delete, download and quota bars.

Every path goes through services/files/workspaces.py, as the API's routers/files.py does: it decides which
spaces a user may reach and refuses ../ and absolute paths. Downloads and uploads use the API itself
(GET /v1/files/content, /v1/uploads), which accepts the browser session; static/files.js sends the chunks.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from ...services.files import workspaces
from ...services.errors import InvalidRequest, ServiceError
from ...services.platform import Platform
from ...store.models import User
from ..i18n import N_
from ..render import page
from ..viewer import check_csrf, viewer

router = APIRouter(include_in_schema=False)
MAX_PATH = 4096  # as the API's routers/files.py
KINDS = {"dir": N_("Folder"), "file": N_("File"), "link": N_("Link")}
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def folder_url(path: str) -> str:
    return "/portal/files?" + urlencode({"path": path})


def parent_of(path: str) -> str:
    """The folder holding ``path`` ("~/a/b" -> "~/a"; "@p/x" -> "@p")."""
    head, _, _ = path.rstrip("/").rpartition("/")
    return head or path


def size_text(fmt, size: int) -> str:
    """Bytes in the largest binary unit that keeps the number at 1 or more (1.5 MiB)."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{fmt.number(value, 0 if unit == 0 else 1)} {UNITS[unit]}"


def crumbs(space_label: str, rel: str) -> list[tuple[str, str]]:
    """(name, path) from the workspace down to the folder shown."""
    out = [(space_label, space_label)]
    walked = space_label
    for part in [p for p in rel.split("/") if p]:
        walked = f"{walked}/{part}"
        out.append((part, walked))
    return out


def _refused(request: Request, who, exc: ServiceError):
    """A service's refusal as a page with its status (4xx) and its own words."""
    return page(request, who, "files/refused.html", status=exc.status_code,
                title=who.gettext("This cannot be done"), message=who.say(exc))


@router.get("/portal/files")
def browse(request: Request, path: str = Query("~", max_length=MAX_PATH)):
    who = viewer(request)
    platform = _platform(request)
    try:
        with platform.db.session() as session:
            user = session.get(User, who.user.id)
            space, rel = workspaces.resolve(session, platform, user, path or "~")
            here = space.show(rel)
            entries = workspaces.list_dir(session, platform, user, here)
            quota = workspaces.quota_report(session, platform, user)
    except ServiceError as exc:
        return _refused(request, who, exc)
    for entry in entries:
        entry["modified"] = datetime.fromtimestamp(entry["mtime"], tz=timezone.utc)
    entries.sort(key=lambda e: (e["kind"] != "dir", e["name"].lower()))
    fragment = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "listing"
    return page(request, who, "files/listing.html" if fragment else "files/browse.html", here=here,
                space=space.label, entries=entries, quota=quota, crumbs=crumbs(space.label, rel),
                parent=parent_of(here) if rel else None, folder_url=folder_url, kinds=KINDS,
                size_text=lambda size: size_text(who.formats, size))


@router.post("/portal/files/mkdir")
def make_folder(request: Request, folder: str = Form(..., max_length=MAX_PATH), name: str = Form("", max_length=255),
                csrf_token: str = Form("", max_length=100)):
    who = viewer(request)
    check_csrf(who, csrf_token)
    platform = _platform(request)
    try:
        if not name.strip() or "/" in name:
            raise InvalidRequest(who.gettext("Give the new folder a name without a slash."))
        with platform.db.session() as session:
            workspaces.make_dir(session, platform, session.get(User, who.user.id), f"{folder.rstrip('/')}/{name}")
    except ServiceError as exc:
        return _refused(request, who, exc)
    return RedirectResponse(folder_url(folder), status_code=303)


@router.post("/portal/files/move")
def move(request: Request, src: str = Form(..., max_length=MAX_PATH), dst: str = Form(..., max_length=MAX_PATH),
         csrf_token: str = Form("", max_length=100)):
    """Rename or move inside one workspace: ``dst`` is the new path (a folder's path moves into it)."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    platform = _platform(request)
    try:
        with platform.db.session() as session:
            final = workspaces.move(session, platform, session.get(User, who.user.id), src, dst)
            session.commit()
    except ServiceError as exc:
        return _refused(request, who, exc)
    return RedirectResponse(folder_url(parent_of(final)), status_code=303)


@router.post("/portal/files/delete")
def delete(request: Request, path: str = Form(..., max_length=MAX_PATH), csrf_token: str = Form("", max_length=100)):
    """Delete a file, or a folder with what it holds (the page asked first)."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    platform = _platform(request)
    try:
        with platform.db.session() as session:
            workspaces.remove(session, platform, session.get(User, who.user.id), path, recursive=True)
            session.commit()
    except ServiceError as exc:
        return _refused(request, who, exc)
    return RedirectResponse(folder_url(parent_of(path)), status_code=303)

"""Who is looking at a portal page: the browser session's user (services/signin/web_sessions.py, the
same sessions as the API's), their language, CSRF token and what the navigation offers them.

Pages that need a signed-in user raise SignInFirst, which the portal answers with a redirect to the
sign-in page and back. A form's CSRF token is checked by ``check_csrf`` before anything changes.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import Request

from ..services.tenancy import roles
from ..services.platform import Platform
from ..services.signin import web_sessions
from . import i18n
from .render import Viewer

LANGUAGE_COOKIE = "cnet_lang"


class SignInFirst(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class BadCsrf(Exception):
    """A form came back without the session's CSRF token (or with another)."""


def _nav(user) -> list[tuple[str, str]]:
    """The pages this user may open, with their (translatable) labels; the role checks are roles.py's."""
    items = [("/", "Dashboard"), ("/portal/jobs", "Jobs"), ("/portal/submit", "Submit"),
             ("/portal/apps", "Applications"), ("/portal/sessions", "Sessions"), ("/portal/files", "Files"), ("/portal/clusters", "Clusters"), ("/portal/billing", "Billing"),
             ("/portal/efficiency", "Efficiency"), ("/portal/projects", "Projects")]  # (labels translated in the template; marked in words.py)
    if roles.allowed(None, user, "topup"):
        items.append(("/portal/finance", "Finance"))
    if roles.is_staff(user):
        items.append(("/portal/operations", "Operations"))
    return items


def viewer(request: Request, required: bool = True) -> Viewer:
    """The viewer of this request; SignInFirst when ``required`` and nobody is signed in."""
    platform: Platform = request.app.state.platform
    secret = request.cookies.get(web_sessions.COOKIE)
    user = csrf = session_id = None
    if secret:
        with platform.db.session() as session:
            try:
                row = web_sessions.check(session, secret, platform.settings.auth)
            except web_sessions.SessionRefused:
                row = None
            if row is not None:
                user, csrf, session_id = row.user, row.csrf_token, row.id
                len(user.grants)
                session.expunge(user)
    if user is None and required:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInFirst(target)
    language = i18n.choose(user.language if user else None, request.cookies.get(LANGUAGE_COOKIE),
                           request.headers.get("accept-language"))
    return Viewer(language=language, user=user, csrf_token=csrf or "", session_id=session_id,
                  formats=i18n.Formats(language, platform.settings.currency, platform.settings.display_timezone),
                  nav=_nav(user) if user is not None else [])


def check_same_site(request: Request) -> None:
    """For the forms used before signing in (sign-in, password change and reset), which have no session
    to hold a CSRF token: a browser says where a form was sent from (Sec-Fetch-Site, Origin), and one
    sent from another site is refused, so nobody can sign a visitor in to an account of theirs."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise BadCsrf()
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        public = request.app.state.platform.settings.auth.public_url
        if origin.rstrip("/") not in {own, (public or "").rstrip("/")}:
            raise BadCsrf()
    elif origin == "null":
        raise BadCsrf()


def check_csrf(viewer: Viewer, presented: str | None) -> None:
    if not viewer.csrf_token or not presented or not secrets.compare_digest(
            viewer.csrf_token.encode(), str(presented).encode()):
        raise BadCsrf()


def login_redirect(next_path: str) -> str:
    return "/login?next=" + quote(safe_next(next_path), safe="")


def safe_next(path: str | None) -> str:
    """Only a path on this site: never another host (//evil.example, /\\evil.example, https://...)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or any(
            ord(c) < 32 for c in path):
        return "/"
    return path

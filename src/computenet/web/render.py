"""Rendering portal pages: one Jinja2 environment per language (autoescaped, gettext installed), the
viewer (who is signed in, in which language, with which CSRF token) and the security headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..billing.document import TEMPLATES as DOCUMENT_TEMPLATES
from . import i18n

TEMPLATES = Path(__file__).parent / "templates"
# no inline script or style anywhere: every script is a file the server serves itself
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                    "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    # a session's page (another origin, maybe the same site) can neither embed a portal
                    # page as a resource nor keep a handle on a portal window it opened
                    "Cross-Origin-Resource-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"}


@lru_cache(maxsize=None)
def environment(language: str) -> Environment:
    # billing documents' template (billing/_document.html) lives with billing, which prints it to PDF too
    env = Environment(loader=FileSystemLoader([TEMPLATES, DOCUMENT_TEMPLATES]), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(language), newstyle=True)
    return env


@dataclass
class Viewer:
    """Who looks at the page: the user (None before sign-in), language, CSRF token, formats."""

    language: str
    user: object | None = None
    csrf_token: str = ""
    session_id: int | None = None
    formats: i18n.Formats | None = None
    nav: list[tuple[str, str]] = field(default_factory=list)  # (path, label id) the user may open

    def gettext(self, message: str, **values) -> str:
        """``message`` in the viewer's language, with %(name)s filled in (as templates' gettext)."""
        text = i18n.translations(self.language).gettext(message)
        return text % values if values else text

    def say(self, text) -> str:
        """A service's refusal, finding or notice (or the exception carrying it) in the viewer's language."""
        return i18n.localise(text, self.language, self.formats or i18n.Formats(self.language, "CNY"))

    def notice(self, message: str) -> str:
        """A stored notice (English, as the API shows it) in the viewer's language when it is one of the
        notices the services make (services/integration/notifications.py TEMPLATES), else as it was stored."""
        from ..services.integration.notifications import said

        return self.say(said(message))


def page(request: Request, viewer: Viewer, template: str, status: int = 200, **context) -> HTMLResponse:
    env = environment(viewer.language)
    html = env.get_template(template).render(request=request, viewer=viewer, fmt=viewer.formats,
                                             languages=i18n.LANGUAGES, path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Language"] = viewer.language
    return response

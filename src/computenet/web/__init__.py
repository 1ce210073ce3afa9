"""The web portal: server-rendered pages (Jinja2, htmx) at / beside the API, calling the same
services as the API (no second copy of a rule or a role check), in zh-CN and en.

``mount(app)`` adds the pages, the static files (served by the server itself: no CDN), the OpenAPI
page with local assets, and the answers to "sign in first" and a bad CSRF token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from .pages import ROUTERS
from .render import page
from .viewer import BadCsrf, SignInFirst, login_redirect, viewer

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    @app.exception_handler(SignInFirst)
    async def sign_in_first(request: Request, exc: SignInFirst):
        return RedirectResponse(login_redirect(exc.next_path), status_code=303)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, exc: BadCsrf):
        who = viewer(request, required=False)
        return page(request, who, "error.html", status=403,
                    title=who.gettext("This form has expired"),
                    message=who.gettext("The page was open too long or came from elsewhere. Reload it and "
                                        "try again."))

"""The application centre: the catalogue (search, categories) at /portal/apps and each app's page,
whose form is drawn from the app's JSON Schema parameters, with a typical run's time and cost, a
preview of the generated script and a run button.

The catalogue is services/apps/apps.py (as GET /apps); preview and run are services/apps/app_runs.run_app with
and without dry_run (as `cnet run --dry-run` / `cnet run` and POST /apps/{name}/runs). The form's own
checks only put the basic cases (required, number range, choice) in the user's language before the
service, which checks everything again, sees the values.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from ... import messages
from ...api.routers.apps import PUBLIC_MIN_RUNS
from ...services.apps import app_runs, apps
from ...services.files import workspaces
from ...services.tenancy.accounts import accounts_of
from ...services.monitoring.app_profiles import characteristics
from ...services.errors import ServiceError
from ...services.platform import Platform
from ...store.models import User
from ..i18n import N_
from ..render import page
from ..viewer import check_csrf, viewer

router = APIRouter(include_in_schema=False)

CATEGORIES = {"general": N_("General"), "molecular-dynamics": N_("Molecular dynamics"), "cfd": N_("Fluid dynamics"),
              "quantum-chemistry": N_("Quantum chemistry"), "ai": N_("AI and machine learning"),
              "notebook": N_("Notebooks")}
MAX_VALUE = 65536
MAX_PICKER_FILES = 300


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _csrf(request: Request, form) -> str:
    return request.headers.get("X-CSRF-Token") or str(form.get("csrf_token") or "")


def _zh(who) -> bool:
    return who.language == "zh-CN"


def localized(texts: dict, who) -> str:
    """An app's title or description in the viewer's language where the app has it, else English."""
    return (texts.get("zh") if _zh(who) else None) or texts.get("en") or next(iter(texts.values()), "")


def rows_from_json(decision: dict) -> list[dict]:
    """A routing decision's candidates with their predicted start (decided_at + wait), as the API adds."""
    decided = datetime.fromisoformat(decision["decided_at"]) if decision.get("decided_at") else None
    rows = []
    for item in decision["candidates"]:
        start = None if item["wait_s"] is None or decided is None else decided + timedelta(seconds=item["wait_s"])
        rows.append(item | {"predicted_start": start,  # the why again in the reader's language, where stored
                            "explanation": messages.load(item.get("explanation_said"), item.get("explanation") or "")})
    return rows


# -- the catalogue ----------------------------------------------------------------

@router.get("/portal/apps")
def catalogue(request: Request, q: str = "", category: str = ""):
    who = viewer(request)
    q, category = q.strip()[:100], category[:64]
    with _platform(request).db.session() as session:
        refs = apps.visible(session, session.get(User, who.user.id))
    categories = sorted({r.spec.category for r in refs})
    needle = q.casefold()
    shown = [r for r in refs if (not category or r.spec.category == category) and (
        not needle or any(needle in text.casefold() for text in
                          (r.spec.name, r.spec.category, *r.spec.title.values(), *r.spec.description.values())))]
    cards = [{"name": r.spec.name, "version": r.spec.version, "category": r.spec.category,
              "title": localized(r.spec.title, who), "description": localized(r.spec.description, who),
              "scope": r.scope, "runtime_hint_minutes": r.spec.runtime_hint_minutes} for r in shown]
    return page(request, who, "submit/apps.html", cards=cards, categories=categories, category_words=CATEGORIES,
                q=q, category=category)


# -- one app: its form --------------------------------------------------------------

def form_fields(spec, who, files: list[str]) -> list[dict]:
    """The app's parameters as form fields: type, default, choices, bounds, help in the viewer's language."""
    required = set(spec.parameters.get("required") or [])
    fields = []
    for name, prop in spec.properties().items():
        ptype = prop.get("type")
        kind = ("select" if "enum" in prop else "file" if prop.get("x-input") else
                "number" if ptype in ("integer", "number") else "boolean" if ptype == "boolean" else "text")
        help_text = ((prop.get("x-help") or {}).get("zh") if _zh(who) else None) or prop.get("description") or ""
        fields.append({"name": name, "kind": kind, "type": ptype, "required": name in required,
                       "default": prop.get("default"), "choices": list(prop.get("enum") or []),
                       "minimum": prop.get("minimum"), "maximum": prop.get("maximum"),
                       "step": 1 if ptype == "integer" else "any", "maxlength": prop.get("maxLength", MAX_VALUE),
                       "help": help_text, "files": files if kind == "file" else []})
    return fields


def check_values(fields: list[dict], values: dict[str, str], who) -> dict[str, str]:
    """The basic problems, per field, in the viewer's language (the service checks the rest)."""
    problems = {}
    for f in fields:
        value = values.get(f["name"], "")
        if value == "":
            if f["required"] and f["default"] is None:
                problems[f["name"]] = who.gettext("This field is required.")
            continue
        if f["kind"] == "select" and value not in [str(c) for c in f["choices"]]:
            problems[f["name"]] = who.gettext("Choose one of the offered values.")
        elif f["kind"] == "number":
            try:
                number = Decimal(value)
                if not number.is_finite() or (f["type"] == "integer" and number != number.to_integral_value()):
                    raise InvalidOperation
            except InvalidOperation:
                problems[f["name"]] = (who.gettext("Enter a whole number.") if f["type"] == "integer" else
                                       who.gettext("Enter a number."))
                continue
            low, high = f["minimum"], f["maximum"]
            if (low is not None and number < Decimal(str(low))) or (high is not None and number > Decimal(str(high))):
                if low is not None and high is not None:
                    problems[f["name"]] = who.gettext("Enter a number from %(low)s to %(high)s.", low=low, high=high)
                elif low is not None:
                    problems[f["name"]] = who.gettext("Enter a number of at least %(low)s.", low=low)
                else:
                    problems[f["name"]] = who.gettext("Enter a number of at most %(high)s.", high=high)
    return problems


def workspace_files(session, platform: Platform, user: User) -> list[str]:
    """Files in the user's own workspace (two levels), for the file parameters' picker."""
    found, folders = [], [("~", 0)]
    while folders and len(found) < MAX_PICKER_FILES:
        folder, depth = folders.pop(0)
        try:
            entries = workspaces.list_dir(session, platform, user, folder)
        except ServiceError:
            continue  # no workspace yet: nothing to pick
        for entry in entries:
            path = entry["path"][2:] if entry["path"].startswith("~/") else entry["path"]
            if entry["kind"] == "dir" and depth < 1:
                folders.append((entry["path"], depth + 1))
            elif entry["kind"] == "file":
                found.append(path)
    return sorted(found)[:MAX_PICKER_FILES]


def _app_page(request: Request, who, name: str, values: dict | None = None, status: int = 200, **extra):
    platform = _platform(request)
    with platform.db.session() as session:
        user = session.get(User, who.user.id)
        try:
            ref = apps.find(session, user, name)
        except ServiceError as exc:
            return page(request, who, "error.html", status=exc.status_code,
                        title=who.gettext("No such application"), message=who.say(exc))
        spec = ref.spec
        typical = characteristics(session, app=spec.name)
        shown = typical[0] if typical and (typical[0]["jobs"] >= PUBLIC_MIN_RUNS or user.is_admin) else None
        fields = form_fields(spec, who, workspace_files(session, platform, user))
        account_names = [a.name for a in accounts_of(session, user)]
        available = apps.availability(session, platform, spec)
    if values is None:
        values = {f["name"]: "" if f["default"] is None else str(f["default"]).lower() if f["type"] == "boolean"
                  else str(f["default"]) for f in fields}
    return page(request, who, "submit/app.html", status=status, app=spec, title=localized(spec.title, who),
                description=localized(spec.description, who), fields=fields, values=values, typical=shown,
                account_names=account_names, available=available, category_words=CATEGORIES,
                **({"problems": {}, "account": ""} | extra))


@router.get("/portal/apps/{name}")
def app_page(request: Request, name: str):
    return _app_page(request, viewer(request), name[:64])


async def _posted(request: Request, name: str):
    """The viewer, the app's fields, the typed values, the account and the basic problems of a posted form."""
    who = viewer(request)
    form = await request.form()
    check_csrf(who, _csrf(request, form))
    platform = _platform(request)

    def fields_of():
        with platform.db.session() as session:
            return form_fields(apps.find(session, session.get(User, who.user.id), name).spec, who, [])
    fields = await run_in_threadpool(fields_of)
    values = {f["name"]: str(form.get("p_" + f["name"]) or "").strip()[:MAX_VALUE] for f in fields}
    params = {k: v for k, v in values.items() if v != ""}  # an empty field: the app's default
    return who, values, params, str(form.get("account") or "")[:64], check_values(fields, values, who)


@router.post("/portal/apps/{name}/preview")
async def preview(request: Request, name: str):
    """The generated script, the resources and where it would run (as `cnet run --dry-run`): a fragment."""
    name = name[:64]
    try:
        who, values, params, account, problems = await _posted(request, name)
    except ServiceError as exc:
        return page(request, viewer(request), "error.html", status=exc.status_code,
                    title=viewer(request).gettext("No such application"), message=viewer(request).say(exc))
    if problems:
        return page(request, who, "submit/_preview.html", status=400, problems=problems,
                    refusal=who.gettext("Some fields need another value."))
    try:
        result = await run_in_threadpool(app_runs.run_app, _platform(request), who.user.id, name, params, None,
                                         account or None, None, None, None, True)
    except ServiceError as exc:
        return page(request, who, "submit/_preview.html", status=exc.status_code, refusal=who.say(exc), problems={},
                    heading=who.gettext("No preview"))
    return page(request, who, "submit/_preview.html", result=result, rows=rows_from_json(result["decision"]),
                problems={}, refusal=None, heading=who.gettext("No preview"))


@router.post("/portal/apps/{name}/run")
async def run(request: Request, name: str):
    """Run the app (as `cnet run`): the job's page, or the form again with what is wrong."""
    name = name[:64]
    try:
        who, values, params, account, problems = await _posted(request, name)
    except ServiceError as exc:
        return page(request, viewer(request), "error.html", status=exc.status_code,
                    title=viewer(request).gettext("No such application"), message=viewer(request).say(exc))
    heading = who.gettext("The application was not started")
    if problems:
        return await run_in_threadpool(_app_page, request, who, name, values, status=400, problems=problems,
                                       account=account, refusal=who.gettext("Some fields need another value."),
                                       heading=heading)
    try:
        job = await run_in_threadpool(app_runs.run_app, _platform(request), who.user.id, name, params, None,
                                      account or None)
    except ServiceError as exc:
        return await run_in_threadpool(_app_page, request, who, name, values, status=exc.status_code,
                                       account=account, refusal=who.say(exc), heading=heading)
    return RedirectResponse(f"/portal/jobs/{job.id}", status_code=303)

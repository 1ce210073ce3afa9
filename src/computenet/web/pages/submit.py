"""Submitting: the job composer at /portal/submit (a script editor with #SBATCH assistance and the
estimate panel) and, from submit_apps.py, the application centre at /portal/apps.

Estimates and submissions are services/jobs/jobs.py's estimate_job and submit_job, as POST /jobs/estimate
and POST /jobs call them: the routing, the limits and the funds check are theirs, and their refusals
are shown with the service's own message (and figures) under a translated heading.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...domain.sbatch import MAX_SCRIPT_BYTES
from ...routing.policies import POLICIES
from ...services.jobs import jobs as job_service
from ...services.tenancy.accounts import accounts_of
from ...services.errors import InvalidRequest, ServiceError
from ...services.files.job_files import resolve_inputs
from ...messages import msg
from ...schemas import JobSubmit
from ...services.platform import Platform
from ...store.models import Partition, User
from ..i18n import N_
from ..render import page
from ..viewer import check_csrf, viewer
from .submit_apps import router as apps_router, workspace_files
from .submit_sbatch import DEFAULT_SCRIPT, FIELDS, BadField, read_fields, write_fields

router = APIRouter(include_in_schema=False)
router.include_router(apps_router)

POLICY_WORDS = {"earliest_start": N_("earliest start"), "cheapest": N_("cheapest"),
                "owned_first": N_("the centre's own clusters first"), "data_locality": N_("near the data"),
                "weighted": N_("weighted")}
OPTION_FIELDS = {f"opt_{f.key}": f for f in FIELDS}
MAX_INPUTS = JobSubmit.model_fields["inputs"].metadata[0].max_length  # as POST /jobs takes


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def csrf_of(request: Request, form_token: str) -> str:
    """htmx sends the token in a header (portal.js), a plain form in a field."""
    return request.headers.get("X-CSRF-Token") or form_token


def estimate_rows(decision) -> list[dict]:
    """Every candidate (best first, then the ruled out) with its predicted start, as POST /jobs/estimate."""
    out = decision.to_json()
    for item in out["candidates"]:
        item["predicted_start"] = None if item["wait_s"] is None or decision.decided_at is None else \
            decision.decided_at + timedelta(seconds=item["wait_s"])
    return out["candidates"]


def _choices(request: Request, who) -> dict:
    """What the assistance offers to pick from: the user's accounts, the network's partitions, the
    workspace files a job may have copied into its directory."""
    platform = _platform(request)
    with platform.db.session() as session:
        user = session.get(User, who.user.id)
        return {"account_names": [a.name for a in accounts_of(session, user)],
                "workspace_files": workspace_files(session, platform, user),
                "partition_names": sorted(set(session.scalars(select(Partition.name).where(
                    Partition.available.is_(True)))))}


def _form_values(form) -> dict[str, str]:
    return {field.key: str(form.get(name) or "")[:200] for name, field in OPTION_FIELDS.items()}


def _compose(who, script: str, options: dict[str, str]) -> tuple[str, str | None]:
    """The script with the assistance's filled fields written in, or the script and what is wrong."""
    try:
        return write_fields(script, options), None
    except BadField as exc:
        label = who.gettext(exc.field.label)
        if exc.field.kind == "number":
            return script, who.gettext("%(field)s: enter a whole number.", field=label)
        return script, who.gettext("%(field)s: only letters, digits and . _ : @ / + - are allowed.", field=label)


def _composer(request: Request, who, script: str, status: int = 200, **extra):
    return page(request, who, "submit/composer.html", status=status, script=script, fields=FIELDS,
                values=read_fields(script), policies=POLICIES, policy_words=POLICY_WORDS,
                max_script=MAX_SCRIPT_BYTES, **(_choices(request, who) | {"policy": "", "inputs": []} | extra))


def input_paths(picked: list[str], typed: str) -> list[str]:
    """The workspace files to stage (picked, then typed one a line), each once, in order; as many as
    POST /jobs takes (its ``inputs``)."""
    paths = list(dict.fromkeys(p.strip() for p in [*picked, *typed.splitlines()] if p.strip()))
    if len(paths) > MAX_INPUTS:
        raise InvalidRequest(msg(N_("at most %(most)s input files per job"), most=MAX_INPUTS))
    return paths


def _extras(platform: Platform, user_id: int, paths: list[str]) -> job_service.JobExtras | None:
    """The inputs checked as the API checks them (each exists, is a file, no two share a name)."""
    if not paths:
        return None
    with platform.db.session() as session:
        return job_service.JobExtras(inputs=resolve_inputs(session, platform, session.get(User, user_id), paths))


@router.get("/portal/submit")
def composer(request: Request):
    return _composer(request, viewer(request), DEFAULT_SCRIPT)


@router.post("/portal/submit/script")
async def compose(request: Request):
    """The assistance's fields written into the script (htmx, on every change): the editor again."""
    who = viewer(request)
    form = await request.form()
    check_csrf(who, csrf_of(request, str(form.get("csrf_token") or "")))
    script = str(form.get("script") or "")
    composed, error = _compose(who, script, _form_values(form))
    return page(request, who, "submit/_editor.html", status=200 if error is None else 400, script=composed,
                fields=FIELDS, values=read_fields(composed), field_error=error, max_script=MAX_SCRIPT_BYTES,
                **_choices(request, who))


def _wanted(policy: str) -> job_service.RoutingRequest:
    return job_service.RoutingRequest(policy=policy or None)


@router.post("/portal/submit/estimate")
async def estimate(request: Request):
    """The estimate panel: where the job would go, when it would start and what it would cost, per
    candidate; nothing is submitted (htmx fragment, or the whole page without JavaScript)."""
    who = viewer(request)
    form = await request.form()
    check_csrf(who, csrf_of(request, str(form.get("csrf_token") or "")))
    script, policy = str(form.get("script") or ""), str(form.get("policy") or "")[:32]
    composed, error = _compose(who, script, _form_values(form))
    rows, refusal, status = None, error, 200 if error is None else 400
    if error is None:
        try:
            decision = await run_in_threadpool(job_service.estimate_job, _platform(request), who.user.id, composed,
                                                   [], _wanted(policy))
            rows = estimate_rows(decision)
        except ServiceError as exc:
            refusal, status = who.say(exc), exc.status_code
    if is_htmx(request):
        return page(request, who, "submit/_estimate.html", status=status, rows=rows, refusal=refusal,
                    heading=who.gettext("No estimate"))
    return _composer(request, who, composed, status=status, rows=rows, refusal=refusal, policy=policy,
                     heading=who.gettext("No estimate"))


@router.post("/portal/submit")
def submit(request: Request, script: str = Form(""),
           policy: str = Form("", max_length=32), csrf_token: str = Form("", max_length=100),
           opt_job_name: str = Form("", max_length=200), opt_account: str = Form("", max_length=200),
           opt_partition: str = Form("", max_length=200), opt_nodes: str = Form("", max_length=200),
           opt_ntasks: str = Form("", max_length=200), opt_cpus_per_task: str = Form("", max_length=200),
           opt_mem: str = Form("", max_length=200), opt_gpus: str = Form("", max_length=200),
           opt_time: str = Form("", max_length=200), inputs: list[str] = Form([]),
           inputs_typed: str = Form("", max_length=20_000)):
    """Submit: the same service, checks and messages as POST /jobs (workspace files to stage as its
    ``inputs``); then the job's page."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    options = {"job_name": opt_job_name, "account": opt_account, "partition": opt_partition, "nodes": opt_nodes,
               "ntasks": opt_ntasks, "cpus_per_task": opt_cpus_per_task, "mem": opt_mem, "gpus": opt_gpus,
               "time": opt_time}
    composed, error = _compose(who, script, options)
    heading = who.gettext("The job was not submitted")
    picked = [p[:1000] for p in inputs[:MAX_INPUTS + 1]]
    kept = {"policy": policy, "inputs": picked, "inputs_typed": inputs_typed, "heading": heading}
    if error is not None:
        return _composer(request, who, script, status=400, refusal=error, **kept)
    try:
        extras = _extras(_platform(request), who.user.id, input_paths(picked, inputs_typed))
        job = job_service.submit_job(_platform(request), who.user.id, composed, [], None, _wanted(policy), extras)
    except ServiceError as exc:
        return _composer(request, who, composed, status=exc.status_code, refusal=who.say(exc), **kept)
    return RedirectResponse(f"/portal/jobs/{job.id}", status_code=303)

"""/apps: the application centre — list, show, publish, review, run."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...schemas import AppPublishIn, AppReviewIn, AppRunIn
from ...services.apps import app_runs, apps
from ...services.platform import Platform
from ...store.models import Job, User
from ..deps import current_user, get_platform, get_session
from ..responses import errors
from ..views import job_out
from .jobs import routing_request

router = APIRouter(prefix="/apps", tags=["apps"], responses=errors(400, 401, 402, 403, 404, 409, 413, 422, 503))
PUBLIC_MIN_RUNS = 3


@router.get("")
def list_apps(all_versions: bool = Query(False), user: User = Depends(current_user), session=Depends(get_session)):
    return [ref.to_json() for ref in apps.visible(session, user, everything=all_versions)]


@router.get("/{name}")
def show(name: str, version: str | None = None, user: User = Depends(current_user),
         platform: Platform = Depends(get_platform), session=Depends(get_session)):
    from ...services.monitoring.app_profiles import characteristics

    ref = apps.find(session, user, name, version)
    typical = characteristics(session, app=ref.spec.name)  # what its monitored runs did (issue 6)
    # shown from three runs on: one run's figures would be one person's job and bill
    shown = typical[0] if typical and (typical[0]["jobs"] >= PUBLIC_MIN_RUNS or user.is_admin) else None
    return ref.to_json(detail=True) | {"available_on": apps.availability(session, platform, ref.spec),
                                       "typical": shown}


@router.post("", status_code=201)
def publish(body: AppPublishIn, user: User = Depends(current_user), session=Depends(get_session)):
    out = apps.publish(session, user, body.source, body.scope).to_json()
    session.commit()  # before the answer: an operator may review it at once
    return out


@router.post("/{name}/versions/{version}/review")
def review(name: str, version: str, body: AppReviewIn, user: User = Depends(current_user),
           session=Depends(get_session)):
    out = apps.review(session, user, name, version, body.approve, body.note).to_json()
    session.commit()
    return out


@router.post("/{name}/runs", status_code=201)
async def run(name: str, body: AppRunIn, user: User = Depends(current_user),
              platform: Platform = Depends(get_platform)):
    """Submit a run (201, the job), or with dry_run the rendered script and resources (200)."""
    result = await run_in_threadpool(app_runs.run_app, platform, user.id, name, body.params, body.version,
                                     body.account, body.cluster, body.partition, routing_request(body.routing),
                                     body.dry_run, body.local_inputs)
    if isinstance(result, dict):
        return JSONResponse(result, status_code=200)
    with platform.db.session() as session:
        return job_out(session, session.get(Job, result.id))

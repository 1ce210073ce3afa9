"""/efficiency, /metrics and /monitoring/samples: job monitoring over HTTP."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ...services.platform import Platform
from ..deps import current_user, get_platform, get_session
from ..responses import errors

router = APIRouter(responses=errors(400, 401, 403, 404, 413, 422))


@router.get("/efficiency", tags=["jobs"])
def efficiency(limit: int = 50, user_name: str | None = Query(None, alias="user"), project: str | None = None,
               since: datetime | None = Query(None, alias="from"), until: datetime | None = Query(None, alias="to"),
               user=Depends(current_user), platform: Platform = Depends(get_platform), session=Depends(get_session)):
    """Ended jobs' CPU, memory and GPU efficiency and what the waste cost (like seff): yours, or a
    project's or another user's where your role allows; ``from``/``to`` bound the jobs' end time."""
    from ...services.monitoring.efficiency_report import efficiency_report

    def utc(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value

    return efficiency_report(session, platform, user, user=user_name, project=project, since=utc(since),
                             until=utc(until), limit=max(1, min(limit, 500)))


@router.post("/monitoring/samples", tags=["jobs"])
async def agent_samples(request: Request, platform: Platform = Depends(get_platform)):
    """Batches from a job's sampling agent (its own per-job token, not a user's)."""
    from fastapi.concurrency import run_in_threadpool

    from ...services.monitoring import monitoring

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else ""
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": "the body must be JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"detail": "the body must be a JSON object"}, status_code=400)
    return {"stored": await run_in_threadpool(monitoring.receive, platform, token, body)}

@router.get("/metrics", tags=["meta"], response_class=PlainTextResponse)
def metrics(user=Depends(current_user), session=Depends(get_session)):
    """Prometheus gauges: jobs by state, queue depth, utilization, health, samples stored (operators)."""
    from ...services.monitoring import metrics as exposition
    from ...services.tenancy import roles
    from ...services.errors import Forbidden

    if not roles.allowed(None, user, "cluster_admin"):
        raise Forbidden("/metrics needs the operator role (give the scraper an operator's token)")
    return PlainTextResponse(exposition.render(session), media_type="text/plain; version=0.0.4")

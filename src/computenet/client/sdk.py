"""ComputeNetClient: one method per endpoint, typed results, clear errors."""

from __future__ import annotations

import time
from typing import Iterator
from urllib.parse import quote

import httpx

from ..domain.states import JobState
from ..schemas import (ClusterOut, JobBatch, JobBatchResult, JobDetail, JobOut, JobSubmit, MeOut, NotificationOut,
                       OutputChunk, RoutingIn, UsageRowOut)
from .workspace import WorkspaceApi


class ApiError(Exception):
    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(f"{detail} (HTTP {status})")
        self.status = status
        self.detail = detail
        self.code = code  # the problem's stable code (docs/api.md), where the server gave one


def problem_error(response: httpx.Response) -> ApiError:
    """The server's problem (RFC 9457) as an ApiError: its detail, and its code for programs."""
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, response.text)
    if not isinstance(body, dict):
        return ApiError(response.status_code, str(body))
    detail = body.get("detail", response.text)
    return ApiError(response.status_code, detail if isinstance(detail, str) else str(detail), body.get("code"))


class ComputeNetClient(WorkspaceApi):
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        base = base_url.rstrip("/")
        base = base if base.endswith("/v1") else f"{base}/v1"  # the versioned API (the server's root paths are aliases)
        self.http = httpx.Client(base_url=base, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ComputeNetClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs) -> object:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self.http.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise problem_error(response)
        return response.json()

    # -- jobs -----------------------------------------------------------------
    def submit(self, script: str, args: list[str] | None = None, script_name: str | None = None,
               routing: RoutingIn | None = None, inputs: list[str] | None = None, *, wait: str = "native",
               idempotency_key: str | None = None) -> JobOut:
        """``inputs``: workspace files copied into the job's working directory before it starts.
        wait="native" (the default): returns once the cluster has the job (its native id set);
        wait="accepted": returns once the platform has it (SUBMITTING); a worker sends it on
        (wait_submitted() waits for that). A retry with the same ``idempotency_key`` returns the first job."""
        body = JobSubmit(script=script, args=args or [], script_name=script_name, routing=routing or RoutingIn(),
                         inputs=inputs or [], idempotency_key=idempotency_key)
        return JobOut.model_validate(self._call("POST", "/jobs", params={"wait": wait},
                                                json=body.model_dump(exclude_none=True)))

    def submit_many(self, jobs: list[JobSubmit | dict]) -> JobBatchResult:
        """Many jobs in one request (POST /jobs:batch), each accepted or refused on its own:
        per job its id, or the status and reason it was refused."""
        body = JobBatch(jobs=[j if isinstance(j, JobSubmit) else JobSubmit.model_validate(j) for j in jobs])
        return JobBatchResult.model_validate(self._call("POST", "/jobs:batch",
                                                        json=body.model_dump(exclude_none=True)))

    def wait_submitted(self, job_id: int, timeout: float = 60.0, interval: float = 0.2) -> JobOut:
        """Poll until an accepted job has left SUBMITTING (its native id, or withdrawn), or the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            job = JobOut.model_validate(self._call("GET", f"/jobs/{job_id}"))
            if job.state != JobState.SUBMITTING.value or time.monotonic() >= deadline:
                return job
            time.sleep(interval)

    def estimate(self, script: str, args: list[str] | None = None, routing: RoutingIn | None = None) -> dict:
        """Per candidate: feasible or why not, predicted start, price, ownership (nothing is submitted)."""
        body = JobSubmit(script=script, args=args or [], routing=routing or RoutingIn())
        return self._call("POST", "/jobs/estimate", json=body.model_dump())

    def jobs(self, active: bool = False, state: str | None = None, limit: int = 100, *, user: str | None = None,
             partition: str | None = None, cluster: str | None = None, name: str | None = None,
             start: str | None = None, end: str | None = None, before: int | None = None) -> list[JobOut]:
        """Newest first. state, user, partition, cluster, name: comma lists as squeue takes them (-t PD,R);
        start/end: ISO times (sacct -S/-E); before: the page after the job with this id."""
        params = {"active": active, "limit": limit, "state": state, "user": user, "partition": partition,
                  "cluster": cluster, "name": name, "start": start, "end": end, "before": before}
        params = {k: v for k, v in params.items() if v is not None and v != ""}
        return [JobOut.model_validate(j) for j in self._call("GET", "/jobs", params=params)]

    def job(self, job_id: int) -> JobDetail:
        return JobDetail.model_validate(self._call("GET", f"/jobs/{job_id}"))

    def stats(self, job_id: int) -> dict:
        """Samples over time, efficiency and the findings with their cost."""
        return self._call("GET", f"/jobs/{job_id}/stats")

    def stats_png(self, job_id: int) -> bytes:
        response = self.http.get(f"/jobs/{job_id}/stats.png")
        if response.status_code >= 400:
            raise problem_error(response)
        return response.content

    def efficiency(self, limit: int = 50, user: str | None = None, project: str | None = None,
                   since: str | None = None, until: str | None = None) -> list[dict]:
        params = {"limit": limit, "user": user, "project": project, "from": since, "to": until}
        return self._call("GET", "/efficiency", params={k: v for k, v in params.items() if v is not None})

    def cancel(self, job_id: int) -> JobOut:
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/cancel"))

    def hold(self, job_id: int) -> JobOut:
        """Keep a waiting job from starting (scontrol hold)."""
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/hold"))

    def release(self, job_id: int) -> JobOut:
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/release"))

    def requeue(self, job_id: int) -> JobOut:
        """Put a running job back in the queue to run again (scontrol requeue); each run is charged."""
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/requeue"))

    def update(self, job_id: int, time_limit: str | None = None, partition: str | None = None,
               name: str | None = None) -> JobOut:
        """scontrol update: a lower time limit (Slurm's formats), another partition while pending, a name."""
        body = {k: v for k, v in {"time_limit": time_limit, "partition": partition, "name": name}.items()
                if v is not None}
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/update", json=body))

    def output(self, job_id: int, stream: str = "stdout", offset: int = 0) -> OutputChunk:
        return OutputChunk.model_validate(
            self._call("GET", f"/jobs/{job_id}/output", params={"stream": stream, "offset": offset})
        )

    def follow(self, job_id: int, stream: str = "stdout", interval: float = 1.0,
               deadline: float | None = None) -> Iterator[str]:
        """Yield output as it grows until the job has ended and all is read."""
        offset = 0
        stop_at = time.monotonic() + deadline if deadline else None
        while True:
            chunk = self.output(job_id, stream, offset)
            if chunk.data:
                yield chunk.data
            offset = chunk.next_offset
            if chunk.finished and not chunk.data:
                return
            if stop_at and time.monotonic() > stop_at:
                return
            if not chunk.data:
                time.sleep(interval)

    def wait(self, job_id: int, timeout: float = 120.0, interval: float = 0.5, settled: bool = False) -> JobOut:
        """Poll until the job ends (and, if asked, is charged); raises on timeout."""
        stop_at = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if JobState(job.state).is_terminal and (job.settled or not settled):
                return job
            if time.monotonic() > stop_at:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout:.0f} s")
            time.sleep(interval)

    # -- the rest -------------------------------------------------------------
    def clusters(self) -> list[ClusterOut]:
        return [ClusterOut.model_validate(c) for c in self._call("GET", "/clusters")]

    def me(self, entries: int = 20) -> MeOut:
        return MeOut.model_validate(self._call("GET", "/accounts/me", params={"entries": entries}))

    def usage(self, by: str = "cluster", start: str | None = None, end: str | None = None) -> list[UsageRowOut]:
        params = {"by": by}
        if start:
            params["from"] = start
        if end:
            params["to"] = end
        return [UsageRowOut.model_validate(r) for r in self._call("GET", "/usage", params=params)]

    def statement(self, account: str, month: str) -> dict:
        return self._call("GET", f"/accounts/{account}/statements/{month}")

    def statement_file(self, account: str, month: str, fmt: str) -> bytes:
        """The statement as CSV or PDF bytes."""
        response = self.http.get(f"/accounts/{account}/statements/{month}", params={"format": fmt})
        if response.status_code >= 400:
            raise problem_error(response)
        return response.content

    def issue_invoice(self, account: str, month: str) -> dict:
        """The invoice of a closed month (issued on the first call, the same one after)."""
        return self._call("POST", f"/accounts/{account}/invoices/{month}")

    def invoice(self, account: str, month: str) -> dict:
        return self._call("GET", f"/accounts/{account}/invoices/{month}")

    def invoice_file(self, account: str, month: str, fmt: str, lang: str = "en") -> bytes:
        """An issued invoice as PDF or HTML bytes."""
        response = self.http.get(f"/accounts/{account}/invoices/{month}", params={"format": fmt, "lang": lang})
        if response.status_code >= 400:
            raise problem_error(response)
        return response.content

    def statement_csv(self, account: str, month: str) -> str:
        return self.statement_file(account, month, "csv").decode()

    def notification_preferences(self) -> dict:
        return self._call("GET", "/notifications/preferences")

    def set_notification_preferences(self, job_ended: str) -> dict:
        return self._call("PUT", "/notifications/preferences", json={"job_ended": job_ended})

    def notifications(self, unread: bool = False) -> list[NotificationOut]:
        return [NotificationOut.model_validate(n) for n in self._call("GET", "/notifications", params={"unread": unread})]

    def mark_read(self, notification_id: int) -> NotificationOut:
        return NotificationOut.model_validate(self._call("POST", f"/notifications/{notification_id}/read"))

    # -- webhook endpoints of a project, or of a whole tenant (docs/webhooks.md) ----------
    @staticmethod
    def _hooks(account: str | None, tenant: str | None) -> str:
        if (account is None) == (tenant is None):
            raise ValueError("name the account or the tenant whose webhooks these are (one of them)")
        if tenant is not None:
            return f"/tenants/{quote(tenant, safe='')}/webhooks"
        return f"/accounts/{quote(account, safe='')}/webhooks"

    def webhooks(self, account: str | None = None, *, tenant: str | None = None) -> list[dict]:
        return self._call("GET", self._hooks(account, tenant))

    def add_webhook(self, account: str | None, url: str, event_types: list[str], description: str = "", *,
                    tenant: str | None = None) -> dict:
        """The new endpoint, with its signing secret (shown this once)."""
        return self._call("POST", self._hooks(account, tenant),
                          json={"url": url, "event_types": event_types, "description": description})

    def remove_webhook(self, account: str | None, endpoint_id: int, *, tenant: str | None = None) -> dict:
        return self._call("DELETE", f"{self._hooks(account, tenant)}/{int(endpoint_id)}")

    def test_webhook(self, account: str | None, endpoint_id: int, *, tenant: str | None = None) -> dict:
        return self._call("POST", f"{self._hooks(account, tenant)}/{int(endpoint_id)}/test")

    def webhook_deliveries(self, account: str | None = None, endpoint: int | None = None, status: str | None = None,
                           limit: int = 50, *, tenant: str | None = None) -> list[dict]:
        params = {"limit": limit, **({"endpoint": endpoint} if endpoint else {}),
                  **({"status": status} if status else {})}
        return self._call("GET", f"{self._hooks(account, tenant)}/deliveries", params=params)

    # -- interactive sessions (JupyterLab, ...) -------------------------------------------
    def start_session(self, app: str, cores: int | None = None, hours: float | None = None,
                      params: dict | None = None, account: str | None = None, cluster: str | None = None) -> dict:
        body = {"app": app, "cores": cores, "hours": hours, "params": params or {}, "account": account,
                "cluster": cluster}
        return self._call("POST", "/sessions", json={k: v for k, v in body.items() if v is not None})

    def sessions(self, include_ended: bool = True) -> list[dict]:
        return self._call("GET", "/sessions", params={"all": include_ended})

    def session(self, session_id: int) -> dict:
        return self._call("GET", f"/sessions/{session_id}")

    def extend_session(self, session_id: int, minutes: int) -> dict:
        return self._call("PATCH", f"/sessions/{session_id}", json={"extend_minutes": minutes})

    def stop_session(self, session_id: int) -> dict:
        return self._call("DELETE", f"/sessions/{session_id}")

    def session_connect_url(self, session_id: int) -> str:
        """A one-time URL on the sessions' own origin (seconds of life, used once): opening it in a
        browser (or an HTTP client keeping cookies) gives the session's cookie there."""
        return self._call("POST", f"/sessions/{session_id}/ticket")["connect_url"]

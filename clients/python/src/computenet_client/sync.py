"""ComputeNetClient: the blocking client, one method per API call (see calls.py), typed answers."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterator, Mapping, TypeVar

import httpx

from . import calls
from . import models as m
from .calls import Call, RoutingLike, SubmitLike
from .errors import ApiError, problem_error
from .retry import RetryPolicy

T = TypeVar("T")
Progress = Callable[[int], None]  # called with the bytes just moved


def api_base(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"  # the versioned API (root paths are aliases)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def job_filters(active: bool, state: str | None, limit: int, user: str | None, partition: str | None,
                cluster: str | None, name: str | None, start: str | None, end: str | None,
                before: int | None) -> dict[str, Any]:
    return {"active": active, "limit": limit, "state": state, "user": user, "partition": partition,
            "cluster": cluster, "name": name, "start": start, "end": end, "before": before}


def missing_bytes(state: m.UploadState, size: int) -> int:
    chunk = state["chunk_size"]
    return sum(min(chunk, size - i * chunk) for i in state["missing"])


class ComputeNetClient:
    """``ComputeNetClient("https://computenet.example", token)``: every call goes to ``/v1``.

    Calls that may be repeated safely are retried on 429/502/503/504 and on connection failures, with
    back-off and the server's Retry-After (``retry=RetryPolicy(retries=0)`` turns that off)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=api_base(base_url), headers=headers, timeout=timeout, transport=transport)
        self.retry = retry or RetryPolicy()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ComputeNetClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------------------
    def _send(self, call: Call[Any], url: str | None = None) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.http.request(call.method, url or call.path, params=call.params, json=call.json,
                                             content=call.content, headers=dict(call.headers))
            except httpx.HTTPError as exc:
                pause = self.retry.delay(attempt, None) if self.retry.retryable_error(exc, call.idempotent) else None
                if pause is None:
                    raise ApiError(0, f"cannot reach {self.http.base_url}: {exc}") from None
            else:
                if response.status_code < 400:
                    return response
                retryable = self.retry.retryable_status(response.status_code, call.idempotent)
                pause = self.retry.delay(attempt, response) if retryable else None
                if pause is None:
                    raise problem_error(response)
            time.sleep(pause)
            attempt += 1

    def run(self, call: Call[T]) -> T:
        """Send one prepared call (calls.py) and read its answer."""
        return call.read(self._send(call))

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                content: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
        """Any API call no method covers (path under /v1): its JSON answer, untyped; retried as its method allows."""
        return self.run(calls.raw(method, path, params, json, content, headers))

    _call = request  # the name the CLI and older scripts use

    # -- jobs -----------------------------------------------------------------------------------------
    def submit(self, script: str, args: list[str] | None = None, script_name: str | None = None,
               routing: RoutingLike | None = None, inputs: list[str] | None = None, *, wait: str = "native",
               idempotency_key: str | None = None) -> m.JobOut:
        """``inputs``: workspace files copied into the job's working directory before it starts.
        wait="native" (the default): returns once the cluster has the job (its native id set);
        wait="accepted": returns once the platform has it (SUBMITTING); wait_submitted() waits for the rest.
        A retry with the same ``idempotency_key`` returns the first job (and makes the call safe to retry)."""
        return self.run(calls.submit(script, args, script_name, routing, inputs, wait, idempotency_key))

    def submit_many(self, jobs: list[SubmitLike]) -> m.JobBatchResult:
        """Many jobs in one request (POST /jobs:batch), each accepted or refused on its own."""
        return self.run(calls.submit_many(jobs))

    def wait_submitted(self, job_id: int, timeout: float = 60.0, interval: float = 0.2) -> m.JobOut:
        """Poll until an accepted job has left SUBMITTING (its native id, or withdrawn), or the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.run(calls.job_brief(job_id))
            if job.state != "SUBMITTING" or time.monotonic() >= deadline:
                return job
            time.sleep(interval)

    def estimate(self, script: str, args: list[str] | None = None, routing: RoutingLike | None = None) -> m.Estimate:
        """Per candidate: feasible or why not, predicted start, price, ownership (nothing is submitted)."""
        return self.run(calls.estimate(script, args, routing))

    def jobs(self, active: bool = False, state: str | None = None, limit: int = 100, *, user: str | None = None,
             partition: str | None = None, cluster: str | None = None, name: str | None = None,
             start: str | None = None, end: str | None = None, before: int | None = None) -> list[m.JobOut]:
        """One page, newest first. state, user, partition, cluster, name: comma lists as squeue takes them;
        start/end: ISO times (sacct -S/-E); before: the page after the job with this id. iter_jobs() pages on."""
        return self.run(calls.jobs(job_filters(active, state, limit, user, partition, cluster, name, start, end,
                                               before)))

    def iter_jobs(self, active: bool = False, state: str | None = None, page_size: int = 100, *,
                  user: str | None = None, partition: str | None = None, cluster: str | None = None,
                  name: str | None = None, start: str | None = None, end: str | None = None) -> Iterator[m.JobOut]:
        """Every matching job, newest first, page by page (following ``Link: rel="next"``)."""
        call = calls.jobs(job_filters(active, state, page_size, user, partition, cluster, name, start, end, None))
        url: str | None = None
        while True:
            response = self._send(call, url)
            yield from call.read(response)
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url = str(response.request.url.join(following))
            call = Call("GET", call.path, call.read)  # the link carries the query

    def job(self, job_id: int) -> m.JobDetail:
        return self.run(calls.job(job_id))

    def stats(self, job_id: int) -> m.JsonObject:
        """Samples over time, efficiency and the findings with their cost."""
        return self.run(calls.stats(job_id))

    def stats_png(self, job_id: int) -> bytes:
        return self.run(calls.stats_png(job_id))

    def efficiency(self, limit: int = 50, user: str | None = None, project: str | None = None,
                   since: str | None = None, until: str | None = None) -> list[m.JsonObject]:
        return self.run(calls.efficiency(limit, user, project, since, until))

    def cancel(self, job_id: int) -> m.JobOut:
        return self.run(calls.job_action(job_id, "cancel"))

    def hold(self, job_id: int) -> m.JobOut:
        """Keep a waiting job from starting (scontrol hold)."""
        return self.run(calls.job_action(job_id, "hold"))

    def release(self, job_id: int) -> m.JobOut:
        return self.run(calls.job_action(job_id, "release"))

    def requeue(self, job_id: int) -> m.JobOut:
        """Put a running job back in the queue to run again (scontrol requeue); each run is charged."""
        return self.run(calls.job_action(job_id, "requeue"))

    def update(self, job_id: int, time_limit: str | None = None, partition: str | None = None,
               name: str | None = None) -> m.JobOut:
        """scontrol update: a lower time limit (Slurm's formats), another partition while pending, a name."""
        body = {k: v for k, v in {"time_limit": time_limit, "partition": partition, "name": name}.items()
                if v is not None}
        return self.run(calls.job_action(job_id, "update", body))

    def output(self, job_id: int, stream: str = "stdout", offset: int = 0) -> m.OutputChunk:
        return self.run(calls.output(job_id, stream, offset))

    def follow(self, job_id: int, stream: str = "stdout", interval: float = 1.0,
               deadline: float | None = None) -> Iterator[str]:
        """Yield output as it grows until the job has ended and all is read (or ``deadline`` seconds pass)."""
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

    def job_events(self, job_id: int, interval: float = 1.0, timeout: float | None = None) -> Iterator[m.JobEventOut]:
        """Yield the job's state changes as they happen, from its first, until it has ended."""
        seen = 0
        stop_at = time.monotonic() + timeout if timeout else None
        while True:
            job = self.job(job_id)
            yield from job.events[seen:]
            seen = len(job.events)
            if job.is_terminal or (stop_at and time.monotonic() > stop_at):
                return
            time.sleep(interval)

    def wait(self, job_id: int, timeout: float = 120.0, interval: float = 0.5, settled: bool = False) -> m.JobOut:
        """Poll until the job ends (and, if asked, is charged); raises TimeoutError at the deadline."""
        stop_at = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.is_terminal and (job.settled or not settled):
                return job
            if time.monotonic() > stop_at:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout:.0f} s")
            time.sleep(interval)

    # -- clusters, accounts, billing, notifications ---------------------------------------------------------
    def clusters(self) -> list[m.ClusterOut]:
        return self.run(calls.clusters())

    def me(self, entries: int = 20) -> m.MeOut:
        return self.run(calls.me(entries))

    def usage(self, by: str = "cluster", start: str | None = None, end: str | None = None) -> list[m.UsageRowOut]:
        return self.run(calls.usage(by, start, end))

    def statement(self, account: str, month: str) -> m.JsonObject:
        return self.run(calls.statement(account, month))

    def statement_file(self, account: str, month: str, fmt: str) -> bytes:
        """The statement as CSV or PDF bytes."""
        return self.run(calls.statement_file(account, month, fmt))

    def statement_csv(self, account: str, month: str) -> str:
        return self.statement_file(account, month, "csv").decode()

    def issue_invoice(self, account: str, month: str) -> m.JsonObject:
        """The invoice of a closed month (issued on the first call, the same one after)."""
        return self.run(calls.issue_invoice(account, month))

    def invoice(self, account: str, month: str) -> m.JsonObject:
        return self.run(calls.invoice(account, month))

    def invoice_file(self, account: str, month: str, fmt: str, lang: str = "en") -> bytes:
        """An issued invoice as PDF or HTML bytes."""
        return self.run(calls.invoice_file(account, month, fmt, lang))

    def notification_preferences(self) -> m.PreferencesOut:
        return self.run(calls.notification_preferences())

    def set_notification_preferences(self, job_ended: str) -> m.PreferencesOut:
        return self.run(calls.set_notification_preferences(job_ended))

    def notifications(self, unread: bool = False) -> list[m.NotificationOut]:
        return self.run(calls.notifications(unread))

    def mark_read(self, notification_id: int) -> m.NotificationOut:
        return self.run(calls.mark_read(notification_id))

    # -- webhook endpoints of a project, or of a whole tenant (docs/webhooks.md) ---------------------------
    def webhooks(self, account: str | None = None, *, tenant: str | None = None) -> list[m.WebhookEndpoint]:
        return self.run(calls.webhooks(account, tenant))

    def add_webhook(self, account: str | None, url: str, event_types: list[str], description: str = "", *,
                    tenant: str | None = None) -> m.WebhookEndpoint:
        """The new endpoint, with its signing secret (shown this once)."""
        return self.run(calls.add_webhook(account, url, event_types, description, tenant))

    def remove_webhook(self, account: str | None, endpoint_id: int, *, tenant: str | None = None) -> m.WebhookRemoved:
        return self.run(calls.remove_webhook(account, endpoint_id, tenant))

    def test_webhook(self, account: str | None, endpoint_id: int, *,
                     tenant: str | None = None) -> m.WebhookTestResult:
        return self.run(calls.test_webhook(account, endpoint_id, tenant))

    def webhook_deliveries(self, account: str | None = None, endpoint: int | None = None, status: str | None = None,
                           limit: int = 50, *, tenant: str | None = None) -> list[m.WebhookDelivery]:
        return self.run(calls.webhook_deliveries(account, endpoint, status, limit, tenant))

    # -- interactive sessions (JupyterLab, ...) --------------------------------------------------------------
    def start_session(self, app: str, cores: int | None = None, hours: float | None = None,
                      params: dict[str, Any] | None = None, account: str | None = None, cluster: str | None = None,
                      partition: str | None = None) -> m.SessionOut:
        return self.run(calls.start_session({"app": app, "cores": cores, "hours": hours, "params": params or {},
                                             "account": account, "cluster": cluster, "partition": partition}))

    def sessions(self, include_ended: bool = True) -> list[m.SessionOut]:
        return self.run(calls.sessions(include_ended))

    def session(self, session_id: int) -> m.SessionOut:
        return self.run(calls.session(session_id))

    def extend_session(self, session_id: int, minutes: int) -> m.SessionOut:
        return self.run(calls.extend_session(session_id, minutes))

    def stop_session(self, session_id: int) -> m.SessionOut:
        return self.run(calls.stop_session(session_id))

    def session_connect_url(self, session_id: int) -> str:
        """A one-time URL on the sessions' own origin (seconds of life, used once): opening it in a
        browser (or an HTTP client keeping cookies) gives the session's cookie there."""
        return self.run(calls.session_connect_url(session_id))

    # -- files ----------------------------------------------------------------------------------------------
    def ls(self, path: str = "") -> list[m.FileEntry]:
        return self.run(calls.ls(path))

    def mkdir(self, path: str) -> str:
        return self.run(calls.mkdir(path))

    def mv(self, src: str, dst: str, overwrite: bool = False) -> str:
        return self.run(calls.mv(src, dst, overwrite))

    def rm(self, path: str, recursive: bool = False) -> int:
        return self.run(calls.rm(path, recursive))

    def quota(self) -> list[m.QuotaRow]:
        return self.run(calls.quota())

    def begin_upload(self, path: str, size: int, sha256: str, overwrite: bool = False) -> m.UploadState:
        return self.run(calls.begin_upload(path, size, sha256, overwrite))

    def upload(self, local: str | Path, path: str, overwrite: bool = False, progress: Progress | None = None,
               upload_id: str | None = None, parallel: int = 3) -> m.StoredFile:
        """Send a local file into the workspace in checksummed chunks; a second upload of the same file
        (or with the same ``upload_id``) sends only the chunks the server lacks."""
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"{local} is not a file")
        size = local.stat().st_size
        if upload_id:
            state = self.run(calls.upload_state(upload_id))
        else:  # the server goes on with an unfinished upload of the same file to the same path
            state = self.begin_upload(path, size, file_sha256(local), overwrite)
        if progress and (upload_id or len(state["missing"]) < state["chunks"]):
            progress(size - missing_bytes(state, size))
        chunk = state["chunk_size"]

        def send(index: int) -> None:
            with open(local, "rb") as handle:
                handle.seek(index * chunk)
                data = handle.read(chunk)
            chunk_call = calls.put_chunk(state["id"], index, data, hashlib.sha256(data).hexdigest())
            # through _call: scripts and tests that wrap _call see every chunk
            self._call(chunk_call.method, chunk_call.path, content=data, headers=chunk_call.headers)
            if progress:
                progress(len(data))

        # a few chunks in flight: the server checks and writes one while the next is on the wire
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(state["missing"]) or 1))) as pool:
            for future in [pool.submit(send, index) for index in state["missing"]]:
                future.result()  # the first failure stops the upload (it resumes from what arrived)
        return self.run(calls.complete_upload(state["id"]))

    def download(self, path: str, local: str | Path, progress: Progress | None = None) -> m.Downloaded:
        """Fetch a workspace file (resuming a partial ``local``.part); checks its SHA-256."""
        local = Path(local)
        partial = local.with_name(local.name + ".part")
        start = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        with self.http.stream("GET", "/files/content", params={"path": path}, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise problem_error(response)
            expected = response.headers.get("X-Checksum-SHA256")
            with open(partial, "ab" if response.status_code == 206 else "wb") as out:
                for block in response.iter_bytes(1024 * 1024):
                    out.write(block)
                    if progress:
                        progress(len(block))
        return finish_download(path, local, partial, expected)

    # -- apps -----------------------------------------------------------------------------------------------
    def apps(self, all_versions: bool = False) -> list[m.AppSummary]:
        return self.run(calls.apps(all_versions))

    def app(self, name: str, version: str | None = None) -> m.AppSummary:
        return self.run(calls.app(name, version))

    def publish_app(self, source: str, scope: str = "platform") -> m.AppSummary:
        return self.run(calls.publish_app(source, scope))

    def review_app(self, name: str, version: str, approve: bool, note: str = "") -> m.AppSummary:
        return self.run(calls.review_app(name, version, approve, note))

    def run_app(self, name: str, params: dict[str, Any], version: str | None = None, account: str | None = None,
                cluster: str | None = None, partition: str | None = None, routing: RoutingLike | None = None,
                dry_run: bool = False, local_inputs: dict[str, int] | None = None) -> m.JobOut | m.JsonObject:
        """``local_inputs`` (dry run): parameter -> size of a local file named by the parameter, not uploaded.
        A dry run answers the plan (a dict); a run, the job."""
        return self.run(calls.run_app(name, app_run_body(params, version, account, cluster, partition, routing,
                                                         dry_run, local_inputs), dry_run))


def app_run_body(params: Mapping[str, Any], version: str | None, account: str | None, cluster: str | None,
                 partition: str | None, routing: RoutingLike | None, dry_run: bool,
                 local_inputs: dict[str, int] | None) -> dict[str, Any]:
    route = calls._dump(routing) if routing is not None else {}
    return {"params": dict(params), "version": version, "account": account, "cluster": cluster,
            "partition": partition, "routing": m.RoutingIn.model_validate(route).model_dump(mode="json"),
            "dry_run": dry_run, "local_inputs": local_inputs or {}}


def finish_download(path: str, local: Path, partial: Path, expected: str | None) -> m.Downloaded:
    digest = file_sha256(partial)
    if expected and digest != expected:
        partial.unlink()
        raise ApiError(0, f"{path}: downloaded SHA-256 {digest} differs from the server's {expected}")
    os.replace(partial, local)
    return {"path": path, "local": str(local), "size": local.stat().st_size, "sha256": digest,
            "verified": bool(expected)}

"""AsyncComputeNetClient: the same calls as ComputeNetClient (calls.py), awaited; for asyncio programs."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from types import TracebackType
from typing import Any, AsyncIterator, Mapping, TypeVar

import httpx

from . import calls
from . import models as m
from .calls import Call, RoutingLike, SubmitLike
from .errors import ApiError, problem_error
from .retry import RetryPolicy
from .sync import Progress, api_base, app_run_body, file_sha256, finish_download, job_filters, missing_bytes

T = TypeVar("T")


class AsyncComputeNetClient:
    """``async with AsyncComputeNetClient(url, token) as cn: job = await cn.submit(...)``."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 120.0,
                 transport: httpx.AsyncBaseTransport | None = None, retry: RetryPolicy | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=api_base(base_url), headers=headers, timeout=timeout,
                                      transport=transport)
        self.retry = retry or RetryPolicy()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncComputeNetClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _send(self, call: Call[Any], url: str | None = None) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self.http.request(call.method, url or call.path, params=call.params,
                                                   json=call.json, content=call.content, headers=dict(call.headers))
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
            await asyncio.sleep(pause)
            attempt += 1

    async def run(self, call: Call[T]) -> T:
        return call.read(await self._send(call))

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                      content: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
        """Any API call no method covers (path under /v1): its JSON answer, untyped; retried as its method allows."""
        return await self.run(calls.raw(method, path, params, json, content, headers))

    _call = request  # the name the CLI and older scripts use

    # -- jobs -----------------------------------------------------------------------------------------
    async def submit(self, script: str, args: list[str] | None = None, script_name: str | None = None,
                     routing: RoutingLike | None = None, inputs: list[str] | None = None, *, wait: str = "native",
                     idempotency_key: str | None = None) -> m.JobOut:
        return await self.run(calls.submit(script, args, script_name, routing, inputs, wait, idempotency_key))

    async def submit_many(self, jobs: list[SubmitLike]) -> m.JobBatchResult:
        return await self.run(calls.submit_many(jobs))

    async def wait_submitted(self, job_id: int, timeout: float = 60.0, interval: float = 0.2) -> m.JobOut:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.run(calls.job_brief(job_id))
            if job.state != "SUBMITTING" or time.monotonic() >= deadline:
                return job
            await asyncio.sleep(interval)

    async def estimate(self, script: str, args: list[str] | None = None,
                       routing: RoutingLike | None = None) -> m.Estimate:
        return await self.run(calls.estimate(script, args, routing))

    async def jobs(self, active: bool = False, state: str | None = None, limit: int = 100, *,
                   user: str | None = None, partition: str | None = None, cluster: str | None = None,
                   name: str | None = None, start: str | None = None, end: str | None = None,
                   before: int | None = None) -> list[m.JobOut]:
        return await self.run(calls.jobs(job_filters(active, state, limit, user, partition, cluster, name, start,
                                                     end, before)))

    async def iter_jobs(self, active: bool = False, state: str | None = None, page_size: int = 100, *,
                        user: str | None = None, partition: str | None = None, cluster: str | None = None,
                        name: str | None = None, start: str | None = None,
                        end: str | None = None) -> AsyncIterator[m.JobOut]:
        call = calls.jobs(job_filters(active, state, page_size, user, partition, cluster, name, start, end, None))
        url: str | None = None
        while True:
            response = await self._send(call, url)
            for job in call.read(response):
                yield job
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url = str(response.request.url.join(following))
            call = Call("GET", call.path, call.read)

    async def job(self, job_id: int) -> m.JobDetail:
        return await self.run(calls.job(job_id))

    async def stats(self, job_id: int) -> m.JsonObject:
        return await self.run(calls.stats(job_id))

    async def stats_png(self, job_id: int) -> bytes:
        return await self.run(calls.stats_png(job_id))

    async def efficiency(self, limit: int = 50, user: str | None = None, project: str | None = None,
                         since: str | None = None, until: str | None = None) -> list[m.JsonObject]:
        return await self.run(calls.efficiency(limit, user, project, since, until))

    async def cancel(self, job_id: int) -> m.JobOut:
        return await self.run(calls.job_action(job_id, "cancel"))

    async def hold(self, job_id: int) -> m.JobOut:
        return await self.run(calls.job_action(job_id, "hold"))

    async def release(self, job_id: int) -> m.JobOut:
        return await self.run(calls.job_action(job_id, "release"))

    async def requeue(self, job_id: int) -> m.JobOut:
        return await self.run(calls.job_action(job_id, "requeue"))

    async def update(self, job_id: int, time_limit: str | None = None, partition: str | None = None,
                     name: str | None = None) -> m.JobOut:
        body = {k: v for k, v in {"time_limit": time_limit, "partition": partition, "name": name}.items()
                if v is not None}
        return await self.run(calls.job_action(job_id, "update", body))

    async def output(self, job_id: int, stream: str = "stdout", offset: int = 0) -> m.OutputChunk:
        return await self.run(calls.output(job_id, stream, offset))

    async def follow(self, job_id: int, stream: str = "stdout", interval: float = 1.0,
                     deadline: float | None = None) -> AsyncIterator[str]:
        offset = 0
        stop_at = time.monotonic() + deadline if deadline else None
        while True:
            chunk = await self.output(job_id, stream, offset)
            if chunk.data:
                yield chunk.data
            offset = chunk.next_offset
            if chunk.finished and not chunk.data:
                return
            if stop_at and time.monotonic() > stop_at:
                return
            if not chunk.data:
                await asyncio.sleep(interval)

    async def job_events(self, job_id: int, interval: float = 1.0,
                         timeout: float | None = None) -> AsyncIterator[m.JobEventOut]:
        seen = 0
        stop_at = time.monotonic() + timeout if timeout else None
        while True:
            job = await self.job(job_id)
            for event in job.events[seen:]:
                yield event
            seen = len(job.events)
            if job.is_terminal or (stop_at and time.monotonic() > stop_at):
                return
            await asyncio.sleep(interval)

    async def wait(self, job_id: int, timeout: float = 120.0, interval: float = 0.5,
                   settled: bool = False) -> m.JobOut:
        stop_at = time.monotonic() + timeout
        while True:
            job = await self.job(job_id)
            if job.is_terminal and (job.settled or not settled):
                return job
            if time.monotonic() > stop_at:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout:.0f} s")
            await asyncio.sleep(interval)

    # -- clusters, accounts, billing, notifications ---------------------------------------------------------
    async def clusters(self) -> list[m.ClusterOut]:
        return await self.run(calls.clusters())

    async def me(self, entries: int = 20) -> m.MeOut:
        return await self.run(calls.me(entries))

    async def usage(self, by: str = "cluster", start: str | None = None,
                    end: str | None = None) -> list[m.UsageRowOut]:
        return await self.run(calls.usage(by, start, end))

    async def statement(self, account: str, month: str) -> m.JsonObject:
        return await self.run(calls.statement(account, month))

    async def statement_file(self, account: str, month: str, fmt: str) -> bytes:
        return await self.run(calls.statement_file(account, month, fmt))

    async def statement_csv(self, account: str, month: str) -> str:
        return (await self.statement_file(account, month, "csv")).decode()

    async def issue_invoice(self, account: str, month: str) -> m.JsonObject:
        """The invoice of a closed month (issued on the first call, the same one after)."""
        return await self.run(calls.issue_invoice(account, month))

    async def invoice(self, account: str, month: str) -> m.JsonObject:
        return await self.run(calls.invoice(account, month))

    async def invoice_file(self, account: str, month: str, fmt: str, lang: str = "en") -> bytes:
        """An issued invoice as PDF or HTML bytes."""
        return await self.run(calls.invoice_file(account, month, fmt, lang))

    async def notification_preferences(self) -> m.PreferencesOut:
        return await self.run(calls.notification_preferences())

    async def set_notification_preferences(self, job_ended: str) -> m.PreferencesOut:
        return await self.run(calls.set_notification_preferences(job_ended))

    async def notifications(self, unread: bool = False) -> list[m.NotificationOut]:
        return await self.run(calls.notifications(unread))

    async def mark_read(self, notification_id: int) -> m.NotificationOut:
        return await self.run(calls.mark_read(notification_id))

    # -- webhooks (of a project, or of a whole tenant) ---------------------------------------------------
    async def webhooks(self, account: str | None = None, *, tenant: str | None = None) -> list[m.WebhookEndpoint]:
        return await self.run(calls.webhooks(account, tenant))

    async def add_webhook(self, account: str | None, url: str, event_types: list[str],
                          description: str = "", *, tenant: str | None = None) -> m.WebhookEndpoint:
        return await self.run(calls.add_webhook(account, url, event_types, description, tenant))

    async def remove_webhook(self, account: str | None, endpoint_id: int, *,
                             tenant: str | None = None) -> m.WebhookRemoved:
        return await self.run(calls.remove_webhook(account, endpoint_id, tenant))

    async def test_webhook(self, account: str | None, endpoint_id: int, *,
                           tenant: str | None = None) -> m.WebhookTestResult:
        return await self.run(calls.test_webhook(account, endpoint_id, tenant))

    async def webhook_deliveries(self, account: str | None = None, endpoint: int | None = None,
                                 status: str | None = None, limit: int = 50, *,
                                 tenant: str | None = None) -> list[m.WebhookDelivery]:
        return await self.run(calls.webhook_deliveries(account, endpoint, status, limit, tenant))

    # -- interactive sessions -----------------------------------------------------------------------------
    async def start_session(self, app: str, cores: int | None = None, hours: float | None = None,
                            params: dict[str, Any] | None = None, account: str | None = None,
                            cluster: str | None = None, partition: str | None = None) -> m.SessionOut:
        return await self.run(calls.start_session({"app": app, "cores": cores, "hours": hours,
                                                   "params": params or {}, "account": account, "cluster": cluster,
                                                   "partition": partition}))

    async def sessions(self, include_ended: bool = True) -> list[m.SessionOut]:
        return await self.run(calls.sessions(include_ended))

    async def session(self, session_id: int) -> m.SessionOut:
        return await self.run(calls.session(session_id))

    async def extend_session(self, session_id: int, minutes: int) -> m.SessionOut:
        return await self.run(calls.extend_session(session_id, minutes))

    async def stop_session(self, session_id: int) -> m.SessionOut:
        return await self.run(calls.stop_session(session_id))

    async def session_connect_url(self, session_id: int) -> str:
        return await self.run(calls.session_connect_url(session_id))

    # -- files ----------------------------------------------------------------------------------------------
    async def ls(self, path: str = "") -> list[m.FileEntry]:
        return await self.run(calls.ls(path))

    async def mkdir(self, path: str) -> str:
        return await self.run(calls.mkdir(path))

    async def mv(self, src: str, dst: str, overwrite: bool = False) -> str:
        return await self.run(calls.mv(src, dst, overwrite))

    async def rm(self, path: str, recursive: bool = False) -> int:
        return await self.run(calls.rm(path, recursive))

    async def quota(self) -> list[m.QuotaRow]:
        return await self.run(calls.quota())

    async def begin_upload(self, path: str, size: int, sha256: str, overwrite: bool = False) -> m.UploadState:
        return await self.run(calls.begin_upload(path, size, sha256, overwrite))

    async def upload(self, local: str | Path, path: str, overwrite: bool = False, progress: Progress | None = None,
                     upload_id: str | None = None, parallel: int = 3) -> m.StoredFile:
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"{local} is not a file")
        size = local.stat().st_size
        if upload_id:
            state = await self.run(calls.upload_state(upload_id))
        else:
            state = await self.begin_upload(path, size, await asyncio.to_thread(file_sha256, local), overwrite)
        if progress and (upload_id or len(state["missing"]) < state["chunks"]):
            progress(size - missing_bytes(state, size))
        chunk = state["chunk_size"]
        gate = asyncio.Semaphore(max(1, parallel))

        async def send(index: int) -> None:
            async with gate:
                def read() -> bytes:
                    with open(local, "rb") as handle:
                        handle.seek(index * chunk)
                        return handle.read(chunk)
                data = await asyncio.to_thread(read)
                await self.run(calls.put_chunk(state["id"], index, data, hashlib.sha256(data).hexdigest()))
                if progress:
                    progress(len(data))

        await asyncio.gather(*(send(index) for index in state["missing"]))
        return await self.run(calls.complete_upload(state["id"]))

    async def download(self, path: str, local: str | Path, progress: Progress | None = None) -> m.Downloaded:
        local = Path(local)
        partial = local.with_name(local.name + ".part")
        start = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        async with self.http.stream("GET", "/files/content", params={"path": path}, headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()
                raise problem_error(response)
            expected = response.headers.get("X-Checksum-SHA256")
            with open(partial, "ab" if response.status_code == 206 else "wb") as out:
                async for block in response.aiter_bytes(1024 * 1024):
                    out.write(block)
                    if progress:
                        progress(len(block))
        return await asyncio.to_thread(finish_download, path, local, partial, expected)

    # -- apps -----------------------------------------------------------------------------------------------
    async def apps(self, all_versions: bool = False) -> list[m.AppSummary]:
        return await self.run(calls.apps(all_versions))

    async def app(self, name: str, version: str | None = None) -> m.AppSummary:
        return await self.run(calls.app(name, version))

    async def publish_app(self, source: str, scope: str = "platform") -> m.AppSummary:
        return await self.run(calls.publish_app(source, scope))

    async def review_app(self, name: str, version: str, approve: bool, note: str = "") -> m.AppSummary:
        return await self.run(calls.review_app(name, version, approve, note))

    async def run_app(self, name: str, params: dict[str, Any], version: str | None = None,
                      account: str | None = None, cluster: str | None = None, partition: str | None = None,
                      routing: RoutingLike | None = None, dry_run: bool = False,
                      local_inputs: dict[str, int] | None = None) -> m.JobOut | m.JsonObject:
        return await self.run(calls.run_app(name, app_run_body(params, version, account, cluster, partition,
                                                               routing, dry_run, local_inputs), dry_run))

"""Every API call once, as data: method, path, parameters and how to read the answer.

The sync and the async client send the same ``Call`` objects, so the two cannot disagree on a path or
a model; each only adds the waiting (time.sleep or asyncio.sleep) and the sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from . import models as m
from .retry import IDEMPOTENT_METHODS

T = TypeVar("T")
RoutingLike = m.RoutingIn | BaseModel | Mapping[str, Any]  # the server's own RoutingIn is accepted too
SubmitLike = m.JobSubmit | BaseModel | Mapping[str, Any]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    safe: bool | None = None  # may be sent twice (nothing happens twice); None: as its method says

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT_METHODS if self.safe is None else self.safe


class _Model(Generic[T]):
    """Reads an answer into ``model`` (kept on the reader: tests compare it with the server's model)."""

    def __init__(self, model: type[T]) -> None:
        self.model = model
        self.adapter: TypeAdapter[T] = TypeAdapter(model)

    def __call__(self, response: httpx.Response) -> T:
        return self.adapter.validate_json(response.content)


def _model(model: type[T]) -> _Model[T]:
    return _Model(model)


def _json(kind: Any) -> Callable[[httpx.Response], Any]:
    """Free-form JSON typed by a TypedDict (not validated: new fields pass through)."""
    return lambda response: response.json()


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _dump(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in value.items() if v is not None}


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v != ""}


def _seg(text: str) -> str:
    return quote(text, safe="")


def raw(method: str, path: str, params: Mapping[str, Any] | None = None, json: Any = None,
        content: bytes | None = None, headers: Mapping[str, str] | None = None) -> Call[Any]:
    """A call no method covers: its JSON answer, untyped."""
    return Call(method.upper(), path, _json(Any), params=params, json=json, content=content, headers=headers or {})


# -- jobs ---------------------------------------------------------------------------------------------
def submit(script: str, args: list[str] | None, script_name: str | None, routing: RoutingLike | None,
           inputs: list[str] | None, wait: str, idempotency_key: str | None) -> Call[m.JobOut]:
    body = m.JobSubmit(script=script, args=args or [], script_name=script_name, inputs=inputs or [],
                       routing=m.RoutingIn.model_validate(_dump(routing)) if routing is not None else m.RoutingIn(),
                       idempotency_key=idempotency_key)
    # with a key the server returns the first job to a repeat, so a lost answer may be asked again
    return Call("POST", "/jobs", _model(m.JobOut), params={"wait": wait}, json=_dump(body),
                safe=idempotency_key is not None)


def submit_many(jobs: list[SubmitLike]) -> Call[m.JobBatchResult]:
    body = [_dump(m.JobSubmit.model_validate(_dump(j))) for j in jobs]
    keyed = all(item.get("idempotency_key") for item in body)
    return Call("POST", "/jobs:batch", _model(m.JobBatchResult), json={"jobs": body}, safe=keyed)


def estimate(script: str, args: list[str] | None, routing: RoutingLike | None) -> Call[m.Estimate]:
    body = m.JobSubmit(script=script, args=args or [],
                       routing=m.RoutingIn.model_validate(_dump(routing)) if routing is not None else m.RoutingIn())
    return Call("POST", "/jobs/estimate", _json(m.Estimate), json=_dump(body), safe=True)


def jobs(params: Mapping[str, Any]) -> Call[list[m.JobOut]]:
    return Call("GET", "/jobs", _model(list[m.JobOut]), params=_drop_none(params))


def job(job_id: int) -> Call[m.JobDetail]:
    return Call("GET", f"/jobs/{int(job_id)}", _model(m.JobDetail))


def job_brief(job_id: int) -> Call[m.JobOut]:
    return Call("GET", f"/jobs/{int(job_id)}", _model(m.JobOut))


def job_action(job_id: int, action: str, body: Mapping[str, Any] | None = None) -> Call[m.JobOut]:
    return Call("POST", f"/jobs/{int(job_id)}/{action}", _model(m.JobOut), json=body)


def output(job_id: int, stream: str, offset: int) -> Call[m.OutputChunk]:
    return Call("GET", f"/jobs/{int(job_id)}/output", _model(m.OutputChunk),
                params={"stream": stream, "offset": offset})


def stats(job_id: int) -> Call[m.JsonObject]:
    return Call("GET", f"/jobs/{int(job_id)}/stats", _json(m.JsonObject))


def stats_png(job_id: int) -> Call[bytes]:
    return Call("GET", f"/jobs/{int(job_id)}/stats.png", _bytes)


def efficiency(limit: int, user: str | None, project: str | None, since: str | None,
               until: str | None) -> Call[list[m.JsonObject]]:
    params = {"limit": limit, "user": user, "project": project, "from": since, "to": until}
    return Call("GET", "/efficiency", _json(list[m.JsonObject]), params=_drop_none(params))


# -- clusters, accounts, billing, notifications -------------------------------------------------------------
def clusters() -> Call[list[m.ClusterOut]]:
    return Call("GET", "/clusters", _model(list[m.ClusterOut]))


def me(entries: int) -> Call[m.MeOut]:
    return Call("GET", "/accounts/me", _model(m.MeOut), params={"entries": entries})


def usage(by: str, start: str | None, end: str | None) -> Call[list[m.UsageRowOut]]:
    return Call("GET", "/usage", _model(list[m.UsageRowOut]), params=_drop_none({"by": by, "from": start, "to": end}))


def statement(account: str, month: str) -> Call[m.JsonObject]:
    return Call("GET", f"/accounts/{_seg(account)}/statements/{_seg(month)}", _json(m.JsonObject))


def statement_file(account: str, month: str, fmt: str) -> Call[bytes]:
    return Call("GET", f"/accounts/{_seg(account)}/statements/{_seg(month)}", _bytes, params={"format": fmt})


def issue_invoice(account: str, month: str) -> Call[m.JsonObject]:
    # issuing is idempotent (the same invoice on every call): safe to repeat after a lost answer
    return Call("POST", f"/accounts/{_seg(account)}/invoices/{_seg(month)}", _json(m.JsonObject), safe=True)


def invoice(account: str, month: str) -> Call[m.JsonObject]:
    return Call("GET", f"/accounts/{_seg(account)}/invoices/{_seg(month)}", _json(m.JsonObject))


def invoice_file(account: str, month: str, fmt: str, lang: str) -> Call[bytes]:
    return Call("GET", f"/accounts/{_seg(account)}/invoices/{_seg(month)}", _bytes,
                params={"format": fmt, "lang": lang})


def notification_preferences() -> Call[m.PreferencesOut]:
    return Call("GET", "/notifications/preferences", _model(m.PreferencesOut))


def set_notification_preferences(job_ended: str) -> Call[m.PreferencesOut]:
    return Call("PUT", "/notifications/preferences", _model(m.PreferencesOut), json={"job_ended": job_ended})


def notifications(unread: bool) -> Call[list[m.NotificationOut]]:
    return Call("GET", "/notifications", _model(list[m.NotificationOut]), params={"unread": unread})


def mark_read(notification_id: int) -> Call[m.NotificationOut]:
    return Call("POST", f"/notifications/{int(notification_id)}/read", _model(m.NotificationOut), safe=True)


# -- webhooks (of a project, or of a whole tenant) -----------------------------------------------------------
def _hooks(account: str | None, tenant: str | None) -> str:
    if (account is None) == (tenant is None):
        raise ValueError("name the account or the tenant whose webhooks these are (one of them)")
    return f"/tenants/{_seg(tenant)}/webhooks" if tenant is not None else f"/accounts/{_seg(account or '')}/webhooks"


def webhooks(account: str | None, tenant: str | None = None) -> Call[list[m.WebhookEndpoint]]:
    return Call("GET", _hooks(account, tenant), _json(list[m.WebhookEndpoint]))


def add_webhook(account: str | None, url: str, event_types: list[str], description: str,
                tenant: str | None = None) -> Call[m.WebhookEndpoint]:
    return Call("POST", _hooks(account, tenant), _json(m.WebhookEndpoint),
                json={"url": url, "event_types": event_types, "description": description})


def remove_webhook(account: str | None, endpoint_id: int, tenant: str | None = None) -> Call[m.WebhookRemoved]:
    return Call("DELETE", f"{_hooks(account, tenant)}/{int(endpoint_id)}", _json(m.WebhookRemoved),
                safe=False)  # a repeat after a lost answer would be a 404


def test_webhook(account: str | None, endpoint_id: int, tenant: str | None = None) -> Call[m.WebhookTestResult]:
    return Call("POST", f"{_hooks(account, tenant)}/{int(endpoint_id)}/test", _json(m.WebhookTestResult))


def webhook_deliveries(account: str | None, endpoint: int | None, status: str | None,
                       limit: int, tenant: str | None = None) -> Call[list[m.WebhookDelivery]]:
    params = _drop_none({"limit": limit, "endpoint": endpoint or None, "status": status})
    return Call("GET", f"{_hooks(account, tenant)}/deliveries", _json(list[m.WebhookDelivery]),
                params=params)


# -- interactive sessions ------------------------------------------------------------------------------------
def start_session(body: Mapping[str, Any]) -> Call[m.SessionOut]:
    return Call("POST", "/sessions", _json(m.SessionOut), json=_drop_none(body))


def sessions(include_ended: bool) -> Call[list[m.SessionOut]]:
    return Call("GET", "/sessions", _json(list[m.SessionOut]), params={"all": include_ended})


def session(session_id: int) -> Call[m.SessionOut]:
    return Call("GET", f"/sessions/{int(session_id)}", _json(m.SessionOut))


def extend_session(session_id: int, minutes: int) -> Call[m.SessionOut]:
    return Call("PATCH", f"/sessions/{int(session_id)}", _json(m.SessionOut), json={"extend_minutes": minutes})


def stop_session(session_id: int) -> Call[m.SessionOut]:
    return Call("DELETE", f"/sessions/{int(session_id)}", _json(m.SessionOut))


def session_connect_url(session_id: int) -> Call[str]:
    return Call("POST", f"/sessions/{int(session_id)}/ticket", lambda r: cast(str, r.json()["connect_url"]))


# -- files and uploads ---------------------------------------------------------------------------------------
def ls(path: str) -> Call[list[m.FileEntry]]:
    return Call("GET", "/files", _json(list[m.FileEntry]), params={"path": path})


def mkdir(path: str) -> Call[str]:
    return Call("POST", "/files/mkdir", lambda r: cast(str, r.json()["path"]), json={"path": path})


def mv(src: str, dst: str, overwrite: bool) -> Call[str]:
    return Call("POST", "/files/move", lambda r: cast(str, r.json()["path"]),
                json={"src": src, "dst": dst, "overwrite": overwrite})


def rm(path: str, recursive: bool) -> Call[int]:
    # not retried: a repeat after a lost answer would say "not found" for a removal that happened
    return Call("DELETE", "/files", lambda r: cast(int, r.json()["freed_bytes"]),
                params={"path": path, "recursive": recursive}, safe=False)


def quota() -> Call[list[m.QuotaRow]]:
    return Call("GET", "/files/quota", _json(list[m.QuotaRow]))


def begin_upload(path: str, size: int, sha256: str, overwrite: bool) -> Call[m.UploadState]:
    # the server goes on with an unfinished upload of the same file to the same path: safe to repeat
    return Call("POST", "/uploads", _json(m.UploadState),
                json={"path": path, "size": size, "sha256": sha256, "overwrite": overwrite}, safe=True)


def upload_state(upload_id: str) -> Call[m.UploadState]:
    return Call("GET", f"/uploads/{_seg(upload_id)}", _json(m.UploadState))


def put_chunk(upload_id: str, index: int, data: bytes, sha256: str) -> Call[m.JsonObject]:
    return Call("PUT", f"/uploads/{_seg(upload_id)}/chunks/{int(index)}", _json(m.JsonObject), content=data,
                headers={"X-Chunk-SHA256": sha256, "Content-Type": "application/octet-stream"})


def complete_upload(upload_id: str) -> Call[m.StoredFile]:
    return Call("POST", f"/uploads/{_seg(upload_id)}/complete", _json(m.StoredFile))


# -- the application centre ------------------------------------------------------------------------------------
def apps(all_versions: bool) -> Call[list[m.AppSummary]]:
    return Call("GET", "/apps", _json(list[m.AppSummary]), params={"all_versions": all_versions})


def app(name: str, version: str | None) -> Call[m.AppSummary]:
    return Call("GET", f"/apps/{_seg(name)}", _json(m.AppSummary), params=_drop_none({"version": version}))


def publish_app(source: str, scope: str) -> Call[m.AppSummary]:
    return Call("POST", "/apps", _json(m.AppSummary), json={"source": source, "scope": scope})


def review_app(name: str, version: str, approve: bool, note: str) -> Call[m.AppSummary]:
    return Call("POST", f"/apps/{_seg(name)}/versions/{_seg(version)}/review", _json(m.AppSummary),
                json={"approve": approve, "note": note})


def run_app(name: str, body: Mapping[str, Any], dry_run: bool) -> Call[m.JobOut | m.JsonObject]:
    read: Callable[[httpx.Response], m.JobOut | m.JsonObject] = _json(m.JsonObject) if dry_run else _model(m.JobOut)
    return Call("POST", f"/apps/{_seg(name)}/runs", read, json=dict(body), safe=dry_run)

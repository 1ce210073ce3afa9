"""The asynchronous job API over NATS JetStream (issue 20 item 3; docs/events.md, "Jobs by message").

A tenant's system publishes a job request to ``<prefix>.<tenant>.jobs.submit`` with its API token in
the ``Authorization`` header; the body is what POST /jobs takes (``script``, ``args``, ``inputs`` in
the workspace, ``name``) plus an ``idempotency_key``. The request stream keeps every request until the
platform has answered it, so a platform that is down only delays the answers. This task takes them in
order, accepts each through the same code as POST /jobs (checks, routing, the money held, one
transaction: a request that cannot be paid is refused and nothing is written), and publishes the
answer, the job id or the refusal as a problem (status, code, detail), to
``<prefix>.<tenant>.jobs.replies.<idempotency key>`` in the replies stream. A request repeated with the
same key gets the first job again. The job's life then follows on the event stream
(``<prefix>.<tenant>.events.job.*``); results are fetched through the files API.

A request is acknowledged only after its answer is stored, so a platform killed in between answers it
again (the same job, by its key; the reply's Nats-Msg-Id drops the repeat).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field

from ...config import EventsConfig
from ...messages import msg
from ...store.event_models import tenant_token
from ...store.models import Account, Tenant
from ..errors import Forbidden, InvalidRequest, ServiceError
from ..platform import Platform

log = logging.getLogger(__name__)
KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # one subject token: the reply's subject carries it
MAX_BODY = 1 << 20


def request_subjects(cfg: EventsConfig) -> str:
    return f"{cfg.subject_prefix}.*.jobs.submit"


def reply_subject(cfg: EventsConfig, tenant: str, key: str) -> str:
    return f"{cfg.subject_prefix}.{tenant}.jobs.replies.{key}"


async def ensure_streams(js, cfg: EventsConfig) -> None:
    from nats.js.errors import NotFoundError

    for name, subjects in ((cfg.request_stream, [request_subjects(cfg)]),
                           (cfg.reply_stream, [f"{cfg.subject_prefix}.*.jobs.replies.>"])):
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(name=name, subjects=subjects)


@dataclass
class RequestsReport:
    answered: list[dict] = field(default_factory=list)
    error: str = ""


def _problem(exc: ServiceError) -> dict:
    return {"status": exc.status_code, "code": exc.code, "detail": str(exc)}


class JobRequests:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cfg = platform.settings.events

    def run_once(self) -> RequestsReport:
        report = RequestsReport()
        if not self.cfg.nats_url or not self.cfg.job_requests:
            return report
        try:
            asyncio.run(self._serve(report))
        except Exception as exc:  # the broker is down: the requests wait in their stream
            report.error = f"{type(exc).__name__}: {exc or 'no answer'}"[:500]
            log.warning("job requests: %s", report.error)
        return report

    async def _serve(self, report: RequestsReport) -> None:
        import nats
        from nats.errors import TimeoutError as NatsTimeout

        nc = await asyncio.wait_for(nats.connect(self.cfg.nats_url, connect_timeout=self.cfg.timeout_s,
                                                 allow_reconnect=False, max_reconnect_attempts=0),
                                    self.cfg.timeout_s)
        try:
            js = nc.jetstream(timeout=self.cfg.timeout_s)
            await ensure_streams(js, self.cfg)
            sub = await js.pull_subscribe(request_subjects(self.cfg), durable="computenet-platform",
                                          stream=self.cfg.request_stream)
            try:
                messages = await sub.fetch(self.cfg.batch, timeout=0.5)
            except NatsTimeout:
                return
            for message in messages:
                tenant = message.subject.split(".")[-3]
                answer = await asyncio.to_thread(self.answer, tenant, message.data, dict(message.headers or {}))
                await js.publish(reply_subject(self.cfg, tenant, answer["idempotency_key"]),
                                 json.dumps(answer).encode(),
                                 headers={"Nats-Msg-Id": f"reply:{tenant}:{answer['idempotency_key']}"})
                await message.ack()
                report.answered.append(answer)
        finally:
            await nc.close()

    def answer(self, tenant: str, data: bytes, headers: dict) -> dict:
        """The answer to one request: the job, or the refusal; never an exception."""
        key = "invalid"
        try:
            if len(data) > MAX_BODY:
                raise InvalidRequest(msg("a job request is at most %(most)s bytes", most=MAX_BODY))
            try:
                body = json.loads(data)
            except (ValueError, UnicodeDecodeError):
                raise InvalidRequest(msg("a job request is a JSON object")) from None
            if not isinstance(body, dict):
                raise InvalidRequest(msg("a job request is a JSON object"))
            key = str(body.get("idempotency_key") or "")
            if not KEY.match(key):
                key = "invalid"
                raise InvalidRequest(msg("idempotency_key: 1 to 64 letters, digits, - or _ (it names the reply's "
                                         "subject)"))
            user_id = self._caller(headers)
            job = self._accept(user_id, tenant, body, key)
            return {"idempotency_key": key, "job_id": job.job_id, "created": job.created}
        except ServiceError as exc:
            return {"idempotency_key": key, "error": _problem(exc)}

    def _caller(self, headers: dict) -> int:
        from ..tenancy import tokens

        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if not auth.lower().startswith("bearer "):
            raise _Unauthenticated(msg("an API token is needed (header Authorization: Bearer <token>)"))
        with self.platform.db.session() as session:
            try:
                row = tokens.check(session, auth[7:].strip())
            except tokens.TokenRefused as exc:
                raise _Unauthenticated(str(exc)) from None
            if row.scope == "read":
                raise Forbidden(msg("this API token is read-only: a job request changes state"))
            return row.user_id

    def _accept(self, user_id: int, tenant: str, body: dict, key: str):
        from .job_accept import _inputs, accept_job

        script, args, inputs = body.get("script"), body.get("args") or [], body.get("inputs") or []
        if not isinstance(script, str) or not script:
            raise InvalidRequest(msg("script: the job's batch script is needed"))
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise InvalidRequest(msg("args: a list of sbatch options, as strings"))
        if not isinstance(inputs, list) or not all(isinstance(p, str) for p in inputs):
            raise InvalidRequest(msg("inputs: a list of paths in your workspace"))

        def same_tenant(account_id: int) -> None:
            with self.platform.db.session() as session:
                account = session.get(Account, account_id)
                owner = session.get(Tenant, account.tenant_id) if account.tenant_id else None
                if tenant_token(owner.name if owner else None) != tenant:
                    raise Forbidden(msg("account %(account)s is not of tenant %(tenant)s, whose subject this "
                                        "request came on", account=account.name, tenant=tenant))

        extras = _inputs(self.platform, user_id, inputs) if inputs else None
        return accept_job(self.platform, user_id, script, args, body.get("name") if isinstance(body.get("name"), str)
                          else None, extras=extras, idempotency_key=key, account_check=same_tenant)


class _Unauthenticated(ServiceError):
    status_code = 401
    code = "unauthenticated"

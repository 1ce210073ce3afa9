"""Accept, then submit: POST /jobs and POST /jobs:batch write the job and its hold and return at once.

The request checks and routes the job as submit_job does (jobs.plan_submission), then writes the
row (SUBMITTING, ``queued_at`` set) and its hold in one transaction and wakes the cluster's
submitter task (services/jobs/submitter.py), which sends it to the cluster. Nothing reaches a cluster
here, so the request costs database time only; callers that need the native id at once use the
synchronous jobs.submit_job (``?wait=native``).

The accepted job goes to the router's first choice: its id is the user's from now on, so it cannot
fall back to another candidate's row the way the synchronous path does; a cluster that refuses it at
submission moves the same row to the next acceptable choice (services/jobs/submit_refusal.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy.exc import DataError, IntegrityError

from ...messages import msg
from ...store.models import User
from ..errors import InvalidRequest, ServiceError
from .jobs import JobExtras, RoutingRequest, _prepare, job_by_key, plan_submission
from ..platform import Platform

MAX_BATCH = 500  # jobs in one POST /jobs:batch


@dataclass(frozen=True)
class Accepted:
    job_id: int
    created: bool  # False: an earlier request with the same idempotency key made it


@dataclass(frozen=True)
class Item:
    """One job of a batch, as POST /jobs takes it."""

    script: str
    flags: list[str]
    script_name: str | None = None
    wanted: RoutingRequest | None = None
    inputs: tuple[str, ...] = ()  # workspace files, as POST /jobs takes them
    idempotency_key: str | None = None


def accept_job(platform: Platform, user_id: int, script: bytes | str, flags: list[str] | None = None,
               script_name: str | None = None, wanted: RoutingRequest | None = None,
               extras: JobExtras | None = None, idempotency_key: str | None = None,
               account_check: Callable[[int], None] | None = None) -> Accepted:
    """Check, route, write the row and its hold (one transaction); the submitter sends it.
    ``account_check(account_id)`` may refuse the account the job would be charged to, before anything
    is written (the message-queue API: the account must be of the tenant whose subject asked)."""
    if idempotency_key:
        with platform.db.session() as session:
            first = job_by_key(session, user_id, idempotency_key)
            if first is not None:
                return Accepted(first.id, False)
    plan = plan_submission(platform, user_id, script, flags, wanted, extras)
    if account_check is not None:
        account_check(plan.account_id)
    candidate = plan.decision.ranked[0]
    cluster_name = candidate.target.cluster
    try:
        job_id, _ = _prepare(platform, user_id, plan.account_id, plan.extras.scripts.get(cluster_name, plan.text),
                             plan.spec, plan.script_args, script_name, candidate, plan.decision, plan.dependency,
                             plan.extras, idempotency_key=idempotency_key, queued=True,
                             routing_json=plan.routing_json(candidate))
    except IntegrityError:  # the same key at the same moment: the other request's job is the one
        with platform.db.session() as session:
            first = job_by_key(session, user_id, idempotency_key)
        if first is None:
            raise
        return Accepted(first.id, False)
    from .submitter import wake

    wake(cluster_name)
    return Accepted(job_id, True)


@dataclass(frozen=True)
class ItemResult:
    index: int
    job_id: int | None = None
    created: bool = False
    status: int | None = None  # the refusal's HTTP status
    detail: str | None = None


def _inputs(platform: Platform, user_id: int, paths: list[str]) -> JobExtras:
    from ..files.job_files import resolve_inputs

    with platform.db.session() as session:
        return JobExtras(inputs=resolve_inputs(session, platform, session.get(User, user_id), paths))


def accept_many(platform: Platform, user_id: int, items: list[Item]) -> list[ItemResult]:
    """Each item accepted on its own (its own transaction): one refused item leaves nothing written
    for itself and does not stop the others."""
    if len(items) > MAX_BATCH:
        raise InvalidRequest(msg("at most %(most)s jobs in one batch", most=MAX_BATCH))
    keys = [i.idempotency_key for i in items if i.idempotency_key]
    if len(keys) != len(set(keys)):
        raise InvalidRequest(msg("two jobs in the batch have the same idempotency key"))
    results = []
    for index, item in enumerate(items):
        try:
            extras = _inputs(platform, user_id, list(item.inputs)) if item.inputs else None
            done = accept_job(platform, user_id, item.script, item.flags, item.script_name, item.wanted,
                              extras, item.idempotency_key)
        except ServiceError as exc:
            results.append(ItemResult(index, status=exc.status_code, detail=str(exc)))
            continue
        except DataError as exc:  # the database's own refusal (as the API's handler says it): this item only
            why = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
            results.append(ItemResult(index, status=422, detail=msg("a value in the job cannot be stored: %(why)s",
                                                                    why=why)))
            continue
        results.append(ItemResult(index, done.job_id, done.created))
    return results


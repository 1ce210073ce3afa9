"""An accepted job its cluster refused at submission goes to the next acceptable choice.

The submitter (services/jobs/submitter.py) sends an accepted job (SUBMITTING, its hold taken) to the
router's first choice. When that cluster refuses it for good (sbatch's own refusal, or paths it
cannot make) nothing was started there, so the job can still go elsewhere: the router decides again
with the refusing clusters left out, under what the user pinned or bounded, and the row moves to the
best remaining choice (its hold for the new price taken, the old one voided, its paths remade, its
submit claim cleared for the new cluster's submitter). The reason is in its timeline. Where no other
cluster may take it (pinned to a cluster, dependent on jobs there, or none left) the caller withdraws
it with every refusal in the reason, and its hold is released.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from ...billing import funds, ledger
from ...domain.resources import JobSpec
from ...domain.states import JobState
from ...routing.model import Constraints
from ...store.models import Account, Cluster, Job, JobEvent, Partition, Transfer, User
from ...store.types import utcnow
from ..billing import enforcement
from ..billing.pricing import max_cost
from ..errors import ServiceError
from ..network import routing
from ..platform import Platform
from .jobs import job_paths, path_unix_user

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    cluster: str  # where the job goes now (its submitter is woken by the caller, after commit)
    target: str  # cluster/partition


def refusals(job: Job) -> dict[str, str]:
    """{cluster: why} of the clusters that refused this job so far."""
    return dict((job.routing or {}).get("refused_by") or {})


def move_elsewhere(session, platform: Platform, job: Job, refused_on: str, why: str) -> Moved | None:
    """Move a SUBMITTING job that ``refused_on`` refused to the next acceptable choice (in this
    session's transaction); None when no other cluster may take it (the caller withdraws it)."""
    spec = JobSpec.model_validate(job.spec)
    if spec.options.cluster or spec.options.dependency:
        return None  # the user pinned the cluster, or its dependencies are there
    refused = refusals(job) | {refused_on: why[:300]}
    pinned = (job.routing or {}).get("constraints") or {}
    constraints = Constraints(partition=pinned.get("partition"), region=pinned.get("region"),
                              max_price=None if pinned.get("max_price") is None else Decimal(pinned["max_price"]),
                              max_wait_s=None if pinned.get("max_wait_minutes") is None
                              else float(pinned["max_wait_minutes"]) * 60,
                              # an app goes only where it is available (its script for there is kept)
                              only_clusters=frozenset(job.app["scripts"]) if job.app else None,
                              only_reason="does not offer the job's app")
    request_spec = spec.model_copy(update={"resources": spec.resources.model_copy(
        update={"partition": pinned.get("partition"), "time_limit_minutes": job.time_limit_minutes})})
    account = session.get(Account, job.account_id)
    try:
        decision = routing.decide(session, platform, request_spec, account, constraints,
                                  exclude=tuple(refused), user_id=job.owner_id)
    except ServiceError as exc:  # e.g. its cost is now beyond what the account may hold
        log.info("job %s: no other cluster after %s refused it: %s", job.id, refused_on, exc)
        return None
    if not decision.ranked:
        return None
    choice = decision.ranked[0]
    cluster = session.scalar(select(Cluster).where(Cluster.name == choice.target.cluster))
    part = session.scalar(select(Partition).where(Partition.cluster_id == cluster.id,
                                                  Partition.name == choice.target.partition))
    # -A is the Slurm account mapped to the platform account on *that* cluster (or the user's default)
    new_spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={
        "partition": part.name, "time_limit_minutes": choice.time_limit_minutes,
        "account": enforcement.slurm_account_for(session, cluster.id, account.id)})})
    cost = max_cost(session, platform, new_spec, choice.time_limit_minutes, part, account)
    old_hold = session.get(Transfer, job.hold_id) if job.hold_id else None
    try:
        with session.begin_nested():  # the old hold's money pays for the new one: void first
            if old_hold is not None and ledger.open_hold(session, old_hold):
                ledger.resolve(session, f"void:{old_hold.key}", old_hold, 0,
                               memo=f"job {job.id} refused by {refused_on}: moved to {choice.target.name}")
            funds.hold_for_job(session, job, account, cost, part.product_line)
    except ledger.InsufficientFunds:
        log.info("job %s: the account cannot hold its price on %s", job.id, choice.target.name)
        return None
    old_cluster = session.get(Cluster, job.cluster_id)
    user_name = session.get(User, job.owner_id).name
    old_plain = None
    if job.app is None:
        from ..files.job_files import plain_outputs

        old_plain = plain_outputs(platform, old_cluster.name, user_name, job.id, job.workdir)
    job.workdir, job.stdout_path, job.stderr_path = job_paths(
        platform, cluster.name, user_name, job.id, spec.options, job_name=job.name,
        unix_user=path_unix_user(session, platform, cluster, job.owner_id))
    if job.app is None and job.outputs == old_plain:  # the plain outputs, not ones the user named
        from ..files.job_files import plain_outputs

        job.outputs = plain_outputs(platform, cluster.name, user_name, job.id, job.workdir)
        job.collect_state = "pending" if job.outputs else None
    if job.app:
        job.script = job.app["scripts"][cluster.name]
    job.cluster_id, job.partition, job.spec = cluster.id, part.name, new_spec.model_dump(mode="json")
    job.max_cost = cost
    job.predicted_start = None if choice.wait_s is None else utcnow() + timedelta(seconds=choice.wait_s)
    job.routing = decision.to_json() | {"chosen": choice.target.name, "constraints": pinned,
                                        "refused_by": refused}
    # the new cluster's submitter claims it afresh: nothing of it was started on the old one
    job.submit_claim, job.submit_claimed_at = None, None
    session.add(JobEvent(job_id=job.id, from_state=JobState.SUBMITTING.value, to_state=JobState.SUBMITTING.value,
                         detail=f"re-routed to {choice.target.name}: {why[:300]}"))
    return Moved(cluster.name, choice.target.name)


def no_choice_left(job: Job, refused_on: str, why: str) -> str:
    """The withdrawal's reason: every cluster that refused the job, and why."""
    earlier = [f"{name}: {text}" for name, text in refusals(job).items() if name != refused_on]
    if not earlier:
        return why
    return f"{why}; earlier " + "; ".join(earlier) + "; no other cluster can take it"

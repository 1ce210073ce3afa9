"""Submitting, listing, cancelling jobs and reading their output."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...billing import funds, ledger
from ...clusters.base import ClusterError, SubmitRejected, SubmitRequest
from ...domain.resources import JobSpec, RequestError, allocation
from ...domain.sbatch import ScriptError, parse_submission, platform_tag
from ...domain.states import JobState
from ...store.models import Account, AccountMember, Cluster, Job, JobEvent, Partition, User
from ...store.types import utcnow
from ...routing.model import Constraints, Decision
from ...routing.policies import POLICIES
from ..billing import enforcement
from ..files import paths
from ..network import routing
from ..tenancy import tenants
from ...messages import Money, msg
from ..errors import InsufficientFunds, InvalidRequest, Unavailable
from ..platform import Platform
from ..billing.pricing import max_cost

_DEPENDENCY_ITEM = re.compile(r"^(after|afterany|afterok|afternotok|aftercorr|afterburstbuffer)((?::[0-9]+)+)$")


def _fail(exc: Exception) -> InvalidRequest:
    return InvalidRequest(str(exc))


def choose_account(session: Session, user: User, name: str | None) -> Account:
    if name:
        account = session.scalar(
            select(Account).join(AccountMember, AccountMember.account_id == Account.id)
            .where(Account.name == name, AccountMember.user_id == user.id)
        )
        if account is None:
            raise InvalidRequest(msg("account %(name)r does not exist or you are not a member of it", name=name))
        return account
    if user.default_account_id is None:
        raise InvalidRequest(msg("you have no default account; pass --account"))
    return session.get(Account, user.default_account_id)


@dataclass(frozen=True)
class RoutingRequest:
    """What a user may add to sbatch's own pins (-M, -p): a region, bounds, a policy."""

    region: str | None = None
    max_price: Decimal | None = None
    max_wait_minutes: float | None = None
    policy: str | None = None
    data_at: tuple[str, ...] = ()
    only_clusters: frozenset[str] | None = None  # e.g. where an app is installed
    only_reason: str = "cannot run the job"


@dataclass(frozen=True)
class JobExtras:
    """What an app run or a job with workspace files adds to a submission."""

    scripts: dict[str, str] = field(default_factory=dict)  # per cluster (an app renders one for each)
    app: dict | None = None  # {"name", "version", "namespace", "params", "environments": {cluster: env}}
    inputs: list[dict] = field(default_factory=list)  # job_files.resolve_inputs
    outputs: dict | None = None  # {"patterns": [...], "dest": workspace dir}
    private_files: dict[str, str] = field(default_factory=dict)  # name -> text, staged mode 0600 (sessions)


_AVAILABILITY = ("is offline", "circuit open", "no price")


def route(session: Session, platform: Platform, spec: JobSpec, account: Account, pinned_cluster: str | None,
          wanted: RoutingRequest, refuse: bool = True, user_id: int | None = None) -> Decision:
    """The router's decision for this job, or a refusal that says why nowhere fits."""
    clusters = set(session.scalars(select(Cluster.name)))
    if pinned_cluster and pinned_cluster not in clusters:
        raise InvalidRequest(msg("unknown cluster %(pinned_cluster)r (known: %(listed)s)",
                                 pinned_cluster=pinned_cluster, listed=', '.join(sorted(clusters))))
    partition = spec.resources.partition
    if partition:
        offered = session.execute(select(Cluster.name, Partition.name).join(Partition).where(
            Partition.available.is_(True))).all()
        if not any(p == partition and (not pinned_cluster or c == pinned_cluster) for c, p in offered):
            raise InvalidRequest(msg("unknown partition %(partition)r (offered: %(value)s)",
                                     partition=partition,
                                     value=', '.join((f'{c}/{p}' for c, p in sorted(offered))) or 'none'))
    if wanted.policy and wanted.policy not in POLICIES:
        raise InvalidRequest(msg("unknown routing policy %(policy)r (use %(listed)s)",
                                 policy=wanted.policy, listed=', '.join(POLICIES)))
    if wanted.max_price is not None and wanted.max_price <= 0:
        raise InvalidRequest(msg("a maximum price must be positive"))
    if wanted.max_wait_minutes is not None and wanted.max_wait_minutes < 0:
        raise InvalidRequest(msg("a maximum wait cannot be negative"))
    constraints = Constraints(
        cluster=pinned_cluster, partition=partition, region=wanted.region, max_price=wanted.max_price,
        max_wait_s=None if wanted.max_wait_minutes is None else wanted.max_wait_minutes * 60,
        data_at=tuple(wanted.data_at), only_clusters=wanted.only_clusters, only_reason=wanted.only_reason)
    decision = routing.decide(session, platform, spec, account, constraints, wanted.policy,
                              user_id=user_id)
    if decision.chosen is not None or not refuse:
        return decision
    # nowhere: say why, per candidate that was not ruled out by a pin alone
    telling = [c for c in decision.rejected if not all(r.startswith("pinned to") or "asks for no GPU" in r
                                                        for r in c.reasons)]
    shown = telling or decision.rejected
    if not shown:
        raise Unavailable(msg("no cluster is online to take the job"))
    detail = "; ".join(f"{c.target.name}: {', '.join(c.reasons)}" for c in shown[:8])
    if all(any(a in r for a in _AVAILABILITY) for c in shown for r in c.reasons):
        raise Unavailable(msg("no cluster can take the job now: %(detail)s", detail=detail))
    if len(shown) == 1:
        raise InvalidRequest(msg("the job cannot run on %(name)s: %(listed)s",
                                 name=shown[0].target.name, listed=', '.join(shown[0].reasons)))
    raise InvalidRequest(msg("no partition can run this job: %(detail)s", detail=detail))


def translate_dependency(session: Session, user: User, text: str) -> tuple[str, int | None]:
    """``afterok:12:13`` in ComputeNet job ids -> native ids, and their cluster."""
    cluster_id: int | None = None
    items = []
    for item in re.split(r"[,?]", text):
        m = _DEPENDENCY_ITEM.match(item)
        if not m:
            raise InvalidRequest(msg("unsupported dependency %(item)r (use after, afterany, afterok or "
                                     "afternotok with job ids)",
                                     item=item))
        natives = []
        for raw in m.group(2).strip(":").split(":"):
            job = session.get(Job, int(raw))
            if job is None or job.owner_id != user.id:
                raise InvalidRequest(msg("dependency on job %(raw)s: no such job of yours", raw=raw))
            if job.native_id is None:
                raise InvalidRequest(msg("dependency on job %(raw)s: it was not submitted", raw=raw))
            if cluster_id is not None and job.cluster_id != cluster_id:
                raise InvalidRequest(msg("all dependencies must be on one cluster"))
            cluster_id = job.cluster_id
            natives.append(job.native_id)
        items.append(f"{m.group(1)}:{':'.join(natives)}")
    separator = "?" if "?" in text else ","
    return separator.join(items), cluster_id


def clean_name(name: str) -> str:
    name = "".join(ch if ch.isprintable() else "_" for ch in name).strip()
    return name[:200] or "job"


@dataclass
class Plan:
    """A checked submission and the router's decision for it: what accept and submit share."""

    text: str
    spec: JobSpec
    script_args: list
    account_id: int
    dependency: str | None
    pinned: str | None
    wanted: RoutingRequest
    extras: JobExtras
    decision: Decision

    def routing_json(self, candidate) -> dict:
        return self.decision.to_json() | {"chosen": candidate.target.name, "constraints": {
            "cluster": self.pinned, "partition": self.spec.resources.partition, "region": self.wanted.region,
            "max_price": None if self.wanted.max_price is None else str(self.wanted.max_price),
            "max_wait_minutes": self.wanted.max_wait_minutes}}


def plan_submission(platform: Platform, user_id: int, script: bytes | str, flags: list[str] | None = None,
                    wanted: RoutingRequest | None = None, extras: JobExtras | None = None) -> Plan:
    """Validate everything and route; writes nothing (bad input raises before any row exists)."""
    try:
        text, spec, script_args = parse_submission(script, flags)
    except (ScriptError, RequestError) as exc:
        raise _fail(exc) from None
    if spec.options.test_only:
        raise InvalidRequest(msg("--test-only submits nothing: ask for an estimate instead (cnet estimate, "
                                 "POST /jobs/estimate; cnet submit --test-only does that)"))
    wanted = wanted or RoutingRequest()
    extras = extras or JobExtras()
    if extras.inputs and platform.settings.files.site:  # clusters beside platform storage hold the inputs
        wanted = replace(wanted, data_at=tuple(wanted.data_at) + (platform.settings.files.site,))
    with platform.db.session() as session:
        user = session.get(User, user_id)
        account = choose_account(session, user, spec.resources.account)
        dependency = None
        pinned = spec.options.cluster
        if spec.options.dependency:
            if spec.options.dependency == "singleton":
                dependency = "singleton"
            else:
                # dependencies only work within one scheduler: the job goes where they are
                dependency, dep_cluster_id = translate_dependency(session, user, spec.options.dependency)
                dep_cluster = session.get(Cluster, dep_cluster_id)
                if pinned and pinned != dep_cluster.name:
                    raise InvalidRequest(msg("dependencies are on cluster %(dep_cluster)s, not %(pinned)s",
                                             dep_cluster=dep_cluster.name, pinned=pinned))
                pinned = dep_cluster.name
        decision = route(session, platform, spec, account, pinned, wanted, user_id=user.id)
        return Plan(text, spec, list(script_args), account.id, dependency, pinned, wanted, extras, decision)


def job_by_key(session: Session, user_id: int, key: str | None) -> Job | None:
    """The job this user already submitted with this idempotency key."""
    if not key:
        return None
    return session.scalar(select(Job).where(Job.owner_id == user_id, Job.idempotency_key == key))


def submit_job(platform: Platform, user_id: int, script: bytes | str, flags: list[str] | None = None,
               script_name: str | None = None, wanted: RoutingRequest | None = None,
               extras: JobExtras | None = None, idempotency_key: str | None = None) -> Job:
    """Validate everything first; then route, write a row, hold the money and call the scheduler.

    Bad input raises before any row or sbatch call exists. If the chosen
    cluster cannot take the job, its row and hold go and the next candidate
    is tried; the decision, with every attempt, is stored with the job.
    A retry with the same idempotency key returns the first job.
    """
    if idempotency_key:
        with platform.db.session() as session:
            first = job_by_key(session, user_id, idempotency_key)
            if first is not None:
                return first
    plan = plan_submission(platform, user_id, script, flags, wanted, extras)
    text, spec, script_args, dependency = plan.text, plan.spec, plan.script_args, plan.dependency
    wanted, extras, decision, account_id = plan.wanted, plan.extras, plan.decision, plan.account_id
    first_error: Exception | None = None
    for candidate in list(decision.ranked):
        cluster_name = candidate.target.cluster
        try:
            job_id, request = _prepare(platform, user_id, account_id, extras.scripts.get(cluster_name, text), spec,
                                       script_args, script_name, candidate, decision, dependency, extras,
                                       idempotency_key=idempotency_key)
        except IntegrityError:  # the same key, at the same moment: the other request's job is the one
            with platform.db.session() as session:
                first = job_by_key(session, user_id, idempotency_key)
            if first is None:
                raise
            return first
        # the row is committed before sbatch runs: a crash in between leaves a
        # SUBMITTING row the poller can match by comment, never an unknown job
        try:
            if extras.inputs:
                _stage(platform, job_id, cluster_name, request)
            if extras.private_files:
                from ..files.job_files import stage_private_files

                stage_private_files(platform, job_id, cluster_name, extras.private_files, run_as=request.run_as)
            native_id = platform.adapter(cluster_name).submit(request)
        except (SubmitRejected, ClusterError) as exc:
            _withdraw(platform, job_id, cluster_name, exc)
            decision.notes.append(f"{candidate.target.name} failed: {str(exc)[:200]}")
            first_error = first_error or exc
            with platform.db.session() as session:
                if isinstance(exc, ClusterError):
                    routing.record_failure(session, cluster_name, platform)
            continue
        except Exception as exc:
            # anything else (a path the executor cannot make, a bug): no row and no hold stay behind
            _withdraw(platform, job_id, cluster_name, exc)
            if isinstance(exc, (FileExistsError, NotADirectoryError, IsADirectoryError)):
                raise InvalidRequest(msg("cluster %(cluster_name)s cannot use the job's paths: "
                                         "%(strerror)s: %(filename)s",
                                         cluster_name=cluster_name, strerror=exc.strerror, filename=exc.filename)) from None
            raise
        with platform.db.session() as session:
            routing.record_success(session, cluster_name)
            job = session.get(Job, job_id)
            job.routing = plan.routing_json(candidate)
            record_submitted(session, platform, job, cluster_name, native_id)
        return job
    if isinstance(first_error, SubmitRejected):
        raise InvalidRequest(msg("cluster %(cluster)s refused the job: %(first_error)s",
                                 cluster=decision.ranked[0].target.cluster, first_error=first_error))
    raise Unavailable(msg("no cluster could take the job: %(listed)s", listed='; '.join(decision.notes)))


def record_submitted(session: Session, platform: Platform, job: Job, cluster_name: str, native_id: str) -> None:
    """The cluster took the job as ``native_id``: its id, its output paths with %j filled in, PENDING."""
    job.native_id = native_id
    user_name = session.get(User, job.owner_id).name
    if not JobSpec.model_validate(job.spec).options.array:  # an array's tasks each write their own %A_%a file
        space = paths.user_space(platform.settings.workdir_root(platform.cluster_config(cluster_name)), user_name)
        job.stdout_path = paths.submitted_path(job.stdout_path, native_id, space)
        job.stderr_path = paths.submitted_path(job.stderr_path, native_id, space)
    apply_state(session, job, JobState.PENDING, f"submitted to {cluster_name} as {native_id} for {user_name}")


def _stage(platform: Platform, job_id: int, cluster_name: str, request: SubmitRequest) -> None:
    """Inputs into the job's working directory there; a failure leaves no job and no hold
    (submit_job withdraws it; a ClusterError lets the next candidate try)."""
    from ..files.job_files import stage_inputs

    stage_inputs(platform, job_id, cluster_name, run_as=request.run_as)


def estimate_job(platform: Platform, user_id: int, script: bytes | str, flags: list[str] | None = None,
                 wanted: RoutingRequest | None = None) -> Decision:
    """What submitting would do: every candidate with its predicted start, price and reasons. Writes nothing."""
    try:
        _, spec, _ = parse_submission(script, flags)
    except (ScriptError, RequestError) as exc:
        raise _fail(exc) from None
    with platform.db.session() as session:
        user = session.get(User, user_id)
        account = choose_account(session, user, spec.resources.account)
        pinned = spec.options.cluster
        if spec.options.dependency and spec.options.dependency != "singleton":
            _, dep_cluster_id = translate_dependency(session, user, spec.options.dependency)
            pinned = session.get(Cluster, dep_cluster_id).name
        decision = route(session, platform, spec, account, pinned, wanted or RoutingRequest(), refuse=False,
                         user_id=user.id)
    return _refuse_what_executors_cannot(platform, spec, decision)


def _refuse_what_executors_cannot(platform: Platform, spec: JobSpec, decision: Decision) -> Decision:
    """An estimate must not promise what the cluster's submit then refuses: the local executor
    runs no arrays and no dependencies (its submit says the same)."""
    why = (msg("it does not run job arrays") if spec.options.array else
           msg("it does not support --dependency") if spec.options.dependency else None)
    if why is None:
        return decision
    for candidate in list(decision.ranked):
        try:
            kind = platform.cluster_config(candidate.target.cluster).kind
        except KeyError:
            continue
        if kind == "local":
            candidate.refuse(msg("the local executor: %(why)s", why=why))
            decision.ranked.remove(candidate)
            decision.rejected.append(candidate)
    return decision


def _prepare(platform: Platform, user_id: int, account_id: int, text: str, spec: JobSpec, script_args,
             script_name: str | None, candidate, decision: Decision, dependency: str | None,
             extras: JobExtras, idempotency_key: str | None = None, queued: bool = False,
             routing_json: dict | None = None) -> tuple[int, SubmitRequest]:
    """The job row and its hold for one candidate (one transaction); returns what sbatch gets.
    ``queued``: accepted for the submitter task (services/jobs/submitter.py), which sends it."""
    target = candidate.target
    with platform.db.session() as session:
        user = session.get(User, user_id)
        account = session.get(Account, account_id)
        cluster = session.scalar(select(Cluster).where(Cluster.name == target.cluster))
        part = session.scalar(select(Partition).where(Partition.cluster_id == cluster.id,
                                                      Partition.name == target.partition))
        limit = candidate.time_limit_minutes
        res = spec.resources
        # -A names the platform account; on the cluster the job runs under the
        # Slurm account mapped to it there (or the user's Slurm default)
        slurm_account = enforcement.slurm_account_for(session, cluster.id, account.id)
        cluster_spec = spec.model_copy(update={"resources": res.model_copy(update={
            "account": slurm_account, "partition": part.name, "time_limit_minutes": limit})})
        # the router priced this very job on this partition a moment ago (same limit, same prices)
        cost = candidate.held if candidate.price is not None else max_cost(session, platform, cluster_spec,
                                                                              limit, part, account)
        tenants.check_spend_limit(session, user, account, cost)
        opts = spec.options
        name = clean_name(opts.job_name or (os.path.basename(script_name) if script_name else "job"))
        # what Slurm allocates per task (whole nodes for --exclusive), for interim charges and wait estimates
        shape = allocation(res, cores_per_node=part.cores_per_node, mem_per_node_mb=part.mem_per_node_mb,
                           gpus_per_node=part.gpus_per_node or 0)
        job = Job(
            owner_id=user.id, account_id=account.id, cluster_id=cluster.id, partition=part.name,
            name=name, state=JobState.SUBMITTING.value, spec=cluster_spec.model_dump(mode="json"),
            script=text, script_args=list(script_args), workdir="", stdout_path="", stderr_path="",
            cores=shape.cores, gpus=shape.gpus, time_limit_minutes=limit, max_cost=cost,
            routing=routing_json or decision.to_json(), idempotency_key=idempotency_key or None,
            queued_at=utcnow() if queued else None,
            predicted_start=None if candidate.wait_s is None else utcnow() + timedelta(seconds=candidate.wait_s),
            app=extras.app, inputs=list(extras.inputs) or None, outputs=extras.outputs,
            collect_state="pending" if extras.outputs else None,
            monitor_state="on" if platform.settings.monitoring.enabled and _is_shell(text) else None,
        )
        if job.monitor_state:
            job.sample_interval_s = platform.settings.monitoring.interval_s
        session.add(job)
        session.flush()
        try:
            funds.hold_for_job(session, job, account, cost, part.product_line)
        except ledger.InsufficientFunds:
            available = funds.funds(session, account).available
            raise InsufficientFunds(
                msg("account %(account)s cannot cover this job: it may cost up to %(cost)s "
                    "(%(total_cores)s cores, %(total_gpus)s GPUs, %(limit)s min on %(target)s), and "
                    "%(available)s is available",
                    account=account.name, cost=Money(cost, account.currency), total_cores=res.total_cores,
                    total_gpus=res.total_gpus, limit=limit, target=target.name, available=Money(available))
            ) from None
        job.workdir, job.stdout_path, job.stderr_path = job_paths(
            platform, cluster.name, user.name, job.id, opts, job_name=name,
            unix_user=path_unix_user(session, platform, cluster, user.id))
        if extras.outputs is None and extras.app is None:
            # one filesystem view: a plain job's files come back to the same place in the workspace
            # (where the cluster's space is not the workspace itself)
            from ..files.job_files import plain_outputs

            job.outputs = plain_outputs(platform, cluster.name, user.name, job.id, job.workdir)
            job.collect_state = "pending" if job.outputs else None
        session.add(JobEvent(job_id=job.id, from_state=None, to_state=job.state,
                             detail=f"accepted; routed to {target.name} ({decision.policy})"))
        return job.id, request_for(session, platform, job, dependency)


def _is_shell(script: str) -> bool:
    from ...monitoring.inject import is_shell_script

    return is_shell_script(script)


def request_for(session: Session, platform: Platform, job: Job, dependency: str | None = None,
                cluster: Cluster | None = None) -> SubmitRequest:
    """What the adapter gets for this job on ``cluster`` (default: its own), as its owner's Unix
    identity there when the cluster runs jobs as users."""
    request = submit_request(job, dependency)
    if job.monitor_state:  # the sampling agent rides in the script (the stored script stays the user's)
        from ...monitoring.inject import inject
        from ...monitoring.agent_key import agent_endpoint

        url, token = agent_endpoint(platform.settings, job.id)
        request = replace(request, script=inject(job.script, job.sample_interval_s or platform.settings.monitoring.interval_s, url, token,
                                                 job_id=job.id) or job.script)
    cluster = cluster or session.get(Cluster, job.cluster_id)
    # the owner's space there: a job's HOME where it runs as the service's account, made for a user's
    owner = session.get(User, job.owner_id)
    space = paths.user_space(platform.settings.workdir_root(platform.cluster_config(cluster.name)), owner.name)
    request = replace(request, space=space)
    if not platform.cluster_config(cluster.name).run_as_users:
        return request
    from ..tenancy.identities import unix_user_for

    unix_user = unix_user_for(session, job.owner_id, cluster.id)
    if unix_user is None:  # the router rules this out; a mapping removed meanwhile lands here
        raise InvalidRequest(msg("you have no Unix identity on cluster %(cluster)s", cluster=cluster.name))
    return replace(request, run_as=unix_user)


def job_paths(platform: Platform, cluster_name: str, user_name: str, job_id: int, opts,
              job_name: str | None = None, unix_user: str | None = None) -> tuple[str, str, str]:
    """Working directory, stdout and stderr of a job on a cluster, all inside the user's space there.

    Output and error come back with %x (``job_name``) and %u (``unix_user``) expanded and checked;
    the scheduler fills in only ids and node names, which cannot lead out of the space."""
    space = paths.user_space(platform.settings.workdir_root(platform.cluster_config(cluster_name)), user_name)
    workdir, output, error = paths.expand_job_paths(
        space, opts, job_id, job_name if job_name is not None else clean_name(opts.job_name or "job"),
        unix_user if unix_user is not None else _unix_user())
    if os.path.isdir(space):  # visible from here: make sure no symlink leads out
        paths.check_real_inside(workdir, space)
    return workdir, output, error


def submit_request(job: Job, dependency: str | None = None) -> SubmitRequest:
    spec = JobSpec.model_validate(job.spec)
    return SubmitRequest(
        script=job.script, spec=spec, job_name=job.name, workdir=job.workdir, output=job.stdout_path,
        error=job.stderr_path, comment=platform_tag(job.id, job.tag_nonce), script_args=tuple(job.script_args),
        dependency=dependency, environment={"COMPUTENET_JOB_ID": str(job.id)},
    )


def _withdraw(platform: Platform, job_id: int, cluster_name: str, exc: Exception) -> None:
    """The cluster did not take the job: void its hold, remove its row (nothing half-written)."""
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return  # withdrawn already
        # the hold and its void stay in the ledger (immutable); the job row goes
        funds.release(session, job, f"job {job_id} refused by {cluster_name}: {str(exc)[:200]}")
        job.hold_id = None
        session.flush()
        session.query(JobEvent).filter(JobEvent.job_id == job_id).delete()
        session.query(Job).filter(Job.id == job_id).delete()


def path_unix_user(session: Session, platform: Platform, cluster: Cluster, owner_id: int) -> str:
    """Who %u is: the Unix login the job runs as on ``cluster``."""
    cfg = platform.cluster_config(cluster.name)
    if cfg.run_as_users:
        from ..tenancy.identities import unix_user_for

        login = unix_user_for(session, owner_id, cluster.id)
        if login:
            return login
    elif cfg.kind == "slurm" and cfg.transport == "ssh" and cfg.ssh_user:
        return cfg.ssh_user
    elif cfg.kind == "slurm" and cfg.transport == "rest":
        return cfg.rest_user
    return _unix_user()


def _unix_user() -> str:
    import getpass

    return getpass.getuser()


def apply_state(session: Session, job: Job, new: JobState, detail: str = "") -> bool:
    """Move a job to a new state if allowed; records an event. False if refused."""
    current = JobState(job.state)
    if new == current:
        return False
    if not current.can_become(new):
        return False
    job.state = new.value
    session.add(JobEvent(job_id=job.id, from_state=current.value, to_state=new.value, detail=detail))
    return True


# reading and cancelling live in job_actions.py (re-exported: the API and CLI use them from here)
from .job_actions import cancel_job, get_job, list_jobs  # noqa: E402,F401

__all__ = ["cancel_job", "get_job", "list_jobs", "submit_job", "estimate_job", "route", "JobExtras",
           "RoutingRequest"]

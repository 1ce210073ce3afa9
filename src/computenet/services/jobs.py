"""Submitting, listing, cancelling jobs and reading their output."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..billing import funds, ledger
from ..clusters.base import ClusterError, SubmitRejected, SubmitRequest
from ..domain import patterns
from ..billing.rating import Usage
from ..domain.resources import JobSpec, RequestError, ResourceRequest
from ..domain.sbatch import ScriptError, parse_submission
from ..domain.states import JobState, TERMINAL_STATES
from ..store.models import Account, AccountMember, Cluster, Job, JobEvent, Partition, User
from ..store.types import utcnow
from . import enforcement, paths, tenants
from .errors import Forbidden, InsufficientFunds, InvalidRequest, NotFound, Unavailable
from .platform import Platform
from .pricing import quote

_TERMINAL = [s.value for s in TERMINAL_STATES]
_DEPENDENCY_ITEM = re.compile(r"^(after|afterany|afterok|afternotok|aftercorr|afterburstbuffer)((?::[0-9]+)+)$")


@dataclass(frozen=True)
class Placement:
    cluster: Cluster
    partition: Partition


def _fail(exc: Exception) -> InvalidRequest:
    return InvalidRequest(str(exc))


def choose_account(session: Session, user: User, name: str | None) -> Account:
    if name:
        account = session.scalar(
            select(Account).join(AccountMember, AccountMember.account_id == Account.id)
            .where(Account.name == name, AccountMember.user_id == user.id)
        )
        if account is None:
            raise InvalidRequest(f"account {name!r} does not exist or you are not a member of it")
        return account
    if user.default_account_id is None:
        raise InvalidRequest("you have no default account; pass --account")
    return session.get(Account, user.default_account_id)


def place(session: Session, platform: Platform, spec: JobSpec, pinned_cluster: str | None) -> Placement:
    """Pick the cluster and partition (routing proper comes with the router).

    An explicit cluster (-M) wins; otherwise the default cluster if it has
    the partition, else the first cluster that does.
    """
    clusters = {c.name: c for c in session.scalars(select(Cluster))}
    order = [platform.settings.default_cluster] + [c.name for c in platform.settings.clusters]
    names = [pinned_cluster] if pinned_cluster else list(dict.fromkeys(order))
    if pinned_cluster and pinned_cluster not in clusters:
        raise InvalidRequest(f"unknown cluster {pinned_cluster!r} (known: {', '.join(sorted(clusters))})")
    wanted = spec.resources.partition
    offered: list[str] = []
    for name in names:
        cluster = clusters.get(name)
        if cluster is None:
            continue
        parts = [p for p in cluster.partitions if p.available]
        offered += [f"{name}/{p.name}" for p in parts]
        if wanted:
            match = [p for p in parts if p.name == wanted]
        else:
            match = [p for p in parts if p.is_default] or parts[:1]
        if match:
            if cluster.health == "offline":
                if pinned_cluster:
                    raise Unavailable(f"cluster {name} is offline: {cluster.health_detail}")
                continue
            return Placement(cluster, match[0])
    if wanted:
        raise InvalidRequest(f"unknown partition {wanted!r} (offered: {', '.join(offered) or 'none'})")
    raise Unavailable("no cluster is online to take the job")


def check_fit(spec: JobSpec, part: Partition) -> int:
    """Refuse what the partition cannot run; returns the time limit to use."""
    res = spec.resources
    where = f"partition {part.name}"
    if res.nodes > part.nodes:
        raise InvalidRequest(f"the job asks for {res.nodes} nodes; {where} has {part.nodes}")
    if res.max_cores_per_node() > part.cores_per_node:
        raise InvalidRequest(f"the job asks for {res.max_cores_per_node()} cores on a node; nodes of {where} have {part.cores_per_node}")
    if res.total_cores > part.nodes * part.cores_per_node:
        raise InvalidRequest(f"the job asks for {res.total_cores} cores; {where} has {part.nodes * part.cores_per_node}")
    if res.total_gpus:
        if res.max_gpus_per_node() > part.gpus_per_node:
            raise InvalidRequest(f"the job asks for {res.max_gpus_per_node()} GPUs on a node; nodes of {where} have {part.gpus_per_node}")
        if res.gpu_type and part.gpu_type and res.gpu_type != part.gpu_type:
            raise InvalidRequest(f"{where} has {part.gpu_type} GPUs, not {res.gpu_type}")
    mem = res.mem_per_node_needed_mb()
    if mem > part.mem_per_node_mb:
        raise InvalidRequest(f"the job asks for {mem} MB of memory on a node; nodes of {where} have {part.mem_per_node_mb} MB")
    limit = res.time_limit_minutes or part.default_time_minutes or part.max_time_minutes
    if limit is None:
        raise InvalidRequest(f"{where} has no time limit: give one with --time")
    if part.max_time_minutes is not None and limit > part.max_time_minutes:
        raise InvalidRequest(f"time limit {limit} min is above the maximum of {where} ({part.max_time_minutes} min)")
    if part.price_core_hour is None:
        raise Unavailable(f"{where} has no price configured; an operator must set one before it takes jobs")
    return limit


def job_memory_mb(job: Job) -> int:
    """Memory the job asked for on all its nodes (0 when it did not say)."""
    res = ResourceRequest(**(job.spec.get("resources") or {}))
    return res.mem_per_node_needed_mb() * res.nodes


def max_cost(session: Session, platform: Platform, spec: JobSpec, minutes: int, part: Partition,
             account: Account) -> Decimal:
    """What the job costs if it runs to its time limit, at today's prices for this account."""
    res = spec.resources
    usage = Usage(minutes * 60, res.total_cores, res.total_gpus, res.mem_per_node_needed_mb() * res.nodes)
    rated = quote(session, part, usage, utcnow(), platform.settings.billing, gpu_model=res.gpu_type,
                  tenant_id=account.tenant_id)
    if rated is None:
        raise Unavailable(f"partition {part.name} has no price in force; an operator must set one")
    return rated.amount


def translate_dependency(session: Session, user: User, text: str) -> tuple[str, int | None]:
    """``afterok:12:13`` in ComputeNet job ids -> native ids, and their cluster."""
    cluster_id: int | None = None
    items = []
    for item in re.split(r"[,?]", text):
        m = _DEPENDENCY_ITEM.match(item)
        if not m:
            raise InvalidRequest(f"unsupported dependency {item!r} (use after, afterany, afterok or afternotok with job ids)")
        natives = []
        for raw in m.group(2).strip(":").split(":"):
            job = session.get(Job, int(raw))
            if job is None or job.owner_id != user.id:
                raise InvalidRequest(f"dependency on job {raw}: no such job of yours")
            if job.native_id is None:
                raise InvalidRequest(f"dependency on job {raw}: it was not submitted")
            if cluster_id is not None and job.cluster_id != cluster_id:
                raise InvalidRequest("all dependencies must be on one cluster")
            cluster_id = job.cluster_id
            natives.append(job.native_id)
        items.append(f"{m.group(1)}:{':'.join(natives)}")
    separator = "?" if "?" in text else ","
    return separator.join(items), cluster_id


def clean_name(name: str) -> str:
    name = "".join(ch if ch.isprintable() else "_" for ch in name).strip()
    return name[:200] or "job"


def submit_job(platform: Platform, user_id: int, script: bytes | str, flags: list[str] | None = None,
               script_name: str | None = None) -> Job:
    """Validate everything first; only then write a row and call the scheduler.

    Bad input raises before any row or sbatch call exists. If the scheduler
    refuses, the row is deleted again, so nothing half-written remains.
    """
    try:
        text, spec, script_args = parse_submission(script, flags)
    except (ScriptError, RequestError) as exc:
        raise _fail(exc) from None
    with platform.db.session() as session:
        user = session.get(User, user_id)
        account = choose_account(session, user, spec.resources.account)
        dependency = None
        pinned = spec.options.cluster
        if spec.options.dependency:
            if spec.options.dependency == "singleton":
                dependency = "singleton"
            else:
                dependency, dep_cluster_id = translate_dependency(session, user, spec.options.dependency)
                dep_cluster = session.get(Cluster, dep_cluster_id)
                if pinned and pinned != dep_cluster.name:
                    raise InvalidRequest(f"dependencies are on cluster {dep_cluster.name}, not {pinned}")
                pinned = dep_cluster.name
        placement = place(session, platform, spec, pinned)
        part = placement.partition
        limit = check_fit(spec, part)
        res = spec.resources
        # -A names the platform account; on the cluster the job runs under the
        # Slurm account mapped to it there (or the user's Slurm default)
        slurm_account = enforcement.slurm_account_for(session, placement.cluster.id, account.id)
        cluster_spec = spec.model_copy(update={"resources": res.model_copy(update={
            "account": slurm_account, "partition": part.name, "time_limit_minutes": limit})})
        cost = max_cost(session, platform, cluster_spec, limit, part, account)
        tenants.check_spend_limit(session, user, account, cost)
        cfg = platform.cluster_config(placement.cluster.name)
        space = paths.user_space(platform.settings.workdir_root(cfg), user.name)
        opts = spec.options
        name = clean_name(opts.job_name or (os.path.basename(script_name) if script_name else "job"))
        job = Job(
            owner_id=user.id, account_id=account.id, cluster_id=placement.cluster.id, partition=part.name,
            name=name, state=JobState.SUBMITTING.value, spec=cluster_spec.model_dump(mode="json"),
            script=text, script_args=list(script_args), workdir="", stdout_path="", stderr_path="",
            cores=res.total_cores, gpus=res.total_gpus, time_limit_minutes=limit, max_cost=cost,
        )
        session.add(job)
        session.flush()
        try:
            funds.hold_for_job(session, job, account, cost, part.product_line)
        except ledger.InsufficientFunds:
            available = funds.funds(session, account).available
            raise InsufficientFunds(
                f"account {account.name} cannot cover this job: it may cost up to {cost} {account.currency} "
                f"({res.total_cores} cores, {res.total_gpus} GPUs, {limit} min), and {available} is available"
            ) from None
        default_dir = f"jobs/{job.id}"
        workdir = paths.resolve_inside(space, space, opts.workdir or default_dir, "working directory")
        output = paths.resolve_inside(space, workdir, opts.output or "slurm-%j.out", "output file")
        error = paths.resolve_inside(space, workdir, opts.error or opts.output or "slurm-%j.out", "error file")
        if os.path.isdir(space):  # visible from here: make sure no symlink leads out
            paths.check_real_inside(workdir, space)
        job.workdir, job.stdout_path, job.stderr_path = workdir, output, error
        session.add(JobEvent(job_id=job.id, from_state=None, to_state=job.state, detail="accepted"))
        job_id = job.id
        request = SubmitRequest(
            script=text, spec=cluster_spec, job_name=name, workdir=workdir, output=output, error=error,
            comment=f"computenet:{job.id}", script_args=tuple(script_args), dependency=dependency,
            environment={"COMPUTENET_JOB_ID": str(job.id)},
        )
        cluster_name = placement.cluster.name
    # the row is committed before sbatch runs: a crash in between leaves a
    # SUBMITTING row the poller can match by comment, never an unknown job
    try:
        native_id = platform.adapter(cluster_name).submit(request)
    except (SubmitRejected, ClusterError) as exc:
        with platform.db.session() as session:
            job = session.get(Job, job_id)
            # the hold and its void stay in the ledger (immutable); the job row goes
            funds.release(session, job, f"job {job_id} refused by {cluster_name}: {str(exc)[:200]}")
            job.hold_id = None
            session.flush()
            session.query(JobEvent).filter(JobEvent.job_id == job_id).delete()
            session.query(Job).filter(Job.id == job_id).delete()
        if isinstance(exc, SubmitRejected):
            raise InvalidRequest(f"cluster {cluster_name} refused the job: {exc}") from None
        raise Unavailable(f"cluster {cluster_name} could not take the job: {exc}") from None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        job.native_id = native_id
        user_name = session.get(User, job.owner_id).name
        if not spec.options.array:
            job.stdout_path = patterns.expand(job.stdout_path, native_id, job.name, _unix_user())
            job.stderr_path = patterns.expand(job.stderr_path, native_id, job.name, _unix_user())
        apply_state(session, job, JobState.PENDING, f"submitted to {cluster_name} as {native_id} for {user_name}")
    return job


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


def get_job(session: Session, user: User, job_id: int) -> Job:
    job = session.get(Job, job_id)
    # someone else's job is "not found": its existence is not our business
    if job is None or (job.owner_id != user.id and not user.is_admin):
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(session: Session, user: User, active_only: bool = False, state: str | None = None,
              limit: int = 100) -> list[Job]:
    query = select(Job).where(Job.owner_id == user.id)
    if active_only:
        query = query.where(Job.state.not_in(_TERMINAL))
    if state:
        try:
            query = query.where(Job.state == JobState(state.upper()).value)
        except ValueError:
            raise InvalidRequest(f"unknown state {state!r}") from None
    return list(session.scalars(query.order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))))


def cancel_job(platform: Platform, user_id: int, job_id: int) -> Job:
    with platform.db.session() as session:
        user = session.get(User, user_id)
        job = get_job(session, user, job_id)
        if JobState(job.state).is_terminal:
            return job
        cluster_name, native_id = job.cluster.name, job.native_id
    if native_id is None:
        raise InvalidRequest(f"job {job_id} is still being submitted; try again in a moment")
    try:
        platform.adapter(cluster_name).cancel(native_id)
    except LookupError:
        pass  # the cluster has forgotten it: the poller settles it from accounting
    except ClusterError as exc:
        raise Unavailable(f"cluster {cluster_name} could not cancel job {job_id}: {exc}") from None
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail="cancel requested"))
        return job


MAX_OUTPUT_CHUNK = 1024 * 1024


def read_output(job: Job, stream: str, offset: int, limit: int = MAX_OUTPUT_CHUNK) -> tuple[str, int, bool]:
    """A chunk of the job's stdout/stderr from ``offset``: (text, next offset, exists)."""
    if stream not in ("stdout", "stderr"):
        raise InvalidRequest("stream must be stdout or stderr")
    if offset < 0:
        raise InvalidRequest("offset must not be negative")
    path = job.stdout_path if stream == "stdout" else job.stderr_path
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(max(1, min(limit, MAX_OUTPUT_CHUNK)))
    except FileNotFoundError:
        return "", offset, False
    except OSError as exc:
        raise Unavailable(f"cannot read {stream} of job {job.id}: {exc}") from None
    chunk = _whole_utf8(data)
    return chunk.decode("utf-8", errors="replace"), offset + len(chunk), True


def _whole_utf8(data: bytes) -> bytes:
    """Drop a UTF-8 character cut in half at the end (the next chunk has it)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if need <= back else data[:-back]
    return data

"""Pure parts of the slurmrestd adapter (v0.0.38): request bodies from a SubmitRequest,
domain values from the JSON slurmrestd answers. No I/O; golden tests run them on
answers captured from the test bed (tests/fixtures/slurmrest/).

Times in v0.0.38 are epoch seconds (no time-zone guessing, unlike the CLI).
"""

from __future__ import annotations

from datetime import datetime, timezone

from ...domain import job_env
from ...domain.states import JobState, from_slurm
from ..base import ClusterError, JobStatus, PartitionInfo, QueueEntry, SubmitRejected, SubmitRequest, UsageRecord
from ..slurm import tags
from ..slurm.parsers import expand_hostlist, is_requeued, node_list_of, parse_gres_gpus

VERSION = "v0.0.38"
# error numbers that mean "the request is wrong", not "the cluster is in trouble"
_USER_ERRORS = {2000, 2001, 2002, 2003, 2010, 2011, 2014, 2015, 2016, 2045, 2049, 2050, 9001}
INVALID_JOB_ID = 2017


def _epoch(value) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


def errors_of(answer: dict) -> list[dict]:
    return [e for e in answer.get("errors") or [] if isinstance(e, dict)]


def error_text(errors: list[dict]) -> str:
    return "; ".join(e.get("description") or e.get("error") or str(e) for e in errors) or "unknown error"


def submit_body(request: SubmitRequest, job_tag: str = "wckey", environment: dict[str, str] | None = None) -> dict:
    """POST /slurm/v0.0.38/job/submit: the job as sbatch would have got it from our flags, its tag in the
    ``job_tag`` field (as the command line puts it), in ``environment`` (default: PATH and LANG only)."""
    res, opts = request.spec.resources, request.spec.options
    job: dict = {
        "name": request.job_name, "current_working_directory": request.workdir,
        "standard_output": request.output, "standard_error": request.error,
        **tags.placement(request.comment, job_tag, opts.passthrough),
        "nodes": res.nodes, "cpus_per_task": res.cpus_per_task,
        # the job's environment: only what the platform sets (never the server's)
        "environment": {**(environment if environment is not None else job_env.login_environment(None, None,
                                                                                                  shell=None)),
                        **request.environment},
    }
    if res.ntasks:
        job["tasks"] = res.ntasks
    if res.ntasks_per_node:
        job["tasks_per_node"] = res.ntasks_per_node
    if res.partition:
        job["partition"] = res.partition
    if res.account:
        job["account"] = res.account
    if res.qos:
        job["qos"] = res.qos
    if res.time_limit_minutes:
        job["time_limit"] = res.time_limit_minutes
    if res.mem_per_node_mb is not None:
        job["memory_per_node"] = res.mem_per_node_mb
    if res.mem_per_cpu_mb is not None:
        job["memory_per_cpu"] = res.mem_per_cpu_mb
    model = f"{res.gpu_type}:" if res.gpu_type else ""
    if res.gpus_per_node:
        job["gres"] = f"gpu:{model}{res.gpus_per_node}"
    elif res.gpus_total:
        job["gpus"] = f"{model}{res.gpus_total}"
    if res.constraint:
        job["constraints"] = res.constraint
    if res.exclusive:
        job["exclusive"] = "exclusive"
    if opts.array:
        job["array"] = opts.array
    if request.dependency:
        job["dependency"] = request.dependency
    # slurmrestd 22.05.8 (v0.0.38) crashes on "argv" and on "hold" (seen on the test bed):
    # what it cannot take is refused here, with the reason, instead of being sent
    if opts.passthrough:
        raise SubmitRejected(f"option {opts.passthrough[0].split('=', 1)[0]} cannot be sent through slurmrestd "
                             "v0.0.38; use a cluster reached by the command line")
    if request.script_args:
        raise SubmitRejected("script arguments cannot be sent through slurmrestd v0.0.38; put them in the script")
    return {"job": job, "script": request.script}


def parse_submit(answer: dict) -> str:
    errors = errors_of(answer)
    if errors:
        numbers = {e.get("error_code") or e.get("error_number") for e in errors}
        if numbers & _USER_ERRORS:
            raise SubmitRejected(error_text(errors))
        raise ClusterError(f"slurmrestd refused the submission: {error_text(errors)}")
    job_id = answer.get("job_id")
    if not isinstance(job_id, int):
        raise ClusterError("slurmrestd answered without a job id")
    return str(job_id)


def _native_id(job: dict) -> str:
    task = job.get("array_task_id")
    if job.get("array_job_id") and task is not None:
        return f"{job['array_job_id']}_{task}"
    return str(job["job_id"])


def parse_jobs(answer: dict) -> list[JobStatus]:
    """GET /slurm/v0.0.38/jobs (or /job/{id}): one status per job or array task."""
    out = []
    for job in answer.get("jobs") or []:
        state = from_slurm(job.get("job_state") or "UNKNOWN")
        started = state != JobState.PENDING and bool(job.get("nodes"))
        reason = job.get("state_reason")
        out.append(JobStatus(
            native_id=_native_id(job), state=state, raw_state=job.get("job_state") or "",
            reason=None if reason in (None, "", "None") else reason,
            start=_epoch(job.get("start_time")) if started else None,
            end=_epoch(job.get("end_time")) if state.is_terminal else None,
            exit_code=job.get("exit_code") if state.is_terminal else None))
    return out


def parse_jobs_by_tag(answer: dict, job_tag: str = "wckey") -> dict[str, list[tuple[str, datetime | None]]]:
    """GET /slurm/v0.0.38/jobs -> {tag or comment: [(job id, submit time)]}, as squeue gives it the
    command-line adapter: a pending job whose submission answer was lost is found by its tag."""
    found: dict[str, list[tuple[str, datetime | None]]] = {}
    for job in answer.get("jobs") or []:
        tag = tags.read(job.get("comment"), job.get("wckey"), job_tag)
        entry = (str(job.get("array_job_id") or job["job_id"]), _epoch(job.get("submit_time")))  # an array: once
        if tag and entry not in found.setdefault(tag, []):
            found[tag].append(entry)
    return found


def parse_queue(answer: dict) -> list[QueueEntry]:
    entries = []
    for job in answer.get("jobs") or []:
        state = from_slurm(job.get("job_state") or "UNKNOWN")
        if state == JobState.COMPLETING:
            state = JobState.RUNNING
        if state not in (JobState.PENDING, JobState.RUNNING, JobState.SUSPENDED):
            continue
        nodes = int(job.get("node_count") or 1)
        per_node, _ = parse_gres_gpus((job.get("tres_per_node") or "").replace("gres:", ""))
        limit = job.get("time_limit")
        start = job.get("start_time") if state != JobState.PENDING else None
        elapsed = max(0, int(datetime.now(timezone.utc).timestamp()) - int(start)) if start else 0
        reason = job.get("state_reason")
        entries.append(QueueEntry(
            native_id=_native_id(job), partition=job.get("partition") or "", state=state,
            cpus=int(job.get("cpus") or 0), nodes=nodes, gpus=per_node * nodes,
            time_limit_s=int(limit) * 60 if isinstance(limit, int) and limit > 0 else None, elapsed_s=elapsed,
            priority=int(job.get("priority") or 0), user=job.get("user_name"),
            reason=None if reason in (None, "", "None") else reason,
            node_names=expand_hostlist(job.get("nodes") or "")))
    return entries


def _tres_count(items: list[dict], kind: str, name: str | None = None) -> int:
    return sum(int(t.get("count") or 0) for t in items or [] if t.get("type") == kind and t.get("name") == name)


def parse_db_jobs(answer: dict, cluster: str, job_tag: str = "wckey") -> list[UsageRecord]:
    """GET /slurmdb/v0.0.38/jobs: what accounting recorded, as sacct would."""
    records = []
    for job in answer.get("jobs") or []:
        if job.get("cluster") not in (None, cluster):
            continue
        t = job.get("time") or {}
        allocated = (job.get("tres") or {}).get("allocated") or []
        requested = (job.get("tres") or {}).get("requested") or []
        gpus = _tres_count(allocated, "gres", "gpu")
        models = [t2["name"].split(":", 1)[1] for t2 in requested
                  if t2.get("type") == "gres" and (t2.get("name") or "").startswith("gpu:")]
        state_name = (job.get("state") or {}).get("current") or "UNKNOWN"
        exit_code = job.get("exit_code") or {}
        signal = ((exit_code.get("signal") or {}).get("signal_id")) if isinstance(exit_code, dict) else None
        array = job.get("array") or {}
        native = str(array.get("job_id")) if array.get("job_id") else str(job["job_id"])
        mem = _tres_count(allocated, "mem")
        records.append(UsageRecord(
            cluster=cluster, record_id=str(job["job_id"]), native_id=native,
            submit=_epoch(t.get("submission")), state=from_slurm(state_name), raw_state=state_name,
            start=_epoch(t.get("start")), end=_epoch(t.get("end")), elapsed_seconds=int(t.get("elapsed") or 0),
            cpus=_tres_count(allocated, "cpu"), mem_mb=mem, gpus=gpus, gpu_type=models[0] if models else None,
            nodes=_tres_count(allocated, "node"), exit_code=exit_code.get("return_code"), signal=signal,
            partition=job.get("partition") or None, account=job.get("account"), user=job.get("user"),
            comment=tags.read((job.get("comment") or {}).get("job"), (job.get("wckey") or {}).get("wckey"), job_tag),
            job_name=job.get("name"),
            time_limit_minutes=t.get("limit") if isinstance(t.get("limit"), int) else None,
            alloc_tres=",".join(f"{x['type']}{'/' + x['name'] if x.get('name') else ''}={x.get('count')}"
                                for x in allocated if x.get("count") is not None),
            node_list=node_list_of(str(job.get("nodes") or "")),
            requeued=is_requeued(state_name) and _epoch(t.get("end")) is not None))
    return records


def parse_partitions(partitions: dict, nodes: dict) -> list[PartitionInfo]:
    by_node = {n["name"]: n for n in nodes.get("nodes") or []}
    out = []
    for p in partitions.get("partitions") or []:
        members = [by_node[n] for n in expand_hostlist(p.get("nodes") or "") if n in by_node]
        if not members:
            continue
        gpus = [parse_gres_gpus(n.get("gres") or "") for n in members]
        models = {m for count, m in gpus if count}
        max_time = p.get("max_time_limit")
        default_time = p.get("default_time_limit")
        features = set.intersection(*(set(filter(None, (n.get("features") or "").split(","))) for n in members))
        out.append(PartitionInfo(
            name=p["name"], nodes=len(members), cores_per_node=min(int(n.get("cpus") or 0) for n in members),
            mem_per_node_mb=min(int(n.get("real_memory") or 0) for n in members),
            gpus_per_node=min(count for count, _ in gpus), gpu_type=models.pop() if len(models) == 1 else None,
            max_time_minutes=max_time if isinstance(max_time, int) and max_time > 0 else None,
            default_time_minutes=default_time if isinstance(default_time, int) and default_time > 0 else None,
            is_default="default" in (p.get("flags") or []), available=p.get("state") == "UP",
            features=tuple(sorted(features)), node_names=tuple(n["name"] for n in members)))
    return sorted(out, key=lambda p: p.name)


def parse_ping(answer: dict) -> tuple[bool, str]:
    pings = answer.get("pings") or []
    up = [p for p in pings if p.get("ping") == "UP"]
    detail = ", ".join(f"{p.get('mode')} {p.get('hostname')} {p.get('ping')}" for p in pings)
    return bool(up) and any(p.get("mode") == "primary" for p in up), detail or error_text(errors_of(answer))

"""The local executor behind the cluster protocol."""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ...domain import job_env, patterns, sbatch_options
from ...domain.states import from_slurm
from ... import fsutil
from ..base import (
    ClusterError,
    Health,
    HealthState,
    JobStatus,
    QueueEntry,
    PartitionInfo,
    SubmitRejected,
    SubmitRequest,
    UsageRecord,
)
from . import isolation
from . import spool as sp

log = logging.getLogger(__name__)
_HOST = socket.gethostname()  # the local executor's one node (a job's NodeList)

def _user() -> str:
    return getpass.getuser()


def _mem_asked(res) -> bool:
    return res.mem_per_node_mb not in (None, 0) or res.mem_per_cpu_mb is not None or res.mem_per_gpu_mb is not None


def local_refusal(opts) -> str | None:
    """Why the local executor cannot run a job with these options (sbatch_options' local column)."""
    from ...domain import sbatch_options

    why = sbatch_options.refusal("local", list(opts.used))
    if why is None and any(p.startswith("--exclusive=") for p in opts.passthrough):
        why = "--exclusive=user|mcs: the local executor runs one job per slot set; use plain --exclusive"
    return why


def read_extras(passthrough) -> dict:
    """--export, --begin, --signal, --open-mode as the job gave them (the last one wins, as in sbatch)."""
    out: dict = {"export": ("ALL", {}), "begin": None, "signal": None, "open_mode": "truncate"}
    for item in passthrough:
        name, _, value = item.partition("=")
        if name == "--export":
            out["export"] = job_env.parse_export(value)
        elif name == "--begin":
            out["begin"] = job_env.parse_begin(value).astimezone(timezone.utc).isoformat(timespec="seconds")
        elif name == "--signal":
            out["signal"] = list(job_env.parse_signal(value))
        elif name == "--open-mode":
            out["open_mode"] = value
    return out


def export_environment(export, base: dict[str, str], slurm: dict[str, str]) -> dict[str, str]:
    """The job's environment as sbatch --export makes it: ALL (the user's environment, and VAR=x
    added), NONE (only SLURM_* variables), or a list (those, and SLURM_*)."""
    mode, variables = export
    env = dict(base) if mode == "ALL" else {}
    for name, value in variables.items():
        if value is not None:
            env[name] = value
        elif name in base:
            env[name] = base[name]
    env.update(slurm)
    return env


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class LocalCluster:
    """Jobs run as processes on this host within ``slots`` CPU cores.

    One partition (``partition``), one node: the host. Memory is accounted
    (request or ``default_mem_per_cpu_mb`` per core), not enforced.

    Jobs are isolated from the server and from each other when the server
    runs as root and ``data_dir`` and ``workdir_root`` are given and reachable
    (``isolation`` "auto" or "required"); otherwise the executor serves one
    tenant and says so in its health and the log (see isolation.py).
    """

    # no requeue(): the option table's verdict for --requeue on this kind (domain/sbatch_options.py)
    requeue_refusal = sbatch_options.BY_LONG["requeue"].local.how

    def __init__(
        self,
        name: str,
        spool_dir: str | Path,
        slots: int,
        mem_mb: int = 16_000,
        gpus: int = 0,
        partition: str = "local",
        max_time_minutes: int | None = 24 * 60,
        default_time_minutes: int = 60,
        default_mem_per_cpu_mb: int = 1024,
        data_dir: str | Path | None = None,
        workdir_root: str | None = None,
        isolation_mode: str = "auto",
        job_uids: tuple[int, int] = isolation.DEFAULT_UID_RANGE,
    ) -> None:
        if slots < 1:
            raise ValueError("a local cluster needs at least one CPU slot")
        self.name = name
        self.spool = Path(spool_dir).resolve()
        self.slots = slots
        self.mem_mb = mem_mb
        self.gpus = gpus
        self.partition = partition
        self.max_time_minutes = max_time_minutes
        self.default_time_minutes = default_time_minutes
        self.default_mem_per_cpu_mb = default_mem_per_cpu_mb
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.workdir_root = os.path.normpath(workdir_root) if workdir_root else None
        self.job_uids = job_uids
        self.mode = isolation.choose(isolation_mode, self.data_dir, self.workdir_root)
        if isolation_mode == "required" and self.mode.single_tenant:
            raise ValueError(f"cluster {name}: isolation is required but not possible: {self.mode.detail}")
        (self.spool / "jobs").mkdir(parents=True, exist_ok=True)
        if self.isolated:
            # job users pass through to their script and their space, and read nothing else
            isolation.open_path(self.data_dir, [self.spool / "jobs", Path(self.workdir_root)])
            self._harden()
            log.info("local cluster %s: %s", name, self.mode.detail)
        else:
            for path in (self.spool, self.spool / "jobs"):
                os.chmod(path, 0o700)
            log.warning("local cluster %s: %s", name, self.mode.detail)

    @property
    def isolated(self) -> bool:
        return self.mode.name == isolation.USERS

    def _harden(self) -> None:
        isolation.harden(self.data_dir, [self.spool, Path(self.workdir_root)])

    def _job_user(self, request: SubmitRequest) -> isolation.JobUser:
        """Whom the job runs as: the owner's mapped login, or their own uid from the range."""
        root, workdir = self.workdir_root, os.path.normpath(request.workdir)
        if not workdir.startswith(root + "/"):
            raise SubmitRejected(f"working directory {workdir} is outside {root}")
        space_name = workdir[len(root) + 1:].split("/")[0]
        try:
            if request.run_as:
                return isolation.mapped_login(request.run_as)
            return isolation.dynamic_user(self.data_dir, space_name, os.path.join(root, space_name), self.job_uids)
        except isolation.IsolationError as exc:
            raise ClusterError(f"cluster {self.name}: {exc}") from None

    def _environment(self, user: isolation.JobUser | None, request: SubmitRequest) -> dict[str, str]:
        """The job's user's login environment (job_env.login_environment, as Slurm clusters build it):
        HOME is their space. A single-tenant executor runs jobs as the service's account, with this
        host's PATH and locale; an isolating one passes nothing of the server's."""
        if user is None:
            return job_env.login_environment(_user(), self._space_of(request), host=dict(os.environ),
                                             path=os.environ.get("PATH") or job_env.DEFAULT_PATH)
        return job_env.login_environment(user.name, user.home, path=isolation.PATH, shell="/bin/sh")

    def _space_of(self, request: SubmitRequest) -> str:
        """The job's user's space (their HOME in a job): given, or the top of its working directory."""
        if request.space:
            return request.space
        workdir = os.path.normpath(request.workdir)
        if self.workdir_root and workdir.startswith(self.workdir_root + "/"):
            return os.path.join(self.workdir_root, workdir[len(self.workdir_root) + 1:].split("/")[0])
        head, _, _ = workdir.partition("/jobs/")
        return head or workdir

    def _check_paths(self, request: SubmitRequest) -> None:
        """The last word before the runner opens the outputs: the platform filled in %x and %u and
        checked them; what is left (ids, the node name) cannot lead out of the user's space."""
        space = request.space
        workdir = os.path.normpath(request.workdir)
        if space is None and self.workdir_root and workdir.startswith(self.workdir_root + "/"):
            space = os.path.join(self.workdir_root, workdir[len(self.workdir_root) + 1:].split("/")[0])
        for what, path in (("output", request.output), ("error", request.error)):
            why = patterns.leaves(path, space)
            if why:
                raise SubmitRejected(f"the {what} path {path!r} {why}")

    # -- protocol -----------------------------------------------------------
    def submit(self, request: SubmitRequest) -> str:
        res = request.spec.resources
        opts = request.spec.options
        if opts.array:
            raise SubmitRejected("the local executor does not run job arrays; submit to a Slurm cluster")
        self._check_paths(request)
        if request.dependency:
            raise SubmitRejected("the local executor does not support --dependency; submit to a Slurm cluster")
        if res.partition and res.partition != self.partition:
            raise SubmitRejected(f"invalid partition {res.partition!r} on cluster {self.name} (it has {self.partition!r})")
        if res.nodes != 1:
            raise SubmitRejected(f"cluster {self.name} has one node; the job asks for {res.nodes}")
        why = local_refusal(request.spec.options)  # the router rules this out; the last word is here
        if why:
            raise SubmitRejected(f"cluster {self.name} cannot honour {why}")
        extra = read_extras(opts.passthrough)
        if res.total_cores > self.slots:
            raise SubmitRejected(f"the job asks for {res.total_cores} cores; cluster {self.name} has {self.slots}")
        if res.total_gpus > self.gpus:
            raise SubmitRejected(f"the job asks for {res.total_gpus} GPUs; cluster {self.name} has {self.gpus}")
        mem = res.mem_per_node_needed_mb(self.default_mem_per_cpu_mb) or self.mem_mb
        if res.exclusive:  # plain --exclusive: the whole host
            res = res.model_copy(update={"cpus_per_task": max(res.cpus_per_task, self.slots // max(1, res.tasks)),
                                         "cpus_per_gpu": None})
        if mem > self.mem_mb:
            raise SubmitRejected(f"the job asks for {mem} MB of memory; cluster {self.name} has {self.mem_mb} MB")
        limit = res.time_limit_minutes or self.default_time_minutes
        if self.max_time_minutes is not None and limit > self.max_time_minutes:
            raise SubmitRejected(f"time limit {limit} min is above the partition's maximum of {self.max_time_minutes} min")

        user = None
        if self.isolated:
            user = self._job_user(request)
            self._harden()  # a key or database file made since start-up is closed before the job runs
            try:
                isolation.prepare_space(self.workdir_root, request.workdir, user)
            except isolation.IsolationError as exc:
                raise SubmitRejected(str(exc)) from None
        else:
            os.makedirs(request.workdir, exist_ok=True)
        with sp.locked(self.spool):
            job_id, job_dir = sp.allocate_id(self.spool)
        script = job_dir / "script"
        if user is not None:
            os.chmod(job_dir, 0o711)  # the job reaches its script, and lists nothing here
            fsutil.atomic_write(script, request.script, 0o500)
            os.chown(script, user.uid, user.gid)
        else:
            fsutil.atomic_write(script, request.script, 0o700)
        unix_user = user.name if user is not None else _user()
        env = self._environment(user, request)
        slurm_env = dict(
            SLURM_JOB_ID=str(job_id),
            SLURM_JOBID=str(job_id),
            SLURM_JOB_NAME=request.job_name,
            SLURM_CLUSTER_NAME=self.name,
            SLURM_JOB_PARTITION=self.partition,
            SLURM_SUBMIT_DIR=request.workdir,
            SLURM_JOB_NUM_NODES="1",
            SLURM_NNODES="1",
            SLURM_NTASKS=str(res.tasks),
            SLURM_CPUS_PER_TASK=str(res.cpus_per_task),
            SLURM_CPUS_ON_NODE=str(res.total_cores),
            SLURM_JOB_CPUS_PER_NODE=str(res.total_cores),
        )
        if res.mem_per_cpu_mb is not None or (res.mem_per_node_mb is None and res.mem_per_gpu_mb is None):
            slurm_env["SLURM_MEM_PER_CPU"] = str(res.mem_per_cpu_mb or self.default_mem_per_cpu_mb)
        if res.mem_per_node_mb is not None:
            slurm_env["SLURM_MEM_PER_NODE"] = str(mem)
        if res.mem_per_gpu_mb is not None:
            slurm_env["SLURM_MEM_PER_GPU"] = str(res.mem_per_gpu_mb)
        env = export_environment(extra["export"], env, slurm_env | dict(request.environment))
        run = {"mode": self.mode.name}
        if user is not None:
            run.update(uid=user.uid, gid=user.gid, login=user.name if user.login else None)
        sp.write_json(
            job_dir / "request.json",
            {
                "name": request.job_name,
                "cores": res.total_cores,
                "gpus": res.total_gpus,
                "mem_mb": mem,
                "time_limit_minutes": limit,
                "workdir": request.workdir,
                # %u as the service expands it for the paths it records (the server's user)
                "output": patterns.expand(request.output, str(job_id), request.job_name, _user(), socket.gethostname()),
                "error": patterns.expand(request.error, str(job_id), request.job_name, _user(), socket.gethostname()),
                "script_args": list(request.script_args),
                "environment": env,
                "comment": request.comment,
                "slots": self.slots,
                "gpu_slots": self.gpus,
                "user": unix_user,
                "run": run,
                "mem_limit_mb": mem if _mem_asked(res) else None,  # enforced by the kernel (runner.py)
                "open_mode": extra["open_mode"],
                "signal": extra["signal"],
            },
        )
        # state.json last: a job directory without it is not a job yet
        held = "--hold" in opts.passthrough  # sbatch -H: waits until released (resume)
        state = {"state": "PENDING", "submit": sp.now_iso(), "reason": "JobHeldUser" if held else "None",
                 "held": held}
        if extra["begin"] is not None:  # pending until then, as Slurm's BeginTime
            state["begin"] = extra["begin"]
            state["reason"] = state["reason"] if held else "BeginTime"
        sp.write_json(job_dir / "state.json", state)
        sp.schedule(self.spool, self.slots, self.gpus)
        return str(job_id)

    def _job_dir(self, native_id: str) -> Path:
        if not native_id.isdigit():
            raise LookupError(f"cluster {self.name} has no job {native_id!r}")
        return self.spool / "jobs" / native_id

    def _read(self, native_id: str) -> tuple[dict, dict] | None:
        job_dir = self._job_dir(native_id)
        request, state = sp.read_json(job_dir / "request.json"), sp.read_json(job_dir / "state.json")
        if request is None or state is None:  # not a job yet (or damaged: left out, never a 500)
            return None
        return request, state

    def status(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        sp.schedule(self.spool, self.slots, self.gpus)  # progress even after a restart
        result = {}
        for native_id in native_ids:
            found = self._read(native_id)
            if found is None:
                continue
            _, state = found
            result[native_id] = JobStatus(
                native_id=native_id,
                state=from_slurm(state["state"]),
                raw_state=state["state"],
                reason=state.get("reason") if state.get("reason") not in (None, "None") else None,
                start=_dt(state.get("start")),
                end=_dt(state.get("end")),
                exit_code=state.get("exit_code"),
                node_list=_HOST if state.get("start") else None,  # one node: this machine
            )
        return result

    def _known_dir(self, native_id: str):
        job_dir = self._job_dir(native_id)
        if sp.read_json(job_dir / "state.json") is None:
            raise LookupError(f"cluster {self.name} has no job {native_id}")
        return job_dir

    def cancel(self, native_id: str) -> None:
        job_dir = self._known_dir(native_id)
        with sp.locked(self.spool):
            state = sp.read_json(job_dir / "state.json") or {}
            if state.get("state") == "PENDING":
                state.update(state="CANCELLED", end=sp.now_iso(), exit_code=0, signal=15, elapsed=0)
                sp.write_json(job_dir / "state.json", state)
            elif state.get("state") in ("RUNNING", "SUSPENDED"):  # the runner wakes a stopped job first
                (job_dir / "cancel").touch()  # seen by the runner even if the signal is lost
                pid = fsutil.read_int_or(job_dir / "runner.pid")
                if pid and sp.runner_alive(job_dir, state):  # never a reused pid
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        sp.schedule(self.spool, self.slots, self.gpus)

    def set_time_limit(self, native_id: str, minutes: int) -> None:
        """A new time limit (within the partition's): the runner reads the file each turn."""
        if self.max_time_minutes is not None and minutes > self.max_time_minutes:
            raise SubmitRejected(f"time limit {minutes} min is above the partition's maximum of "
                                 f"{self.max_time_minutes} min")
        job_dir = self._known_dir(native_id)
        with sp.locked(self.spool):
            request = sp.read_json(job_dir / "request.json") or {}
            request["time_limit_minutes"] = minutes
            sp.write_json(job_dir / "request.json", request)
            fsutil.atomic_write(job_dir / "time_limit", str(minutes), 0o600)

    def queue(self) -> list[QueueEntry]:
        entries = []
        now = datetime.now(timezone.utc)
        for job_dir in sp.job_dirs(self.spool):
            found = self._read(job_dir.name)
            if found is None:
                continue
            request, state = found
            if state["state"] not in ("PENDING", "RUNNING", "SUSPENDED"):
                continue
            start = _dt(state.get("start"))
            elapsed = int((now - start).total_seconds()) - int(state.get("suspended_s") or 0) if start else 0
            limit = request["time_limit_minutes"]
            entries.append(QueueEntry(
                native_id=job_dir.name, partition=self.partition, state=from_slurm(state["state"]),
                cpus=request["cores"], nodes=1, gpus=request["gpus"], time_limit_s=limit * 60 if limit else None,
                elapsed_s=max(0, elapsed), priority=0, user=request.get("user") or _user(),
                reason="JobHeldUser" if state.get("held") else state.get("reason")))
        return entries

    def pause(self, native_id: str) -> None:
        """Suspend a running job (SIGSTOP, by its runner) or hold a pending one."""
        self._set_paused(native_id, True)

    def resume(self, native_id: str) -> None:
        self._set_paused(native_id, False)

    def _set_paused(self, native_id: str, paused: bool) -> None:
        job_dir = self._known_dir(native_id)
        with sp.locked(self.spool):
            state = sp.read_json(job_dir / "state.json") or {}
            if state.get("state") == "PENDING":
                state["held"] = paused
                state["reason"] = "JobHeldAdmin" if paused else None
                sp.write_json(job_dir / "state.json", state)
        # the runner watches this file (a running job, or one that starts later)
        flag = job_dir / "suspend"
        if paused and state.get("state") in ("RUNNING", "SUSPENDED"):
            flag.touch()
        elif not paused:
            flag.unlink(missing_ok=True)
        sp.schedule(self.spool, self.slots, self.gpus)

    def accounting(self, since: datetime | None, native_ids: Sequence[str] | None = None) -> list[UsageRecord]:
        wanted = set(native_ids) if native_ids else None
        records = []
        for job_dir in sp.job_dirs(self.spool):
            if wanted is not None and job_dir.name not in wanted:
                continue
            found = self._read(job_dir.name)
            if found is None:
                continue
            request, state = found
            submit = datetime.fromisoformat(state["submit"])
            end = _dt(state.get("end"))
            if wanted is None and since is not None and end is not None and end < since:
                continue
            start = _dt(state.get("start"))
            if state["state"] in ("RUNNING", "SUSPENDED") and start:
                # the runner records suspended seconds when it resumes (an estimate while suspended)
                elapsed = max(0, int((datetime.now(timezone.utc) - start).total_seconds())
                              - int(state.get("suspended_s") or 0))
            elif state.get("elapsed") is None and start and end:
                # the runner died before it could record the time (NODE_FAIL): the job ran until it was
                # found gone, as Slurm charges a job on a node that went down
                elapsed = max(0, int((end - start).total_seconds()) - int(state.get("suspended_s") or 0))
            else:
                elapsed = int(state.get("elapsed") or 0)
            ran = start is not None
            cpus = request["cores"] if ran else 0
            gpus = request["gpus"] if ran else 0
            tres = f"billing={cpus},cpu={cpus},mem={request['mem_mb']}M,node=1" if ran else ""
            if gpus:
                tres += f",gres/gpu={gpus}"
            records.append(
                UsageRecord(
                    cluster=self.name,
                    record_id=job_dir.name,
                    native_id=job_dir.name,
                    submit=submit,
                    state=from_slurm(state["state"]),
                    raw_state=state["state"],
                    start=start,
                    end=end,
                    elapsed_seconds=elapsed,
                    cpus=cpus,
                    mem_mb=request["mem_mb"] if ran else 0,
                    gpus=gpus,
                    gpu_type=None,
                    nodes=1 if ran else 0,
                    exit_code=state.get("exit_code"),
                    signal=state.get("signal"),
                    partition=self.partition,
                    comment=request["comment"],
                    job_name=request["name"],
                    time_limit_minutes=request["time_limit_minutes"],
                    alloc_tres=tres,
                )
            )
        return records

    def partitions(self) -> list[PartitionInfo]:
        return [
            PartitionInfo(
                name=self.partition,
                nodes=1,
                cores_per_node=self.slots,
                mem_per_node_mb=self.mem_mb,
                gpus_per_node=self.gpus,
                max_time_minutes=self.max_time_minutes,
                default_time_minutes=self.default_time_minutes,
                is_default=True,
            )
        ]

    def health(self) -> Health:
        if not os.access(self.spool, os.W_OK):
            return Health(HealthState.OFFLINE, f"spool {self.spool} is not writable")
        return Health(HealthState.ONLINE, f"{self.slots} slots on this host; {self.mode.detail}", 0.0)

    # -- scontrol update (the owner's changes to a live job) -----------------------
    def update(self, native_id: str, time_limit_minutes: int | None = None, partition: str | None = None,
               name: str | None = None) -> None:
        """A waiting job's limit and name (the runner reads them when it starts the job); the one
        partition is the only one. ValueError says why a running job cannot change here."""
        job_dir = self._known_dir(native_id)
        if partition is not None and partition != self.partition:
            raise ValueError(f"cluster {self.name} has one partition, {self.partition!r}")
        with sp.locked(self.spool):
            state = sp.read_json(job_dir / "state.json") or {}
            if state.get("state") != "PENDING":
                raise ValueError(f"the local executor changes only a waiting job; this one is {state.get('state')}")
            request = sp.read_json(job_dir / "request.json")
            if time_limit_minutes is not None:
                request["time_limit_minutes"] = time_limit_minutes
            if name is not None:
                request["name"] = name
                request["environment"]["SLURM_JOB_NAME"] = name
            sp.write_json(job_dir / "request.json", request)

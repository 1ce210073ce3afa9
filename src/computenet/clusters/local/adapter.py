"""The local executor behind the cluster protocol."""

from __future__ import annotations

import getpass
import os
import signal
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ...domain import patterns
from ...domain.states import from_slurm
from ..base import (
    Health,
    HealthState,
    JobStatus,
    QueueEntry,
    PartitionInfo,
    SubmitRejected,
    SubmitRequest,
    UsageRecord,
)
from . import spool as sp

# what a job gets in its environment besides the SLURM_* variables
_BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "LOGNAME")


def _user() -> str:
    return getpass.getuser()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class LocalCluster:
    """Jobs run as processes on this host within ``slots`` CPU cores.

    One partition (``partition``), one node: the host. Memory is accounted
    (request or ``default_mem_per_cpu_mb`` per core), not enforced.
    """

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
        (self.spool / "jobs").mkdir(parents=True, exist_ok=True)

    # -- protocol -----------------------------------------------------------
    def submit(self, request: SubmitRequest) -> str:
        res = request.spec.resources
        opts = request.spec.options
        if opts.array:
            raise SubmitRejected("the local executor does not run job arrays; submit to a Slurm cluster")
        if request.dependency:
            raise SubmitRejected("the local executor does not support --dependency; submit to a Slurm cluster")
        if res.partition and res.partition != self.partition:
            raise SubmitRejected(f"invalid partition {res.partition!r} on cluster {self.name} (it has {self.partition!r})")
        if res.nodes != 1:
            raise SubmitRejected(f"cluster {self.name} has one node; the job asks for {res.nodes}")
        if res.total_cores > self.slots:
            raise SubmitRejected(f"the job asks for {res.total_cores} cores; cluster {self.name} has {self.slots}")
        if res.total_gpus > self.gpus:
            raise SubmitRejected(f"the job asks for {res.total_gpus} GPUs; cluster {self.name} has {self.gpus}")
        mem = res.mem_per_node_needed_mb(self.default_mem_per_cpu_mb) or self.mem_mb
        if mem > self.mem_mb:
            raise SubmitRejected(f"the job asks for {mem} MB of memory; cluster {self.name} has {self.mem_mb} MB")
        limit = res.time_limit_minutes or self.default_time_minutes
        if self.max_time_minutes is not None and limit > self.max_time_minutes:
            raise SubmitRejected(f"time limit {limit} min is above the partition's maximum of {self.max_time_minutes} min")

        os.makedirs(request.workdir, exist_ok=True)
        with sp.locked(self.spool):
            counter = self.spool / "next_id"
            job_id = int(counter.read_text()) if counter.exists() else 1
            counter.write_text(str(job_id + 1))
            job_dir = self.spool / "jobs" / str(job_id)
            job_dir.mkdir()
        script = job_dir / "script"
        script.write_text(request.script)
        script.chmod(0o700)
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(
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
            SLURM_MEM_PER_NODE=str(mem),
        )
        env.update(request.environment)
        sp.write_json(
            job_dir / "request.json",
            {
                "name": request.job_name,
                "cores": res.total_cores,
                "gpus": res.total_gpus,
                "mem_mb": mem,
                "time_limit_minutes": limit,
                "workdir": request.workdir,
                "output": patterns.expand(request.output, str(job_id), request.job_name, _user(), socket.gethostname()),
                "error": patterns.expand(request.error, str(job_id), request.job_name, _user(), socket.gethostname()),
                "script_args": list(request.script_args),
                "environment": env,
                "comment": request.comment,
                "slots": self.slots,
                "gpu_slots": self.gpus,
            },
        )
        # state.json last: a job directory without it is not a job yet
        held = "--hold" in opts.passthrough  # sbatch -H: waits until released (resume)
        sp.write_json(job_dir / "state.json", {"state": "PENDING", "submit": sp.now_iso(),
                                               "reason": "JobHeldUser" if held else "None", "held": held})
        sp.schedule(self.spool, self.slots, self.gpus)
        return str(job_id)

    def _job_dir(self, native_id: str) -> Path:
        if not native_id.isdigit():
            raise LookupError(f"cluster {self.name} has no job {native_id!r}")
        return self.spool / "jobs" / native_id

    def _read(self, native_id: str) -> tuple[dict, dict] | None:
        job_dir = self._job_dir(native_id)
        try:
            return sp.read_json(job_dir / "request.json"), sp.read_json(job_dir / "state.json")
        except FileNotFoundError:
            return None

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
            )
        return result

    def _known_dir(self, native_id: str):
        job_dir = self._job_dir(native_id)
        if not (job_dir / "state.json").exists():
            raise LookupError(f"cluster {self.name} has no job {native_id}")
        return job_dir

    def cancel(self, native_id: str) -> None:
        job_dir = self._known_dir(native_id)
        with sp.locked(self.spool):
            state = sp.read_json(job_dir / "state.json")
            if state["state"] == "PENDING":
                state.update(state="CANCELLED", end=sp.now_iso(), exit_code=0, signal=15, elapsed=0)
                sp.write_json(job_dir / "state.json", state)
            elif state["state"] in ("RUNNING", "SUSPENDED"):  # the runner wakes a stopped job first
                (job_dir / "cancel").touch()  # seen by the runner even if the signal is lost
                pid_file = job_dir / "runner.pid"
                if pid_file.exists():
                    try:
                        os.kill(int(pid_file.read_text()), signal.SIGTERM)
                    except (ProcessLookupError, ValueError):
                        pass
        sp.schedule(self.spool, self.slots, self.gpus)

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
                elapsed_s=max(0, elapsed), priority=0, user=_user(),
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
            state = sp.read_json(job_dir / "state.json")
            if state["state"] == "PENDING":
                state["held"] = paused
                state["reason"] = "JobHeldAdmin" if paused else None
                sp.write_json(job_dir / "state.json", state)
        # the runner watches this file (a running job, or one that starts later)
        flag = job_dir / "suspend"
        if paused and state["state"] in ("RUNNING", "SUSPENDED"):
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
        return Health(HealthState.ONLINE, f"{self.slots} slots on this host", 0.0)

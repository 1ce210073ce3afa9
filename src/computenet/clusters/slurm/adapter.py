"""The Slurm adapter: argv builders + a transport + parsers."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, tzinfo
from typing import Sequence

from ..base import (
    ClusterError,
    QueueEntry,
    Health,
    HealthState,
    JobStatus,
    PartitionInfo,
    StepUsage,
    SubmitRequest,
    UsageRecord,
    aggregate_state,
)
from ...domain.states import JobState
from . import commands, parsers, sstat, tags
from .transport import CommandResult, Transport

# squeue's answer when none of the asked ids is known any more
_INVALID_ID = "Invalid job id specified"
_ALREADY_DONE = ("already completing or completed", "Job/step already completing", "Job has already finished")


def _failed(result: CommandResult) -> bool:
    """Some Slurm commands exit 0 and still complain on stderr."""
    return result.returncode != 0 or "error:" in result.stderr


def _message(result: CommandResult) -> str:
    text = (result.stderr or result.stdout).strip()
    return f"{result.argv[0]} exited {result.returncode}: {text[:500]}"


def _output_dirs(request: SubmitRequest) -> list[str]:
    """The directories -o/-e name below the job's directory that hold no pattern (logs/ in
    logs/%x-%j.out); one that depends on an id or a node cannot be made beforehand."""
    out = []
    for path in (request.output, request.error):
        directory = path.rsplit("/", 1)[0]
        if "%" not in directory and directory not in out and directory.startswith(request.workdir + "/"):
            out.append(directory)
    return out


class SlurmCluster:
    def __init__(self, name: str, transport: Transport, tz: tzinfo | None = None, timeout: float = 60,
                 slurm_cluster: str | None = None, job_tag: str = "wckey") -> None:
        self.name = name
        self.job_tag = tags.check_field(job_tag)  # where the platform's computenet:<id> goes (config job_tag)
        self.slurm_cluster = slurm_cluster or name  # ClusterName in slurm.conf
        self.transport = transport
        self.tz = tz  # the cluster's wall-clock zone; None = this host's
        self.timeout = timeout

    def _run(self, argv: list[str], stdin: str | None = None, as_user: str | None = None) -> CommandResult:
        if as_user:
            return self.transport.run(argv, stdin=stdin, timeout=self.timeout, as_user=as_user)
        return self.transport.run(argv, stdin=stdin, timeout=self.timeout)

    def submit(self, request: SubmitRequest) -> str:
        commands.check_output_paths(request)
        # sbatch does not create --chdir; a job in a missing directory fails
        if request.run_as:
            if request.space:
                self.transport.ensure_dir(request.space, owner=request.run_as)
            self.transport.ensure_dir(request.workdir, as_user=request.run_as)
        else:
            self.transport.ensure_dir(request.workdir)
        for directory in _output_dirs(request):  # as the user would have: Slurm does not create them
            if request.run_as:
                self.transport.ensure_dir(directory, as_user=request.run_as)
            else:
                self.transport.ensure_dir(directory)
        argv = commands.sbatch_argv(request, self.slurm_cluster, self.job_tag)
        result = self.transport.run(argv, stdin=request.script, timeout=self.timeout, as_user=request.run_as,
                                    env=self.job_environment(request))
        if result.returncode != 0:
            raise parsers.sbatch_error(result.stderr or result.stdout)
        return parsers.parse_sbatch(result.stdout)

    def job_environment(self, request: SubmitRequest) -> dict[str, str]:
        """What sbatch runs with, so what the job starts from (--export=ALL is sbatch's default): its
        user's login environment, never the server's. As a user (run_as_users) the account switch
        (runuser, sudo, the user's SSH login) sets HOME and SHELL from their passwd entry; otherwise
        the job runs as the service's account, and HOME is the user's space on the cluster."""
        if request.run_as:
            env = self.transport.job_environment(request.run_as, None)
            env.pop("SHELL", None)
        else:
            env = self.transport.job_environment(self.transport.account, request.space or request.workdir)
        env.update(request.environment)
        return env

    def status(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Status of many jobs in one squeue call; sacct for the ones gone."""
        ids = sorted(set(native_ids), key=lambda i: (len(i), i))
        if not ids:
            return {}
        result = self._run(commands.squeue_argv(ids))
        if _failed(result):
            if _INVALID_ID not in result.stderr:
                raise ClusterError(_message(result))
            rows: list[JobStatus] = []
        else:
            rows = parsers.parse_squeue(result.stdout, self.tz)
        by_job: dict[str, list[JobStatus]] = defaultdict(list)
        for row in rows:
            by_job[parsers.base_job_id(row.native_id)].append(row)
        asked = set(ids)  # a list here made the filter quadratic (10,000 jobs: 50 million comparisons)
        statuses = {job: self._combine(job, parts) for job, parts in by_job.items() if job in asked}
        missing = [i for i in ids if i not in statuses]
        if missing:
            # out of squeue (older than MinJobAge): ask accounting. sacct
            # lags a few seconds, so a job may be in neither: UNKNOWN for now.
            records = self.accounting(None, missing)
            latest: dict[str, UsageRecord] = {}  # a requeued job has a row per run: its last run speaks
            for record in records:
                if record.is_complete:  # a stub row says nothing yet
                    seen = latest.get(record.record_id)
                    if seen is None or record.submit >= seen.submit:
                        latest[record.record_id] = record
            grouped: dict[str, list[UsageRecord]] = defaultdict(list)
            for record in latest.values():
                grouped[record.native_id].append(record)
            for job in missing:
                parts = grouped.get(job)
                if not parts:
                    statuses[job] = JobStatus(job, JobState.UNKNOWN, "UNKNOWN", reason="not in squeue or sacct yet")
                    continue
                state = aggregate_state([r.state for r in parts])
                if not state.is_terminal:
                    # gone from squeue yet live in sacct: a stale row (sacct shows a
                    # just-finished job as PENDING "allocation" for a few seconds)
                    statuses[job] = JobStatus(job, JobState.UNKNOWN, "UNKNOWN", reason="accounting not final yet")
                    continue
                ends = [r.end for r in parts if r.end]
                starts = [r.start for r in parts if r.start]
                exit_codes = [r.exit_code for r in parts if r.exit_code is not None]
                nodes = sorted({r.node_list for r in parts if r.node_list})
                statuses[job] = JobStatus(
                    job, state, ",".join(sorted({r.raw_state for r in parts})),
                    start=min(starts) if starts else None,
                    end=max(ends) if ends and state.is_terminal else None,
                    exit_code=max(exit_codes) if exit_codes else None,
                    node_list=",".join(nodes) or None,  # out of squeue already: only sacct says where it ran
                )
        return statuses

    def jobs_by_comment(self) -> dict[str, list[tuple[str, datetime | None]]]:
        """{comment: [(job id, submit time)]} of every job slurmctld knows now: finds a job whose
        sbatch answer was lost even while it is pending (sacct has no comment for it yet)."""
        result = self._run(commands.squeue_comments_argv())
        if _failed(result):
            raise ClusterError(_message(result))
        return parsers.parse_squeue_comments(result.stdout, self.tz, self.job_tag)

    @staticmethod
    def _combine(job: str, parts: list[JobStatus]) -> JobStatus:
        if len(parts) == 1 and parts[0].native_id == job:
            return parts[0]
        state = aggregate_state([p.state for p in parts])
        starts = [p.start for p in parts if p.start]
        ends = [p.end for p in parts if p.end]
        reasons = sorted({p.reason for p in parts if p.reason})
        nodes = sorted({p.node_list for p in parts if p.node_list})  # an array's tasks may run apart
        return JobStatus(
            job, state, ",".join(sorted({p.raw_state for p in parts})),
            reason=", ".join(reasons) or None,
            start=min(starts) if starts else None,
            end=max(ends) if ends and state.is_terminal else None,
            node_list=",".join(nodes) or None,
        )

    def cancel(self, native_id: str) -> None:
        result = self._run(commands.scancel_argv(native_id))
        if not _failed(result):
            return
        if any(text in result.stderr for text in _ALREADY_DONE):
            return  # nothing left to cancel: the outcome the caller wanted
        if _INVALID_ID in result.stderr:
            raise LookupError(f"cluster {self.name} does not know job {native_id}")
        raise ClusterError(_message(result))

    def node_address(self, node: str) -> str:
        """Where a node is reached (its NodeAddr; NodeName need not resolve), for a session's proxy."""
        result = self._run(commands.scontrol_node_argv(node))
        if _failed(result):
            raise ClusterError(_message(result))
        records = parsers.parse_scontrol_oneliner(result.stdout)
        address = records[0].get("NodeAddr") if records else None
        if not address:
            raise ClusterError(f"cluster {self.name} gave no address for node {node}")
        return address

    def set_time_limit(self, native_id: str, minutes: int) -> None:
        result = self._run(commands.scontrol_time_limit_argv(native_id, minutes))
        if not _failed(result):
            return
        if _INVALID_ID in result.stderr or "Invalid job id" in result.stderr:
            raise LookupError(f"cluster {self.name} does not know job {native_id}")
        raise ClusterError(_message(result))

    def queue(self) -> list[QueueEntry]:
        """Every live job on the cluster (one squeue call)."""
        result = self._run(commands.squeue_queue_argv())
        if _failed(result):
            raise ClusterError(_message(result))
        return parsers.parse_queue(result.stdout)

    def pause(self, native_id: str) -> None:
        """Stop a job from using (more) resources without ending it: suspend if it
        runs, hold if it waits. Slurm keeps a suspended job's allocation."""
        self._job_action("suspend", "hold", native_id, ("Job is pending execution",))

    def resume(self, native_id: str) -> None:
        """Undo pause: resume a suspended job, release a held one."""
        self._job_action("resume", "release", native_id, ("Job is not suspended", "Job is pending execution"))

    def requeue(self, native_id: str) -> None:
        """scontrol requeue: the running job goes back to the queue and runs again from the start.
        ValueError: Slurm refuses it for this job (not running, or submitted with --no-requeue);
        LookupError: Slurm does not know the job."""
        result = self._run(commands.scontrol_requeue_argv(native_id))
        if not _failed(result):
            return
        text = (result.stderr or result.stdout).strip()
        if "Invalid job id" in text:
            raise LookupError(f"cluster {self.name} does not know job {native_id}")
        if "presently disabled" in text:  # Slurm's words for a job that may not be requeued
            raise ValueError(f"Slurm does not requeue job {native_id}: it was submitted with --no-requeue "
                             "(or the cluster's JobRequeue=0)")
        if any(words in text for words in ("pending execution", "already completing", "finished",
                                           "Access/permission denied", "Only batch jobs")):
            raise ValueError(text.removeprefix("Requeue error: ")[:300])
        raise ClusterError(_message(result))

    def _job_action(self, first: str, otherwise: str, native_id: str, means_otherwise: tuple[str, ...]) -> None:
        result = self._run(commands.scontrol_job_action_argv(first, native_id))
        if not _failed(result):
            return
        if any(text in result.stderr for text in means_otherwise):
            result = self._run(commands.scontrol_job_action_argv(otherwise, native_id))
            if not _failed(result):
                return
        if any(text in result.stderr for text in _ALREADY_DONE):
            return
        if "Invalid job id" in result.stderr or "Unexpected message received" in result.stderr:
            raise LookupError(f"cluster {self.name} does not know job {native_id}")
        raise ClusterError(_message(result))

    def accounting(self, since: datetime | None, native_ids: Sequence[str] | None = None) -> list[UsageRecord]:
        result = self._run(commands.sacct_argv(since, native_ids, self.tz))
        if _failed(result):
            raise ClusterError(_message(result))
        return parsers.parse_sacct(result.stdout, self.name, self.tz, self.job_tag)

    def step_usage(self, native_ids: Sequence[str]) -> dict[str, list[StepUsage]]:
        """sstat for many running jobs in one call; a job with no running step is left out."""
        if not native_ids:
            return {}
        result = self._run(commands.sstat_argv(native_ids))
        if result.returncode != 0:  # unknown/ended jobs only print to stderr, rc stays 0
            raise ClusterError(_message(result))
        usage: dict[str, list[StepUsage]] = {}
        for step in sstat.parse_sstat(result.stdout):
            usage.setdefault(step.native_id, []).append(step)
        return usage

    def partitions(self) -> list[PartitionInfo]:
        result = self._run(commands.sinfo_argv())
        if _failed(result):
            raise ClusterError(_message(result))
        return parsers.parse_sinfo(result.stdout)

    def health(self) -> Health:
        try:
            result = self.transport.run(commands.scontrol_ping_argv(), timeout=min(self.timeout, 15))
        except ClusterError as exc:
            return Health(HealthState.OFFLINE, str(exc))
        up, detail = parsers.parse_scontrol_ping(result.stdout)
        latency = round(result.seconds * 1000, 1)
        if result.returncode != 0 or not up:
            return Health(HealthState.OFFLINE, detail or _message(result), latency)
        if "DOWN" in detail:  # primary up, backup down
            return Health(HealthState.DEGRADED, detail, latency)
        return Health(HealthState.ONLINE, detail, latency)

    # -- enforcement (a Slurm-only capability) -------------------------------
    def account_limits(self, accounts: Sequence[str]) -> dict[str, bool]:
        """Which of these Slurm accounts are blocked; accounts Slurm lacks are left out."""
        if not accounts:
            return {}
        result = self._run(commands.sacctmgr_limits_argv(self.slurm_cluster, accounts))
        if _failed(result):
            raise ClusterError(_message(result))
        return parsers.parse_account_limits(result.stdout)

    def set_account_blocked(self, account: str, blocked: bool) -> None:
        result = self._run(commands.sacctmgr_block_argv(self.slurm_cluster, account, blocked))
        if result.returncode != 0 and "Nothing modified" not in result.stdout + result.stderr:
            raise ClusterError(_message(result))
        # "Nothing modified" means the account is already so, or missing: check
        state = self.account_limits([account])
        if state.get(account) is not blocked:
            raise ClusterError(f"account {account} on {self.slurm_cluster} is missing or did not change")

    # -- scontrol update (the owner's changes to a live job) -----------------------
    def update(self, native_id: str, time_limit_minutes: int | None = None, partition: str | None = None,
               name: str | None = None) -> None:
        """scontrol update JobId=… TimeLimit=… Partition=… JobName=… (one argv word each, no shell).
        ValueError: Slurm refuses it in the job's state; LookupError: Slurm does not know the job."""
        argv = ["scontrol", "update", f"JobId={native_id}"]
        if time_limit_minutes is not None:
            argv.append(f"TimeLimit={time_limit_minutes}")
        if partition is not None:
            argv.append(f"Partition={partition}")
        if name is not None:
            argv.append(f"JobName={name}")
        result = self._run(argv)
        if not _failed(result):
            return
        if "Invalid job id" in result.stderr:
            raise LookupError(f"cluster {self.name} does not know job {native_id}")
        if any(text in result.stderr for text in ("pending execution", "already completing", "finished",
                                                  "Access/permission denied", "Requested partition")):
            raise ValueError(result.stderr.strip().removeprefix("slurm_update error: ")[:300])
        raise ClusterError(_message(result))

"""Pure argv builders for the Slurm commands we run. No I/O here.

Output formats use the ASCII unit separator (0x1f) between fields: it cannot
appear in job names a shell user can type by accident, unlike ``|``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from ...domain import patterns
from ...domain.resources import format_time_minutes
from ...domain.sbatch import ScriptError, script_directives
from ..base import SubmitRejected, SubmitRequest
from . import tags

SEP = "\x1f"

SQUEUE_FIELDS = ["%i", "%A", "%T", "%r", "%V", "%S", "%e", "%P", "%D", "%C", "%b", "%N", "%l", "%j"]
SACCT_FIELDS = [
    "JobIDRaw", "JobID", "Cluster", "Partition", "Account", "User", "State", "ExitCode",
    "Submit", "Start", "End", "ElapsedRaw", "AllocTRES", "NNodes", "AllocCPUS",
    "TimelimitRaw", "Comment", "WCKey", "NodeList", "JobName",
]
# the layouts rows were read in before NodeList, then WCKey, were asked for (parsers pick by field count)
SACCT_OLDER_FIELDS = (
    [name for name in SACCT_FIELDS if name != "NodeList"],
    [name for name in SACCT_FIELDS if name not in ("NodeList", "WCKey")],
)
QUEUE_FIELDS = ["%i", "%P", "%T", "%C", "%D", "%b", "%l", "%M", "%Q", "%u", "%r", "%N"]
# sstat has no --delimiter: "|" (parsable2) separates fields, "," the TRES inside one
SSTAT_FIELDS = ["JobID", "NTasks", "Nodelist", "TRESUsageInTot", "TRESUsageOutTot"]
SINFO_FIELDS = ["%N", "%P", "%c", "%m", "%G", "%f", "%T", "%l", "%a", "%L"]


def check_output_paths(request: SubmitRequest) -> None:
    """The last word before Slurm expands --output/--error: the platform has filled in %x and %u
    and checked the result; what reaches here holds only ids and node names to fill in."""
    for what, path in (("output", request.output), ("error", request.error)):
        why = patterns.leaves(path, request.space)
        if why:
            raise SubmitRejected(f"the {what} path {path!r} {why}")


def _script_names_cluster(script: str) -> bool:
    """Whether the script's own #SBATCH lines carry -M/--clusters (sbatch reads them itself)."""
    try:
        directives = script_directives(script)
    except ScriptError:
        return True  # unreadable here: be safe and name the cluster
    for directive in directives:
        for token in directive.tokens:
            if token.startswith("-M") or token.split("=")[0] in ("--clusters", "--cluster"):
                return True
    return False


def sbatch_argv(request: SubmitRequest, slurm_cluster: str | None = None, job_tag: str = "wckey") -> list[str]:
    """sbatch as the user would run it, the script on stdin: sbatch reads the script's own #SBATCH
    lines itself, and gets the user's command-line options as written (JobOptions.flags), so Slurm
    makes of them exactly what plain sbatch makes. The platform adds only what it decides: where the
    job runs and for how long (partition, account, time limit: what it priced and holds money for),
    its name, directory and files (resolved inside the user's space), the dependency in the cluster's
    ids, and its tag (in the ``job_tag`` field: tags.placement; a comment of the user's is kept after
    it). Command-line options override the script's lines, as in sbatch.
    """
    res = request.spec.resources
    opts = request.spec.options
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={request.job_name}",
        f"--chdir={request.workdir}",
        f"--output={request.output}",
        f"--error={request.error}",
    ]
    tagged = tags.placement(request.comment, job_tag, opts.passthrough)
    argv.extend(f"--{field}={value}" for field, value in tagged.items())
    if res.partition:
        argv.append(f"--partition={res.partition}")
    if res.account:
        argv.append(f"--account={res.account}")
    if res.time_unlimited:  # as the user wrote it: Slurm keeps the job within the partition's maximum
        argv.append("--time=UNLIMITED")
    elif res.time_limit_minutes is not None:
        argv.append(f"--time={format_time_minutes(res.time_limit_minutes)}")
    if request.dependency:
        argv.append(f"--dependency={request.dependency}")
    if slurm_cluster and opts.cluster and _script_names_cluster(request.script):
        # sbatch would read the script's own -M, which names the platform's cluster: the command line
        # overrides it with Slurm's name. Only then: --clusters makes sbatch ask slurmdbd first, and a
        # submission must not need slurmdbd (SLURM_CONF already names the controller)
        argv.append(f"--clusters={slurm_cluster}")
    theirs = opts.flags if opts.used else _legacy_flags(request)
    # the user's own comment is in the tagged one: theirs, later on the line, would replace it
    argv.extend(f for f in theirs if not (f.startswith("--comment=") and "comment" in tagged))
    if request.script_args:
        # sbatch reads the script from the named file; /dev/stdin keeps the
        # script on stdin (works the same through an SSH transport)
        argv.append("/dev/stdin")
        argv.extend(request.script_args)
    return argv


def _legacy_flags(request: SubmitRequest) -> list[str]:
    """A job stored before options were kept as written (or built by the platform, as an app's):
    its modelled resources as flags, only those that differ from sbatch's defaults."""
    res = request.spec.resources
    argv = []
    if res.nodes != 1:
        argv.append(f"--nodes={res.nodes}")
    if res.ntasks is not None:
        argv.append(f"--ntasks={res.ntasks}")
    if res.ntasks_per_node is not None:
        argv.append(f"--ntasks-per-node={res.ntasks_per_node}")
    if res.cpus_per_task != 1:
        argv.append(f"--cpus-per-task={res.cpus_per_task}")
    if res.qos:
        argv.append(f"--qos={res.qos}")
    if res.constraint:
        argv.append(f"--constraint={res.constraint}")
    if res.exclusive:
        argv.append("--exclusive")
    if res.mem_per_node_mb is not None:
        argv.append(f"--mem={res.mem_per_node_mb}M")
    if res.mem_per_cpu_mb is not None:
        argv.append(f"--mem-per-cpu={res.mem_per_cpu_mb}M")
    gpu_prefix = f"{res.gpu_type}:" if res.gpu_type else ""
    if res.gpus_per_node:
        argv.append(f"--gres=gpu:{gpu_prefix}{res.gpus_per_node}")
    if res.gpus_total:
        argv.append(f"--gpus={gpu_prefix}{res.gpus_total}")
    if request.spec.options.array:
        argv.append(f"--array={request.spec.options.array}")
    argv.extend(request.spec.options.passthrough)
    return argv


def squeue_argv(native_ids: Sequence[str]) -> list[str]:
    return [
        "squeue",
        "--noheader",
        "--states=all",
        f"--jobs={','.join(native_ids)}",
        f"--format={SEP.join(SQUEUE_FIELDS)}",
    ]


def squeue_comments_argv() -> list[str]:
    """Every job slurmctld knows (finished ones for MinJobAge too): id, submit time, comment, wckey
    (the platform's tag is in the wckey; jobs submitted before were tagged in the comment).
    sacct stores a comment only once a job starts, so a pending job is found here."""
    return ["squeue", "--noheader", "--states=all", f"--format=%A{SEP}%V{SEP}%k{SEP}%w"]


def squeue_queue_argv() -> list[str]:
    """Every live job of the cluster (array tasks one per row): what the router plans with."""
    return ["squeue", "--noheader", "--array", "--states=PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING",
            f"--format={SEP.join(QUEUE_FIELDS)}"]


def _slurm_time(moment: datetime, tz) -> str:
    """A datetime as the cluster's local wall time, which is what -S expects."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")


def sacct_argv(since: datetime | None = None, native_ids: Sequence[str] | None = None, tz=None) -> list[str]:
    """Allocation-level accounting rows, by time window or by job ids.

    sacct without -S only covers today, so a window always names its start;
    with --jobs Slurm's default start is the epoch, which is what we want.
    --duplicates: a requeued job has one row per run (the ended ones in state REQUEUED, each
    with its own Submit); without it sacct shows only the last run and the others go unbilled.
    """
    argv = [
        "sacct",
        "--noheader",
        "--parsable2",
        f"--delimiter={SEP}",
        "--allocations",
        "--allusers",
        "--duplicates",
    ]
    if native_ids:
        argv.append(f"--jobs={','.join(native_ids)}")
    else:
        if since is None:
            raise ValueError("sacct needs a start time or job ids")
        argv += [f"--starttime={_slurm_time(since, tz)}", "--endtime=now"]
    argv.append(f"--format={','.join(SACCT_FIELDS)}")
    return argv


def sstat_argv(native_ids: Sequence[str]) -> list[str]:
    """What the running steps of these jobs have used so far (every step: batch, srun, MPI)."""
    if not native_ids:
        raise ValueError("sstat needs job ids")
    return ["sstat", "--noheader", "--parsable2", "--allsteps", f"--jobs={','.join(native_ids)}",
            f"--format={','.join(SSTAT_FIELDS)}"]


def scancel_argv(native_id: str) -> list[str]:
    return ["scancel", native_id]


def scontrol_job_action_argv(action: str, native_id: str) -> list[str]:
    """suspend | resume (running jobs), hold | release (pending jobs)."""
    if action not in ("suspend", "resume", "hold", "release"):
        raise ValueError(f"unknown job action {action!r}")
    return ["scontrol", action, native_id]


def scontrol_requeue_argv(native_id: str) -> list[str]:
    """Put a running (or suspended) batch job back in the queue; Slurm runs it again from the start."""
    if not native_id or not native_id.replace("_", "").isdigit():
        raise ValueError(f"not a job id: {native_id!r}")
    return ["scontrol", "requeue", native_id]


def scontrol_time_limit_argv(native_id: str, minutes: int) -> list[str]:
    """A new time limit for a job (an interactive session's extend; raising it needs an operator)."""
    if not native_id.replace("_", "").isdigit() or not isinstance(minutes, int) or minutes < 1:
        raise ValueError(f"bad job id or time limit: {native_id!r}, {minutes!r}")
    return ["scontrol", "update", f"JobId={native_id}", f"TimeLimit={minutes}"]


def sinfo_argv() -> list[str]:
    return ["sinfo", "--noheader", "--Node", f"--format={SEP.join(SINFO_FIELDS)}"]


def scontrol_partitions_argv() -> list[str]:
    return ["scontrol", "--oneliner", "show", "partition"]


def scontrol_job_argv(native_id: str) -> list[str]:
    return ["scontrol", "--oneliner", "show", "job", native_id]


def scontrol_node_argv(node: str) -> list[str]:
    if not node or node.startswith("-") or any(c.isspace() or c in ",[]" for c in node):
        raise ValueError(f"not a node name: {node!r}")
    return ["scontrol", "--oneliner", "show", "node", node]


def scontrol_ping_argv() -> list[str]:
    return ["scontrol", "ping"]


def sacctmgr_block_argv(cluster: str, account: str, blocked: bool) -> list[str]:
    """Block (GrpSubmitJobs=0) or unblock (-1) new jobs of an account on one cluster.

    Always names the cluster: clusters that share a slurmdbd would all be hit.
    """
    return ["sacctmgr", "--immediate", "modify", "account", "where", f"name={account}", f"cluster={cluster}",
            "set", f"GrpSubmitJobs={0 if blocked else -1}"]


def sacctmgr_limits_argv(cluster: str, accounts: Sequence[str]) -> list[str]:
    return ["sacctmgr", "--noheader", "--parsable2", "show", "assoc", "where", f"cluster={cluster}",
            f"account={','.join(accounts)}", "format=Account,User,GrpSubmit"]

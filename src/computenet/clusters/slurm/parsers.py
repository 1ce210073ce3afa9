"""Pure parsers for Slurm command output. No I/O here.

Every parser takes text and returns domain values; golden tests run them
on output captured from the real test bed (tests/fixtures/slurm/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from ...domain.resources import RequestError, parse_time_minutes
from ...domain.states import JobState, from_slurm
from ..base import ClusterError, JobStatus, PartitionInfo, QueueEntry, SubmitRejected, UsageRecord
from . import tags
from .commands import QUEUE_FIELDS, SACCT_FIELDS, SACCT_OLDER_FIELDS, SEP, SINFO_FIELDS, SQUEUE_FIELDS

_NO_TIME = {"", "N/A", "Unknown", "None", "(null)"}


class ParseError(ClusterError):
    pass


def parse_slurm_time(text: str, tz: tzinfo | None) -> datetime | None:
    """Slurm prints local wall time without a zone; tz is the cluster's."""
    value = text.strip()
    if value in _NO_TIME:
        return None
    try:
        if len(value) == 19 and value[4] == value[7] == "-" and value[10] == "T" and value[13] == value[16] == ":":
            naive = datetime.fromisoformat(value)  # the same format, ten times cheaper (a poll parses thousands)
        else:
            naive = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")  # refuses what is not exactly that
    except ValueError:
        raise ParseError(f"unexpected Slurm time {text!r}") from None
    local = naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
    return local.astimezone(timezone.utc)


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``3:0`` -> (3, 0): return code and the signal that ended the job."""
    value = text.strip()
    if not value or value in _NO_TIME:
        return None, None
    code, _, sig = value.partition(":")
    try:
        return int(code), int(sig or 0)
    except ValueError:
        raise ParseError(f"unexpected exit code {text!r}") from None


def parse_sbatch(stdout: str) -> str:
    """``--parsable`` prints ``jobid`` or ``jobid;cluster``."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ParseError("sbatch printed no job id")
    job_id = lines[-1].split(";")[0]
    if not job_id.isdigit():
        raise ParseError(f"sbatch printed {lines[-1]!r}, not a job id")
    return job_id


_CONTACT_WORDS = ("Unable to contact", "Socket timed out", "Connection refused", "Zero Bytes were transmitted",
                  "Communication connection failure", "slurm_persist_conn_open", "retrying")


def sbatch_error(stderr: str) -> Exception:
    """Classify sbatch's complaint: the user's problem, or the cluster's."""
    message = "; ".join(
        line.removeprefix("sbatch: error: ").strip()
        for line in stderr.splitlines()
        if line.strip() and "error" in line
    ) or stderr.strip() or "sbatch failed without a message"
    if any(word in stderr for word in _CONTACT_WORDS):
        return ClusterError(f"cluster unreachable: {message}")
    return SubmitRejected(message)


def _split(line: str, expected: int, what: str) -> list[str]:
    parts = line.split(SEP)
    if len(parts) < expected:
        raise ParseError(f"{what}: expected {expected} fields, got {len(parts)} in {line!r}")
    if len(parts) > expected:  # the last field (job name) contained the separator
        parts = parts[: expected - 1] + [SEP.join(parts[expected - 1:])]
    return parts


_DURATION = re.compile(r"^(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+)$")


def parse_duration(text: str) -> int | None:
    """squeue %l/%M: ``[D-][H:]M:S`` in seconds; None for UNLIMITED, N/A, INVALID."""
    value = text.strip()
    if value.upper() in ("UNLIMITED", "INFINITE", "N/A", "INVALID", "NOT_SET", ""):
        return None
    m = _DURATION.match(value)
    if not m:
        raise ParseError(f"unexpected duration {text!r}")
    return (int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["m"]) * 60 + int(m["s"]))


def parse_queue(stdout: str) -> list[QueueEntry]:
    """``squeue --array`` rows of live jobs (see commands.squeue_queue_argv)."""
    entries = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        f = dict(zip(QUEUE_FIELDS, _split(line, len(QUEUE_FIELDS), "squeue queue")))
        state = from_slurm(f["%T"])
        if state == JobState.COMPLETING or f["%T"] == "CONFIGURING":
            state = JobState.RUNNING  # holds its resources either way
        nodes = int(f["%D"] or 1)
        per_node, _ = parse_gres_gpus(f["%b"].replace("gres:", "").replace("gres/", ""))
        try:
            priority = int(f["%Q"])
        except ValueError:
            priority = 0
        entries.append(QueueEntry(
            native_id=f["%i"], partition=f["%P"], state=state, cpus=int(f["%C"]), nodes=nodes,
            gpus=per_node * nodes, time_limit_s=parse_duration(f["%l"]), elapsed_s=parse_duration(f["%M"]) or 0,
            priority=priority, user=f["%u"] or None, reason=None if f["%r"] in ("None", "") else f["%r"],
            node_names=expand_hostlist(f["%N"])))
    return entries


_HOSTLIST_ITEM = re.compile(r"([^,\[]+)(?:\[([^\]]+)\])?([^,\[]*)")


def expand_hostlist(text: str) -> tuple[str, ...]:
    """Slurm's compressed host lists: ``alpha-n[1-2,4],beta-g07`` -> each name (zero padding kept)."""
    text = text.strip()
    if not text or text in ("(null)", "N/A"):
        return ()
    names: list[str] = []
    for m in _HOSTLIST_ITEM.finditer(text):
        prefix, ranges, suffix = m.group(1).lstrip(","), m.group(2), m.group(3)
        if not prefix and not ranges:
            continue
        if ranges is None:
            names.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            if not high:
                names.append(f"{prefix}{low}{suffix}")
                continue
            width = len(low)
            for number in range(int(low), int(high) + 1):
                names.append(f"{prefix}{number:0{width}d}{suffix}")
    return tuple(names)


def base_job_id(job_id: str) -> str:
    """``123_4`` / ``123_[5-9]`` / ``123+1`` -> ``123`` (the id sbatch printed)."""
    return re.split(r"[_+.]", job_id, maxsplit=1)[0]


def parse_squeue(stdout: str, tz: tzinfo | None) -> list[JobStatus]:
    """One JobStatus per squeue row; array tasks keep their own ids."""
    rows = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        f = dict(zip(SQUEUE_FIELDS, _split(line, len(SQUEUE_FIELDS), "squeue")))
        state = from_slurm(f["%T"])
        # for a pending job %S is Slurm's *expected* start, and a job cancelled
        # while pending shows its cancel time: only a job with nodes ran
        started = state.value != "PENDING" and bool(f["%N"].strip())
        rows.append(
            JobStatus(
                native_id=f["%i"],
                state=state,
                raw_state=f["%T"],
                reason=None if f["%r"] in ("None", "") else f["%r"],
                start=parse_slurm_time(f["%S"], tz) if started else None,
                end=parse_slurm_time(f["%e"], tz) if state.is_terminal else None,
                node_list=f["%N"].strip() or None if started else None,
            )
        )
    return rows


def parse_squeue_comments(stdout: str, tz: tzinfo | None,
                          job_tag: str = "wckey") -> dict[str, list[tuple[str, datetime | None]]]:
    """``squeue_comments_argv`` rows -> {tag or comment: [(job id, submit time)]} (neither: left out);
    ``job_tag``: the field the cluster puts the tag in (tags.read)."""
    found: dict[str, list[tuple[str, datetime | None]]] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = _split(line, 3, "squeue comments")
        rest = parts[2].rsplit(SEP, 1) if SEP in parts[2] else [parts[2]]  # comment[, wckey]
        job_id, submit, comment = parts[0], parts[1], tags.read(rest[0], rest[1] if len(rest) > 1 else "", job_tag)
        if comment:
            found.setdefault(comment, []).append((job_id.strip(), parse_slurm_time(submit, tz)))
    return found


_TRES_MEM = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)$")
_MEM_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3, "": 1}


def parse_tres(text: str) -> dict[str, str]:
    """``billing=1,cpu=1,gres/gpu:a100=2,mem=256M,node=1`` -> dict."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.strip().partition("=")
        if eq:
            out[key] = value
    return out


def tres_memory_mb(value: str | None) -> int:
    if not value:
        return 0
    m = _TRES_MEM.match(value)
    if not m:
        raise ParseError(f"unexpected TRES memory {value!r}")
    return int(round(float(m.group(1)) * _MEM_MB[m.group(2)]))


def tres_gpus(tres: dict[str, str]) -> tuple[int, str | None]:
    """GPU count and model; the typed entry names the model when present."""
    count = int(tres.get("gres/gpu", "0") or 0)
    gpu_type = None
    typed = [(k.split(":", 1)[1], int(v)) for k, v in tres.items() if k.startswith("gres/gpu:")]
    if typed:
        gpu_type = max(typed, key=lambda kv: kv[1])[0]
        count = max(count, sum(n for _, n in typed))
    return count, gpu_type


@dataclass(frozen=True)
class SlurmUsageRecord(UsageRecord):
    """A sacct row that also says which array tasks it stands for: ``2`` for one task,
    ``0-3`` for tasks that never started (an array cancelled while pending has one row)."""

    array_tasks: str | None = None


_ARRAY_TASKS = re.compile(r"^\d+_\[?([0-9,\-:]+)(?:%\d+)?\]?$")


def array_tasks(job_id: str) -> str | None:
    """sacct's JobID -> the task list: ``7_2`` -> ``2``, ``9_[0-3%2]`` -> ``0-3``, ``12`` -> None."""
    m = _ARRAY_TASKS.match(job_id.strip())
    return m.group(1) if m else None


def node_list_of(text: str) -> str | None:
    """sacct's NodeList: ``alpha-n[1-2]``; ``None assigned`` (and nothing) for a run never placed."""
    value = text.strip()
    return None if value in ("", "None assigned", "(null)", "N/A") else value


def is_requeued(raw_state: str) -> bool:
    """A row of a run that ended because its job went back to the queue (sacct --duplicates)."""
    return raw_state.strip().upper().split(" ")[0].rstrip("+") in ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def parse_sacct(stdout: str, cluster: str, tz: tzinfo | None, job_tag: str = "wckey") -> list[UsageRecord]:
    records = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        fields = SACCT_FIELDS
        for older in SACCT_OLDER_FIELDS:  # rows read before NodeList (and WCKey) were asked for
            if line.count(SEP) == len(older) - 1:
                fields = older
        f = dict(zip(fields, _split(line, len(fields), "sacct")))
        submit = parse_slurm_time(f["Submit"], tz)
        if submit is None:
            raise ParseError(f"sacct row without a submit time: {line!r}")
        tres = parse_tres(f["AllocTRES"])
        gpus, gpu_type = tres_gpus(tres)
        exit_code, signal = parse_exit_code(f["ExitCode"])
        if from_slurm(f["State"]) == JobState.FAILED and exit_code == 0 and signal:
            exit_code = 128 + signal  # FAILED 0:53 is no success: reported as a shell reports a signal
        limit = f["TimelimitRaw"].strip()
        end = parse_slurm_time(f["End"], tz)
        records.append(
            SlurmUsageRecord(
                array_tasks=array_tasks(f["JobID"]),
                cluster=f["Cluster"] or cluster,
                record_id=f["JobIDRaw"],
                native_id=base_job_id(f["JobID"]),
                submit=submit,
                state=from_slurm(f["State"]),
                raw_state=f["State"],
                start=parse_slurm_time(f["Start"], tz),
                end=end,
                elapsed_seconds=int(f["ElapsedRaw"] or 0),
                # no AllocTRES = nothing was allocated (cancelled or refused before
                # start), whatever AllocCPUS says about the request
                cpus=int(tres.get("cpu") or (f["AllocCPUS"] if tres else 0) or 0),
                mem_mb=tres_memory_mb(tres.get("mem")),
                gpus=gpus,
                gpu_type=gpu_type,
                nodes=int(f["NNodes"] or 0),
                exit_code=exit_code,
                signal=signal,
                partition=f["Partition"] or None,
                account=f["Account"] or None,
                user=f["User"] or None,
                comment=tags.read(f["Comment"], f.get("WCKey", ""), job_tag),  # the platform's tag
                job_name=f["JobName"],
                time_limit_minutes=int(limit) if limit.isdigit() else None,
                alloc_tres=f["AllocTRES"],
                node_list=node_list_of(f.get("NodeList", "")),
                requeued=is_requeued(f["State"]) and end is not None,
            )
        )
    return records


def _limit_minutes(text: str) -> int | None:
    value = text.strip()
    if value.lower() in ("infinite", "unlimited", "n/a", ""):
        return None
    try:
        return parse_time_minutes(value)
    except RequestError:
        raise ParseError(f"unexpected time limit {text!r}") from None


def parse_gres_gpus(text: str) -> tuple[int, str | None]:
    """sinfo %G: ``gpu:a100:4``, ``gpu:4(S:0-1)``, ``(null)``."""
    count, gpu_type = 0, None
    for item in text.split(","):
        item = re.sub(r"\(.*?\)", "", item.strip())
        parts = item.split(":")
        if parts[0] != "gpu":
            continue
        if len(parts) == 3:
            gpu_type, count = parts[1], count + int(parts[2])
        elif len(parts) == 2 and parts[1].isdigit():
            count += int(parts[1])
    return count, gpu_type


def parse_sinfo(stdout: str) -> list[PartitionInfo]:
    """Per-node rows grouped into partitions.

    Nodes of one partition can differ; the partition reports the smallest
    node shape, since a job must fit on any node it may land on.
    """
    nodes_by_part: dict[str, dict[str, dict[str, str]]] = {}
    default: set[str] = set()
    for line in stdout.splitlines():
        if not line.strip():
            continue
        f = dict(zip(SINFO_FIELDS, _split(line, len(SINFO_FIELDS), "sinfo")))
        part = f["%P"]
        if part.endswith("*"):
            part = part[:-1]
            default.add(part)
        nodes_by_part.setdefault(part, {})[f["%N"]] = f
    result = []
    for part, nodes in nodes_by_part.items():
        rows = list(nodes.values())
        gpus = [parse_gres_gpus(r["%G"]) for r in rows]
        features: set[str] = set.intersection(*(set(filter(None, r["%f"].split(","))) - {"(null)"} for r in rows))
        gpu_types = {t for n, t in gpus if n}
        result.append(
            PartitionInfo(
                name=part,
                nodes=len(rows),
                cores_per_node=min(int(r["%c"]) for r in rows),
                mem_per_node_mb=min(int(r["%m"]) for r in rows),
                gpus_per_node=min(n for n, _ in gpus),
                gpu_type=gpu_types.pop() if len(gpu_types) == 1 else None,
                max_time_minutes=_limit_minutes(rows[0]["%l"]),
                default_time_minutes=_limit_minutes(rows[0]["%L"]),
                is_default=part in default,
                available=rows[0]["%a"] == "up",
                features=tuple(sorted(features)),
                node_names=tuple(sorted(nodes)),
            )
        )
    return sorted(result, key=lambda p: p.name)


def parse_scontrol_oneliner(stdout: str) -> list[dict[str, str]]:
    """``scontrol --oneliner show ...``: one record per line of Key=Value pairs.

    Values may contain spaces only in a few keys (e.g. Reason); a token
    without '=' is glued to the previous value.
    """
    records = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        record: dict[str, str] = {}
        last = None
        for token in line.split(" "):
            key, eq, value = token.partition("=")
            if eq and key and (key[0].isupper() or key[0] == "_"):
                record[key] = value
                last = key
            elif last is not None:
                record[last] += " " + token
        records.append(record)
    return records


def parse_scontrol_ping(stdout: str) -> tuple[bool, str]:
    """``Slurmctld(primary) at host is UP`` -> (True, line)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    up = any(line.endswith("is UP") for line in lines)
    return up, "; ".join(lines)


def parse_account_limits(stdout: str) -> dict[str, bool]:
    """``sacctmgr show assoc format=Account,User,GrpSubmit`` -> {account: blocked}.

    The account's own association is the row with no user; GrpSubmit 0
    there blocks every job of the account.
    """
    blocked: dict[str, bool] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 3:
            raise ParseError(f"sacctmgr: expected 3 fields in {line!r}")
        account, user, grp_submit = parts
        if not user:
            blocked[account] = grp_submit.strip() == "0"
    return blocked

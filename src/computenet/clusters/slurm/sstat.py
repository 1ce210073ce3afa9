"""Pure parser for ``sstat`` (commands.sstat_argv): what running steps have used so far.

The agent inside the batch script sees only the batch shell's processes on the first
node; sstat sees every step Slurm launched (srun, MPI through srun) on every node, from
slurmstepd's own accounting (JobAcctGatherType). Fields are ``|``-separated (sstat has no
--delimiter; job ids, step names and node lists never contain ``|``), and TRES lists are
``name=value`` pairs separated by commas::

    1.batch|1|c1|cpu=00:00:26,energy=0,fs/disk=1720859,mem=230576K,pages=0,vmem=442628K|energy=0,fs/disk=2768
"""

from __future__ import annotations

import re

from ..base import StepUsage
from .commands import SSTAT_FIELDS
from .parsers import ParseError, expand_hostlist, parse_tres

_CPU = re.compile(r"^(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)$")
_UNIT = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def cpu_seconds(text: str) -> float:
    """TRES cpu time: ``[D-][HH:]MM:SS[.mmm]`` in seconds."""
    m = _CPU.match(text.strip())
    if not m:
        raise ParseError(f"sstat: unexpected CPU time {text!r}")
    return int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["m"]) * 60 + float(m["s"])


def byte_count(text: str) -> int:
    """TRES memory/disk: ``230576K``, ``1.5G`` or plain bytes."""
    m = _BYTES.match(text.strip())
    if not m:
        raise ParseError(f"sstat: unexpected byte count {text!r}")
    return int(round(float(m.group(1)) * _UNIT[m.group(2)]))


def parse_sstat(stdout: str) -> list[StepUsage]:
    """One StepUsage per line; jobs sstat does not know (ended, never started) are simply absent."""
    steps = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != len(SSTAT_FIELDS):
            raise ParseError(f"sstat: expected {len(SSTAT_FIELDS)} fields, got {len(parts)} in {line!r}")
        job_step, ntasks, nodelist, usage_in, usage_out = parts
        job, dot, step = job_step.partition(".")
        if not dot or not job:
            raise ParseError(f"sstat: {job_step!r} is not a job step id")
        tres_in, tres_out = parse_tres(usage_in), parse_tres(usage_out)
        try:
            tasks = int(ntasks or 0)
        except ValueError:
            raise ParseError(f"sstat: task count {ntasks!r} is not a number") from None
        steps.append(StepUsage(
            native_id=job, step=step, ntasks=tasks,
            nodes=expand_hostlist(nodelist) if nodelist.strip() else (),
            cpu_seconds=cpu_seconds(tres_in["cpu"]) if tres_in.get("cpu") else 0.0,
            rss_bytes=byte_count(tres_in["mem"]) if tres_in.get("mem") else 0,
            read_bytes=byte_count(tres_in["fs/disk"]) if tres_in.get("fs/disk") else 0,
            write_bytes=byte_count(tres_out["fs/disk"]) if tres_out.get("fs/disk") else 0))
    return steps

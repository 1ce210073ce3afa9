"""squeue's --format for `cnet jobs -o`: the field letters, widths and justification users already type.

"%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R" means: a field letter after %, an optional width (a
minimum, and text longer than it is cut, as squeue does), '.' to right-justify. Anything else is
printed as typed. Plain text, no Rich: this output is for scripts and pipes.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

from ..domain.squeue import compact
from .render import duration, elapsed

SQUEUE_DEFAULT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"


def _time(moment: datetime | None) -> str:
    # squeue prints local wall-clock times without a zone; the platform's are UTC and say so nowhere
    # else in this output, so they are printed in UTC, ISO style like squeue's %V/%S/%e
    return "N/A" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _limit(job) -> str:
    return "UNLIMITED" if job.time_limit_minutes is None else duration(job.time_limit_minutes * 60)


def _left(job) -> str:
    if job.time_limit_minutes is None:
        return "UNLIMITED"
    used = elapsed(job) or 0
    return duration(max(0, job.time_limit_minutes * 60 - used))


def _reason(job) -> str:
    # squeue's %R: the reason a job waits, else where it runs
    if job.state in ("PENDING", "SUBMITTING"):
        return f"({job.reason or 'None'})"
    return job.reason or f"{job.cluster}/{job.partition}"


# letter -> (header, value)
FIELDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "i": ("JOBID", lambda j: str(j.id)),
    "A": ("JOBID", lambda j: str(j.id)),
    "F": ("ARRAY_JOB_ID", lambda j: str(j.id)),
    "j": ("NAME", lambda j: j.name),
    "u": ("USER", lambda j: j.owner),
    "a": ("ACCOUNT", lambda j: j.account),
    "T": ("STATE", lambda j: j.state),
    "t": ("ST", lambda j: compact(j.state)),
    "M": ("TIME", lambda j: duration(elapsed(j)) if j.start_time else "0:00"),
    "l": ("TIME_LIMIT", _limit),
    "L": ("TIME_LEFT", _left),
    "D": ("NODES", lambda j: str(getattr(j, "nodes", 1))),
    "C": ("CPUS", lambda j: str(j.cores)),
    "b": ("TRES_PER_NODE", lambda j: f"gres/gpu:{j.gpus}" if j.gpus else "N/A"),
    "P": ("PARTITION", lambda j: j.partition),
    "R": ("NODELIST(REASON)", _reason),
    "r": ("REASON", lambda j: j.reason or "None"),
    "V": ("SUBMIT_TIME", lambda j: _time(j.submitted_at)),
    "S": ("START_TIME", lambda j: _time(j.start_time)),
    "e": ("END_TIME", lambda j: _time(j.end_time)),
    "Z": ("WORK_DIR", lambda j: j.workdir),
}
# only letters squeue has, with squeue's meaning; the cluster shows in %R of a running job
_SPEC = re.compile(r"%([.-])?(\d+)?([A-Za-z%])")


def parse(fmt: str) -> list[tuple[str, str | None, int | None, bool]]:
    """The format as pieces: ("text", literal) or ("field", letter, width, right-justified)."""
    pieces: list = []
    pos = 0
    for m in _SPEC.finditer(fmt):
        if m.start() > pos:
            pieces.append(("text", fmt[pos:m.start()], None, False))
        letter = m.group(3)
        if letter == "%":
            pieces.append(("text", "%", None, False))
        elif letter not in FIELDS:
            known = " ".join(f"%{k}" for k in FIELDS if len(k) == 1)
            raise ValueError(f"unknown format field %{letter} (known: {known})")
        else:
            pieces.append(("field", letter, int(m.group(2)) if m.group(2) else None, m.group(1) == "."))
        pos = m.end()
    if pos < len(fmt):
        pieces.append(("text", fmt[pos:], None, False))
    return pieces


def _cell(text: str, width: int | None, right: bool) -> str:
    if width is None:
        return text
    text = text[:width]  # squeue cuts to the width too
    return text.rjust(width) if right else text.ljust(width)


def lines(jobs: list, fmt: str, header: bool = True) -> list[str]:
    pieces = parse(fmt)
    out = []
    if header:
        out.append("".join(p[1] if p[0] == "text" else _cell(FIELDS[p[1]][0], p[2], p[3])
                           for p in pieces).rstrip())
    for job in jobs:
        out.append("".join(p[1] if p[0] == "text" else _cell(FIELDS[p[1]][1](job), p[2], p[3])
                           for p in pieces).rstrip())
    return out


def columns(jobs: list, header: bool = True) -> list[str]:
    """The table's columns as plain aligned text for a pipe: nothing cut, nothing boxed."""
    with_gpus = any(j.gpus for j in jobs)
    with_reason = any(j.reason for j in jobs)
    heads = ["JOBID", "NAME", "WHERE", "STATE", "TIME", "CPUS"] + (["GPUS"] if with_gpus else []) + \
        ["EXIT", "COST"] + (["REASON"] if with_reason else [])
    right = {"JOBID", "TIME", "CPUS", "GPUS", "EXIT", "COST"}
    rows = []
    for j in jobs:
        row = [str(j.id), j.name, f"{j.cluster}/{j.partition}", j.state, duration(elapsed(j)), str(j.cores)]
        row += [str(j.gpus)] if with_gpus else []
        row += ["-" if j.exit_code is None else str(j.exit_code), "-" if j.cost is None else f"{j.cost:,.2f}"]
        row += [j.reason or ""] if with_reason else []
        # one job per line, whatever its name holds
        rows.append([cell.replace("\n", " ").replace("\t", " ") for cell in row])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]

    def line(cells):
        return "  ".join(c.rjust(w) if h in right else c.ljust(w)
                         for c, w, h in zip(cells, widths, heads)).rstrip()

    return ([line(heads)] if header else []) + [line(r) for r in rows]

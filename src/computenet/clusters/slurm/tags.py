"""The platform's tag on a Slurm job (``computenet:<job id>.<nonce>``, domain/sbatch.platform_tag): where it
goes, and how it is read back.

A job whose sbatch answer was lost (the server died between sbatch and storing the id) is found
again by its tag in squeue and sacct (services/jobs/poller.py adopts it). The tag goes in the field the
cluster's ``job_tag`` names: ``wckey`` (the default: the user's --comment stays theirs) or
``comment`` (for a site that enforces workload keys, where slurmctld refuses an unknown wckey).
A user's own value there is never dropped: a comment is kept after the tag (``computenet:7.9f3a61c2 my run``),
and a job with the user's own wckey carries its tag in the comment that way instead.

(The job name is no place for it: SLURM_JOB_NAME, %x and squeue would show the tag, not the user's name.)
Pure: no I/O; the command-line and slurmrestd adapters both use it.
"""

from __future__ import annotations

from typing import Iterable

from ...domain.sbatch import PLATFORM_TAG

FIELDS = ("wckey", "comment")


def check_field(field: str) -> str:
    if field not in FIELDS:
        raise ValueError(f"job_tag must be one of {', '.join(FIELDS)}, not {field!r}")
    return field


def users_value(options: Iterable[str], name: str) -> str | None:
    """The job's own --name=value (script lines and flags in order: the last one wins, as in sbatch)."""
    found = None
    for option in options:
        if option.startswith(f"--{name}="):
            found = option.split("=", 1)[1]
    return found


def placement(tag: str, field: str, options: Iterable[str]) -> dict[str, str]:
    """{field: value} the platform sets for a job with these options (passthrough, as written)."""
    options = list(options)
    if check_field(field) == "wckey" and users_value(options, "wckey") is None:
        return {"wckey": tag}
    theirs = users_value(options, "comment")
    return {"comment": f"{tag} {theirs}" if theirs else tag}


def read(comment: str | None, wckey: str | None, prefer: str = "wckey") -> str | None:
    """The tag of a job from its comment and wckey, the configured field first (the other holds it for a
    job with the user's own wckey, or from before a site changed job_tag). Without one: the comment."""
    values = {"comment": (comment or "").strip(), "wckey": (wckey or "").strip()}
    for name in (prefer, *(f for f in FIELDS if f != prefer)):
        word = values[name].split(None, 1)[0] if values[name] else ""
        if word.startswith(PLATFORM_TAG):
            return word
    value = values["comment"]
    return value if value and value != "(null)" else None

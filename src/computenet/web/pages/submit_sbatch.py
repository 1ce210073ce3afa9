"""The composer's #SBATCH assistance: read the common options out of a script's #SBATCH lines into a
small form, and write the form's filled fields back as #SBATCH lines.

Only text is edited here; what the options mean (and whether they are allowed) is decided by the
same parser and services as any submission when the script is estimated or submitted.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..i18n import N_


@dataclass(frozen=True)
class Field:
    key: str  # form field name (without the "opt_" prefix)
    option: str  # the long sbatch option it writes
    aliases: tuple[str, ...]  # every spelling that sets the same thing (a field replaces them all)
    label: str  # translatable
    kind: str = "text"  # text | number
    hint: str = ""


FIELDS = (
    Field("job_name", "job-name", ("--job-name", "-J"), N_("Job name")),
    Field("account", "account", ("--account", "-A"), N_("Account (project)")),
    Field("partition", "partition", ("--partition", "-p"), N_("Partition")),
    Field("nodes", "nodes", ("--nodes", "-N"), N_("Nodes"), "number"),
    Field("ntasks", "ntasks", ("--ntasks", "-n"), N_("Tasks"), "number"),
    Field("cpus_per_task", "cpus-per-task", ("--cpus-per-task", "-c"), N_("CPUs per task"), "number"),
    Field("mem", "mem", ("--mem",), N_("Memory per node"), hint=N_("e.g. 4G or 500M")),
    Field("gpus", "gres", ("--gres", "--gpus", "-G", "--gpus-per-node"), N_("GPUs per node"), "number"),
    Field("time", "time", ("--time", "-t"), N_("Time limit"), hint=N_("minutes, or hours:minutes:seconds")),
)
# what a field may hold: option values, never a second option or a line break
SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:@/+-]{1,128}$")
DIRECTIVE = re.compile(r"^#SBATCH\s+(.*)$")

DEFAULT_SCRIPT = """#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --ntasks=1
#SBATCH --time=10
echo "Hello from $(hostname)"
"""


class BadField(ValueError):
    def __init__(self, field: Field, value: str) -> None:
        super().__init__(field.key)
        self.field, self.value = field, value


def _split(rest: str) -> list[str]:
    try:
        return shlex.split(rest, comments=True)
    except ValueError:
        return rest.split()


def _matches(token: str, field: Field) -> tuple[bool, bool]:
    """(token sets this field, the value is the next token)."""
    for alias in field.aliases:
        if alias.startswith("--"):
            if token == alias:
                return True, True
            if token.startswith(alias + "="):
                return True, False
        elif token == alias:
            return True, True
        elif token.startswith(alias) and len(token) > len(alias):
            return True, False
    return False, False


def _value(token: str, field: Field) -> str:
    for alias in field.aliases:
        if alias.startswith("--") and token.startswith(alias + "="):
            return token[len(alias) + 1:]
        if not alias.startswith("--") and token.startswith(alias):
            return token[len(alias):]
    return ""


def _gpus_shown(option_token: str, value: str) -> str:
    """--gres=gpu[:type]:N (and --gpus=N) shown as the number N."""
    if option_token.startswith("--gres") or value.startswith("gpu"):
        parts = value.split(",")[0].split(":")
        return parts[-1] if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit() else ""
    return value.split(":")[-1]


def read_fields(script: str) -> dict[str, str]:
    """The common options as the script's #SBATCH lines set them (the last one wins, as in sbatch)."""
    found: dict[str, str] = {}
    for line in script.splitlines():
        match = DIRECTIVE.match(line.strip())
        if not match:
            continue
        tokens = _split(match.group(1))
        for i, token in enumerate(tokens):
            for field in FIELDS:
                hit, separate = _matches(token, field)
                if hit:
                    value = (tokens[i + 1] if i + 1 < len(tokens) else "") if separate else _value(token, field)
                    found[field.key] = _gpus_shown(token, value) if field.key == "gpus" else value
    return found


def _without(tokens: list[str], field: Field) -> list[str]:
    kept, skip = [], False
    for token in tokens:
        if skip:
            skip = False
            continue
        hit, separate = _matches(token, field)
        if hit:
            skip = separate
            continue
        kept.append(token)
    return kept


def _line(field: Field, value: str) -> str:
    return f"#SBATCH --{field.option}=" + (f"gpu:{value}" if field.key == "gpus" else value)


def write_fields(script: str, values: dict[str, str]) -> str:
    """The script with a #SBATCH line for every filled field (replacing the lines that set the same
    option); empty fields leave the script as it is. BadField for a value that is not an option value."""
    lines = script.replace("\r\n", "\n").split("\n")
    for field in FIELDS:
        value = (values.get(field.key) or "").strip()
        if not value:
            continue
        if not SAFE_VALUE.match(value) or (field.kind == "number" and not value.isdigit()):
            raise BadField(field, value)
        at = None
        for index, line in enumerate(lines):
            match = DIRECTIVE.match(line.strip())
            if not match:
                continue
            tokens = _split(match.group(1))
            kept = _without(tokens, field)
            if kept != tokens:
                at = index if at is None else at
                lines[index] = ("#SBATCH " + " ".join(shlex.quote(t) for t in kept)) if kept else None
        if at is None:
            at = _insert_at(lines)
            lines.insert(at, _line(field, value))
        else:
            lines[at] = _line(field, value) if lines[at] is None else lines[at] + "\n" + _line(field, value)
        lines = "\n".join(line for line in lines if line is not None).split("\n")
    return "\n".join(lines)


def _insert_at(lines: list[str]) -> int:
    """After the last #SBATCH line of the header, else after the #! line, else at the top: sbatch
    stops reading directives at the first command."""
    at = 1 if lines and lines[0].startswith("#!") else 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        if DIRECTIVE.match(stripped):
            at = index + 1
        elif stripped and not stripped.startswith("#"):
            break
    return at

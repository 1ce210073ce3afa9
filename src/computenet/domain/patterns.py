"""sbatch filename patterns (``--output``, ``--error``), shared by every executor.

%j job id, %x job name, %u user, %A/%a array master/task, %N node, %n node
index, %s step, %t task, %% a literal %; an optional width pads numbers.
"""

from __future__ import annotations

import re

_PATTERN = re.compile(r"%(\d*)([^\d])")
_KNOWN = set("jxuAaNnst%")


def problem(value: str) -> str | None:
    """Why a path pattern is unusable, or None."""
    if any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        return "contains control characters"
    for _, letter in _PATTERN.findall(value):
        if letter not in _KNOWN:
            return f"uses the unknown pattern %{letter}"
    return None


def expand(pattern: str, job_id: str, job_name: str, user: str, node: str | None = None) -> str:
    """Expand what is known at submission (and the node, when given)."""
    values = {"j": job_id, "A": job_id, "x": job_name, "u": user, "%": "%"}
    if node is not None:
        values.update(N=node, n="0", s="batch", t="0")

    def repl(m: re.Match) -> str:
        width, letter = m.group(1), m.group(2)
        value = values.get(letter)
        if value is None:
            return m.group(0)  # an array task index etc.: left for the scheduler
        return value.zfill(int(width)) if width and value.isdigit() else value

    return _PATTERN.sub(repl, pattern)

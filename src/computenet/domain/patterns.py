"""sbatch filename patterns (``--output``, ``--error``), shared by every executor.

%j job id (%J the same for a batch job), %x job name, %u user, %A/%a array master/task, %N node, %n node
index, %s step, %t task, %% a literal %; an optional width pads numbers.

The platform expands the patterns whose values come from people (%x the job
name, %u the Unix user) itself, escaping any % in them, before it checks the
path: the scheduler is then left only the patterns whose values are numbers or
node names (operator-controlled), which cannot add a directory or a "..".
"""

from __future__ import annotations

import posixpath
import re

_PATTERN = re.compile(r"%(\d*)([^\d])")
_UNFINISHED = re.compile(r"%\d*$")
_KNOWN = set("jJxuAaNnst%")
NAMED = frozenset("xu")  # values a user chooses: expanded (and checked) by the platform, never by a scheduler
# what the scheduler may still put in: digits, "batch" (%s) or a node's host name (%N)
_PLACEHOLDER = "0"


def problem(value: str) -> str | None:
    """Why a path pattern is unusable, or None."""
    if any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        return "contains control characters"
    for _, letter in _PATTERN.findall(value):
        if letter not in _KNOWN:
            return f"uses the unknown pattern %{letter}"
    if _UNFINISHED.search(_PATTERN.sub("", value)):
        return "ends with an unfinished % pattern (write %% for a %)"
    return None


def escape(value: str) -> str:
    """``value`` as literal text inside a pattern."""
    return value.replace("%", "%%")


def _substitute(pattern: str, values: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        width, letter = m.group(1), m.group(2)
        value = values.get(letter)
        if value is None:
            return m.group(0)  # an array task index etc.: left for the scheduler
        return value.zfill(int(width)) if width and value.isdigit() else value

    return _PATTERN.sub(repl, pattern)


def expand(pattern: str, job_id: str, job_name: str, user: str, node: str | None = None) -> str:
    """Expand what is known at submission (and the node, when given)."""
    values = {"j": job_id, "J": job_id, "A": job_id, "x": job_name, "u": user, "%": "%"}
    if node is not None:
        values.update(N=node, n="0", s="batch", t="0")
    return _substitute(pattern, values)


def expand_named(pattern: str, job_name: str, user: str) -> str:
    """%x and %u replaced by their values, escaped; every other pattern (and %%) stays as it is."""
    return _substitute(pattern, {"x": escape(job_name), "u": escape(user)})


def expand_ids(pattern: str, job_id: str, unescape: bool = True) -> str:
    """%j and %A by the scheduler's job id (digits only), and %% by % unless told not to."""
    if not job_id.isdigit():
        return pattern
    return _substitute(pattern, {"j": job_id, "J": job_id, "A": job_id} | ({"%": "%"} if unescape else {}))


def has_named(pattern: str) -> bool:
    """Does the pattern still hold a %x or %u a scheduler would fill in unchecked?"""
    return any(letter in NAMED for _, letter in _PATTERN.findall(pattern))


def shape(pattern: str) -> str:
    """The path once the scheduler has filled in what is left (%% a %, the rest a plain name):
    none of those values holds a "/" or is "." or "..", so where this lands is where the file lands."""
    return _PATTERN.sub(lambda m: "%" if m.group(2) == "%" else _PLACEHOLDER, pattern)


def leaves(path: str, space: str | None) -> str | None:
    """Why a resolved output path handed to a scheduler is unsafe, or None (the adapters' last check)."""
    if has_named(path):
        return "still holds %x or %u, which only the platform may expand"
    final = shape(path)
    if not posixpath.isabs(final) or posixpath.normpath(final) != final or ".." in final.split("/"):
        return "is not an absolute, normalised path"
    if space is not None and not final.startswith(space.rstrip("/") + "/"):
        return f"is outside the user's space {space}"
    return None

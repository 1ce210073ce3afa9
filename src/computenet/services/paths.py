"""Job paths: everything a job reads or writes stays inside the user's space."""

from __future__ import annotations

import os
import posixpath
import re

from .errors import InvalidRequest

# filename patterns sbatch expands: %j job id, %x name, %u user, %A/%a
# array master/task, %N node, %n node index, %s step, %t task, %% literal
_PATTERN = re.compile(r"%(?:\d*)([^\d])")
_ALLOWED = set("jxuAaNnst%")


def user_space(root: str, user_name: str) -> str:
    return posixpath.join(posixpath.normpath(root), user_name)


def check_text_path(value: str, what: str) -> None:
    if any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise InvalidRequest(f"{what} {value!r} contains control characters")
    for letter in _PATTERN.findall(value):
        if letter not in _ALLOWED:
            raise InvalidRequest(f"{what} {value!r} uses the unknown pattern %{letter}")


def resolve_inside(space: str, base: str, value: str, what: str) -> str:
    """``value`` relative to ``base`` (or absolute), which must stay in ``space``."""
    check_text_path(value, what)
    joined = value if posixpath.isabs(value) else posixpath.join(base, value)
    path = posixpath.normpath(joined)
    if path != space and not path.startswith(space.rstrip("/") + "/"):
        raise InvalidRequest(f"{what} {value!r} is outside your space {space}")
    return path


def expand(pattern: str, job_id: str, job_name: str, user: str) -> str:
    """Expand the patterns we know for one (non-array) job, as sbatch does."""

    def repl(m: re.Match) -> str:
        whole, letter = m.group(0), m.group(1)
        width = whole[1:-1]
        value = {"j": job_id, "A": job_id, "x": job_name, "u": user, "%": "%"}.get(letter)
        if value is None:
            return whole
        return value.zfill(int(width)) if width and letter in "jA" else value

    return _PATTERN.sub(repl, pattern)


def check_real_inside(path: str, space: str) -> None:
    """Refuse a path whose existing part is a symlink out of the user's space."""
    real_space = os.path.realpath(space)
    real = os.path.realpath(path)
    if real != real_space and not real.startswith(real_space + os.sep):
        raise InvalidRequest(f"{path} leads outside your space")

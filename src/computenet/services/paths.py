"""Job paths: everything a job reads or writes stays inside the user's space."""

from __future__ import annotations

import os
import posixpath

from ..domain import patterns
from .errors import InvalidRequest

def user_space(root: str, user_name: str) -> str:
    return posixpath.join(posixpath.normpath(root), user_name)


def check_text_path(value: str, what: str) -> None:
    problem = patterns.problem(value)
    if problem:
        raise InvalidRequest(f"{what} {value!r} {problem}")


def resolve_inside(space: str, base: str, value: str, what: str) -> str:
    """``value`` relative to ``base`` (or absolute), which must stay in ``space``."""
    check_text_path(value, what)
    joined = value if posixpath.isabs(value) else posixpath.join(base, value)
    path = posixpath.normpath(joined)
    if path != space and not path.startswith(space.rstrip("/") + "/"):
        raise InvalidRequest(f"{what} {value!r} is outside your space {space}")
    return path


def check_real_inside(path: str, space: str) -> None:
    """Refuse a path whose existing part is a symlink out of the user's space."""
    real_space = os.path.realpath(space)
    real = os.path.realpath(path)
    if real != real_space and not real.startswith(real_space + os.sep):
        raise InvalidRequest(f"{path} leads outside your space")

"""Job paths: everything a job reads or writes stays inside the user's space.

Output and error files are checked after expansion: the platform fills in the
patterns a person chooses (%x the job name, %u the Unix user) itself, then
checks where the file lands once the scheduler has filled in the rest (job
ids, task numbers, node names: values without a "/" or a ".."). The scheduler
never sees a %x or %u, so it cannot expand them differently.
"""

from __future__ import annotations

import os
import posixpath

from ...domain import patterns
from ..errors import InvalidRequest
from ...messages import msg

DEFAULT_OUTPUT = "slurm-%j.out"
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"  # Slurm's own default for arrays: one file per task


def user_space(root: str, user_name: str) -> str:
    return posixpath.join(posixpath.normpath(root), user_name)


def check_text_path(value: str, what: str) -> None:
    problem = patterns.problem(value)
    if problem:
        raise InvalidRequest(msg("%(what)s %(value)r %(problem)s", what=what, value=value, problem=problem))


def is_inside(path: str, space: str) -> bool:
    """Strictly below ``space`` (both normalised)."""
    return path.startswith(space.rstrip("/") + "/")


def resolve_inside(space: str, base: str, value: str, what: str) -> str:
    """``value`` relative to ``base`` (or absolute), which must stay in ``space``."""
    check_text_path(value, what)
    joined = value if posixpath.isabs(value) else posixpath.join(base, value)
    path = posixpath.normpath(joined)
    if path != space and not is_inside(path, space):
        raise InvalidRequest(msg("%(what)s %(value)r is outside your space %(space)s", what=what, value=value, space=space))
    return path


def resolve_file_pattern(space: str, base: str, value: str, what: str, job_name: str, unix_user: str) -> str:
    """An output/error pattern as the scheduler gets it: %x and %u expanded (escaped), the rest
    left to it, and the file it names, whatever the scheduler fills in, strictly inside ``space``."""
    check_text_path(value, what)
    expanded = patterns.expand_named(value, job_name, unix_user)
    check_text_path(expanded, what)  # a name cannot add control characters or a bare %
    joined = expanded if posixpath.isabs(expanded) else posixpath.join(base, expanded)
    path = posixpath.normpath(joined)
    final = posixpath.normpath(patterns.shape(path))
    if not is_inside(final, space):
        if expanded == value:
            raise InvalidRequest(msg("%(what)s %(value)r is outside your space %(space)s", what=what, value=value,
                                     space=space))
        raise InvalidRequest(msg("%(what)s %(value)r is outside your space %(space)s (with %%x = %(job_name)r and "
                                 "%%u = %(unix_user)r it is %(path)r)", what=what, value=value, space=space,
                                 job_name=job_name, unix_user=unix_user, path=path))
    return path


def expand_job_paths(space: str, opts, job_id: int, job_name: str, unix_user: str) -> tuple[str, str, str]:
    """Working directory, stdout and stderr (as patterns for the scheduler), all checked."""
    workdir = resolve_inside(space, space, opts.workdir or f"jobs/{job_id}", "working directory")
    default = DEFAULT_ARRAY_OUTPUT if opts.array else DEFAULT_OUTPUT
    output = resolve_file_pattern(space, workdir, opts.output or default, "output file (-o/--output)",
                                  job_name, unix_user)
    error = resolve_file_pattern(space, workdir, opts.error or opts.output or default, "error file (-e/--error)",
                                 job_name, unix_user)
    return workdir, output, error


def submitted_path(path: str, native_id: str, space: str) -> str:
    """The file a submitted (non-array) job writes: its id filled in; unchanged if that would not
    stay inside the space (it cannot: an id is digits, and the pattern was checked)."""
    with_ids = patterns.expand_ids(path, native_id, unescape=False)
    if not is_inside(posixpath.normpath(patterns.shape(with_ids)), space):
        return path
    return patterns.expand_ids(path, native_id)


def check_real_inside(path: str, space: str) -> None:
    """Refuse a path whose existing part is a symlink out of the user's space."""
    real_space = os.path.realpath(space)
    real = os.path.realpath(path)
    if real != real_space and not real.startswith(real_space + os.sep):
        raise InvalidRequest(msg("%(path)s leads outside your space", path=path))

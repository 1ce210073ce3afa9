"""Reading a job's stdout/stderr in chunks (the CLI follows it live).

The job owns the directory its output is in and may swap the file (or a
directory on the way) for a symlink, or hard-link a file of the server's
there: the file is opened one component at a time from the user's space with
O_NOFOLLOW, must be a regular file with no other link, and must lie inside the
space, so the service never reads anything for a job that the job could not.
"""

from __future__ import annotations

import os
import posixpath

from ...files import paths as fpaths
from ...store.models import Job
from ...messages import msg
from ..errors import Conflict, InvalidRequest, Unavailable
from ..files.paths import is_inside, user_space

MAX_OUTPUT_CHUNK = 1024 * 1024


def read_output(job: Job, stream: str, offset: int, limit: int = MAX_OUTPUT_CHUNK,
                platform=None) -> tuple[str, int, bool]:
    """A chunk of the job's stdout/stderr from ``offset``: (text, next offset, exists).

    With ``platform`` the walk starts at the cluster's workdir root (the operator's, which
    may itself be reached through links) and the file must be in the owner's space; without,
    no component from / on may be a link."""
    if stream not in ("stdout", "stderr"):
        raise InvalidRequest(msg("stream must be stdout or stderr"))
    if offset < 0:
        raise InvalidRequest(msg("offset must not be negative"))
    path = job.stdout_path if stream == "stdout" else job.stderr_path
    if not path:  # a job found on the cluster, not submitted here: its output is not known
        return "", offset, False
    try:
        fd = _open_output(job, path, platform)
    except (fpaths.NotFound, FileNotFoundError):
        return "", offset, False
    except fpaths.FileError as exc:
        raise Conflict(msg("%(stream)s of job %(id)s is not read: %(exc)s", stream=stream, id=job.id, exc=exc)) from None
    except OSError as exc:
        raise Unavailable(msg("cannot read %(stream)s of job %(id)s: %(value)s",
                              stream=stream, id=job.id, value=exc.strerror or exc)) from None
    try:
        data = os.pread(fd, max(1, min(limit, MAX_OUTPUT_CHUNK)), offset)
    except OSError as exc:
        raise Unavailable(msg("cannot read %(stream)s of job %(id)s: %(value)s",
                              stream=stream, id=job.id, value=exc.strerror or exc)) from None
    finally:
        os.close(fd)
    chunk = _whole_utf8(data)
    return chunk.decode("utf-8", errors="replace"), offset + len(chunk), True


def _open_output(job: Job, path: str, platform) -> int:
    """An fd of the regular file at ``path``, reached without following a link past the root."""
    if not path or not posixpath.isabs(path) or posixpath.normpath(path) != path:
        raise fpaths.PathRefused(f"{path!r} is not an absolute, normalised path")
    if platform is not None:
        try:
            config = platform.cluster_config(job.cluster.name)
        except KeyError:  # the cluster was taken out of the configuration: its files are not reachable here
            raise fpaths.NotFound(f"cluster {job.cluster.name} is no longer configured") from None
        root = posixpath.normpath(platform.settings.workdir_root(config))
        space = user_space(root, job.owner.name)
        if not is_inside(path, space):
            raise fpaths.PathRefused(f"{path!r} is outside the owner's space {space}")
    else:
        root = "/"
    parts = tuple(path[len(root):].strip("/").split("/"))
    base = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dir_fd = fpaths.open_dirs(base, parts[:-1])
    finally:
        os.close(base)
    try:
        fd = fpaths.open_file_at(dir_fd, parts[-1], path)
    finally:
        os.close(dir_fd)
    links = os.fstat(fd).st_nlink
    if links != 1:  # a hard link to someone else's file is as bad as a symlink
        os.close(fd)
        raise fpaths.PathRefused(f"{path!r} has {links} hard links; only a file of the job's own is read")
    return fd


def _whole_utf8(data: bytes) -> bytes:
    """Drop a UTF-8 character cut in half at the end (the next chunk has it)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if need <= back else data[:-back]
    return data

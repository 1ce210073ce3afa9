"""Stagers: copy a job's inputs to a cluster's working directory and its outputs back.

Each transfer is hashed while it streams and lands atomically (a ".cnet-part"
file renamed into place), so a half-copied input never looks complete. A
job controls its working directory, so remote symlinks are reported, never
followed: ``get`` refuses them and ``list`` does not descend into them.
With a ``root``, every remote path must lie inside it and the walk below it
refuses symlinked directories. Over SFTP the checks are lstat-then-open (the
protocol has no O_NOFOLLOW): a job racing the stager could still swap a
file for a link between the two, which is why SFTP should log in as the
job's own user, who can read nothing more through a link than directly.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence

from .paths import (AtomicFile, FileError, NotFound, PathRefused, TooLarge, copy_hashed, kind_of,
                    lstat_at, open_dir_at, open_dirs, open_file_at, open_regular, reader, split_path, write_all)
PART = ".cnet-part"
MAX_ENTRIES = 100_000
# AES-GCM first: with AES-NI it moves bulk data faster than asyncssh's default, chacha20
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes256-ctr",
           "aes192-ctr", "aes128-ctr")  # a listing that large is a runaway job, not outputs


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the directory listed, "/"-joined
    size: int
    kind: Literal["file", "link", "dir"]


class Stager(Protocol):
    def put(self, local: Path, remote: str) -> str: ...
    def get(self, remote: str, local: Path, max_bytes: int | None = None) -> str: ...
    def list(self, remote_dir: str, patterns: Sequence[str]) -> list[RemoteFile]: ...
    def close(self) -> None: ...


def remote_parts(remote: str) -> tuple[str, ...]:
    """An absolute remote path's components (same refusals as workspace paths: "..", control chars...)."""
    if not isinstance(remote, str) or not remote.startswith("/"):
        raise PathRefused(f"remote path {remote!r} must be absolute")
    return split_path(remote.lstrip("/"))


def matches(rel: str, patterns: Sequence[str]) -> bool:
    # fnmatch semantics ("*" also crosses "/"); "**/x" also matches a top-level "x"
    return any(fnmatch.fnmatchcase(rel, p) or (p.startswith("**/") and fnmatch.fnmatchcase(rel, p[3:]))
               for p in patterns)


def _report(found: list[RemoteFile], entry: RemoteFile, patterns: Sequence[str]) -> None:
    found.append(entry)
    if len(found) > MAX_ENTRIES:
        raise FileError(f"more than {MAX_ENTRIES} entries match {list(patterns)}; a runaway job?")


def _too_large(remote: str, limit: int | None) -> None:
    raise TooLarge(f"{remote!r} grew past {limit} bytes while being fetched; it is left where it is")


def _mode_for(local_mode: int) -> int:
    if not local_mode & 0o077:  # a private file (a session's secret) stays private there
        return 0o600
    return 0o755 if local_mode & 0o100 else 0o644  # keep a script executable, nothing else


class LocalStager:
    """The cluster's filesystem is visible here (local executor, the local Slurm test bed)."""

    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.realpath(root) if root else None
        # the caller may name paths through the root as given or as resolved
        self._roots = [remote_parts(r) for r in {os.path.abspath(root), self.root}] if root else []

    def _dir(self, parts: tuple[str, ...], shown: str, create: bool = False) -> int:
        """An fd of the remote directory ``parts``; below the root no symlink is followed."""
        if self.root is None:
            path = "/" + "/".join(parts)
            if create:
                os.makedirs(path, 0o750, exist_ok=True)
            try:
                return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise NotFound(f"remote directory {shown!r} does not exist") from None
        rel = next((parts[len(r):] for r in self._roots if parts[:len(r)] == r), None)
        if rel is None:
            raise PathRefused(f"remote path {shown!r} is outside {self.root}")
        root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return open_dirs(root, rel, create)
        finally:
            os.close(root)

    def _parent(self, remote: str, create: bool = False) -> tuple[int, str]:
        parts = remote_parts(remote)
        if not parts:
            raise PathRefused(f"remote path {remote!r} is not a file")
        return self._dir(parts[:-1], remote, create), parts[-1]

    def put(self, local: Path, remote: str) -> str:
        src, st = open_regular(local)
        try:
            parent, name = self._parent(remote, create=True)
            try:
                try:  # a leftover, or a planted link: gone, not followed
                    os.unlink(name + PART, dir_fd=parent)
                except FileNotFoundError:
                    pass
                out = os.open(name + PART, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                              0o600, dir_fd=parent)
                try:
                    _, digest = copy_hashed(reader(src), lambda block: write_all(out, block))
                    os.fchmod(out, _mode_for(st.st_mode))
                finally:
                    os.close(out)
                os.replace(name + PART, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                if (part := lstat_at(parent, name + PART)) is not None and stat.S_ISREG(part.st_mode):
                    os.unlink(name + PART, dir_fd=parent)
                raise
            finally:
                os.close(parent)
        finally:
            os.close(src)
        return digest

    def get(self, remote: str, local: Path, max_bytes: int | None = None) -> str:
        """Copy a remote regular file here; past ``max_bytes`` (a file still growing) it stops (TooLarge)."""
        parent, name = self._parent(remote)
        try:
            src = open_file_at(parent, name, remote)
        finally:
            os.close(parent)
        try:
            if os.fstat(src).st_nlink > 1:
                # a hard link made by a job could name any file of the host the service may read
                raise PathRefused(f"{remote!r} has other hard links; it is not fetched")
            target = AtomicFile(local)
            try:
                _, digest = copy_hashed(reader(src), target.write, max_bytes, lambda n: _too_large(remote, max_bytes))
                target.commit()
            except BaseException:
                target.abort()
                raise
        finally:
            os.close(src)
        return digest

    def list(self, remote_dir: str, patterns: Sequence[str]) -> list[RemoteFile]:
        parts = remote_parts(remote_dir)
        if self.root is None and parts:  # the directory listed must not be a link itself
            outer = self._dir(parts[:-1], remote_dir)
            try:
                fd = open_dir_at(outer, parts[-1], remote_dir)
            finally:
                os.close(outer)
        else:
            fd = self._dir(parts, remote_dir)
        found: list[RemoteFile] = []
        try:
            self._scan(fd, "", patterns, False, found)
        finally:
            os.close(fd)
        return found

    def _scan(self, fd: int, prefix: str, patterns: Sequence[str], inside: bool, found: list[RemoteFile]) -> None:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel, st = prefix + e.name, e.stat(follow_symlinks=False)
            hit = inside or matches(rel, patterns)  # a matching directory brings everything below it
            kind = kind_of(st.st_mode)
            if hit and kind is not None:
                _report(found, RemoteFile(rel, 0 if kind == "dir" else st.st_size, kind), patterns)
            if kind == "dir":
                sub = open_dir_at(fd, e.name, rel)
                try:
                    self._scan(sub, rel + "/", patterns, hit, found)
                finally:
                    os.close(sub)

    def close(self) -> None:
        pass


from .sftp import SftpStager  # noqa: E402,F401  (SFTP lives in its own module)

__all__ = ["LocalStager", "RemoteFile", "SftpStager", "Stager"]

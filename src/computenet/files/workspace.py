"""A user's or project's workspace: one directory, reached only through checked paths.

Every operation walks from an fd of the root with O_NOFOLLOW (see paths.py),
so a symlink a job left in the workspace (``out -> /etc``) can be listed but
never read, written, moved or removed through. Writes go to a temp file in
the target's directory and are put in place atomically once size, quota and
checksum are right; a failed write leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Literal

from .paths import (DIR_FLAGS, TEMP_PREFIX, AlreadyExists, ChecksumMismatch, FileError, NotFound, PathRefused,
                    QuotaExceeded, TooLarge, check_sha256, copy_hashed, empty_dir_at, hash_fd, join, kind_of,
                    lstat_at, open_dir_at, open_dirs, open_file_at, reader, split_path, write_all)


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # workspace-relative, "/"-joined; "" is the root
    kind: Literal["file", "dir", "link"]
    size: int
    mtime: float


def _entry(parts: tuple[str, ...], st: os.stat_result) -> Entry | None:
    kind = kind_of(st.st_mode)
    if kind is None:
        return None  # FIFOs, sockets, devices: not listed
    return Entry(parts[-1] if parts else "", join(parts), kind, 0 if kind == "dir" else st.st_size, st.st_mtime)


class Workspace:
    USAGE_TTL_S = 30.0  # the cache also sees files that arrived by other means (fetched outputs)

    def __init__(self, root: str | Path, quota_bytes: int | None = None, max_file_bytes: int | None = None) -> None:
        root = Path(os.path.abspath(root))
        if root.is_symlink():
            raise PathRefused(f"workspace root {root} is a symlink")
        root.mkdir(mode=0o750, parents=True, exist_ok=True)
        if root.is_symlink() or not root.is_dir():
            raise PathRefused(f"workspace root {root} is not a directory")
        self.root = root
        self.quota_bytes, self.max_file_bytes = quota_bytes, max_file_bytes
        self._usage: int | None = None
        self._usage_at = 0.0
        self._lock = threading.Lock()

    # -- walking ----------------------------------------------------------------

    @contextmanager
    def _fd(self, parts: tuple[str, ...], create: bool = False) -> Iterator[int]:
        """An fd of the directory ``parts``, walked from the root without following links."""
        try:
            root = os.open(self.root, DIR_FLAGS)
        except OSError as exc:
            raise PathRefused(f"workspace root {self.root} cannot be opened safely: {exc.strerror}") from None
        try:
            fd = open_dirs(root, parts, create)
        finally:
            os.close(root)
        try:
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _file_parts(path: str) -> tuple[str, ...]:
        parts = split_path(path)
        if not parts:
            raise PathRefused(f"{path!r} is the workspace root, not a file")
        return parts

    def _lstat(self, parts: tuple[str, ...]) -> os.stat_result:
        if not parts:
            return os.stat(self.root, follow_symlinks=False)
        with self._fd(parts[:-1]) as parent:
            st = lstat_at(parent, parts[-1])
        if st is None:
            raise NotFound(f"{join(parts)!r} does not exist")
        return st

    # -- reading ----------------------------------------------------------------

    def stat(self, path: str) -> Entry:
        parts = split_path(path)
        entry = _entry(parts, self._lstat(parts))
        if entry is None:
            raise FileError(f"{path!r} is not a file, directory or symlink")
        return entry

    def ls(self, path: str = "") -> list[Entry]:
        parts = split_path(path)
        entry = self.stat(path)
        if entry.kind != "dir":
            return [entry]
        with self._fd(parts) as fd, os.scandir(fd) as it:
            found = [_entry(parts + (e.name,), e.stat(follow_symlinks=False)) for e in it]
        return sorted((e for e in found if e is not None), key=lambda e: e.name)

    def open_read(self, path: str) -> BinaryIO:
        parts = self._file_parts(path)
        with self._fd(parts[:-1]) as parent:
            fd = open_file_at(parent, parts[-1], path)
        return os.fdopen(fd, "rb")

    def sha256(self, path: str) -> str:
        with self.open_read(path) as f:
            return hash_fd(f.fileno())

    def real_path(self, path: str) -> Path:
        parts = split_path(path)
        if stat.S_ISLNK(self._lstat(parts).st_mode):
            raise PathRefused(f"{path!r} is a symlink; it is not followed")
        return self.root.joinpath(*parts)

    def usage(self) -> int:
        with self._lock:
            if self._usage is None or time.monotonic() - self._usage_at > self.USAGE_TTL_S:
                total = 0
                for _, _, files, dir_fd in os.fwalk(self.root, follow_symlinks=False):
                    for name in files:
                        st = lstat_at(dir_fd, name)
                        if st is not None and stat.S_ISREG(st.st_mode):
                            total += st.st_size
                self._usage, self._usage_at = total, time.monotonic()
            return self._usage

    def _account(self, delta: int) -> None:
        with self._lock:
            if self._usage is not None:
                self._usage += delta

    # -- writing ----------------------------------------------------------------

    def _check_size(self, size: int, replaced: int, shown: str, at_least: bool = False) -> None:
        asked = f"{'at least ' if at_least else ''}{size} bytes"
        if self.max_file_bytes is not None and size > self.max_file_bytes:
            raise TooLarge(f"{shown!r}: {asked} is more than the largest file allowed, {self.max_file_bytes} bytes")
        if self.quota_bytes is not None:
            used = self.usage()
            if used - replaced + size > self.quota_bytes:
                raise QuotaExceeded(f"{shown!r}: quota exceeded: {used} of {self.quota_bytes} bytes used, "
                                    f"writing {asked}" + (f" over {replaced}" if replaced else "") + " does not fit")

    def _allowed(self, replaced: int) -> int:
        """The most bytes a write may still take (checked while streaming)."""
        caps = [self.max_file_bytes] if self.max_file_bytes is not None else []
        if self.quota_bytes is not None:
            caps.append(self.quota_bytes - self.usage() + replaced)
        return min(caps, default=1 << 62)

    @staticmethod
    def _replaced(parent: int, name: str, shown: str, overwrite: bool) -> int:
        """Size of the file a write to ``name`` would replace (refusing what must not be replaced)."""
        st = lstat_at(parent, name)
        if st is None:
            return 0
        if stat.S_ISDIR(st.st_mode):
            raise FileError(f"{shown!r} is a directory; a file cannot be written over it")
        if not overwrite:
            raise AlreadyExists(f"{shown!r} already exists")
        if stat.S_ISLNK(st.st_mode):
            raise PathRefused(f"{shown!r} is a symlink; remove it before writing there")
        if not stat.S_ISREG(st.st_mode):
            raise FileError(f"{shown!r} is not a regular file")
        return st.st_size

    @staticmethod
    def _place(src: str, src_fd: int | None, parent: int, name: str, shown: str, overwrite: bool) -> None:
        """Put ``src`` in place atomically; without overwrite, link() refuses an existing name even in a race."""
        try:
            if overwrite:
                os.replace(src, name, src_dir_fd=src_fd, dst_dir_fd=parent)
            else:
                os.link(src, name, src_dir_fd=src_fd, dst_dir_fd=parent, follow_symlinks=False)
                os.unlink(src, dir_fd=src_fd)
        except FileExistsError:
            raise AlreadyExists(f"{shown!r} already exists") from None
        except IsADirectoryError:
            raise FileError(f"{shown!r} is a directory; a file cannot be written over it") from None

    def _replaced_at(self, parts: tuple[str, ...], shown: str, overwrite: bool) -> int:
        """_replaced() before anything is created: a missing parent directory replaces nothing."""
        try:
            with self._fd(parts[:-1]) as parent:
                return self._replaced(parent, parts[-1], shown, overwrite)
        except NotFound:
            return 0

    def write(self, path: str, source: BinaryIO | bytes, *, overwrite: bool = False,
              expected_sha256: str | None = None, size_hint: int | None = None) -> tuple[int, str]:
        parts = self._file_parts(path)
        if expected_sha256 is not None:
            check_sha256(expected_sha256, "expected sha256")
        replaced = self._replaced_at(parts, path, overwrite)  # refused before a byte is read
        if size_hint is not None:
            self._check_size(size_hint, replaced, path)
        cap = self._allowed(replaced)

        def over(size: int) -> None:  # stop early: never hold more than allowed on disk
            self._check_size(size, replaced, path, at_least=True)
            raise QuotaExceeded(f"{path!r}: quota exceeded while writing")  # a race moved the cap

        with self._fd(()) as root:  # the temp file waits in the root: a refused write creates no directories
            tmp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640,
                         dir_fd=root)
            try:
                try:
                    size, sha = copy_hashed(reader(source), lambda block: write_all(fd, block), cap, over)
                finally:
                    os.close(fd)
                if expected_sha256 is not None and sha != expected_sha256:
                    raise ChecksumMismatch(f"{path!r}: the data's sha256 is {sha}, not the expected "
                                           f"{expected_sha256}; nothing was written")
                with self._fd(parts[:-1], create=True) as parent:
                    replaced = self._replaced(parent, parts[-1], path, overwrite)
                    self._place(tmp, root, parent, parts[-1], path, overwrite)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=root)
                except FileNotFoundError:
                    pass
                raise
        self._account(size - replaced)
        return size, sha

    def adopt(self, path: str, temp_file: Path, *, overwrite: bool = False,
              sha256: str | None = None) -> tuple[int, str]:
        """Move a complete file (same filesystem) into place; ``sha256``, if known and verified, skips a re-read."""
        parts = self._file_parts(path)
        temp = os.path.abspath(temp_file)
        try:
            fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise FileError(f"cannot adopt {temp}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileError(f"cannot adopt {temp}: not a regular file")
            self._check_size(st.st_size, self._replaced_at(parts, path, overwrite), path)
            sha = sha256 if sha256 is not None else hash_fd(fd)
            os.fchmod(fd, 0o640)
            with self._fd(parts[:-1], create=True) as parent:
                replaced = self._replaced(parent, parts[-1], path, overwrite)
                try:
                    self._place(temp, None, parent, parts[-1], path, overwrite)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    os.lseek(fd, 0, os.SEEK_SET)  # another filesystem: copy, then drop the original
                    with os.fdopen(os.dup(fd), "rb") as src:
                        result = self.write(path, src, overwrite=overwrite, expected_sha256=sha)
                    os.unlink(temp)
                    return result
        finally:
            os.close(fd)
        self._account(st.st_size - replaced)
        return st.st_size, sha

    def mkdir(self, path: str, parents: bool = True) -> None:
        parts = split_path(path)
        if not parts:
            return
        with self._fd(parts[:-1], create=parents) as parent:
            st = lstat_at(parent, parts[-1])
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise PathRefused(f"{path!r} is a symlink")
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise AlreadyExists(f"{path!r} already exists and is not a directory")
            if st is not None and not parents:
                raise AlreadyExists(f"directory {path!r} already exists")
            if st is None:
                try:
                    os.mkdir(parts[-1], 0o750, dir_fd=parent)
                except FileExistsError:
                    if not parents:
                        raise AlreadyExists(f"directory {path!r} already exists") from None

    def remove(self, path: str, recursive: bool = False) -> int:
        parts = split_path(path)
        if not parts:
            raise PathRefused(f"{path!r} is the workspace root; it cannot be removed")
        freed = 0
        with self._fd(parts[:-1]) as parent:
            st = lstat_at(parent, parts[-1])
            if st is None:
                raise NotFound(f"{path!r} does not exist")
            if not stat.S_ISDIR(st.st_mode):  # a symlink goes itself, its target is untouched
                os.unlink(parts[-1], dir_fd=parent)
                freed = st.st_size if stat.S_ISREG(st.st_mode) else 0
            else:
                fd = open_dir_at(parent, parts[-1], path)
                try:
                    if not recursive and os.listdir(fd):
                        raise FileError(f"directory {path!r} is not empty; remove it recursively")
                    freed = empty_dir_at(fd, path)
                finally:
                    os.close(fd)
                os.rmdir(parts[-1], dir_fd=parent)
        self._account(-freed)
        return freed

    def move(self, src: str, dst: str, overwrite: bool = False) -> None:
        sp, dp = split_path(src), split_path(dst)
        if not sp:
            raise PathRefused(f"{src!r} is the workspace root; it cannot be moved")
        src_st = self._lstat(sp)
        try:  # an existing directory (not a link to one) as the target: move into it
            into = dst.endswith("/") or not dp or stat.S_ISDIR(self._lstat(dp).st_mode)
        except NotFound:
            into = False
        if into:
            dp = dp + (sp[-1],)
        if dp == sp:
            return
        if stat.S_ISDIR(src_st.st_mode) and dp[:len(sp)] == sp:
            raise PathRefused(f"cannot move directory {src!r} into itself ({join(dp)!r})")
        with self._fd(sp[:-1]) as src_parent, self._fd(dp[:-1], create=True) as dst_parent:
            replaced = 0
            dst_st = lstat_at(dst_parent, dp[-1])
            if dst_st is not None:
                if stat.S_ISDIR(src_st.st_mode) or stat.S_ISDIR(dst_st.st_mode):
                    raise AlreadyExists(f"{join(dp)!r} already exists; a directory is never replaced by a move")
                replaced = self._replaced(dst_parent, dp[-1], join(dp), overwrite)
            try:
                os.rename(sp[-1], dp[-1], src_dir_fd=src_parent, dst_dir_fd=dst_parent)
            except FileNotFoundError:
                raise NotFound(f"{src!r} does not exist") from None
        self._account(-replaced)

"""User-given paths, checked before they touch a filesystem, and fd-based walking.

Every path a user gives is split into components here and refused if it could
leave its base (absolute, "..", control characters, over-long). Walking then
happens component by component from a directory fd with O_NOFOLLOW, so a
symlink anywhere on the way (planted by a job, or swapped in during a race)
is refused instead of followed.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Callable

from ..fsutil import fsync_dir

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
TEMP_PREFIX = ".cnet-tmp-"
BLOCK = 4 * 1024 * 1024


class FileError(ValueError):
    """Base of the file errors; the message names the path and the problem."""


class PathRefused(FileError):
    """A path that could leave its base: traversal, absolute, control characters, symlinks, too long."""


class NotFound(FileError):
    pass


class AlreadyExists(FileError):
    pass


class QuotaExceeded(FileError):
    pass


class TooLarge(FileError):
    pass


class ChecksumMismatch(FileError):
    pass


class TransferFailed(FileError):
    """A stager could not reach the other side (connection, remote I/O)."""


def split_path(text: str) -> tuple[str, ...]:
    """A workspace-relative path -> its components; "" and "." are the root, ()."""
    if not isinstance(text, str):
        raise PathRefused(f"path {text!r} is not text")
    bad = next((ch for ch in text if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise PathRefused(f"path {text!r} contains the control character {bad!r}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates cannot name a file
        raise PathRefused(f"path {text!r} is not valid UTF-8") from None
    if size > MAX_PATH_BYTES:
        raise PathRefused(f"path {text[:60]!r}... is {size} bytes long, more than {MAX_PATH_BYTES}")
    if text.startswith("/"):
        raise PathRefused(f"path {text!r} is absolute; give it relative to the workspace")
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise PathRefused(f"path {text!r} contains '..'")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise PathRefused(f"path {text[:60]!r}: the name {part[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
        parts.append(part)
    return tuple(parts)


def join(parts: tuple[str, ...] | list[str]) -> str:
    return "/".join(parts)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_dir_at(dir_fd: int, name: str, shown: str, create: bool = False, mode: int = 0o750) -> int:
    """The fd of directory ``name`` inside ``dir_fd``; a symlink there is refused, never followed."""
    for _ in range(2):
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise NotFound(f"{shown!r} does not exist") from None
            try:
                os.mkdir(name, mode, dir_fd=dir_fd)
            except FileExistsError:
                pass  # made meanwhile; open it on the next round
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = lstat_at(dir_fd, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise PathRefused(f"{shown!r} is a symlink; paths are never followed through links") from None
            raise FileError(f"{shown!r} is not a directory") from None
    raise FileError(f"{shown!r} cannot be created")


def open_dirs(base_fd: int, parts: tuple[str, ...], create: bool = False, mode: int = 0o750) -> int:
    """Walk ``parts`` below ``base_fd`` (a new fd for the last one; the caller closes it)."""
    fd = os.dup(base_fd)
    try:
        for i, name in enumerate(parts):
            child = open_dir_at(fd, name, join(parts[: i + 1]), create, mode)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file_at(dir_fd: int, name: str, shown: str, flags: int = os.O_RDONLY, mode: int = 0o640) -> int:
    """Open a regular file without following a symlink; FIFOs and devices are refused without blocking."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(f"{shown!r} does not exist") from None
    except IsADirectoryError:
        raise FileError(f"{shown!r} is a directory, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathRefused(f"{shown!r} is a symlink; it is not followed") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileError(f"{shown!r} is {'a directory' if stat.S_ISDIR(st.st_mode) else 'not'} a regular file")
    os.set_blocking(fd, True)
    return fd


def kind_of(mode: int) -> str | None:
    """"file", "dir" or "link"; None for FIFOs, sockets and devices, which nobody should read."""
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else None


def check_sha256(value: str, what: str = "sha256") -> str:
    if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise FileError(f"{what} {value!r} is not 64 lowercase hex digits")
    return value


def write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def reader(source: BinaryIO | bytes | int) -> Callable[[memoryview], int]:
    """readinto() for an fd, bytes or a binary stream (streams without readinto are read() and copied)."""
    if isinstance(source, int):
        return lambda buf: os.readv(source, [buf])
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)  # shares the bytes, no copy
    if hasattr(source, "readinto"):
        return source.readinto

    def readinto(buf: memoryview) -> int:
        data = source.read(len(buf)) or b""
        buf[:len(data)] = data
        return len(data)
    return readinto


def copy_hashed(readinto: Callable[[memoryview], int], write: Callable[[memoryview], object],
                cap: int | None = None, over: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Copy until EOF, hashing each block in a second thread while it is written (hashlib drops the GIL).

    Two buffers alternate, so a block is never overwritten while still being hashed. Past ``cap``
    bytes ``over(total)`` is called, which raises: a too-large stream stops at once.
    """
    digest, total = hashlib.sha256(), 0
    bufs = (memoryview(bytearray(BLOCK)), memoryview(bytearray(BLOCK)))
    pool, pending = None, None
    try:
        for i in itertools.count():
            n = readinto(bufs[i % 2])
            if not n:
                break
            total += n
            if cap is not None and total > cap:
                over(total)
            block = bufs[i % 2][:n]
            if pending is not None:
                pending.result()
            if pool is None:
                pool = ThreadPoolExecutor(1, thread_name_prefix="sha256")
            pending = pool.submit(digest.update, block)
            write(block)
        if pending is not None:
            pending.result()
    finally:
        if pool is not None:
            pool.shutdown()
    return total, digest.hexdigest()


def hash_fd(fd: int) -> str:
    digest, buf = hashlib.sha256(), memoryview(bytearray(BLOCK))
    while n := os.readv(fd, [buf]):
        digest.update(buf[:n])
    return digest.hexdigest()


def empty_dir_at(fd: int, shown: str) -> int:
    """Delete everything inside directory ``fd`` without following links; returns the file bytes freed."""
    freed = 0
    with os.scandir(fd) as it:
        entries = list(it)
    for e in entries:
        st = e.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = open_dir_at(fd, e.name, f"{shown}/{e.name}")
            try:
                freed += empty_dir_at(sub, f"{shown}/{e.name}")
            finally:
                os.close(sub)
            os.rmdir(e.name, dir_fd=fd)
        else:
            os.unlink(e.name, dir_fd=fd)
            freed += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return freed


def open_regular(path: str | os.PathLike) -> tuple[int, os.stat_result]:
    """A platform-side local file (a workspace's real_path, say): regular, not a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotFound(f"local file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise FileError(f"local file {str(path)!r}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileError(f"local file {str(path)!r} is not a regular file")
    os.set_blocking(fd, True)
    return fd, st


class AtomicFile:
    """A local file written under a temp name beside it and renamed into place by ``commit``."""

    def __init__(self, path: str | os.PathLike, mode: int = 0o640) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=TEMP_PREFIX)
        os.fchmod(self.fd, mode)

    def write(self, data: memoryview) -> None:
        write_all(self.fd, memoryview(data))

    def commit(self) -> None:
        os.fsync(self.fd)  # whole on disk before it takes the name
        os.close(self.fd)
        self.fd = -1
        os.replace(self.tmp, self.path)
        fsync_dir(Path(self.path).parent)

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        Path(self.tmp).unlink(missing_ok=True)

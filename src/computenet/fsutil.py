"""State files that survive a crash: written whole or not at all, read without trusting them.

Stdlib only (the local executor's runner imports it and must start fast).

``atomic_write`` writes a temporary file in the target's own directory (a rename never
crosses filesystems), fsyncs it, renames it over the target and fsyncs the directory, so
after a kill -9 or a power cut a reader finds either the old contents or the new, never an
empty or half-written file. The ``read_*`` helpers turn a missing, empty or corrupt file
into a default the caller chooses instead of an exception deep in a request.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL|O_NOFOLLOW: a name planted where the temporary file goes is never written through
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits away
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, data: Any, mode: int = 0o600) -> None:
    atomic_write(path, json.dumps(data, sort_keys=True), mode)


def read_text_or(path: str | os.PathLike, default: str | None = None) -> str | None:
    """The file's text, or ``default`` when it is missing or not text."""
    try:
        return Path(path).read_text()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return default


def read_json_or(path: str | os.PathLike, default: Any = None) -> Any:
    """The file's JSON, or ``default`` when it is missing, empty or corrupt."""
    text = read_text_or(path)
    if not text or not text.strip():
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def read_int_or(path: str | os.PathLike, default: int | None = None) -> int | None:
    """A non-negative integer kept in a file, or ``default`` when it is missing, empty or corrupt."""
    text = (read_text_or(path) or "").strip()
    return int(text) if text.isascii() and text.isdigit() else default

"""Resumable chunked uploads, kept on disk so that an upload survives a restart.

Each upload is two files under the store's root (outside every workspace):
``<id>.part``, sparse, of the full size, each chunk written at its offset,
and ``<id>.json``, the declared size/sha256/chunk size and the chunks
received, replaced atomically. Recording a chunk is a read-modify-write of
the state under flock on the .part file, so several workers may take chunks
of the same upload at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import atomic_write_json, read_json_or
from .paths import AlreadyExists, ChecksumMismatch, FileError, NotFound, TooLarge, check_sha256, hash_fd

UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MIN_CHUNK = 64 * 1024
MAX_CHUNK = 64 * 1024 * 1024


@dataclass(frozen=True)
class UploadState:
    upload_id: str
    size: int
    sha256: str
    chunk_size: int
    received: frozenset[int]

    @property
    def chunks(self) -> int:
        return max(1, -(-self.size // self.chunk_size))

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.chunks) if i not in self.received]

    @property
    def complete(self) -> bool:
        return len(self.received) == self.chunks

    def chunk_length(self, index: int) -> int:
        return min(self.chunk_size, self.size - index * self.chunk_size)


class UploadStore:
    def __init__(self, root: str | Path, max_size: int | None = None, fsync: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_size = max_size
        self.fsync = fsync  # off by default: a chunk lost in a crash is simply resent (finish checks the whole)

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not (isinstance(upload_id, str) and UPLOAD_ID.fullmatch(upload_id)):
            raise FileError(f"upload id {upload_id!r} must be 8 to 64 of A-Z a-z 0-9 _ -")
        return self.root / f"{upload_id}.part", self.root / f"{upload_id}.json"

    def _save(self, state: UploadState) -> None:
        _, meta = self._paths(state.upload_id)
        atomic_write_json(meta, {"upload_id": state.upload_id, "size": state.size, "sha256": state.sha256,
                                 "chunk_size": state.chunk_size, "received": sorted(state.received)})

    def begin(self, upload_id: str, size: int, sha256: str, chunk_size: int = 8 * 1024 * 1024) -> UploadState:
        part, meta = self._paths(upload_id)
        check_sha256(sha256, f"upload {upload_id}: declared sha256")
        if not isinstance(size, int) or size < 0:
            raise FileError(f"upload {upload_id}: size {size!r} must be a whole number of bytes >= 0")
        if self.max_size is not None and size > self.max_size:
            raise TooLarge(f"upload {upload_id}: {size} bytes is more than the largest upload allowed, "
                           f"{self.max_size} bytes")
        if not isinstance(chunk_size, int) or not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
            raise FileError(f"upload {upload_id}: chunk size {chunk_size!r} must be between {MIN_CHUNK} and "
                            f"{MAX_CHUNK} bytes")
        state = UploadState(upload_id, size, sha256, chunk_size, frozenset())
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:  # the same upload begun again (a client retrying) resumes it
            try:
                known = self.state(upload_id)
            except NotFound:
                known = None  # a crash between the two files: start over below
            if known is not None:
                if (known.size, known.sha256, known.chunk_size) != (size, sha256, chunk_size):
                    raise AlreadyExists(f"upload {upload_id} already exists with another size, sha256 or "
                                        "chunk size") from None
                return known
            fd = os.open(part, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)  # sparse: no disk used until chunks arrive
        finally:
            os.close(fd)
        self._save(state)
        return state

    def state(self, upload_id: str) -> UploadState:
        _, meta = self._paths(upload_id)
        if not meta.exists():
            raise NotFound(f"upload {upload_id} does not exist (never begun, finished or expired)")
        data = read_json_or(meta)
        try:
            return UploadState(data["upload_id"], data["size"], data["sha256"], data["chunk_size"],
                               frozenset(data["received"]))
        except (TypeError, KeyError):  # a damaged state file: the chunks cannot be trusted either
            raise FileError(f"upload {upload_id}: its state is damaged; begin the upload again") from None

    def write_chunk(self, upload_id: str, index: int, data: bytes, sha256: str) -> UploadState:
        part, _ = self._paths(upload_id)
        state = self.state(upload_id)
        if not isinstance(index, int) or not 0 <= index < state.chunks:
            raise FileError(f"upload {upload_id}: chunk {index!r} is out of range 0..{state.chunks - 1}")
        want = state.chunk_length(index)
        if len(data) != want:
            raise FileError(f"upload {upload_id}: chunk {index} is {len(data)} bytes, it must be {want}")
        check_sha256(sha256, f"upload {upload_id}: chunk {index} sha256")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ChecksumMismatch(f"upload {upload_id}: chunk {index} has sha256 {actual}, not the declared "
                                   f"{sha256}; it was not recorded, send it again")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"upload {upload_id}: its data file is gone (discarded meanwhile?)") from None
        try:
            # the lock first: a chunk once recorded is never written again, so nothing changes the
            # data after finish() has checked the whole file (a resend is simply acknowledged)
            fcntl.flock(fd, fcntl.LOCK_EX)  # released on close
            state = self.state(upload_id)  # chunks others recorded meanwhile
            if index in state.received:
                return state
            view, offset = memoryview(data), index * state.chunk_size
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            if self.fsync:
                os.fsync(fd)
            state = UploadState(upload_id, state.size, state.sha256, state.chunk_size, state.received | {index})
            self._save(state)
        finally:
            os.close(fd)
        return state

    def finish(self, upload_id: str) -> Path:
        part, _ = self._paths(upload_id)
        state = self.state(upload_id)
        if not state.complete:
            missing = state.missing
            raise FileError(f"upload {upload_id}: {len(missing)} of {state.chunks} chunks are missing "
                            f"(first: {missing[:10]})")
        fd = os.open(part, os.O_RDONLY | os.O_CLOEXEC)
        try:
            actual = hash_fd(fd)
        finally:
            os.close(fd)
        if actual != state.sha256:
            raise ChecksumMismatch(f"upload {upload_id}: the assembled file has sha256 {actual}, but "
                                   f"{state.sha256} was declared; the upload is kept, resend the chunks")
        return part

    def discard(self, upload_id: str) -> None:
        for path in self._paths(upload_id):
            path.unlink(missing_ok=True)

    def expired(self, older_than_s: float) -> list[str]:
        cutoff = time.time() - older_than_s
        found = []
        for meta in self.root.glob("*.json"):
            try:
                if meta.stat().st_mtime < cutoff and UPLOAD_ID.fullmatch(meta.stem):
                    found.append(meta.stem)
            except FileNotFoundError:
                continue
        return sorted(found)

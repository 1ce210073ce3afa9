"""Reading a job's stdout/stderr in chunks (the CLI follows it live)."""

from __future__ import annotations

from ..store.models import Job
from .errors import InvalidRequest, Unavailable

MAX_OUTPUT_CHUNK = 1024 * 1024


def read_output(job: Job, stream: str, offset: int, limit: int = MAX_OUTPUT_CHUNK) -> tuple[str, int, bool]:
    """A chunk of the job's stdout/stderr from ``offset``: (text, next offset, exists)."""
    if stream not in ("stdout", "stderr"):
        raise InvalidRequest("stream must be stdout or stderr")
    if offset < 0:
        raise InvalidRequest("offset must not be negative")
    path = job.stdout_path if stream == "stdout" else job.stderr_path
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(max(1, min(limit, MAX_OUTPUT_CHUNK)))
    except FileNotFoundError:
        return "", offset, False
    except OSError as exc:
        raise Unavailable(f"cannot read {stream} of job {job.id}: {exc}") from None
    chunk = _whole_utf8(data)
    return chunk.decode("utf-8", errors="replace"), offset + len(chunk), True


def _whole_utf8(data: bytes) -> bytes:
    """Drop a UTF-8 character cut in half at the end (the next chunk has it)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if need <= back else data[:-back]
    return data

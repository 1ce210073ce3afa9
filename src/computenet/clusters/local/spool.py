"""On-disk state of the local executor (stdlib only; the runner imports it).

Layout: ``SPOOL/lock``, ``SPOOL/next_id``, ``SPOOL/jobs/<id>/{request.json,
state.json, script, runner.pid, cancel}``. Every state file is written whole
(temporary file, fsync, rename, fsync of the directory: see fsutil), so a
reader never sees half a file even after a kill -9 or a power cut; state
changes happen under ``lock``; files are the server's own (0600), out of a
job's reach when jobs run as other users (see isolation.py).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ... import fsutil

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
RUNNER_START_GRACE_S = 30.0  # a runner gets this long to write its pid file


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    fsutil.atomic_write_json(path, data, 0o600)


def read_json(path: Path) -> dict | None:
    """A spool file, or None when it is missing or damaged (a job directory in the making)."""
    data = fsutil.read_json_or(path)
    return data if isinstance(data, dict) else None


def allocate_id(spool: Path) -> tuple[int, Path]:
    """The next job id and its new directory; call under ``locked``.

    ``next_id`` is only a hint: missing, empty or corrupt (a crash of an older version, a
    full disk), or behind a directory that exists (restored from a backup), the next id
    comes from the highest job directory, so ids stay unique and submissions keep working."""
    root = spool / "jobs"
    root.mkdir(parents=True, exist_ok=True)
    job_id = fsutil.read_int_or(spool / "next_id") or 1
    if (root / str(job_id)).exists():
        job_id = max([int(p.name) for p in job_dirs(spool)] + [job_id]) + 1
    job_dir = root / str(job_id)
    job_dir.mkdir(mode=0o700)
    for stale in spool.glob(".next_id.*.tmp"):  # a writer killed mid-write (writers hold the lock)
        stale.unlink(missing_ok=True)
    fsutil.atomic_write(spool / "next_id", str(job_id + 1))
    return job_id, job_dir


@contextmanager
def locked(spool: Path):
    spool.mkdir(parents=True, exist_ok=True)
    with open(spool / "lock", "a+") as handle:
        os.fchmod(handle.fileno(), 0o600)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def job_dirs(spool: Path) -> list[Path]:
    root = spool / "jobs"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def runner_alive(job_dir: Path, state: dict) -> bool:
    pid_file = job_dir / "runner.pid"
    if not pid_file.exists():
        started = datetime.fromisoformat(state["launched"]).timestamp() if state.get("launched") else 0
        return time.time() - started < RUNNER_START_GRACE_S
    pid = fsutil.read_int_or(pid_file, 0)
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # a reused pid belongs to someone else; a zombie has finished
    return str(job_dir).encode() in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


_children: list[subprocess.Popen] = []


def reap() -> None:
    """Collect runners this process started and that have exited."""
    _children[:] = [p for p in _children if p.poll() is None]


def schedule(spool: Path, slots: int, gpus: int) -> list[str]:
    """Start pending jobs in submission order while they fit; returns started ids.

    Strict FIFO: the first job that does not fit stops the pass, so a large
    job is never starved by a stream of small ones.
    """
    reap()
    started: list[str] = []
    with locked(spool):
        used_cores = used_gpus = 0
        pending: list[tuple[Path, dict, dict]] = []
        for job_dir in job_dirs(spool):
            state_file = job_dir / "state.json"
            if not state_file.exists():
                continue
            state = read_json(state_file)
            if state is None:
                continue
            if state["state"] in ("RUNNING", "SUSPENDED"):  # a suspended job keeps its slots
                request = read_json(job_dir / "request.json")
                if request is not None and runner_alive(job_dir, state):
                    used_cores += request["cores"]
                    used_gpus += request["gpus"]
                else:
                    state.update(state="NODE_FAIL", end=now_iso(), reason="runner process vanished")
                    write_json(state_file, state)
            elif state["state"] == "PENDING" and not state.get("held"):
                if state.get("begin") and datetime.fromisoformat(state["begin"]) > datetime.now(timezone.utc):
                    continue  # --begin: not eligible yet, and it holds up no one behind it
                request = read_json(job_dir / "request.json")
                if request is None:
                    state.update(state="FAILED", end=now_iso(), reason="request.json is damaged")
                    write_json(state_file, state)
                    continue
                pending.append((job_dir, state, request))
        for job_dir, state, request in pending:
            if used_cores + request["cores"] > slots or used_gpus + request["gpus"] > gpus:
                state["reason"] = "Resources"
                write_json(job_dir / "state.json", state)
                break
            launch(job_dir)
            state.update(state="RUNNING", start=now_iso(), launched=now_iso(), reason=None)
            write_json(job_dir / "state.json", state)
            used_cores += request["cores"]
            used_gpus += request["gpus"]
            started.append(job_dir.name)
    return started


def launch(job_dir: Path) -> None:
    runner = [sys.executable, "-m", "computenet.clusters.local.runner", str(job_dir)]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "PYTHONPATH")}
    log = os.open(job_dir / "runner.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        proc = subprocess.Popen(
            runner,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # survives the server; killed as a group
            env=env,
            close_fds=True,
        )
    finally:
        os.close(log)
    _children.append(proc)

"""On-disk state of the local executor (stdlib only; the runner imports it).

Layout: ``SPOOL/lock``, ``SPOOL/next_id``, ``SPOOL/jobs/<id>/{request.json,
state.json, script, runner.pid, cancel}``. Every write is a rename, so a
reader never sees half a file, and state changes happen under ``lock``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
RUNNER_START_GRACE_S = 30.0  # a runner gets this long to write its pid file


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@contextmanager
def locked(spool: Path):
    spool.mkdir(parents=True, exist_ok=True)
    with open(spool / "lock", "a+") as handle:
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
    pid = int(pid_file.read_text().strip() or 0)
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
            if state["state"] in ("RUNNING", "SUSPENDED"):  # a suspended job keeps its slots
                if runner_alive(job_dir, state):
                    request = read_json(job_dir / "request.json")
                    used_cores += request["cores"]
                    used_gpus += request["gpus"]
                else:
                    state.update(state="NODE_FAIL", end=now_iso(), reason="runner process vanished")
                    write_json(state_file, state)
            elif state["state"] == "PENDING" and not state.get("held"):
                pending.append((job_dir, state, read_json(job_dir / "request.json")))
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
    proc = subprocess.Popen(
        runner,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(job_dir / "runner.log", "ab"),
        start_new_session=True,  # survives the server; killed as a group
        env=env,
        close_fds=True,
    )
    _children.append(proc)

"""Runs one local job: ``python -m computenet.clusters.local.runner JOB_DIR``.

Started detached by the scheduler, it runs the script with the job's
environment and files (in its own PID namespace and as its own user where
the executor isolates jobs: see isolation.py), enforces the time limit,
turns SIGTERM into a cancellation, records the outcome, then lets the next
pending jobs start. The elapsed time it records is its own measurement from
the start the scheduler wrote before the job ran, never something the job
could have rewritten. Stdlib only, so it starts fast.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ... import fsutil
from . import isolation
from .spool import locked, now_iso, read_json, schedule, write_json

PR_SET_PDEATHSIG = 1  # prctl(2)
KILL_WAIT_S = 5.0  # SIGTERM, then SIGKILL after this, as Slurm's KillWait


def _open_output(path: str, append: bool = False) -> int:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)


def _limits(request: dict):
    """In the child before exec: --mem as a limit the kernel enforces on every process of the job
    (RLIMIT_AS, inherited; an allocation beyond it fails), and the runner's death ends the job."""
    mem_mb = request.get("mem_limit_mb")

    def apply() -> None:
        if request.get("run", {}).get("mode", isolation.NONE) != isolation.NONE:
            _die_with_runner()
        if mem_mb:
            limit = int(mem_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


_OOM_WORDS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory", "Out of memory",
              "memory exhausted")


def _out_of_memory(request: dict) -> bool:
    """Did a job under a memory limit end because an allocation failed? Its error stream says so
    (each language has its own words for ENOMEM): then it ends OUT_OF_MEMORY, as under Slurm."""
    if not request.get("mem_limit_mb"):
        return False
    try:
        with open(request["error"], "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    return any(word in tail for word in _OOM_WORDS)


class _Job:
    """The started job: its process group and, once ``unshare`` made it, its PID namespace."""

    def __init__(self, proc: subprocess.Popen, namespaced: bool) -> None:
        self.proc = proc
        self.namespaced = namespaced
        self._namespace: isolation.Namespace | None = None

    @property
    def namespace(self) -> isolation.Namespace | None:
        # learnt only while ``unshare`` has not been waited for: until then its pid is its own
        if self.namespaced and self._namespace is None and self.proc.returncode is None:
            self._namespace = isolation.hold_namespace(self.proc.pid)
        return self._namespace

    def close(self) -> None:
        if self._namespace is not None:
            self._namespace.close()

    def signal(self, sig: int) -> None:
        isolation.signal_job(self.proc.pid, self.namespace, sig)

    def warn(self, sig: int) -> None:
        """--signal: to the job's own processes (in a namespace, not to ``unshare`` outside it)."""
        if self.namespace:
            for pid in self.namespace.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        elif not self.namespaced:
            self.signal(sig)

    def kill(self) -> None:
        """SIGTERM to every process of the job, SIGKILL after KILL_WAIT_S, as Slurm does."""
        self.signal(signal.SIGCONT)  # a stopped job must run to hear SIGTERM
        for sig, wait in ((signal.SIGTERM, KILL_WAIT_S), (signal.SIGKILL, 5.0)):
            self.signal(sig)
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _die_with_runner() -> None:
    """In the child before exec: if the runner dies (kill -9, the job is then NODE_FAIL), ``unshare``
    gets SIGKILL and with --kill-child takes the job's whole namespace with it: nothing runs unmetered."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _start(job_dir: Path, request: dict) -> _Job:
    run = request.get("run") or {"mode": isolation.NONE}
    script = str(job_dir / "script")
    if run["mode"] == isolation.NONE:
        append = request.get("open_mode") == "append"
        out_fd = _open_output(request["output"], append)
        err_fd = out_fd if request["error"] == request["output"] else _open_output(request["error"], append)
        try:
            proc = subprocess.Popen([script, *request["script_args"]], cwd=request["workdir"],
                                    stdin=subprocess.DEVNULL, stdout=out_fd, stderr=err_fd,
                                    env=request["environment"], start_new_session=True,
                                    preexec_fn=_limits(request))
        finally:
            os.close(out_fd)
            if err_fd != out_fd:
                os.close(err_fd)
        return _Job(proc, False)
    # the job's init opens its outputs itself, as the job's user; only its own start-up errors come here
    init_err = os.open(job_dir / "init.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        argv = isolation.job_argv(run, script, list(request["script_args"]), request["workdir"],
                                  request["output"], request["error"], request.get("open_mode") or "truncate")
        proc = subprocess.Popen(argv, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=init_err, env=request["environment"], start_new_session=True,
                                preexec_fn=_limits(request))
    finally:
        os.close(init_err)
    return _Job(proc, True)


def _outcome(job_dir: Path, job: _Job, code: int) -> dict:
    if job.namespaced and code > 0:
        problem = (fsutil.read_text_or(job_dir / "init.err") or "").strip()
        if problem:
            return {"state": "FAILED", "exit_code": code, "signal": 0, "reason": f"could not start: {problem[:500]}"}
        if code > 128:  # the init's shell reports a signal as 128+N
            return {"state": "FAILED", "exit_code": 0, "signal": code - 128}
    if code == 0:
        return {"state": "COMPLETED", "exit_code": 0, "signal": 0}
    if code > 0:
        return {"state": "FAILED", "exit_code": code, "signal": 0}
    return {"state": "FAILED", "exit_code": 0, "signal": -code}


def main(job_dir: Path) -> int:
    cancelled = False

    def on_term(signum, frame):  # cancellation: the scheduler signals us
        nonlocal cancelled
        cancelled = True

    # before the pid file, which is how a cancel finds us: a SIGTERM that came before the handler
    # would kill the runner unrecorded, and the job would read as NODE_FAIL instead of CANCELLED
    signal.signal(signal.SIGTERM, on_term)
    fsutil.atomic_write(job_dir / "runner.pid", str(os.getpid()))
    request = read_json(job_dir / "request.json")
    spool = job_dir.parent.parent
    if request is None:
        with locked(spool):
            state = read_json(job_dir / "state.json") or {"submit": now_iso()}
            state.update(state="FAILED", end=now_iso(), reason="request.json is damaged", elapsed=0)
            write_json(job_dir / "state.json", state)
        (job_dir / "runner.pid").unlink(missing_ok=True)
        return 1
    # read before the job runs, and kept here: what the job might write later changes nothing
    with locked(spool):  # the scheduler writes the start under the lock, after starting us
        start_text = (read_json(job_dir / "state.json") or {}).get("start") or now_iso()
    start = datetime.fromisoformat(start_text)
    outcome: dict = {}
    suspended_for, suspended_at = 0.0, None  # suspended time counts neither to the limit nor as use
    try:
        job = _start(job_dir, request)
    except OSError as exc:
        outcome = {"state": "FAILED", "exit_code": 1, "signal": 0, "reason": f"could not start: {exc}"}
    else:
        proc = job.proc
        limit = request["time_limit_minutes"] * 60 if request["time_limit_minutes"] else None
        started = time.monotonic()
        warn = request.get("signal")  # --signal=[B:]SIG@secs: [batch shell only, signal, seconds before the limit]
        while True:
            wanted = (job_dir / "suspend").exists()
            if wanted != (suspended_at is not None):
                job.signal(signal.SIGSTOP if wanted else signal.SIGCONT)
                if wanted:
                    suspended_at = time.monotonic()
                else:
                    suspended_for += time.monotonic() - suspended_at
                    suspended_at = None
                with locked(spool):
                    state = read_json(job_dir / "state.json") or {}
                    state.update(state="SUSPENDED" if wanted else "RUNNING", suspended_s=int(suspended_for))
                    write_json(job_dir / "state.json", state)
            if (job_dir / "time_limit").exists():  # extended (adapter.set_time_limit)
                try:
                    limit = int((job_dir / "time_limit").read_text()) * 60
                except (OSError, ValueError):
                    pass
            if (job_dir / "cancel").exists():
                cancelled = True
            if cancelled:
                job.kill()
                outcome = {"state": "CANCELLED", "exit_code": 0, "signal": 15}
                break
            paused_now = time.monotonic() - suspended_at if suspended_at is not None else 0.0
            ran = time.monotonic() - started - suspended_for - paused_now
            if warn and limit is not None and ran >= limit - warn[2]:
                job.warn(warn[1])  # B: or not, one host has no steps: the script and what it started
                warn = None
            if limit is not None and time.monotonic() - started - suspended_for - paused_now >= limit:
                job.kill()
                outcome = {"state": "TIMEOUT", "exit_code": 0, "signal": 15}
                break
            _ = job.namespace  # learn it while the job lives, to reach processes that left the group
            try:
                code = proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            outcome = _outcome(job_dir, job, code)
            if outcome["state"] == "FAILED" and _out_of_memory(request):
                outcome["state"] = "OUT_OF_MEMORY"
            break
        # what the script left behind: in its process group and, in a namespace, the rest
        # (the kernel also ends a namespace whose first process has exited)
        job.signal(signal.SIGKILL)
        job.close()
    with locked(spool):
        state = read_json(job_dir / "state.json") or {}
        state.update(outcome, end=now_iso(), start=start_text)
        suspended = int(suspended_for + (time.monotonic() - suspended_at if suspended_at is not None else 0.0))
        state["suspended_s"] = suspended
        state["elapsed"] = max(0, int((datetime.now(timezone.utc) - start).total_seconds()) - suspended)
        write_json(job_dir / "state.json", state)
    (job_dir / "runner.pid").unlink(missing_ok=True)
    schedule(spool, request["slots"], request["gpu_slots"])
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))

"""Runs one local job: ``python -m computenet.clusters.local.runner JOB_DIR``.

Started detached by the scheduler, it runs the script with the job's
environment and files, enforces the time limit, turns SIGTERM into a
cancellation, records the outcome, then lets the next pending jobs start.
Stdlib only, so it starts fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .spool import locked, now_iso, read_json, schedule, write_json

KILL_WAIT_S = 5.0  # SIGTERM, then SIGKILL after this, as Slurm's KillWait


def _open_output(path: str) -> int:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGCONT)  # a stopped job must run to hear SIGTERM
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, KILL_WAIT_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main(job_dir: Path) -> int:
    (job_dir / "runner.pid").write_text(str(os.getpid()))
    request = read_json(job_dir / "request.json")
    spool = job_dir.parent.parent
    cancelled = False

    def on_term(signum, frame):  # cancellation: the scheduler signals us
        nonlocal cancelled
        cancelled = True

    signal.signal(signal.SIGTERM, on_term)
    outcome: dict = {}
    suspended_for, suspended_at = 0.0, None  # suspended time counts neither to the limit nor as use
    try:
        out_fd = _open_output(request["output"])
        err_fd = out_fd if request["error"] == request["output"] else _open_output(request["error"])
        script = job_dir / "script"
        proc = subprocess.Popen(
            [str(script), *request["script_args"]],
            cwd=request["workdir"],
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=err_fd,
            env=request["environment"],
            start_new_session=True,
        )
        os.close(out_fd)
        if err_fd != out_fd:
            os.close(err_fd)
    except OSError as exc:
        outcome = {"state": "FAILED", "exit_code": 1, "signal": 0, "reason": f"could not start: {exc}"}
    else:
        limit = request["time_limit_minutes"] * 60 if request["time_limit_minutes"] else None
        started = time.monotonic()
        while True:
            wanted = (job_dir / "suspend").exists()
            if wanted != (suspended_at is not None):
                try:
                    os.killpg(proc.pid, signal.SIGSTOP if wanted else signal.SIGCONT)
                except ProcessLookupError:
                    pass
                if wanted:
                    suspended_at = time.monotonic()
                else:
                    suspended_for += time.monotonic() - suspended_at
                    suspended_at = None
                with locked(spool):
                    state = read_json(job_dir / "state.json")
                    state.update(state="SUSPENDED" if wanted else "RUNNING", suspended_s=int(suspended_for))
                    write_json(job_dir / "state.json", state)
            if (job_dir / "cancel").exists():
                cancelled = True
            if cancelled:
                _kill_group(proc)
                outcome = {"state": "CANCELLED", "exit_code": 0, "signal": 15}
                break
            paused_now = time.monotonic() - suspended_at if suspended_at is not None else 0.0
            if limit is not None and time.monotonic() - started - suspended_for - paused_now >= limit:
                _kill_group(proc)
                outcome = {"state": "TIMEOUT", "exit_code": 0, "signal": 15}
                break
            try:
                code = proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            if code == 0:
                outcome = {"state": "COMPLETED", "exit_code": 0, "signal": 0}
            elif code > 0:
                outcome = {"state": "FAILED", "exit_code": code, "signal": 0}
            else:
                outcome = {"state": "FAILED", "exit_code": 0, "signal": -code}
            break
        # reap what the script left behind in its process group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    with locked(spool):
        state = read_json(job_dir / "state.json")
        state.update(outcome, end=now_iso())
        start = datetime.fromisoformat(state["start"])
        suspended = int(suspended_for + (time.monotonic() - suspended_at if suspended_at is not None else 0.0))
        state["suspended_s"] = suspended
        state["elapsed"] = max(0, int((datetime.now(timezone.utc) - start).total_seconds()) - suspended)
        write_json(job_dir / "state.json", state)
    (job_dir / "runner.pid").unlink(missing_ok=True)
    schedule(spool, request["slots"], request["gpu_slots"])
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))

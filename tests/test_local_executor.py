"""The embedded default executor, with real processes."""

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from computenet.clusters.base import SubmitRejected, SubmitRequest
from computenet.clusters.local.adapter import LocalCluster
from computenet.domain.sbatch import parse_submission
from computenet.domain.states import JobState

from conftest import poll_until


@pytest.fixture
def cluster(tmp_path):
    return LocalCluster("local", tmp_path / "spool", slots=2, mem_mb=4000, max_time_minutes=60)


def request(tmp_path, script, flags=None, name="job", output="out-%j.txt", error=None):
    text, spec, args = parse_submission(script, flags)
    work = tmp_path / "work"
    return SubmitRequest(script=text, spec=spec, job_name=name, workdir=str(work), output=str(work / output),
                         error=str(work / (error or output)), comment="computenet:1", script_args=tuple(args))


def wait_terminal(cluster, ids, timeout=30):
    return poll_until(lambda: (lambda s: s if all(x.state.is_terminal for x in s.values()) else None)(cluster.status(ids)),
                      timeout=timeout, what=f"jobs {ids} to end")


def test_runs_script_with_slurm_environment_and_args(cluster, tmp_path):
    job = cluster.submit(request(tmp_path, '#!/bin/bash\necho "id=$SLURM_JOB_ID cpus=$SLURM_CPUS_PER_TASK args=$1,$2"\npwd\n',
                                 ["-c", "2", "--", "a b", "c"]))
    states = wait_terminal(cluster, [job])
    assert states[job].state is JobState.COMPLETED and states[job].exit_code == 0
    text = (tmp_path / "work" / f"out-{job}.txt").read_text()
    assert text == f"id={job} cpus=2 args=a b,c\n{tmp_path / 'work'}\n"


def test_separate_error_file_and_exit_code(cluster, tmp_path):
    job = cluster.submit(request(tmp_path, "#!/bin/bash\necho out\necho err >&2\nexit 7\n", error="err-%j.txt"))
    states = wait_terminal(cluster, [job])
    assert states[job].state is JobState.FAILED and states[job].exit_code == 7
    assert (tmp_path / "work" / f"out-{job}.txt").read_text() == "out\n"
    assert (tmp_path / "work" / f"err-{job}.txt").read_text() == "err\n"


def test_jobs_queue_when_slots_are_full(cluster, tmp_path):
    marker = tmp_path / "release"
    hold = f"#!/bin/bash\nwhile [ ! -e {marker} ]; do sleep 0.1; done\n"
    first = cluster.submit(request(tmp_path, hold, ["-c", "2"]))
    second = cluster.submit(request(tmp_path, hold, ["-c", "1"]))
    states = cluster.status([first, second])
    assert states[first].state is JobState.RUNNING
    assert states[second].state is JobState.PENDING and states[second].reason == "Resources"
    marker.touch()
    states = wait_terminal(cluster, [first, second])
    assert all(s.state is JobState.COMPLETED for s in states.values())
    # the second started only after the first had ended
    assert states[second].start >= states[first].end - timedelta(seconds=1)


def test_time_limit_is_enforced(tmp_path):
    """The shortest limit Slurm knows is one minute; the job is killed at it."""
    cluster = LocalCluster("short", tmp_path / "spool", slots=1, max_time_minutes=1)
    job = cluster.submit(request(tmp_path, "#!/bin/bash\necho started\nsleep 120\n", ["-t", "0:01"]))
    started = time.monotonic()
    states = wait_terminal(cluster, [job], timeout=100)
    assert states[job].state is JobState.TIMEOUT
    assert 55 < time.monotonic() - started < 90
    assert (tmp_path / "work" / f"out-{job}.txt").read_text() == "started\n"


def test_cancel_pending_and_running(cluster, tmp_path):
    running = cluster.submit(request(tmp_path, "#!/bin/bash\nsleep 60\n", ["-c", "2"]))
    pending = cluster.submit(request(tmp_path, "#!/bin/bash\nsleep 60\n"))
    poll_until(lambda: cluster.status([running])[running].state is JobState.RUNNING, what="job to run")
    cluster.cancel(pending)
    cluster.cancel(running)
    states = wait_terminal(cluster, [running, pending])
    assert states[running].state is JobState.CANCELLED and states[pending].state is JobState.CANCELLED
    usage = {r.record_id: r for r in cluster.accounting(None)}
    assert usage[pending].start is None and usage[pending].cpus == 0
    assert usage[running].cpus == 2
    cluster.cancel(running)  # cancelling an ended job is a no-op
    with pytest.raises(LookupError):
        cluster.cancel("999")


def test_usage_in_sacct_shape(cluster, tmp_path):
    job = cluster.submit(request(tmp_path, "#!/bin/bash\nsleep 1.2\n", ["-c", "2", "--mem=1500M"]))
    wait_terminal(cluster, [job])
    (record,) = cluster.accounting(None, [job])
    assert record.state is JobState.COMPLETED and record.exit_code == 0
    assert record.cpus == 2 and record.mem_mb == 1500 and record.nodes == 1
    assert record.alloc_tres == "billing=2,cpu=2,mem=1500M,node=1"
    assert 1 <= record.elapsed_seconds <= 3
    assert record.submit <= record.start <= record.end
    assert record.is_final


def _alive_with(marker: str) -> list[int]:
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            zombie = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if marker.encode() in cmdline and not zombie:
            found.append(int(name))
    return found


def test_vanished_runner_is_node_fail(cluster, tmp_path):
    marker = f"61.{os.getpid()}{time.monotonic_ns() % 10**6}"
    job = cluster.submit(request(tmp_path, f"#!/bin/bash\nsleep {marker}\n"))
    pid_file = tmp_path / "spool" / "jobs" / job / "runner.pid"
    poll_until(pid_file.exists, what="runner pid file")
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    states = poll_until(lambda: (lambda s: s if s[job].state.is_terminal else None)(cluster.status([job])),
                        what="node failure to be noticed")
    assert states[job].state is JobState.NODE_FAIL
    if os.geteuid() == 0:  # in its own PID namespace: the job does not run on, unmetered, without its runner
        try:
            poll_until(lambda: not _alive_with(marker), timeout=10, what="the job's processes to end")
        finally:
            for pid in _alive_with(marker):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("flags,fragment", [
    (["--array=0-3"], "arrays"),
    (["-N", "2"], "one node"),
    (["-c", "3"], "3 cores"),
    (["--gpus=1"], "GPUs"),
    (["--mem=9G"], "memory"),
    (["-t", "2:00:00"], "maximum"),
    (["-p", "gpu"], "invalid partition"),
])
def test_refuses_what_it_cannot_run(cluster, tmp_path, flags, fragment):
    with pytest.raises(SubmitRejected) as err:
        cluster.submit(request(tmp_path, "#!/bin/bash\ntrue\n", flags))
    assert fragment in str(err.value)
    assert not list((tmp_path / "spool" / "jobs").iterdir())


def test_partitions_and_health(cluster):
    (part,) = cluster.partitions()
    assert (part.name, part.cores_per_node, part.nodes, part.is_default) == ("local", 2, 1, True)
    assert cluster.health().state.value == "online"


def test_a_suspended_job_can_be_resumed_and_cancelled(cluster, tmp_path):
    job = cluster.submit(request(tmp_path, "#!/bin/bash\nsleep 60\n"))
    poll_until(lambda: cluster.status([job])[job].state is JobState.RUNNING, what="RUNNING")
    cluster.pause(job)
    poll_until(lambda: cluster.status([job])[job].state is JobState.SUSPENDED, what="SUSPENDED")
    cluster.resume(job)
    poll_until(lambda: cluster.status([job])[job].state is JobState.RUNNING, what="RUNNING again")
    cluster.pause(job)
    poll_until(lambda: cluster.status([job])[job].state is JobState.SUSPENDED, what="SUSPENDED again")
    cluster.cancel(job)  # a stopped job is woken to hear it
    assert wait_terminal(cluster, [job])[job].state is JobState.CANCELLED


def test_a_single_tenant_executor_says_so(tmp_path):
    """Without a data directory and workspace root to isolate users in, it serves one tenant and says so."""
    cluster = LocalCluster("solo", tmp_path / "spool", slots=1)
    assert "single tenant" in cluster.health().detail
    assert oct((tmp_path / "spool").stat().st_mode & 0o777) == "0o700"  # the runner's bookkeeping is the server's
    with pytest.raises(ValueError, match="isolation is required"):
        LocalCluster("strict", tmp_path / "spool2", slots=1, isolation_mode="required")

"""What the local executor keeps from a job, with real processes, when the server runs as root.

The data directory is made under /tmp (not pytest's 0700 tmp_path), as `cnet demo` does, so
that job users can pass through to their spaces and the executor isolates them.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

import pytest

from computenet.config import Settings
from computenet.services.jobs.jobs import submit_job
from computenet.monitoring.agent_key import agent_token
from computenet.services.platform import Platform

from conftest import add_user, local_cluster, poll_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="isolation needs root and util-linux unshare")

SENTINEL = "COMPUTENET_TEST_SERVER_SECRET"


@pytest.fixture
def iso(db_url, clean_db, monkeypatch):
    """A platform whose data directory (SQLite database included, unless the run is on PostgreSQL)
    lives where job users could pass, as on a real root install."""
    monkeypatch.setenv(SENTINEL, "server-only-" + uuid.uuid4().hex)
    data_dir = Path(tempfile.mkdtemp(prefix="cnet-iso-", dir="/tmp"))
    database_url = db_url if db_url.startswith("postgresql") else None
    settings = Settings(_env_prefix="COMPUTENET_TEST_IGNORED_", data_dir=data_dir, database_url=database_url,
                        clusters=[local_cluster()])
    (data_dir / "config.toml").write_text('[server]\n# an operator\'s file, made with the default umask\n')
    platform = Platform(settings)
    platform.start()
    try:
        yield platform
    finally:
        platform.db.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def run(platform: Platform, user_id: int, script: str, timeout: float = 30.0):
    """Submit, wait for the job to end on the local executor; (native id, job row, stdout text)."""
    job = submit_job(platform, user_id, script, ["-t", "5"])
    adapter = platform.adapter("local")
    poll_until(lambda: adapter.status([job.native_id])[job.native_id].state.is_terminal, timeout=timeout,
               what=f"job {job.native_id} to end")
    return job.native_id, job, Path(job.stdout_path).read_text()


def test_a_job_reads_no_other_space_no_database_no_key(iso):
    alice, _ = add_user(iso, "alice")
    bob, _ = add_user(iso, "bob")
    key = iso.settings.data_dir / "agent.key"
    agent_token(iso.settings, 1)  # the key exists, as on a server whose jobs are monitored
    _, a_job, _ = run(iso, alice, "#!/bin/bash\necho alice-private-words > notes.txt\n")
    notes = Path(a_job.workdir) / "notes.txt"
    assert notes.read_text() == "alice-private-words\n"
    targets = [notes, key, iso.settings.data_dir / "config.toml"]
    if iso.settings.database_url is None:
        targets.append(iso.settings.data_dir / "computenet.db")
    script = "#!/bin/bash\n" + "".join(f"cat '{t}' 2>/dev/null && echo LEAKED-{i}\n" for i, t in enumerate(targets))
    script += f"ls '{iso.settings.data_dir}' 2>/dev/null && echo LISTED\nid -u\n"
    _, _, out = run(iso, bob, script)
    assert "alice-private-words" not in out and "LEAKED" not in out and "LISTED" not in out, out
    assert key.read_text().strip() not in out
    assert "SQLite format" not in out
    assert out.strip().splitlines()[-1] != "0"  # never root


def test_one_tree_isolated_a_staged_upload_is_read_and_the_rest_of_storage_stays_closed(iso):
    """Jobs run in their owners' workspaces: a staged upload is readable by the job's own uid,
    what it writes is listed by the files service, and beside users/ (uploads in progress,
    project workspaces) a job user reads nothing."""
    from computenet.services.files import job_files, workspaces
    from computenet.services.jobs.jobs import JobExtras
    from computenet.store.models import User

    alice, _ = add_user(iso, "alice")
    bob, _ = add_user(iso, "bob")
    storage = iso.settings.storage_root()
    with iso.db.session() as session:
        owner = session.get(User, alice)
        workspaces.write_small(session, iso, owner, "data/in.dat", b"alice-input\n", overwrite=False)
        inputs = job_files.resolve_inputs(session, iso, owner, ["data/in.dat"])
    secret = storage / ".uploads" / "pending" / "chunk"
    secret.parent.mkdir(parents=True)
    secret.write_text("upload-in-progress")
    project = storage / "projects" / "lab" / "p.txt"
    project.parent.mkdir(parents=True)
    project.write_text("project-only")
    job = submit_job(iso, alice, "#!/bin/bash\ncat in.dat\ncat ../../data/in.dat\necho out > made.txt\n", ["-t", "5"],
                     extras=JobExtras(inputs=inputs))
    adapter = iso.adapter("local")
    poll_until(lambda: adapter.status([job.native_id])[job.native_id].state.is_terminal, what="alice's job")
    assert Path(job.stdout_path).read_text() == "alice-input\nalice-input\n"
    assert Path(job.workdir).parent.parent == storage / "users" / "alice"
    with iso.db.session() as session:
        listed = {e["path"] for e in workspaces.list_dir(session, iso, session.get(User, alice), f"jobs/{job.id}")}
    assert {f"~/jobs/{job.id}/made.txt", f"~/jobs/{job.id}/in.dat"} <= listed, listed
    script = "#!/bin/bash\n" + "".join(f"cat '{t}' 2>/dev/null && echo LEAKED-{i}\n" for i, t in enumerate(
        [secret, project, Path(job.workdir) / "made.txt", storage / "users" / "alice" / "data" / "in.dat"]))
    _, _, out = run(iso, bob, script + f"ls '{storage}/.uploads' 2>/dev/null && echo LISTED\n")
    assert "LEAKED" not in out and "LISTED" not in out and "alice-input" not in out, out


def test_the_job_environment_is_the_users_own(iso):
    bob, _ = add_user(iso, "bob")
    _, job, out = run(iso, bob, "#!/bin/bash\nenv\nid -u\n")
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert SENTINEL not in env and os.environ[SENTINEL] not in out
    assert env["HOME"] != os.environ.get("HOME") and env["HOME"].endswith("/bob")
    assert Path(job.workdir).is_relative_to(env["HOME"])
    assert out.strip().splitlines()[-1] != "0"


def test_rewriting_the_runners_state_does_not_change_the_bill(iso):
    bob, _ = add_user(iso, "bob")
    state = iso.settings.data_dir / "spool" / "local" / "jobs"
    # after 3 s the job tells the runner it has only just started
    script = ("#!/bin/bash\nsleep 3\n"
              f"python3 - \"{state}/$SLURM_JOB_ID/state.json\" <<'EOF'\n"
              "import json, sys, datetime\n"
              "path = sys.argv[1]\n"
              "try:\n"
              "    state = json.load(open(path))\n"
              "    state['start'] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')\n"
              "    json.dump(state, open(path, 'w'))\n"
              "    print('rewrote')\n"
              "except OSError as exc:\n"
              "    print('refused', exc.errno)\n"
              "EOF\n")
    native_id, _, out = run(iso, bob, script)
    (record,) = iso.adapter("local").accounting(None, [native_id])
    assert record.elapsed_seconds >= 3, out
    assert "refused" in out


def _processes_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":  # a zombie has ended, only not been reaped
            found.append(int(name))
    return found


def test_a_setsid_child_ends_with_the_job(iso):
    bob, _ = add_user(iso, "bob")
    marker = f"2999.{uuid.uuid4().int % 10**9}"  # a sleep no other process has
    try:
        _, _, out = run(iso, bob, f"#!/bin/bash\nsetsid sleep {marker} </dev/null >/dev/null 2>&1 &\nsleep 0.5\necho started\n")
        assert out == "started\n"
        poll_until(lambda: not _processes_with(marker), timeout=10, what="the setsid child to end with its job")
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_suspend_and_cancel_reach_processes_that_left_the_group(tmp_path):
    from computenet.clusters.base import SubmitRequest
    from computenet.clusters.local.adapter import LocalCluster
    from computenet.domain.sbatch import parse_submission
    from computenet.domain.states import JobState

    data_dir = Path(tempfile.mkdtemp(prefix="cnet-iso-", dir="/tmp"))
    marker = f"2998.{uuid.uuid4().int % 10**9}"
    try:
        cluster = LocalCluster("local", data_dir / "spool" / "local", slots=1, data_dir=data_dir,
                               workdir_root=str(data_dir / "workspaces"), isolation_mode="required")
        text, spec, args = parse_submission(f"#!/bin/bash\nsetsid sleep {marker} </dev/null >/dev/null 2>&1 &\nsleep 60\n")
        work = data_dir / "workspaces" / "carol" / "jobs" / "1"
        job = cluster.submit(SubmitRequest(script=text, spec=spec, job_name="j", workdir=str(work),
                                           output=str(work / "out"), error=str(work / "out"), comment="c"))
        (pid,) = poll_until(lambda: _processes_with(marker), timeout=20, what="the setsid child to start")
        assert os.stat(f"/proc/{pid}").st_uid != 0
        cluster.pause(job)
        poll_until(lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T",
                   timeout=10, what="the setsid child to be stopped with its job")
        cluster.cancel(job)
        poll_until(lambda: cluster.status([job])[job].state is JobState.CANCELLED, timeout=20, what="CANCELLED")
        poll_until(lambda: not _processes_with(marker), timeout=10, what="the setsid child to end")
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_finished_jobs_namespace_number_taken_by_the_next_job_never_reaches_it():
    # The kernel hands a destroyed PID namespace's number to a later one. A runner that ends its
    # finished job's leftovers by that number must not SIGKILL the next job (CI saw a job fail with
    # unshare's "sigprocmask unblock failed": its init had been killed by another job's runner).
    import subprocess
    import time

    from computenet.clusters.local import isolation, runner

    def namespaced(seconds: float) -> subprocess.Popen:
        argv = isolation.job_argv({"mode": isolation.NAMESPACE}, "/bin/sleep", [str(seconds)], "/", "/dev/null",
                                  "/dev/null")
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    finished = []
    try:
        for _ in range(8):
            first = runner._Job(namespaced(0.5), True)
            poll_until(lambda: first.namespace, timeout=10, interval=0.02, what="the first job's namespace")
            first.proc.wait(timeout=10)
            finished.append(first)
            time.sleep(0.3)  # the kernel frees a namespace's number a little after its last process
            second = namespaced(30)
            try:
                held = poll_until(lambda: isolation.hold_namespace(second.pid), timeout=10, interval=0.02,
                                  what="the next job's namespace")
                held.close()
                first.signal(signal.SIGKILL)  # what the first job's runner does when its job has ended
                time.sleep(0.2)
                assert second.poll() is None, "the next job was killed by the first job's runner"
            finally:
                second.kill()
                second.wait()
    finally:
        for job in finished:
            job.close()

"""The per-job sampling agent (src/computenet/monitoring/agent.py).

These tests run real process trees (sh + python/sleep/dd children) and the
agent as a subprocess, the way the batch script will start it. They poll with
deadlines instead of sleeping for fixed long times, and their tolerances are
wide enough for a loaded two-core machine.
"""

from __future__ import annotations

import ast
import glob
import http.server
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from computenet.monitoring import agent

AGENT = Path(agent.__file__)
PY = sys.executable
MB = 1024 * 1024


def burn(seconds: float) -> str:
    """A python command that burns `seconds` of CPU in total (startup included) and exits."""
    code = f"import time\nwhile time.process_time() < {seconds}: pass\n"
    return f"{shlex.quote(PY)} -c {shlex.quote(code)}"


@pytest.fixture
def spawn():
    """Start `sh -c script` as a session leader; kill its process group afterwards."""
    started = []

    def _spawn(script, **kwargs):
        proc = subprocess.Popen(["sh", "-c", script], start_new_session=True, **kwargs)
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(timeout=10)


@pytest.fixture
def agents():
    """Agent subprocesses, killed at the end if still running."""
    started = []

    def _start(*args, env=None):
        full_env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        full_env.update(env or {})
        proc = subprocess.Popen([PY, str(AGENT), *map(str, args)], env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def wait_for(condition, timeout=15.0, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def sample_until(sampler, condition, timeout=20.0, step=0.2):
    """Sample every `step` seconds until condition(sample) holds; return that sample."""
    last = {}

    def check():
        last["s"] = sampler.sample()
        return condition(last["s"])

    try:
        wait_for(check, timeout=timeout, step=step, what="a matching sample")
    except AssertionError:
        raise AssertionError(f"no matching sample; last was {last.get('s')}")
    return last["s"]


def tree_size(pid):
    return len(agent.descendants(pid))


def child_commands(root_pid):
    """argv[0] of each process under root_pid."""
    commands = []
    for pid in agent.descendants(root_pid):
        if pid != root_pid:
            try:
                commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0])
            except OSError:
                pass
    return commands


def gone(pid):
    info = agent.read_proc(pid)
    return info is None or info["state"] == "Z"


def read_lines(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------- /proc primitives

def test_descendants_and_read_proc(spawn):
    root = spawn("sleep 30 & sleep 30 & wait")
    pids = wait_for(lambda: len(agent.descendants(root.pid)) == 3 and agent.descendants(root.pid),
                    what="sh + 2 sleeps")
    assert root.pid in pids
    assert pids == sorted(pids)
    children = [p for p in pids if p != root.pid]
    assert all(agent.read_proc(p)["ppid"] == root.pid for p in children)
    # Excluding a pid leaves it (and what it started) out.
    assert agent.descendants(root.pid, exclude=[children[0]]) == sorted([root.pid, children[1]])

    me = agent.read_proc(os.getpid())
    assert me["cpu_s"] > 0 and me["rss"] > 10 * MB and me["num_threads"] >= 1
    assert set(me) >= {"cpu_s", "rss", "read_bytes", "write_bytes", "num_threads", "ppid"}

    root.kill()
    root.wait()
    assert agent.read_proc(root.pid) is None
    assert agent.descendants(root.pid) == []
    assert agent.descendants(2 ** 22 + 12345) == []  # above pid_max: never exists


# --------------------------------------------------------------- Sampler

def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat (fields 14 and 15), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_busy_child_shows_one_core(spawn):
    # One busy process: cores ~ 1.0. The platform divides by the allocated
    # cores, so on a 4-core allocation this job is ~25 % CPU-efficient.
    root = spawn(f"{shlex.quote(PY)} -c 'while True: pass' & wait")
    wait_for(lambda: tree_size(root.pid) == 2, what="busy child")
    [busy] = [p for p in agent.descendants(root.pid) if p != root.pid]  # the python loop, not the shell
    sampler = agent.Sampler(root.pid, 0.5)
    start = time.monotonic()
    got_before, wall_before = _cpu_seconds(busy), time.monotonic()
    samples = [sampler.sample()]
    for k in range(1, 5):
        time.sleep(max(0.0, start + k * 0.5 - time.monotonic()))
        samples.append(sampler.sample())
    got = (_cpu_seconds(busy) - got_before) / (time.monotonic() - wall_before)
    assert samples[0]["cores"] == 0.0
    later = [s["cores"] for s in samples[1:]]
    mean = sum(later) / len(later)
    # what the agent saw is what the process really got (read here from /proc independently), whatever
    # share of a core a busy machine left it; one thread never uses more than one core
    assert got > 0 and abs(mean - got) <= 0.15, (later, got)
    assert mean <= 1.1, later
    assert all(s["nproc"] == 2 for s in samples)
    assert [s["seq"] for s in samples] == [0, 1, 2, 3, 4]
    assert samples[-1]["cpu_s"] > samples[0]["cpu_s"]
    assert samples[-1]["gpus"] == []


def test_resident_memory_is_counted(spawn):
    code = ("b = bytearray(200*1024*1024); import time; "
            "b[::4096] = b'x'*len(b[::4096]); time.sleep(30)")
    root = spawn(f"{shlex.quote(PY)} -c {shlex.quote(code)} & wait")
    sampler = agent.Sampler(root.pid, 0.2)
    sample = sample_until(sampler, lambda s: s["rss"] >= 180 * MB)
    assert sample["nproc"] == 2
    assert sample["rss"] < 400 * MB


def test_sleeping_tree_uses_no_cpu(spawn):
    root = spawn("sleep 30 & wait")
    wait_for(lambda: tree_size(root.pid) == 2, what="sleep child")
    sampler = agent.Sampler(root.pid, 1.0)
    sampler.sample()
    time.sleep(1.0)
    sample = sampler.sample()
    assert sample["cores"] < 0.05
    assert sample["nproc"] == 2 and sample["nthreads"] == 2


def test_short_lived_child_between_samples_still_counts(spawn):
    # The child starts and exits between two samples: never seen alive, its
    # CPU arrives through the shell's cutime/cstime once the shell waits.
    root = spawn(f"read go; {burn(0.5)}; echo done; sleep 30",
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    wait_for(lambda: tree_size(root.pid) == 1, what="shell")
    sampler = agent.Sampler(root.pid, 1.0)
    before = sampler.sample()
    root.stdin.write(b"go\n")
    root.stdin.flush()
    ready, _, _ = select.select([root.stdout], [], [], 20)
    assert ready and root.stdout.readline() == b"done\n"
    after = sampler.sample()
    assert 0.45 <= after["cpu_s"] - before["cpu_s"] <= 1.0, (before, after)


def test_exited_child_is_not_counted_twice(spawn):
    # Seen alive several times, then reaped by the shell: its CPU moves into
    # the shell's cutime and must not also stay in the "exited" total.
    root = spawn(f"{burn(1.0)}; sleep 30")
    sampler = agent.Sampler(root.pid, 0.1)
    sample_until(sampler, lambda s: s["nproc"] == 2, step=0.05)  # sh + python
    sample_until(sampler, lambda s: s["cpu_s"] >= 0.3, step=0.1)  # seen alive, burning
    sample_until(sampler, lambda s: s["cpu_s"] >= 0.9 and child_commands(root.pid) == [b"sleep"])
    final = sampler.sample()  # python is gone and reaped: its CPU is in sh's cutime only
    assert final["nproc"] == 2
    assert 0.9 <= final["cpu_s"] <= 1.5, final


def test_orphaned_process_of_the_session_still_counts(spawn):
    # `( cmd & )` orphans cmd (re-parented to init); the root leads its
    # session, so session members remain part of the job.
    code = "import time\nwhile time.process_time() < 0.5: pass\ntime.sleep(30)\n"
    root = spawn(f"({shlex.quote(PY)} -c {shlex.quote(code)} &); sleep 30")
    sampler = agent.Sampler(root.pid, 0.2)
    sample = sample_until(sampler, lambda s: s["nproc"] == 3 and s["cpu_s"] >= 0.45)
    assert sample["cpu_s"] <= 1.2
    tree = agent.descendants(root.pid)
    assert len(tree) == 2  # by parent pids alone the orphan is gone


def test_writes_are_counted(spawn, tmp_path):
    target = tmp_path / "zeros"
    root = spawn(f"dd if=/dev/zero of={target} bs=1M count=50 conv=fsync 2>/dev/null; sleep 30")
    sampler = agent.Sampler(root.pid, 0.2)
    sample = sample_until(sampler, lambda s: s["write"] >= 40 * MB)
    assert sample["write"] < 200 * MB


# ----------------------------------------------------------- the process

def test_agent_exits_after_the_tree_and_keeps_cadence(spawn, agents, tmp_path):
    out = tmp_path / "samples.jsonl"
    root = spawn("sleep 1.5")
    proc = agents("--pid", root.pid, "--interval", 0.3, "--out", out, "--job", 7)
    root.wait(timeout=10)
    assert proc.wait(timeout=15) == 0
    samples = read_lines(out)
    assert len(samples) >= 3
    assert [s["seq"] for s in samples] == list(range(len(samples)))
    times = [s["t"] for s in samples]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(s["nproc"] >= 1 for s in samples[:-1])  # sh (+ sleep unless sh exec'd it)
    assert samples[-1]["nproc"] == 0  # the last sample was taken after the tree ended
    # Fixed cadence t0 + k * interval (the last sample may come early: root gone).
    for t in times[1:-1]:
        offset = (t - times[0]) % 0.3
        assert min(offset, 0.3 - offset) < 0.12, times
    assert set(samples[0]) == {"t", "seq", "cpu_s", "cores", "rss", "read", "write",
                               "nproc", "nthreads", "gpus"}


def test_agent_excludes_itself(spawn, tmp_path):
    # Started from the job's shell like the batch script does: the agent is a
    # descendant (and session member) of the root but is not part of the tree.
    out = tmp_path / "samples.jsonl"
    pidfile = tmp_path / "agent.pid"
    script = (f"sleep 30 & {shlex.quote(PY)} {shlex.quote(str(AGENT))} --pid $$ "
              f"--interval 0.2 --max-seconds 1.0 --out {shlex.quote(str(out))} & "
              f"echo $! > {shlex.quote(str(pidfile))}; wait")
    spawn(script)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="agent pid")
    agent_pid = int(pidfile.read_text())
    wait_for(lambda: gone(agent_pid), timeout=20, what="agent to finish")
    samples = read_lines(out)
    assert len(samples) >= 4
    assert [s["nproc"] for s in samples] == [2] * len(samples)  # sh + sleep, not the agent


class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.headers.get("Authorization"), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(port=0):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Recorder)
    server.posts = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stop(server):
    server.shutdown()
    server.server_close()


def test_agent_posts_batches_and_retries_after_an_outage(spawn, agents, tmp_path):
    out = tmp_path / "samples.jsonl"
    server = _serve()
    port = server.server_address[1]
    root = spawn("sleep 60")
    proc = agents("--pid", root.pid, "--interval", 0.2, "--batch", 2, "--out", out,
                  "--job", 7, "--url", f"http://127.0.0.1:{port}/samples",
                  env={"COMPUTENET_AGENT_TOKEN": "secret"})
    try:
        wait_for(lambda: len(server.posts) >= 2, what="two POSTs")
        for auth, body in list(server.posts):
            assert auth == "Bearer secret"
            assert body["job"] == "7"
            assert len(body["samples"]) >= 2
            assert body["agent"]["version"] == 1 and body["agent"]["dropped"] == 0
            assert isinstance(body["agent"]["cpu_s"], float) and body["agent"]["cpu_s"] > 0
        assert b"secret" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        _stop(server)
    first_server = server

    # Outage: posting fails, the file keeps getting every sample.
    lines_at_outage = len(read_lines(out))
    wait_for(lambda: len(read_lines(out)) >= lines_at_outage + 6, what="samples during outage")
    assert proc.poll() is None
    written_during_outage = max(s["seq"] for s in read_lines(out))

    # Back up: the buffered samples arrive with the next batch.
    server = _serve(port)
    try:
        wait_for(lambda: any(s["seq"] >= written_during_outage
                             for _, body in server.posts for s in body["samples"]),
                 what="buffered samples after restart")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        _stop(server)
    received = [s["seq"] for srv in (first_server, server)
                for _, body in srv.posts for s in body["samples"]]
    assert sorted(received) == list(range(len(received)))  # nothing lost, nothing twice
    written = [s["seq"] for s in read_lines(out)]
    assert written == list(range(len(written))) and len(written) >= len(received)
    stderr = proc.stderr.read().decode()
    assert stderr.count("POST") == 1, stderr  # the error is reported once


def test_buffer_is_capped_and_drops_the_oldest(tmp_path):
    out = tmp_path / "samples.jsonl"
    reporter = agent.Reporter(out=str(out), url="http://127.0.0.1:9/", job="1", batch=1,
                              max_buffer=5, timeout=2)
    for seq in range(8):
        reporter.add({"t": float(seq), "seq": seq})
    reporter.close()
    assert [s["seq"] for s in reporter.unsent] == [3, 4, 5, 6, 7]
    assert reporter.dropped == 3
    assert [s["seq"] for s in read_lines(out)] == list(range(8))


def test_sigkill_leaves_only_whole_lines(spawn, agents, tmp_path):
    out = tmp_path / "samples.jsonl"
    root = spawn("sleep 60")
    proc = agents("--pid", root.pid, "--interval", 0.05, "--batch", 3, "--out", out)
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 10, what="10 lines")
    proc.kill()
    proc.wait(timeout=10)
    data = out.read_bytes()
    assert data.endswith(b"\n")
    samples = [json.loads(line) for line in data.decode().splitlines()]
    assert [s["seq"] for s in samples] == list(range(len(samples)))


# ------------------------------------------------------- Python 3.6 and GPUs

def test_source_stays_python36_compatible():
    tree = ast.parse(AGENT.read_text(), feature_version=(3, 6))
    for node in ast.walk(tree):
        # f-strings (the 3.8 "=" specifier), annotations (list[int] fails at
        # def time before 3.9) and postponed evaluation are simply not used.
        assert not isinstance(node, (ast.JoinedStr, ast.AnnAssign)), ast.dump(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.returns is None, node.name
            args = node.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs:
                assert arg.annotation is None, (node.name, arg.arg)
            assert not args.posonlyargs, node.name
        if isinstance(node, ast.ImportFrom):
            assert node.module != "__future__"
            assert node.level == 0 and not (node.module or "").startswith("computenet")
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("computenet")


def _old_python():
    for candidate in ["python3.6", *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")))]:
        path = shutil.which(candidate) if "/" not in candidate else candidate
        if path and subprocess.run([path, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"],
                                   capture_output=True).returncode == 0:
            return path
    return None


def test_runs_under_python36(spawn, tmp_path):
    python36 = _old_python()
    if python36 is None:
        pytest.skip("no Python 3.6 interpreter here")
    out = tmp_path / "samples.jsonl"
    root = spawn("sleep 30 & wait")
    wait_for(lambda: tree_size(root.pid) == 2, what="sleep child")
    run = subprocess.run([python36, str(AGENT), "--pid", str(root.pid), "--interval", "0.2",
                          "--max-seconds", "0.6", "--out", str(out)],
                         capture_output=True, timeout=30)
    assert run.returncode == 0 and run.stderr == b"", run.stderr
    samples = read_lines(out)
    assert len(samples) >= 3 and all(s["nproc"] == 2 for s in samples)


def test_gpu_sample_without_nvml_is_empty_and_quick(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails

    def no_library():
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    monkeypatch.setattr(agent, "_CtypesNVML", no_library)
    monkeypatch.setattr(agent, "_nvml", {})
    start = time.monotonic()
    assert agent.gpu_sample() == []
    assert agent.gpu_sample() == []
    assert time.monotonic() - start < 1.0


class _FakeNVML:
    """Just enough of pynvml: three GPUs, counts nvmlInit calls."""

    class NVMLError(Exception):
        pass

    def __init__(self):
        self.inits = 0
        self.fail = False

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetCount(self):
        return 3

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetUUID(self, handle):
        return f"GPU-{handle}aaa-bbb".encode()  # older pynvml returns bytes

    def nvmlDeviceGetName(self, handle):
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle):
        if self.fail:
            raise self.NVMLError("GPU is lost")
        return type("U", (), {"gpu": 10 * handle, "memory": 0})()

    def nvmlDeviceGetMemoryInfo(self, handle):
        return type("M", (), {"used": handle * MB, "total": 80 * 1024 * MB, "free": 0})()


@pytest.mark.parametrize("visible, expected", [
    (None, [0, 1, 2]),
    ("2,0", [2, 0]),
    ("GPU-1aaa", [1]),
    ("GPU-2aaa-bbb,1", [2, 1]),
    ("", []),
    ("1,bogus,2", [1]),
])
def test_gpu_sample_with_pynvml(monkeypatch, visible, expected):
    fake = _FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(agent, "_nvml", {})
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    gpus = agent.gpu_sample()
    assert [g["index"] for g in gpus] == expected
    for gpu in gpus:
        assert gpu == {"index": gpu["index"], "uuid": f"GPU-{gpu['index']}aaa-bbb",
                       "name": "NVIDIA H100 80GB HBM3", "util": 10 * gpu["index"],
                       "mem_used": gpu["index"] * MB, "mem_total": 80 * 1024 * MB}
    assert agent.gpu_sample() == gpus
    assert fake.inits == 1  # NVML is initialised once, not per sample
    fake.fail = True
    assert agent.gpu_sample() == []  # any NVML error: no GPU data for this sample

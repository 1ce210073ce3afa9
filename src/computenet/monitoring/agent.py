#!/usr/bin/env python3
"""ComputeNet per-job sampling agent.

What it is
----------
The platform writes this file into every job's directory and starts it in
the background from the job's batch script, with the compute node's system
``python3``::

    python3 agent.py --pid $$ --interval 10 --out .computenet/samples.jsonl \
        --job 1234 [--url https://.../agent/samples] &

For that reason it is ONE self-contained file, uses only the standard library
and must keep running on Python 3.6 (no walrus, no f-strings, no annotations,
no dataclasses). It never raises into the job: every error is written to
stderr once and sampling continues.

What it measures
----------------
Every ``--interval`` seconds it takes one sample of the job's process tree:
the root pid (the batch shell) and all its descendants, found with one scan
of ``/proc/*/stat`` (parent pids), plus processes that belonged to the tree
before and were orphaned (re-parented to init) and, when the root is a
session leader, every process of its session. The agent itself and anything
it starts are excluded. One sample is::

    {"t": 1718000000.123,   # unix time the sample was taken
     "seq": 0,              # 0, 1, 2, ... per agent run
     "cpu_s": 12.34,        # cumulative CPU seconds (user+system) of the job
     "cores": 0.98,         # cores in use since the previous sample
     "rss": 123456789,      # resident bytes, summed over live processes
     "read": 0,             # cumulative bytes read from storage
     "write": 52428800,     # cumulative bytes written to storage
     "nproc": 2,            # live (non-zombie) processes
     "nthreads": 3,         # their threads
     "gpus": [{"index": 0, "uuid": "GPU-...", "name": "NVIDIA H100",
               "util": 97, "mem_used": ..., "mem_total": ...}]}

``cpu_s``, ``read`` and ``write`` are cumulative and never decrease, so
processes that exit between two samples are not lost: each process counts
its own CPU and I/O plus that of the children it has waited for (the
kernel's ``cutime``/``cstime`` and ``/proc/<pid>/io`` include reaped
children), and when a process disappears without a live ancestor in the tree
to inherit its counters (its parent died too, it was an orphan), its last
seen values are kept in an "exited" total. ``cores`` is ``delta cpu_s /
delta t`` (0.0 on the first sample); the platform divides it by the cores
allocated to get CPU efficiency, the way jobstats and XDMoD SUPReMM do.
``rss`` double-counts pages shared between processes (as ``ps`` does).
``read``/``write`` are the kernel's ``read_bytes``/``write_bytes`` (what
reached the storage layer; page-cache hits and tmpfs do not count); where
the kernel lacks them, ``rchar``/``wchar``. GPU fields come from NVML
(``pynvml`` when importable, else ``libnvidia-ml.so.1`` through ctypes) for
the GPUs in ``CUDA_VISIBLE_DEVICES``; ``util`` is NVML's utilisation over its
own short window, memory is device-wide.

Gaps
----
Samples are taken on a fixed cadence ``t0 + k * interval``; if the node is so
loaded that a tick is missed, the tick is skipped rather than squeezed in.
The platform treats a jump in ``t`` larger than ``2 * interval`` as a gap
(the agent was stopped, the node stalled, samples were lost), never as zero
usage: the cumulative counters of the next sample still tell the total.

Where samples go
----------------
Each sample is appended as one JSON line to ``--out`` (one ``write`` call per
line, so a killed agent never leaves half a line; ``fsync`` every ``--batch``
samples and at exit). Without ``--out`` and ``--url`` lines go to stdout.
With ``--url`` batches are also POSTed as JSON::

    {"job": "1234", "samples": [...],
     "agent": {"cpu_s": 0.42, "version": 1, "dropped": 0}}

with ``Authorization: Bearer $COMPUTENET_AGENT_TOKEN`` (the token is only
read from the environment, never from argv). A failed POST keeps its samples
and retries them with the next batch; at most 1000 unsent samples are kept,
the oldest are dropped and counted in ``dropped``. The file always gets
every sample.

It stops when the root pid is gone (after one last sample), after
``--max-seconds``, or on SIGTERM/SIGINT (one last sample, flush, exit 0).
Slurm kills everything left in the job's cgroup when the batch script ends,
so the batch script should stop the agent itself (``kill -TERM $pid; wait``)
to be sure of the last sample; samples already written are safe either way.
Overhead: one ``/proc`` scan per sample, a few milliseconds of CPU.
"""

import argparse
import json
import os
import resource
import signal
import sys
import time

VERSION = 1
MAX_BUFFER = 1000
POST_TIMEOUT = 5.0
TOKEN_ENV = "COMPUTENET_AGENT_TOKEN"

try:
    CLK_TCK = float(os.sysconf("SC_CLK_TCK"))
except (ValueError, OSError, AttributeError):
    CLK_TCK = 100.0
try:
    PAGE_SIZE = int(os.sysconf("SC_PAGE_SIZE"))
except (ValueError, OSError, AttributeError):
    PAGE_SIZE = resource.getpagesize()

# Positions in /proc/<pid>/stat after the ")" that ends the command name:
# index = (field number in proc(5)) - 3.
_STATE, _PPID, _SESSION = 0, 1, 3
_UTIME, _STIME, _CUTIME, _CSTIME = 11, 12, 13, 14
_NUM_THREADS, _STARTTIME, _RSS = 17, 19, 21

_logged = set()


def _log_once(key, message):
    """Write an error to stderr the first time it happens, never raise."""
    if key in _logged or len(_logged) > 50:
        return
    _logged.add(key)
    try:
        sys.stderr.write("computenet-agent: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


def _read(path, size=4096):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        data = _read("/proc/%d/stat" % pid)
    except (OSError, IOError):
        return None
    end = data.rfind(b")")
    if end < 0:
        return None
    fields = data[end + 2:].split()
    if len(fields) <= _RSS:
        return None
    return fields


def _scan():
    """One pass over /proc: {pid: stat fields} for every process."""
    procs = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return procs
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        fields = _stat_fields(pid)
        if fields is not None:
            procs[pid] = fields
    return procs


def _children_map(procs):
    children = {}
    for pid, fields in procs.items():
        children.setdefault(int(fields[_PPID]), []).append(pid)
    return children


def _walk(children, roots, procs, exclude):
    """Every process reachable from roots, not entering excluded pids."""
    seen = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen or pid in exclude or pid not in procs:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, ()))
    return seen


def descendants(root_pid, exclude=()):
    """The root and every descendant (sorted pids), from one /proc scan.

    Parent pids come from /proc/*/stat (robust where
    /proc/<pid>/task/*/children is missing); processes that vanish during the
    scan are skipped; an excluded pid and its own descendants are left out.
    Returns [] when the root is gone.
    """
    procs = _scan()
    return sorted(_walk(_children_map(procs), [int(root_pid)], procs, set(exclude)))


def _read_io(pid):
    """(read, write) bytes from /proc/<pid>/io: read_bytes/write_bytes, else
    rchar/wchar, else (0, 0) when unreadable."""
    try:
        data = _read("/proc/%d/io" % pid)
    except (OSError, IOError):
        return 0, 0
    values = {}
    for line in data.split(b"\n"):
        key, _, value = line.partition(b":")
        try:
            values[key.strip()] = int(value)
        except ValueError:
            pass
    if b"read_bytes" in values and b"write_bytes" in values:
        return values[b"read_bytes"], values[b"write_bytes"]
    return values.get(b"rchar", 0), values.get(b"wchar", 0)


def _info(pid, fields):
    return {
        "pid": pid,
        "ppid": int(fields[_PPID]),
        "state": fields[_STATE].decode("ascii", "replace"),
        "start": int(fields[_STARTTIME]),
        "cpu_s": (int(fields[_UTIME]) + int(fields[_STIME])) / CLK_TCK,
        "children_cpu_s": (int(fields[_CUTIME]) + int(fields[_CSTIME])) / CLK_TCK,
        "rss": int(fields[_RSS]) * PAGE_SIZE,
        "num_threads": int(fields[_NUM_THREADS]),
    }


def read_proc(pid):
    """One process's counters, or None if it is gone.

    {"pid", "ppid", "state", "start" (clock ticks after boot), "cpu_s"
    (utime+stime, seconds), "children_cpu_s" (cutime+cstime: children it has
    waited for), "rss" (bytes), "num_threads", "read_bytes", "write_bytes"}
    """
    fields = _stat_fields(pid)
    if fields is None:
        return None
    info = _info(pid, fields)
    info["read_bytes"], info["write_bytes"] = _read_io(pid)
    return info


# --------------------------------------------------------------------- GPUs

def _visible_devices(value):
    """CUDA_VISIBLE_DEVICES -> None (all GPUs) or a list of int indices and
    UUID strings. Like CUDA, parsing stops at the first invalid entry."""
    if value is None:
        return None
    selected = []
    for entry in value.split(","):
        entry = entry.strip()
        if entry.isdigit():
            selected.append(int(entry))
        elif entry.startswith("GPU-") or entry.startswith("MIG-"):
            selected.append(entry)
        else:
            break
    return selected


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _PyNVML(object):
    """NVML through the pynvml package."""

    def __init__(self, module):
        self.m = module
        module.nvmlInit()

    def count(self):
        return int(self.m.nvmlDeviceGetCount())

    def handle(self, index):
        return self.m.nvmlDeviceGetHandleByIndex(index)

    def uuid(self, handle):
        return _text(self.m.nvmlDeviceGetUUID(handle))

    def name(self, handle):
        return _text(self.m.nvmlDeviceGetName(handle))

    def util(self, handle):
        return int(self.m.nvmlDeviceGetUtilizationRates(handle).gpu)

    def memory(self, handle):
        info = self.m.nvmlDeviceGetMemoryInfo(handle)
        return int(info.used), int(info.total)


class _CtypesNVML(object):
    """NVML through libnvidia-ml.so.1 directly, for nodes without pynvml."""

    def __init__(self):
        import ctypes

        class Utilization(ctypes.Structure):
            _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]

        class Memory(ctypes.Structure):
            _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                        ("used", ctypes.c_ulonglong)]

        self.c = ctypes
        self.Utilization = Utilization
        self.Memory = Memory
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        init = getattr(self.lib, "nvmlInit_v2", None) or self.lib.nvmlInit
        self._check(init(), "nvmlInit")

    def _check(self, rc, what):
        if rc != 0:
            raise RuntimeError("%s failed: NVML error %d" % (what, rc))

    def _fn(self, name, fallback=None):
        fn = getattr(self.lib, name, None)
        if fn is None and fallback:
            fn = getattr(self.lib, fallback)
        return fn

    def count(self):
        n = self.c.c_uint(0)
        self._check(self._fn("nvmlDeviceGetCount_v2", "nvmlDeviceGetCount")(self.c.byref(n)),
                    "nvmlDeviceGetCount")
        return n.value

    def handle(self, index):
        h = self.c.c_void_p()
        fn = self._fn("nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex")
        self._check(fn(self.c.c_uint(index), self.c.byref(h)), "nvmlDeviceGetHandleByIndex")
        return h

    def _string(self, name, handle):
        buf = self.c.create_string_buffer(96)
        self._check(getattr(self.lib, name)(handle, buf, self.c.c_uint(96)), name)
        return _text(buf.value)

    def uuid(self, handle):
        return self._string("nvmlDeviceGetUUID", handle)

    def name(self, handle):
        return self._string("nvmlDeviceGetName", handle)

    def util(self, handle):
        u = self.Utilization()
        self._check(self.lib.nvmlDeviceGetUtilizationRates(handle, self.c.byref(u)),
                    "nvmlDeviceGetUtilizationRates")
        return int(u.gpu)

    def memory(self, handle):
        m = self.Memory()
        self._check(self.lib.nvmlDeviceGetMemoryInfo(handle, self.c.byref(m)),
                    "nvmlDeviceGetMemoryInfo")
        return int(m.used), int(m.total)


# NVML is initialised once per process: {"backend": ..., "devices": [...]}
# after the first gpu_sample(); backend None means no NVML here.
_nvml = {}


def _nvml_setup():
    backend = None
    try:
        import pynvml
        backend = _PyNVML(pynvml)
    except Exception:
        backend = None
    if backend is None:
        try:
            backend = _CtypesNVML()
        except Exception:
            backend = None
    devices = []
    if backend is not None:
        all_devices = []
        for index in range(backend.count()):
            handle = backend.handle(index)
            all_devices.append((index, backend.uuid(handle), backend.name(handle), handle))
        wanted = _visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
        if wanted is None:
            devices = all_devices
        else:
            for entry in wanted:
                for device in all_devices:
                    if (device[0] == entry if isinstance(entry, int)
                            else device[1].startswith(entry)) and device not in devices:
                        devices.append(device)
                        break
    _nvml["backend"] = backend
    _nvml["devices"] = devices


def gpu_sample():
    """The GPUs this job may use (CUDA_VISIBLE_DEVICES: indices or UUIDs;
    unset: all): [{"index", "uuid", "name", "util" (percent), "mem_used",
    "mem_total" (bytes)}]. [] without NVML or on any NVML error."""
    try:
        if "backend" not in _nvml:
            try:
                _nvml_setup()
            except Exception:
                _nvml["backend"] = None
                _nvml["devices"] = []
                raise
        backend = _nvml["backend"]
        if backend is None:
            return []
        gpus = []
        for index, uuid, name, handle in _nvml["devices"]:
            used, total = backend.memory(handle)
            gpus.append({"index": index, "uuid": uuid, "name": name,
                         "util": backend.util(handle), "mem_used": used, "mem_total": total})
        return gpus
    except Exception as exc:
        _log_once("nvml", "GPU sampling failed: %r" % (exc,))
        return []


# ------------------------------------------------------------------ sampler

class Sampler(object):
    """Samples one job's process tree; see the module docstring."""

    def __init__(self, root_pid, interval=10.0, exclude=None, gpus=True):
        self.root_pid = int(root_pid)
        self.interval = float(interval)
        # The agent runs inside the job (a child of the batch shell): leave
        # it and anything it starts out of the tree.
        self.exclude = set([os.getpid()]) if exclude is None else set(exclude)
        self.gpus = gpus
        self.seq = 0
        self._known = {}            # pid -> [start, ppid, cpu_s, read, write]
        self._exited = [0.0, 0, 0]  # cpu_s, read, write of vanished processes
        self._totals = [0.0, 0, 0]  # last reported, to keep counters monotonic
        self._last = None           # (monotonic time, cpu_s) of the previous sample
        fields = _stat_fields(self.root_pid)
        self.root_start = None if fields is None else fields[_STARTTIME]
        self.root_alive = fields is not None and fields[_STATE] != b"Z"
        # Every process of a session descends from its leader, so when the
        # root leads its session, session members that were orphaned (double
        # fork, nohup) are still the job's.
        self._session = None
        if fields is not None and int(fields[_SESSION]) == self.root_pid:
            self._session = fields[_SESSION]

    def _root_fields(self, procs=None):
        fields = _stat_fields(self.root_pid) if procs is None else procs.get(self.root_pid)
        if fields is None or fields[_STARTTIME] != self.root_start:
            return None
        return fields

    def check_root(self):
        """Cheap liveness check of the root (one stat read); updates root_alive."""
        fields = self._root_fields()
        self.root_alive = fields is not None and fields[_STATE] != b"Z"
        return self.root_alive

    def _reaped_in_tree(self, ppid, old, current):
        """True when a vanished process's counters went to a live ancestor in
        the tree (every parent on the way waited for its child)."""
        steps = 0
        while steps < 64:
            steps += 1
            now = current.get(ppid)
            before = old.get(ppid)
            if now is not None and (before is None or before[0] == now[0]):
                return True
            if before is None:
                return False
            ppid = before[1]
        return False

    def sample(self, now=None):
        mono = time.monotonic() if now is None else float(now)
        t = time.time() if now is None else float(now)
        procs = _scan()
        children = _children_map(procs)
        # The excluded processes and what they started; never the root (when
        # a test process samples its own child, the child is still the job).
        excluded = _walk(children, list(self.exclude), procs, set([self.root_pid]))

        root = self._root_fields(procs)
        self.root_alive = root is not None and root[_STATE] != b"Z"
        roots = []
        if root is not None:
            roots.append(self.root_pid)
        for pid, known in self._known.items():
            fields = procs.get(pid)
            if fields is not None and fields[_STARTTIME] == known[0]:
                roots.append(pid)
        if self._session is not None and (root is not None or self.root_pid not in procs):
            for pid, fields in procs.items():
                if fields[_SESSION] == self._session:
                    roots.append(pid)
        tree = _walk(children, roots, procs, excluded)

        current = {}
        live_cpu, live_read, live_write = 0.0, 0, 0
        rss, nproc, nthreads = 0, 0, 0
        for pid in tree:
            fields = procs[pid]
            cpu = (int(fields[_UTIME]) + int(fields[_STIME])
                   + int(fields[_CUTIME]) + int(fields[_CSTIME])) / CLK_TCK
            read, write = _read_io(pid)
            if fields[_STATE] != b"Z":
                nproc += 1
                nthreads += int(fields[_NUM_THREADS])
                rss += int(fields[_RSS]) * PAGE_SIZE
            current[pid] = [fields[_STARTTIME], int(fields[_PPID]), cpu, read, write]
            live_cpu += cpu
            live_read += read
            live_write += write

        for pid, known in self._known.items():
            again = current.get(pid)
            if again is not None and again[0] == known[0]:
                continue
            if self._reaped_in_tree(known[1], self._known, current):
                continue  # now inside its ancestor's cutime/cstime and io
            self._exited[0] += known[2]
            self._exited[1] += known[3]
            self._exited[2] += known[4]
        self._known = current

        # Counters never go back (a process read just before and its parent
        # just after a reap is counted twice for one sample at most).
        cpu_s = max(self._totals[0], self._exited[0] + live_cpu)
        read = max(self._totals[1], self._exited[1] + live_read)
        write = max(self._totals[2], self._exited[2] + live_write)
        self._totals = [cpu_s, read, write]

        cores = 0.0
        if self._last is not None and mono > self._last[0]:
            cores = (cpu_s - self._last[1]) / (mono - self._last[0])
        self._last = (mono, cpu_s)

        sample = {
            "t": round(t, 3),
            "seq": self.seq,
            "cpu_s": round(cpu_s, 3),
            "cores": round(cores, 3),
            "rss": rss,
            "read": read,
            "write": write,
            "nproc": nproc,
            "nthreads": nthreads,
            "gpus": gpu_sample() if self.gpus else [],
        }
        self.seq += 1
        return sample


# ----------------------------------------------------------------- reporter

def agent_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


class Reporter(object):
    """Appends samples to a JSON Lines file and POSTs batches to a URL."""

    def __init__(self, out=None, url=None, job=None, token=None, batch=6,
                 max_buffer=MAX_BUFFER, timeout=POST_TIMEOUT):
        self.url = url
        self.job = job
        self.token = token
        self.batch = max(1, int(batch))
        self.max_buffer = max(1, int(max_buffer))
        self.timeout = timeout
        self.unsent = []
        self.dropped = 0
        self.posted = 0
        self._since_flush = 0
        self.fd = None
        if out:
            try:
                self.fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                _log_once("open", "cannot open %s: %s" % (out, exc))
        elif not url:
            self.fd = sys.stdout.fileno()
        if url and not (url.startswith("http://") or url.startswith("https://")):
            _log_once("url", "ignoring --url %r: only http(s) is supported" % (url,))
            self.url = None

    def add(self, sample):
        line = (json.dumps(sample, separators=(",", ":")) + "\n").encode("utf-8")
        self._write(line)
        if self.url:
            self.unsent.append(sample)
            if len(self.unsent) > self.max_buffer:
                extra = len(self.unsent) - self.max_buffer
                del self.unsent[:extra]
                self.dropped += extra
        self._since_flush += 1
        if self._since_flush >= self.batch:
            self.flush()

    def _write(self, line):
        if self.fd is None:
            return
        try:
            # One write call per whole line: a killed agent never leaves half
            # a line behind (O_APPEND, well under a page).
            done = os.write(self.fd, line)
            while done < len(line):
                done += os.write(self.fd, line[done:])
        except OSError as exc:
            _log_once("write", "cannot write samples: %s" % (exc,))

    def flush(self):
        self._since_flush = 0
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            except OSError:
                pass  # stdout pipe or a filesystem without fsync
        if self.url and self.unsent:
            self._post()

    def _post(self):
        import urllib.request
        samples = self.unsent
        body = json.dumps({
            "job": self.job,
            "samples": samples,
            "agent": {"cpu_s": agent_cpu_s(), "version": VERSION, "dropped": self.dropped},
        }, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
            try:
                response.read()
            finally:
                response.close()
        except Exception as exc:
            _log_once("post", "POST %s failed (will retry with the next batch): %r"
                      % (self.url, exc))
            return False
        # Samples added while posting (none: single-threaded) stay unsent.
        self.unsent = self.unsent[len(samples):]
        self.posted += len(samples)
        return True

    def close(self):
        self.flush()
        if self.fd is not None and self.fd > 2:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


# --------------------------------------------------------------------- main

def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="agent.py", description="ComputeNet per-job sampling agent")
    parser.add_argument("--pid", type=int, required=True, help="root pid of the job")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--out", help="JSON Lines file the samples are appended to")
    parser.add_argument("--url", help="POST batches of samples here (token: $%s)" % TOKEN_ENV)
    parser.add_argument("--job", default=os.environ.get("SLURM_JOB_ID"), help="job id")
    parser.add_argument("--batch", type=int, default=6, help="samples per fsync / POST")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    return parser.parse_args(argv)


def main(argv=None):
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except Exception as exc:  # never take the job down
        _log_once("main", "agent stopped: %r" % (exc,))
        return 0


def _run(args):
    interval = max(0.05, args.interval)
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, on_signal)
        except (ValueError, OSError):
            pass  # not the main thread
    try:
        os.nice(10)  # the job comes first
    except OSError:
        pass

    sampler = Sampler(args.pid, interval)
    reporter = Reporter(out=args.out, url=args.url, job=args.job,
                        token=os.environ.get(TOKEN_ENV), batch=args.batch)
    if args.url and not reporter.token:
        _log_once("token", "$%s is not set: posting without a token" % TOKEN_ENV)

    start = time.monotonic()
    end = None if args.max_seconds is None else start + max(0.0, args.max_seconds)
    tick = 0
    try:
        while True:
            try:
                reporter.add(sampler.sample())
            except Exception as exc:
                _log_once(("sample", type(exc).__name__), "sampling failed: %r" % (exc,))
            now = time.monotonic()
            if stop or not sampler.root_alive or (end is not None and now >= end):
                break
            # Fixed cadence start + k * interval; a missed tick is skipped.
            tick += 1
            due = start + tick * interval
            if due <= now:
                tick = int((now - start) / interval) + 1
                due = start + tick * interval
            if end is not None:
                due = min(due, end)
            while not stop:
                remaining = due - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(remaining, 1.0))
                try:
                    if not sampler.check_root():
                        break  # take the last sample now
                except Exception as exc:
                    _log_once("check", "root check failed: %r" % (exc,))
    finally:
        try:
            reporter.close()
        except Exception as exc:
            _log_once("close", "final flush failed: %r" % (exc,))
    return 0


if __name__ == "__main__":
    sys.exit(main())

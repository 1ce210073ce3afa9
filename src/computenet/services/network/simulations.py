"""Simulations: what `cnet sim` does, as one function the CLI and the portal both call, and the portal's
background runs.

A portal run is background work in this process: at most ``settings.sim.concurrent`` at a time (a
request while they are busy is refused with a clear message, never queued behind hours of work). Each
run is one JSON file under ``<data dir>/simulations`` (its spec, progress, results): the figures are
derived and reproducible from the trace, not records to reconcile, so they need no table, no migration
and no ledger; a page reads one file whole. A run the server was stopped in the middle of reads as
interrupted. Traces are the files of ``settings.sim.traces_dir`` (default ``<data dir>/traces``) and SWF
logs operators upload (checked and size-limited as the API's uploads are).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ...config import Settings
from ...fsutil import atomic_write_json, read_json_or
from ..errors import Conflict, InvalidRequest, NotFound, TooLarge
from ...messages import msg

# the first four of sim.compare.POLICY_NAMES and owned_first (written out: that module imports numpy)
DEFAULT_POLICIES = "static,round_robin,least_loaded,earliest_start,owned_first"
DEFAULT_CLUSTERS = "own-a:owned:0.5,own-b:owned:0.3,lease-c:leased:0.2"
TRACE_SUFFIXES = (".swf", ".swf.gz", ".csv")
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$")
UPLOAD_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Spec:
    """One simulation, as `cnet sim`'s arguments say it."""

    trace: Path
    clusters: str = DEFAULT_CLUSTERS
    policies: list[str] = field(default_factory=lambda: DEFAULT_POLICIES.split(","))
    jobs: int | None = None
    cores: int | None = None
    gpus: int | None = None
    nodes: Path | None = None
    kill_at_limit: bool = False


@dataclass
class Outcome:
    data: object  # sim.trace.Trace
    network: list  # sim.engine.SimCluster
    left_out: int
    results: list  # (SimResult, Summary) per policy, pooled last
    kill_at_limit: bool

    @property
    def summaries(self) -> list:
        return [s for _, s in self.results]

    def notes(self) -> list[str]:
        data = self.data
        overran = ("killed at their limits" if self.kill_at_limit else "replayed whole") if data.overran else ""
        return [n for n in (
            f"{self.left_out} left out: wider than the largest cluster" if self.left_out else "",
            f"{data.overran} ran past their time limits: {overran}" if data.overran else "",
            f"{data.estimated_limits} without a time limit: run time used" if data.estimated_limits else "") if n]

    def title(self) -> str:
        simulated = self.results[0][1].jobs
        return (f"{self.data.name}: {simulated} jobs simulated on "
                f"{', '.join(f'{c.name} {c.cores}' for c in self.network)}" + "".join(f"; {n}" for n in self.notes()))

    def as_json(self) -> dict:
        """`cnet sim --json`: what the portal keeps of a run too."""
        return {"trace": self.data.name, "jobs": self.results[0][1].jobs, "left_out": self.left_out,
                "overran": self.data.overran, "kill_at_limit": self.kill_at_limit,
                "estimated_limits": self.data.estimated_limits,
                "clusters": [{"name": c.name, "cores": c.cores, "gpus": c.gpus, "ownership": c.ownership}
                             for c in self.network],
                "results": [summary_json(s) for s in self.summaries]}


def summary_json(s) -> dict:
    return {"policy": s.policy, "jobs": s.jobs, "mean_wait_s": round(s.mean_wait_s, 1),
            "p50_wait_s": round(s.p50_wait_s, 1), "p95_wait_s": round(s.p95_wait_s, 1),
            "mean_bounded_slowdown": round(s.mean_bsld, 4),
            "utilization": {k: round(v, 4) for k, v in s.utilization.items()},
            "owned_utilization": round(s.owned_utilization, 4), "revenue": str(s.revenue), "cost": str(s.cost),
            "margin_pct": None if s.margin_pct is None else round(s.margin_pct, 2),
            "jobs_per_cluster": s.jobs_per_cluster}


def check(spec: Spec, max_jobs: int | None = None) -> None:
    """What can be said before reading the trace (so a portal request is refused at once)."""
    from ...sim.compare import POLICY_NAMES, SpecError, make_policy, parse_clusters

    if spec.jobs is not None and spec.jobs < 1:
        raise InvalidRequest(msg("--jobs must be at least 1"))
    if max_jobs is not None and spec.jobs is not None and spec.jobs > max_jobs:
        raise InvalidRequest(msg("--jobs: at most %(most)s here", most=max_jobs))
    if spec.cores is not None and spec.cores < 1:
        raise InvalidRequest(msg("--cores must be at least 1"))
    if spec.gpus is not None and spec.gpus < 0:
        raise InvalidRequest(msg("--gpus cannot be negative"))
    if not spec.policies:
        raise InvalidRequest(msg("--policies: name at least one (%(listed)s, pooled)", listed=", ".join(POLICY_NAMES)))
    try:
        clusters = parse_clusters(spec.clusters, 1000)
        for name in spec.policies:
            if name == "pooled":
                continue
            make_policy(name, clusters)  # the engine's own parser knows the variants (+reroute, +sized600)
    except SpecError as exc:
        raise InvalidRequest(str(exc)) from None


def run(spec: Spec, show_progress: bool = False,
        on_step: Callable[[int, int, str | None], None] | None = None) -> Outcome:
    """Read the trace, size the network, replay each policy and the pooled reference. ``on_step(done,
    total, running)`` is told as each run starts and when all are done. Bad input: InvalidRequest."""
    from ...sim import compare as sim_compare
    from ...sim import trace as sim_trace

    check(spec)
    try:
        if spec.trace.suffix == ".csv":
            data = sim_trace.read_alibaba(spec.trace, limit=spec.jobs)
            total_cores, total_gpus = data.max_cores, 0
            if spec.nodes is not None:
                with open(spec.nodes, newline="") as handle:
                    rows = list(csv.DictReader(handle))
                total_cores = sum(int(r["cpu_milli"]) for r in rows) // 1000
                total_gpus = sum(int(r["gpu"]) for r in rows)
        else:
            data = sim_trace.read_swf(spec.trace, limit=spec.jobs)
            total_cores, total_gpus = data.max_cores, 0
        network = sim_compare.parse_clusters(spec.clusters, spec.cores or total_cores,
                                             spec.gpus if spec.gpus is not None else total_gpus)
        left_out = sim_compare.too_wide(data, network)
        if left_out == len(data.jobs):
            raise sim_compare.SpecError(f"all {left_out} jobs are wider than the largest cluster "
                                        f"({max(c.cores for c in network)} cores): nothing to simulate")
        names = [n for n in spec.policies if n != "pooled"]
        if on_step is None:
            results = sim_compare.compare(data, network, names, show_progress=show_progress,
                                          kill_at_limit=spec.kill_at_limit)
        else:  # one run at a time, so that progress can be told between them
            steps, results = [*names, "pooled"], []
            for done, name in enumerate(steps):
                on_step(done, len(steps), name)
                results += sim_compare.compare(data, network, [] if name == "pooled" else [name],
                                               with_pooled=name == "pooled", show_progress=False,
                                               kill_at_limit=spec.kill_at_limit)
            on_step(len(steps), len(steps), None)
    except KeyError as exc:
        raise InvalidRequest(msg("%(nodes)s: no column %(column)s (not an openb node list)", nodes=spec.nodes, column=str(exc))) from None
    except (sim_trace.TraceError, sim_compare.SpecError, ValueError) as exc:
        raise InvalidRequest(str(exc)) from None
    except OSError as exc:
        raise InvalidRequest(msg("%(where)s: %(problem)s", where=exc.filename or spec.trace, problem=exc.strerror or str(exc))) from None
    return Outcome(data, network, left_out, results, spec.kill_at_limit)


# -- the traces the server can see -------------------------------------------------------------

def traces_dir(settings: Settings) -> Path:
    return Path(settings.sim.traces_dir) if settings.sim.traces_dir else settings.data_dir / "traces"


def runs_dir(settings: Settings) -> Path:
    return settings.data_dir / "simulations"


def uploads_dir(settings: Settings) -> Path:
    return runs_dir(settings) / "uploads"


def traces(settings: Settings) -> list[dict]:
    """{"name", "kind": "shared" | "uploaded", "size"} for each trace file an operator may pick."""
    out = []
    for kind, folder in (("shared", traces_dir(settings)), ("uploaded", uploads_dir(settings))):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name.endswith(TRACE_SUFFIXES) and not path.name.startswith("."):
                out.append({"name": path.name, "kind": kind, "size": path.stat().st_size,
                            "nodes": "node" in path.name.lower() and path.suffix == ".csv"})
    return out


def trace_path(settings: Settings, name: str, kind: str = "shared") -> Path:
    """The file of a listed trace: only a name the listing holds (no path is built from the text)."""
    for t in traces(settings):
        if t["name"] == name and t["kind"] == kind:
            return (uploads_dir(settings) if kind == "uploaded" else traces_dir(settings)) / t["name"]
    raise InvalidRequest(msg("no trace %(name)r here (pick one of the list, or upload an SWF log)", name=name[:200]))


def save_upload(settings: Settings, filename: str, data: bytes) -> str:
    """Keep an uploaded SWF log (plain or gzip) once it reads as one; its name in the list."""
    from ...sim.trace import TraceError, read_swf

    limit = settings.sim.max_upload_mb * 1024 * 1024
    if len(data) > limit:
        raise TooLarge(msg("the trace is %(size)s bytes: at most %(most)s MB", size=len(data), most=settings.sim.max_upload_mb))
    if not data:
        raise InvalidRequest(msg("the uploaded trace is empty"))
    gz = data[:2] == b"\x1f\x8b"
    stem = UPLOAD_NAME.sub("-", Path(filename or "trace").name).strip(".-")[:60] or "trace"
    stem = re.sub(r"(\.swf)?(\.gz)?$", "", stem, flags=re.I) or "trace"
    name = f"{stem}-{hashlib.sha256(data).hexdigest()[:10]}.swf" + (".gz" if gz else "")
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{secrets.token_hex(8)}.{'swf.gz' if gz else 'swf'}"
    temp.write_bytes(data)
    try:
        read_swf(temp, limit=settings.sim.max_jobs)
        os.replace(temp, folder / name)
    except TraceError as exc:
        raise InvalidRequest(msg("%(name)s: not a usable SWF log (%(problem)s)", name=filename[:100],
                                 problem=str(exc).split(": ", 1)[-1])) from None
    except (OSError, EOFError, ValueError) as exc:
        raise InvalidRequest(msg("%(name)s: not a usable SWF log (%(problem)s)", name=filename[:100], problem=str(exc))) from None
    finally:
        temp.unlink(missing_ok=True)
    return name


# -- background runs ---------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Runner:
    """The runs of one data directory: a bounded number at once, each in its own thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = runs_dir(settings)
        self.lock = threading.Lock()
        self.active: dict[str, threading.Thread] = {}

    def start(self, spec: Spec, trace_label: str, actor: str) -> str:
        check(spec, self.settings.sim.max_jobs)
        if spec.jobs is None:
            spec.jobs = self.settings.sim.max_jobs
        with self.lock:
            busy = [i for i, t in self.active.items() if t.is_alive()]
            if len(busy) >= self.settings.sim.concurrent:
                raise Conflict(msg("%(count)s simulation(s) running (%(listed)s): at most %(most)s at a time; "
                                   "start this one when it has finished", count=len(busy), listed=", ".join(busy),
                                   most=self.settings.sim.concurrent))
            run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
            self.folder.mkdir(parents=True, exist_ok=True)
            record = {"id": run_id, "status": "running", "by": actor, "started_at": _now(), "finished_at": None,
                      "pid": os.getpid(), "trace": trace_label,
                      "spec": {"clusters": spec.clusters, "policies": spec.policies, "jobs": spec.jobs,
                               "cores": spec.cores, "gpus": spec.gpus, "kill_at_limit": spec.kill_at_limit,
                               "nodes": spec.nodes.name if spec.nodes else None},
                      "progress": {"done": 0, "total": len([p for p in spec.policies if p != "pooled"]) + 1,
                                   "running": None},
                      "error": None, "title": None, "result": None}
            thread = threading.Thread(target=self._work, args=(record, spec), name=f"sim-{run_id}", daemon=True)
            self.active[run_id] = thread
            self._save(record)
            thread.start()
        return run_id

    def _save(self, record: dict) -> None:
        atomic_write_json(self.folder / f"{record['id']}.json", record)

    def _work(self, record: dict, spec: Spec) -> None:
        def step(done: int, total: int, running: str | None) -> None:
            record["progress"] = {"done": done, "total": total, "running": running}
            self._save(record)
        try:
            outcome = run(spec, on_step=step)
            record.update(status="done", result=outcome.as_json(), title=outcome.title(), notes=outcome.notes())
        except InvalidRequest as exc:
            record.update(status="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001  (a run that breaks says so on its page, the server goes on)
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        record["finished_at"] = _now()
        self._save(record)
        with self.lock:
            self.active.pop(record["id"], None)

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        thread = self.active.get(run_id)
        if thread is not None:
            thread.join(timeout)

    def get(self, run_id: str) -> dict:
        if not RUN_ID.match(run_id or ""):
            raise NotFound(msg("no simulation %(run)r", run=run_id[:40]))
        record = read_json_or(self.folder / f"{run_id}.json")
        if not isinstance(record, dict):
            raise NotFound(msg("no simulation %(run)r", run=run_id))
        return self._live(record)

    def _live(self, record: dict) -> dict:
        # "running" in a file no thread of this server is working on: the server stopped under it
        if record.get("status") == "running" and record["id"] not in self.active:
            record = {**record, "status": "interrupted"}
        return record

    def listing(self, limit: int = 50) -> list[dict]:
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.json"), reverse=True)[:limit]:
            record = read_json_or(path)
            if isinstance(record, dict) and RUN_ID.match(str(record.get("id", ""))):
                out.append(self._live(record))
        return out


_runners: dict[Path, Runner] = {}
_runners_lock = threading.Lock()


def runner(settings: Settings) -> Runner:
    """The runner of this data directory (one per process, however many apps serve it)."""
    key = runs_dir(settings).resolve()
    with _runners_lock:
        if key not in _runners:
            _runners[key] = Runner(settings)
        return _runners[key]

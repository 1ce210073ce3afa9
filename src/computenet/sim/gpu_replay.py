"""GPU replay: pods placed back to back on a node list until the cluster is full.

The Alibaba openb pod list is a snapshot, not an arrival log, so it is replayed as
the FGD paper (Weng et al., USENIX ATC 2023) does: pods arrive one after another,
nobody leaves, and each is placed at once or fails, until the GPU demand that has
arrived reaches ``load`` times the cluster's GPU capacity. What is measured:

- allocation rate: GPU capacity allocated / GPU capacity (in thousandths of a GPU),
  when the first GPU pod fails and at the end (saturation);
- fragmentation rate (FGD's measure): of the unallocated GPU capacity, the share no
  typical pod could use. A node's free GPU capacity counts as a fragment for a pod
  that does not fit the node at all (CPU, memory, GPU count or model); for one that
  fits, the GPUs with less free than it asks per GPU count. Weighted by how often
  each GPU pod shape occurs in the pod list (CPU-only pods are not GPU demand).

A GPU is shared in thousandths (``gpu_milli``); a pod asking for one GPU or more takes
whole free GPUs. Placement policies: ``router`` (the live router's feasibility and
ranking over partitions of like nodes, then Slurm's own choice inside a partition:
the first node in order that fits; ``router_sized`` breaks the router's ties by the
smallest nodes instead of the partition name), ``best_fit`` (the node left with the least free
GPU, then the least free CPU) and ``random`` (any node that fits, seeded).
"""

from __future__ import annotations

import csv
import random as _random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from ..domain.resources import ResourceRequest
from ..routing.model import Constraints, Target
from ..routing.router import Router
from .trace import TraceError

MILLI = 1000
POLICIES = ("router", "router_sized", "best_fit", "random")


@dataclass(frozen=True)
class GpuNode:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str | None  # None: no GPUs


@dataclass(frozen=True)
class Pod:
    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int  # per GPU: below 1000 a share of one GPU, else whole GPUs
    models: frozenset[str] = frozenset()  # allowed GPU models; empty: any

    @property
    def gpu_demand(self) -> int:
        """GPU capacity asked, in thousandths of a GPU."""
        return self.num_gpu * self.gpu_milli

    @property
    def shape(self) -> tuple:
        return (self.cpu_milli, self.memory_mib, self.num_gpu, self.gpu_milli, self.models)


def _int(row: dict, column: str, where: str, low: int = 0) -> int:
    try:
        value = int(row[column])
    except KeyError:
        raise TraceError(f"{where}: no column {column!r}") from None
    except (TypeError, ValueError):
        raise TraceError(f"{where}: {column} {row[column]!r} is not a whole number") from None
    if value < low:
        raise TraceError(f"{where}: {column} {value} is below {low}")
    return value


def read_nodes(path: str | Path) -> list[GpuNode]:
    """An openb node list: sn, cpu_milli, memory_mib, gpu, model."""
    path = Path(path)
    nodes = []
    with open(path, newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            where = f"{path.name} row {i + 2}"
            gpus = _int(row, "gpu", where)
            model = (row.get("model") or "").strip() or None
            if gpus and model is None:
                raise TraceError(f"{where}: {gpus} GPUs of no model")
            nodes.append(GpuNode(row.get("sn") or f"node-{i}", _int(row, "cpu_milli", where),
                                 _int(row, "memory_mib", where), gpus, model if gpus else None))
    if not nodes:
        raise TraceError(f"{path.name}: no nodes")
    if not any(n.gpus for n in nodes):
        raise TraceError(f"{path.name}: no node has a GPU")
    return nodes


def read_pods(path: str | Path, limit: int | None = None) -> list[Pod]:
    """An openb pod list in file order: name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec."""
    path = Path(path)
    pods = []
    with open(path, newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            where = f"{path.name} row {i + 2}"
            num_gpu = _int(row, "num_gpu", where)
            milli = _int(row, "gpu_milli", where) if num_gpu else 0
            if num_gpu and not 0 < milli <= MILLI:
                raise TraceError(f"{where}: gpu_milli {milli} is not within 1..1000")
            if num_gpu > 1 and milli != MILLI:
                raise TraceError(f"{where}: {num_gpu} GPUs each shared at {milli}/1000 (only one GPU can be shared)")
            spec = (row.get("gpu_spec") or "").strip()
            models = frozenset(m for m in spec.split("|") if m) if num_gpu else frozenset()
            pods.append(Pod(row.get("name") or f"pod-{i}", _int(row, "cpu_milli", where),
                            _int(row, "memory_mib", where), num_gpu, milli, models))
            if limit is not None and len(pods) >= limit:
                break
    if not pods:
        raise TraceError(f"{path.name}: no pods")
    return pods


class NodeState:
    __slots__ = ("node", "cpu", "mem", "free")

    def __init__(self, node: GpuNode) -> None:
        self.node = node
        self.cpu, self.mem = node.cpu_milli, node.memory_mib
        self.free = [MILLI] * node.gpus  # free thousandths per GPU

    def fits(self, pod: Pod) -> bool:
        if pod.cpu_milli > self.cpu or pod.memory_mib > self.mem:
            return False
        if not pod.num_gpu:
            return True
        if pod.models and self.node.model not in pod.models:
            return False
        if pod.gpu_milli < MILLI:
            return any(f >= pod.gpu_milli for f in self.free)
        return self.free.count(MILLI) >= pod.num_gpu

    def gpu_choices(self, pod: Pod) -> list[int]:
        """The GPUs that could take the pod (a shared one) or its whole GPUs."""
        want = pod.gpu_milli if pod.gpu_milli < MILLI else MILLI
        return [g for g, f in enumerate(self.free) if f >= want]

    def place(self, pod: Pod, gpus: list[int]) -> None:
        self.cpu -= pod.cpu_milli
        self.mem -= pod.memory_mib
        for g in gpus:
            self.free[g] -= pod.gpu_milli

    @property
    def gpu_free(self) -> int:
        return sum(self.free)


# -- placement policies: each returns (node index, GPU indices) or None --

def _first_gpus(state: NodeState, pod: Pod) -> list[int]:
    return state.gpu_choices(pod)[:pod.num_gpu]


class FirstFit:
    """Slurm's choice within a partition: the first node in order that fits, the first GPUs."""

    def choose(self, pod: Pod, states: list[NodeState], among: list[int] | None = None):
        for i in (range(len(states)) if among is None else among):
            if states[i].fits(pod):
                return i, _first_gpus(states[i], pod)
        return None


class BestFit:
    name = "best_fit"

    def choose(self, pod: Pod, states: list[NodeState]):
        best, best_key = None, None
        for i, s in enumerate(states):
            if s.fits(pod):
                key = (s.gpu_free - pod.gpu_demand, s.cpu - pod.cpu_milli, i)
                if best_key is None or key < best_key:
                    best, best_key = i, key
        if best is None:
            return None
        s = states[best]
        if pod.num_gpu and pod.gpu_milli < MILLI:  # the tightest GPU that takes the share
            return best, [min(s.gpu_choices(pod), key=lambda g: (s.free[g], g))]
        return best, _first_gpus(s, pod)


class RandomFit:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = _random.Random(seed)

    def choose(self, pod: Pod, states: list[NodeState]):
        fitting = [i for i, s in enumerate(states) if s.fits(pod)]
        if not fitting:
            return None
        i = self.rng.choice(fitting)
        choices = states[i].gpu_choices(pod)
        return i, sorted(self.rng.sample(choices, pod.num_gpu)) if pod.num_gpu else []


def _partition_name(node: GpuNode) -> str:
    kind = f"{node.model}x{node.gpus}" if node.gpus else "cpu"
    return f"{kind}-{node.cpu_milli // MILLI}c-{node.memory_mib // 1024}g"


class RouterFit:
    """The live router over partitions of like nodes (same model, GPUs, CPUs, memory),
    as an operator would define them in Slurm; within the partition Slurm's first fit."""

    name = "router"

    def __init__(self, nodes: list[GpuNode], policy: str = "earliest_start", sized: bool = False) -> None:
        self.router = Router(policy)
        self.sized = sized
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(nodes):
            groups.setdefault(_partition_name(n), []).append(i)
        self.members = groups
        self.targets = []
        for name, members in sorted(groups.items()):
            n = nodes[members[0]]
            self.targets.append(Target("openb", name, nodes=len(members), cores_per_node=max(1, n.cpu_milli // MILLI),
                                       mem_per_node_mb=n.memory_mib, gpus_per_node=n.gpus, gpu_type=n.model,
                                       max_time_minutes=60))
        self._requests: dict[tuple, ResourceRequest] = {}
        self.first_fit = FirstFit()

    def _request(self, pod: Pod) -> ResourceRequest:
        req = self._requests.get(pod.shape)
        if req is None:
            # one allowed model is a typed --gres; several are left to the partition filter below
            gpu_type = next(iter(pod.models)) if len(pod.models) == 1 else None
            req = ResourceRequest(cpus_per_task=max(1, -(-pod.cpu_milli // MILLI)), mem_per_node_mb=pod.memory_mib,
                                  gpus_per_node=pod.num_gpu, gpu_type=gpu_type, time_limit_minutes=1)
            self._requests[pod.shape] = req
        return req

    def choose(self, pod: Pod, states: list[NodeState]):
        targets = self.targets
        if len(pod.models) > 1:
            targets = [t for t in targets if t.gpu_type in pod.models]
        found: dict[str, tuple] = {}

        def wait(target: Target, _minutes: int) -> float | None:
            hit = self.first_fit.choose(pod, states, self.members[target.partition])
            if hit is None:
                return None
            found[target.partition] = hit
            return 0.0

        decision = self.router.route(self._request(pod), targets, Constraints(), lambda t, m: Decimal(0), wait)
        chosen = decision.chosen
        if chosen is not None and self.sized:
            # size-aware: of the partitions that start it as soon, the smallest nodes (GPUs, then CPUs, memory)
            ties = [c for c in decision.ranked if c.wait_s == chosen.wait_s]
            chosen = min(ties, key=lambda c: (c.target.gpus_per_node, c.target.cores_per_node,
                                              c.target.mem_per_node_mb, c.target.name))
        return None if chosen is None else found.get(chosen.target.partition)


def make_policy(name: str, nodes: list[GpuNode], seed: int = 0):
    if name in ("router", "router_sized"):
        return RouterFit(nodes, sized=name == "router_sized")
    if name == "best_fit":
        return BestFit()
    if name == "random":
        return RandomFit(seed)
    raise ValueError(f"unknown GPU placement policy {name!r} (use {', '.join(POLICIES)})")


# -- fragmentation (FGD) --

def typical_pods(pods: list[Pod]) -> list[tuple[Pod, float]]:
    """GPU pod shapes with how often each occurs."""
    counts = Counter(p.shape for p in pods if p.num_gpu)
    total = sum(counts.values())
    example = {p.shape: p for p in pods}
    return [(example[shape], n / total) for shape, n in counts.most_common()]


def node_fragment(state: NodeState, typical: list[tuple[Pod, float]]) -> float:
    """FGD's F_n(M): the expected free GPU capacity of the node that a typical pod cannot use."""
    free = state.gpu_free
    if not free:
        return 0.0
    total = 0.0
    for pod, weight in typical:
        if state.fits(pod):
            want = pod.gpu_milli if pod.gpu_milli < MILLI else MILLI
            total += weight * sum(f for f in state.free if f < want)
        else:
            total += weight * free
    return total


def fragmentation(states: list[NodeState], typical: list[tuple[Pod, float]]) -> tuple[float, int]:
    """(fragmented GPU capacity, free GPU capacity), in thousandths of a GPU."""
    seen: dict[tuple, float] = {}
    frag, free = 0.0, 0
    for s in states:
        if not s.free:
            continue
        key = (s.node.model, s.cpu, s.mem, tuple(sorted(s.free)))
        value = seen.get(key)
        if value is None:
            value = seen[key] = node_fragment(s, typical)
        frag += value
        free += s.gpu_free
    return frag, free


# -- the replay --

@dataclass
class Point:
    arrived: float  # GPU demand arrived / capacity
    allocated: float  # GPU capacity allocated / capacity
    fragmentation: float  # fragmented / free GPU capacity


@dataclass
class ReplayResult:
    policy: str
    gpu_capacity: int  # thousandths
    arrived_pods: int = 0
    placed_pods: int = 0
    failed_gpu_pods: int = 0
    failed_cpu_pods: int = 0
    first_failure: Point | None = None  # when the first GPU pod failed
    final: Point | None = None
    cpu_allocated: float = 0.0
    curve: list[Point] = field(default_factory=list)  # as each tenth (default) of the capacity has arrived
    placements: list[tuple[str, str, tuple[int, ...]] | None] = field(default_factory=list)  # pod, node, GPUs


def arrivals(pods: list[Pod], capacity: int, load: float, shuffle_seed: int | None):
    """Pods in file order (or shuffled), over and over, until their GPU demand reaches load x capacity."""
    if not any(p.num_gpu for p in pods):
        raise TraceError("no pod asks for a GPU: nothing to replay")
    order = list(pods)
    rng = _random.Random(shuffle_seed)
    arrived = 0
    while True:
        if shuffle_seed is not None:
            rng.shuffle(order)
        for pod in order:
            if arrived >= load * capacity:
                return
            arrived += pod.gpu_demand
            yield pod, arrived


def replay(nodes: list[GpuNode], pods: list[Pod], policy: str, load: float = 1.0, seed: int = 0,
           shuffle_seed: int | None = None, checkpoints: int = 10, keep_placements: bool = False) -> ReplayResult:
    if load <= 0:
        raise ValueError("load must be above 0")
    states = [NodeState(n) for n in nodes]
    chooser = make_policy(policy, nodes, seed)
    capacity = sum(n.gpus for n in nodes) * MILLI
    cpu_capacity = sum(n.cpu_milli for n in nodes)
    typical = typical_pods(pods)
    result = ReplayResult(policy, capacity)
    allocated, cpu_used, next_mark = 0, 0, 1

    def point(arrived: int) -> Point:
        frag, free = fragmentation(states, typical)
        return Point(arrived / capacity, allocated / capacity, min(1.0, frag / free) if free else 0.0)

    arrived = 0
    for pod, arrived in arrivals(pods, capacity, load, shuffle_seed):
        result.arrived_pods += 1
        hit = chooser.choose(pod, states)
        if hit is None:
            if pod.num_gpu:
                result.failed_gpu_pods += 1
                if result.first_failure is None:
                    result.first_failure = point(arrived - pod.gpu_demand)
            else:
                result.failed_cpu_pods += 1
            if keep_placements:
                result.placements.append(None)
        else:
            i, gpus = hit
            states[i].place(pod, gpus)
            allocated += pod.gpu_demand
            cpu_used += pod.cpu_milli
            result.placed_pods += 1
            if keep_placements:
                result.placements.append((pod.name, nodes[i].name, tuple(gpus)))
        while checkpoints and arrived >= next_mark * capacity / checkpoints:  # every 1/checkpoints of capacity
            result.curve.append(point(arrived))
            next_mark += 1
    result.final = point(arrived)
    result.cpu_allocated = cpu_used / cpu_capacity if cpu_capacity else 0.0
    return result

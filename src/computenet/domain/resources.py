"""What a job asks for: resources plus the sbatch-level options around them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_NODES = 100_000
MAX_CPUS_PER_TASK = 4_096
MAX_TASKS = 10_000_000
MAX_GPUS = 100_000
MAX_TIME_MINUTES = 366 * 24 * 60  # a year: anything above is a typo
MAX_MEM_MB = 64 * 1024 * 1024  # 64 TiB per node

_TIME_RE = re.compile(
    r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"  # d-h[:m[:s]]
    r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$"  # m | m:s | h:m:s
)


class RequestError(ValueError):
    """A resource request or option that cannot be honoured; message names it."""


def parse_time_minutes(text: str) -> int | None:
    """Slurm time limit syntax to whole minutes (rounded up); None = unlimited.

    Accepted as sbatch does: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``,
    ``D-H:M:S``, and ``UNLIMITED``/``infinite``.
    """
    value = text.strip()
    if value.lower() in ("unlimited", "infinite"):
        return None
    m = _TIME_RE.match(value)
    if not m:
        raise RequestError(f"invalid time limit {text!r} (use M, M:S, H:M:S, D-H, D-H:M or D-H:M:S)")
    if m.group("days") is not None:
        seconds = (
            int(m.group("days")) * 86400
            + int(m.group("dh")) * 3600
            + int(m.group("dm") or 0) * 60
            + int(m.group("ds") or 0)
        )
    elif m.group("c") is not None:
        seconds = int(m.group("a")) * 3600 + int(m.group("b")) * 60 + int(m.group("c"))
    elif m.group("b") is not None:
        seconds = int(m.group("a")) * 60 + int(m.group("b"))
    else:
        seconds = int(m.group("a")) * 60
    minutes = -(-seconds // 60)
    if minutes <= 0:
        raise RequestError(f"time limit {text!r} must be positive")
    if minutes > MAX_TIME_MINUTES:
        raise RequestError(f"time limit {text!r} is longer than a year")
    return minutes


def format_time_minutes(minutes: int) -> str:
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours:02d}:{mins:02d}:00"


_MEM_RE = re.compile(r"^(\d+)([KMGT]?)B?$", re.IGNORECASE)
_MEM_FACTOR = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "": 1}


def parse_memory_mb(text: str) -> int:
    """sbatch memory syntax (default unit MB; K/M/G/T suffixes) to MB, rounded up."""
    m = _MEM_RE.match(text.strip())
    if not m:
        raise RequestError(f"invalid memory size {text!r} (use a number with an optional K, M, G or T suffix)")
    mb = int(m.group(1)) * _MEM_FACTOR[m.group(2).upper()]
    value = int(-(-mb // 1))
    if value > MAX_MEM_MB:
        raise RequestError(f"memory size {text!r} is larger than any node")
    return value


_GPU_RE = re.compile(r"^(?:(?P<type>[A-Za-z0-9_.-]+):)?(?P<count>\d+)$")


def parse_gpu_spec(text: str, option: str) -> tuple[str | None, int]:
    """``[type:]count`` as --gpus/--gpus-per-node take it."""
    m = _GPU_RE.match(text.strip())
    if not m:
        raise RequestError(f"invalid {option} value {text!r} (use [type:]count)")
    return m.group("type"), int(m.group("count"))


def parse_gres(text: str) -> tuple[str | None, int]:
    """``--gres`` list; only gpu gres are modelled (``gpu``, ``gpu:2``, ``gpu:a100:2``)."""
    gpu_type: str | None = None
    count = 0
    for item in text.split(","):
        parts = item.strip().split(":")
        if not parts[0]:
            raise RequestError(f"invalid --gres value {text!r}")
        if parts[0] != "gpu":
            raise RequestError(f"--gres {parts[0]!r} is not offered (only gpu gres are)")
        if len(parts) == 1:
            n = 1
        elif len(parts) == 2:
            if parts[1].isdigit():
                n = int(parts[1])
            else:
                gpu_type, n = parts[1], 1
        elif len(parts) == 3 and parts[2].isdigit():
            gpu_type, n = parts[1], int(parts[2])
        else:
            raise RequestError(f"invalid --gres value {text!r} (use gpu[:type][:count])")
        count += n
    return gpu_type, count


class ResourceRequest(BaseModel):
    """Resources for one job (one array task), defaults filled in.

    GPUs can be asked per node (``--gres``, ``--gpus-per-node``) or for the
    whole job (``--gpus``); exactly one form is kept.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: int = Field(1, ge=1, le=MAX_NODES)
    ntasks: int | None = Field(None, ge=1, le=MAX_TASKS)
    ntasks_per_node: int | None = Field(None, ge=1, le=MAX_CPUS_PER_TASK)
    cpus_per_task: int = Field(1, ge=1, le=MAX_CPUS_PER_TASK)
    mem_per_node_mb: int | None = Field(None, ge=0, le=MAX_MEM_MB)
    mem_per_cpu_mb: int | None = Field(None, ge=1, le=MAX_MEM_MB)
    gpus_per_node: int = Field(0, ge=0, le=MAX_GPUS)
    gpus_total: int = Field(0, ge=0, le=MAX_GPUS)
    gpu_type: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    time_limit_minutes: int | None = Field(None, ge=1, le=MAX_TIME_MINUTES)
    partition: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    account: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    qos: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    constraint: str | None = Field(None, pattern=r"^[A-Za-z0-9_.&|\[\]*:,()-]{1,256}$")
    exclusive: bool = False
    # GPU-bound shapes (sbatch gets them as written, in the passthrough options;
    # they are modelled here so that quotes, holds and feasibility see them)
    gpus_per_task: int = Field(0, ge=0, le=MAX_GPUS)
    cpus_per_gpu: int | None = Field(None, ge=1, le=MAX_CPUS_PER_TASK)
    mem_per_gpu_mb: int | None = Field(None, ge=1, le=MAX_MEM_MB)
    # -N min-max, or -n without -N: Slurm may use up to this many nodes (None: exactly ``nodes``)
    nodes_max: int | None = Field(None, ge=1, le=MAX_TASKS)
    time_unlimited: bool = False  # -t UNLIMITED: the partition's maximum

    @model_validator(mode="after")
    def _consistent(self) -> "ResourceRequest":
        if self.mem_per_node_mb is not None and self.mem_per_cpu_mb is not None:
            raise ValueError("--mem and --mem-per-cpu are mutually exclusive")
        if self.gpus_per_node and self.gpus_total:
            raise ValueError("give GPUs either per node (--gres/--gpus-per-node) or per job (--gpus), not both")
        if self.ntasks is not None and self.ntasks_per_node is not None:
            if self.ntasks > self.nodes * self.ntasks_per_node:
                raise ValueError("--ntasks is more than --nodes x --ntasks-per-node")
        if self.gpus_total and self.gpus_total < self.nodes:
            raise ValueError("--gpus must be at least one per node")
        # as sbatch itself refuses them (Slurm 22.05)
        if self.gpus_per_task and self.ntasks is None and self.ntasks_per_node is None and not self.gpus_total:
            raise ValueError("--gpus-per-task needs --ntasks (-n) or --gpus")
        if self.mem_per_gpu_mb is not None and (self.mem_per_node_mb is not None or self.mem_per_cpu_mb is not None):
            raise ValueError("--mem, --mem-per-cpu and --mem-per-gpu are mutually exclusive")
        if self.mem_per_gpu_mb is not None and not self.total_gpus:
            raise ValueError("--mem-per-gpu needs GPUs (--gpus, --gpus-per-node, --gpus-per-task or --gres)")
        return self

    @property
    def tasks(self) -> int:
        if self.ntasks is not None:
            return self.ntasks
        if self.ntasks_per_node is not None:
            return self.nodes * self.ntasks_per_node
        if self.gpus_per_task and self.gpus_total:  # sbatch: --gpus=8 --gpus-per-task=2 is 4 tasks
            return max(self.nodes, -(-self.gpus_total // self.gpus_per_task))
        return self.nodes

    @property
    def total_gpus(self) -> int:
        """GPUs Slurm allocates to one job (array task): the largest of the forms given."""
        return max(self.gpus_total, self.gpus_per_node * self.nodes, self.gpus_per_task * self.tasks)

    @property
    def total_cores(self) -> int:
        """Cores Slurm allocates: --cpus-per-gpu replaces --cpus-per-task, but a task gets one at least."""
        if self.cpus_per_gpu and self.total_gpus:
            return max(self.tasks, self.total_gpus * self.cpus_per_gpu)
        return self.tasks * self.cpus_per_task

    def max_gpus_per_node(self) -> int:
        per_node_tasks = self.ntasks_per_node or -(-self.tasks // self.nodes)
        return max(self.gpus_per_node, -(-self.gpus_total // self.nodes), per_node_tasks * self.gpus_per_task)

    def max_cores_per_node(self) -> int:
        per_node_tasks = self.ntasks_per_node or -(-self.tasks // self.nodes)
        if self.cpus_per_gpu and self.total_gpus:
            return max(per_node_tasks, self.max_gpus_per_node() * self.cpus_per_gpu)
        return per_node_tasks * self.cpus_per_task

    def mem_per_node_needed_mb(self, default_mem_per_cpu_mb: int = 0) -> int:
        if self.mem_per_node_mb is not None:
            return self.mem_per_node_mb
        if self.mem_per_gpu_mb is not None:
            return self.mem_per_gpu_mb * self.max_gpus_per_node()
        per_cpu = self.mem_per_cpu_mb if self.mem_per_cpu_mb is not None else default_mem_per_cpu_mb
        return per_cpu * self.max_cores_per_node()


def placed(res: ResourceRequest, cores_per_node: int, gpus_per_node: int = 0) -> ResourceRequest:
    """``res`` with the node count Slurm would use on nodes of this size: a job that may span
    nodes (``nodes_max``) gets as few as its cores need, never more than it allows."""
    if not res.nodes_max or cores_per_node <= 0:
        return res
    tasks = res.tasks
    per_task = max(1, res.total_cores // max(1, tasks))
    tasks_per_node = max(1, cores_per_node // per_task)
    need = max(res.nodes, -(-tasks // tasks_per_node))
    if gpus_per_node > 0 and res.total_gpus:
        need = max(need, -(-res.total_gpus // gpus_per_node))
    return res.model_copy(update={"nodes": min(res.nodes_max, need), "nodes_max": None})


@dataclass(frozen=True)
class Allocation:
    """What Slurm allocates to one job (one array task) on a partition's nodes."""

    nodes: int
    cores: int
    gpus: int
    mem_mb: int


def allocation(res: ResourceRequest, *, cores_per_node: int, mem_per_node_mb: int, gpus_per_node: int,
               default_mem_per_cpu_mb: int = 0) -> Allocation:
    """The allocation of ``res`` on nodes of this size, as Slurm makes it.

    ``--exclusive`` takes whole nodes: all their cores, memory and GPUs, on as
    many nodes as the job's cores and GPUs need (never fewer than -N).
    """
    res = placed(res, cores_per_node, gpus_per_node)
    cores, gpus = res.total_cores, res.total_gpus
    mem = res.mem_per_node_needed_mb(default_mem_per_cpu_mb)
    if res.mem_per_node_mb == 0:  # sbatch --mem=0: all the memory of each node
        mem = mem_per_node_mb
    if not res.exclusive:
        return Allocation(res.nodes, cores, gpus, mem * res.nodes)
    nodes = res.nodes
    if cores_per_node > 0:
        nodes = max(nodes, -(-cores // cores_per_node))
    if gpus_per_node > 0:
        nodes = max(nodes, -(-gpus // gpus_per_node))
    return Allocation(nodes, max(cores, nodes * cores_per_node), max(gpus, nodes * gpus_per_node),
                      max(mem, mem_per_node_mb) * nodes)


MAX_ARRAY_INDEX = 4_000_000  # Slurm's MaxArraySize cannot exceed 4000001
_ARRAY_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


def array_task_count(text: str | None) -> int:
    """How many jobs ``--array`` makes (1 without one). Each task is billed as a job;
    the ``%N`` limit only caps how many run at once."""
    if not text:
        return 1
    indexes, _, _limit = text.partition("%")
    ranges = []
    for item in indexes.split(","):
        m = _ARRAY_ITEM.match(item)
        if not m:
            raise RequestError(f"invalid --array item {item!r} (use N, N-M or N-M:S, separated by commas)")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) is not None else start
        step = int(m.group(3)) if m.group(3) is not None else 1
        if end < start:
            raise RequestError(f"--array range {item!r} ends before it starts")
        if step < 1:
            raise RequestError(f"--array range {item!r} needs a step of at least 1")
        if end > MAX_ARRAY_INDEX:
            raise RequestError(f"--array index {end} is above the largest Slurm allows ({MAX_ARRAY_INDEX})")
        ranges.append((start, end, step))
    # indexes given twice are one task (Slurm keeps a bitmap); 4 MB at most
    seen = bytearray(max(end for _, end, _ in ranges) + 1)
    for start, end, step in ranges:
        seen[start:end + 1:step] = b"\x01" * len(range(start, end + 1, step))
    return seen.count(1)


class JobOptions(BaseModel):
    """sbatch options that are not resources. Paths stay as the user wrote them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_name: str | None = Field(None, max_length=200)
    output: str | None = Field(None, max_length=1024)
    error: str | None = Field(None, max_length=1024)
    workdir: str | None = Field(None, max_length=1024)
    array: str | None = Field(None, pattern=r"^[0-9]+(-[0-9]+(:[0-9]+)?)?(,[0-9]+(-[0-9]+(:[0-9]+)?)?)*(%[0-9]+)?$")
    dependency: str | None = Field(None, pattern=r"^[a-z_]+(:[0-9_+]+)+([,?][a-z_]+(:[0-9_+]+)+)*$|^singleton$")
    cluster: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @model_validator(mode="after")
    def _array_size(self) -> "JobOptions":
        array_task_count(self.array)  # nonsense ranges are refused here, not by sbatch
        return self

    @property
    def array_tasks(self) -> int:
        return array_task_count(self.array)

    # options we do not model but hand to sbatch unchanged (already validated)
    passthrough: tuple[str, ...] = ()
    # long names of every option the job used (script and command line): the router rules out
    # cluster kinds that cannot honour one (sbatch_options)
    used: tuple[str, ...] = ()
    # the command-line options sbatch gets as written (it reads the script's own lines itself)
    flags: tuple[str, ...] = ()
    parsable: bool = False
    wait: bool = False
    test_only: bool = False


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resources: ResourceRequest = ResourceRequest()
    options: JobOptions = JobOptions()


MemoryKind = Literal["node", "cpu"]

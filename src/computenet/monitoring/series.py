"""A job's sampled time series, as the node agent records it: parsing,
validation, gap detection, and the totals the efficiency layer needs.

Pure code: no database, no files, no clock. One sample a line of JSON::

    {"t": 1700000000.0, "seq": 7, "cpu_s": 812.4, "cores": 3.9, "rss": 2147483648,
     "read": 1048576, "write": 0, "nproc": 5, "nthreads": 12,
     "gpus": [{"index": 0, "uuid": "GPU-...", "name": "NVIDIA A100-SXM4-80GB",
               "util": 97, "mem_used": 40000000000, "mem_total": 85899345920}]}

How time is counted (after Princeton jobstats / XDMoD SUPReMM):

* A *pair* is two consecutive samples. A pair whose samples are more than
  ``GAP_FACTOR`` x the sampling interval apart is a *gap* (agent killed,
  network down, node rebooted). A gap is unknown time, never zeros: it is
  left out of every mean and of :meth:`JobSeries.covered_seconds`.
* Gauges that describe the time since the previous sample (``cores``, GPU
  ``util``) are attributed to the pair that ends at the sample, weighted by
  the pair's length. The first sample's ``cores`` (0.0: nothing to compare
  with) and the first sample after a gap (measured over the gap, or 0.0 from
  a restarted agent) therefore never count.
* Cumulative counters (``cpu_s``, ``read``, ``write``) are known across a gap:
  the CPU a job used while the agent was away shows up in the next sample, so
  the totals count it. Only the *rate* over the gap is unknown.
* A counter that goes down (a process exited and took its counters with it,
  an agent that sums ``/proc`` restarted) is a reset: the negative step
  counts as nothing, and counting resumes from the new value. At worst one
  interval's increase is lost; nothing is ever counted twice or negative.
* The first sample's cumulative values count in full: they are what the job
  had used before the agent first looked (seff's TotalCPU does the same).
* Peaks (``rss``, GPU memory) are maxima over every sample, gaps or not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

GAP_FACTOR = 2.0  # a pair more than GAP_FACTOR x interval apart is a gap


def _field(d: Mapping[str, object], name: str, where: str) -> object:
    if name not in d:
        raise ValueError(f"{where}: field {name!r} is missing")
    return d[name]


def _number(d: Mapping[str, object], name: str, where: str, *, minimum: float | None = 0.0) -> float:
    value = _field(d, name, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: field {name!r} must be a number, not {type(value).__name__} {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{where}: field {name!r} must be finite, not {value!r}")
    if minimum is not None and result < minimum:
        raise ValueError(f"{where}: field {name!r} must be >= {minimum:g}, not {value!r}")
    return result


def _integer(d: Mapping[str, object], name: str, where: str) -> int:
    """A non-negative integer; a float with no fraction (2.0) is taken, 2.5 is not."""
    value = _field(d, name, where)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: field {name!r} must be an integer, not {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{where}: field {name!r} must be >= 0, not {value!r}")
    return value


def _text(d: Mapping[str, object], name: str, where: str) -> str:
    value = _field(d, name, where)
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {name!r} must be a string, not {type(value).__name__} {value!r}")
    return value


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one sample. ``util`` is nvidia-smi's percent (0-100) of time a
    kernel ran; a float because downsampled series hold means."""

    index: int
    uuid: str
    name: str
    util: float
    mem_used: int
    mem_total: int

    @property
    def key(self) -> str:
        """Identity across samples: the UUID, or the index when the agent had none."""
        return self.uuid or f"index:{self.index}"

    @classmethod
    def from_json(cls, d: object, where: str = "gpu") -> GpuSample:
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: must be an object, not {type(d).__name__}")
        util = _number(d, "util", where)
        if util > 100:
            raise ValueError(f"{where}: field 'util' is a percent (0-100), not {d['util']!r}")
        return cls(
            index=_integer(d, "index", where),
            uuid=_text(d, "uuid", where),
            name=_text(d, "name", where),
            util=util,
            mem_used=_integer(d, "mem_used", where),
            mem_total=_integer(d, "mem_total", where),
        )


@dataclass(frozen=True)
class Sample:
    """One agent sample; field meanings are the wire format's (see the module doc)."""

    t: float
    seq: int
    cpu_s: float
    cores: float
    rss: int
    read: int
    write: int
    nproc: int
    nthreads: int
    gpus: tuple[GpuSample, ...] = ()

    @classmethod
    def from_json(cls, d: object) -> Sample:
        """Validate one decoded JSON object; ValueError names the bad field.

        ``gpus`` may be missing (a CPU-only node); every other field is required.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"sample must be a JSON object, not {type(d).__name__}")
        where = f"sample seq={d.get('seq')!r}" if "seq" in d else "sample"
        raw_gpus = d.get("gpus", [])
        if not isinstance(raw_gpus, list):
            raise ValueError(f"{where}: field 'gpus' must be a list, not {type(raw_gpus).__name__}")
        return cls(
            t=_number(d, "t", where, minimum=None),
            seq=_integer(d, "seq", where),
            cpu_s=_number(d, "cpu_s", where),
            cores=_number(d, "cores", where),
            rss=_integer(d, "rss", where),
            read=_integer(d, "read", where),
            write=_integer(d, "write", where),
            nproc=_integer(d, "nproc", where),
            nthreads=_integer(d, "nthreads", where),
            gpus=tuple(GpuSample.from_json(g, f"{where} gpus[{i}]") for i, g in enumerate(raw_gpus)),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "t": self.t, "seq": self.seq, "cpu_s": self.cpu_s, "cores": self.cores, "rss": self.rss,
            "read": self.read, "write": self.write, "nproc": self.nproc, "nthreads": self.nthreads,
            "gpus": [{"index": g.index, "uuid": g.uuid, "name": g.name, "util": g.util,
                      "mem_used": g.mem_used, "mem_total": g.mem_total} for g in self.gpus],
        }


@dataclass(frozen=True)
class GpuStats:
    """One GPU over a job: mean utilisation (0..1) over covered time, peak memory."""

    key: str
    index: int
    name: str
    mean_util: float | None
    peak_mem_used: int
    mem_total: int


def _monotonic(values: list[float]) -> list[float]:
    """Cumulative counter readings with resets removed: the first value, then
    only the increases. ``_monotonic(v)[-1]`` is the counter's total."""
    if not values:
        return []
    out = [max(values[0], 0.0)]
    for prev, cur in zip(values, values[1:]):
        out.append(out[-1] + max(cur - prev, 0.0))
    return out


@dataclass(frozen=True)
class JobSeries:
    """A job's samples, sorted by time, duplicates dropped.

    ``interval_s`` is the agent's sampling interval. ``known_gaps`` are gaps
    known from a finer series (see :func:`downsample`): a pair that contains
    one is a gap whatever its spacing.

    A duplicate is a sample with the same ``seq`` *and* ``t`` as an earlier
    one (the agent re-sent a batch). The same ``seq`` at another time is kept:
    a restarted agent numbers from 0 again.
    """

    samples: tuple[Sample, ...]
    interval_s: float
    known_gaps: tuple[tuple[float, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.interval_s, bool) or not isinstance(self.interval_s, (int, float)) \
                or not math.isfinite(self.interval_s) or self.interval_s <= 0:
            raise ValueError(f"interval_s must be a positive number of seconds, not {self.interval_s!r}")
        seen: set[tuple[int, float]] = set()
        unique: list[Sample] = []
        for s in sorted(self.samples, key=lambda s: (s.t, s.seq)):
            if (s.seq, s.t) in seen:
                continue
            seen.add((s.seq, s.t))
            unique.append(s)
        object.__setattr__(self, "samples", tuple(unique))
        object.__setattr__(self, "interval_s", float(self.interval_s))
        object.__setattr__(self, "known_gaps", tuple(sorted((float(a), float(b)) for a, b in self.known_gaps)))

    @classmethod
    def from_json_lines(cls, lines: Iterable[str] | str, interval_s: float) -> JobSeries:
        """Parse JSON Lines (a string or an iterable of lines; blank lines skipped)."""
        if isinstance(lines, str):
            lines = lines.splitlines()
        samples = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                samples.append(Sample.from_json(json.loads(line)))
            except json.JSONDecodeError as e:
                raise ValueError(f"line {number}: not JSON ({e.msg})") from None
            except ValueError as e:
                raise ValueError(f"line {number}: {e}") from None
        return cls(tuple(samples), interval_s)

    # -- time ---------------------------------------------------------------

    def _is_gap(self, a: Sample, b: Sample) -> bool:
        if b.t - a.t > GAP_FACTOR * self.interval_s:
            return True
        return any(a.t <= start and end <= b.t for start, end in self.known_gaps)

    def pairs(self) -> list[tuple[Sample, Sample, bool]]:
        """Consecutive samples as (previous, next, is_gap)."""
        s = self.samples
        return [(a, b, self._is_gap(a, b)) for a, b in zip(s, s[1:])]

    def gaps(self) -> list[tuple[float, float]]:
        """(start, end) of each stretch with no samples: the pair's two times."""
        return [(a.t, b.t) for a, b, gap in self.pairs() if gap]

    def span_seconds(self) -> float:
        """First to last sample."""
        return self.samples[-1].t - self.samples[0].t if self.samples else 0.0

    def covered_seconds(self) -> float:
        """Time spanned minus gaps."""
        return sum(b.t - a.t for a, b, gap in self.pairs() if not gap)

    # -- CPU ----------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """CPU seconds the job used up to the last sample, gaps included (the
        counter is cumulative), resets not counted negative."""
        cum = _monotonic([s.cpu_s for s in self.samples])
        return cum[-1] if cum else 0.0

    def mean_cores(self) -> float | None:
        """Mean cores in use over covered time; None with no covered time."""
        weighted = total = 0.0
        for a, b, gap in self.pairs():
            if not gap:
                weighted += b.cores * (b.t - a.t)
                total += b.t - a.t
        return weighted / total if total > 0 else None

    def fraction_cores_below(self, threshold: float) -> float | None:
        """Share of covered time with fewer than ``threshold`` cores in use."""
        below = total = 0.0
        for a, b, gap in self.pairs():
            if not gap:
                total += b.t - a.t
                if b.cores < threshold:
                    below += b.t - a.t
        return below / total if total > 0 else None

    # -- memory and I/O -----------------------------------------------------

    def peak_rss(self) -> int:
        return max((s.rss for s in self.samples), default=0)

    def read_bytes(self) -> int:
        cum = _monotonic([float(s.read) for s in self.samples])
        return int(cum[-1]) if cum else 0

    def write_bytes(self) -> int:
        cum = _monotonic([float(s.write) for s in self.samples])
        return int(cum[-1]) if cum else 0

    def io_bytes(self) -> int:
        """Bytes read plus bytes written over the job."""
        return self.read_bytes() + self.write_bytes()

    # -- GPUs ---------------------------------------------------------------

    def gpu_stats(self) -> tuple[GpuStats, ...]:
        """Per GPU (by UUID), sorted by index: mean util (0..1) over the covered
        pairs whose closing sample reports the GPU (a plain mean of its samples
        when no pair is covered), peak memory used, card memory."""
        last: dict[str, GpuSample] = {}
        peak: dict[str, int] = {}
        total_mem: dict[str, int] = {}
        plain: dict[str, list[float]] = {}
        weighted: dict[str, float] = {}
        weight: dict[str, float] = {}
        for s in self.samples:
            for g in s.gpus:
                last[g.key] = g
                peak[g.key] = max(peak.get(g.key, 0), g.mem_used)
                total_mem[g.key] = max(total_mem.get(g.key, 0), g.mem_total)
                plain.setdefault(g.key, []).append(g.util)
        for a, b, gap in self.pairs():
            if gap:
                continue
            for g in b.gpus:
                weighted[g.key] = weighted.get(g.key, 0.0) + g.util * (b.t - a.t)
                weight[g.key] = weight.get(g.key, 0.0) + (b.t - a.t)
        stats = []
        for key, g in last.items():
            if weight.get(key, 0.0) > 0:
                mean = weighted[key] / weight[key] / 100.0
            else:
                mean = sum(plain[key]) / len(plain[key]) / 100.0
            stats.append(GpuStats(key, g.index, g.name, mean, peak[key], total_mem[key]))
        return tuple(sorted(stats, key=lambda x: (x.index, x.key)))

    def gpu_mean_util(self) -> dict[str, float]:
        """GPU key -> mean utilisation 0..1 over covered time."""
        return {g.key: g.mean_util for g in self.gpu_stats() if g.mean_util is not None}

    def peak_gpu_memory(self) -> dict[str, int]:
        """GPU key -> peak memory used, bytes."""
        return {g.key: g.peak_mem_used for g in self.gpu_stats()}

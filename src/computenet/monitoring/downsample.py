"""A coarser series for old jobs (services/monitoring/sample_retention.py) and for charts of long jobs:
the same totals, peaks, means and gaps with far fewer samples. Pure code."""

from __future__ import annotations

import math
from dataclasses import replace

from .series import GpuSample, JobSeries, Sample, _monotonic


def _weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total > 0 else None


def downsample(series: JobSeries, bucket_s: float) -> JobSeries:
    """A coarser series for old jobs, one sample per ``bucket_s`` (aligned on
    the first sample), with the same totals, peaks, means and gaps.

    Each bucket's sample has the time and ``seq`` of its last sample; the
    cumulative counters of that sample with resets removed (so totals are
    exact even across a reset); ``rss``, ``nproc``, ``nthreads`` and GPU
    memory at their maximum; ``cores`` and GPU ``util`` as the time-weighted
    mean of the covered pairs they stand for. A bucket is split where a gap
    falls inside it, and the first sample of the series and the first after
    each gap are kept as they are, so the span and every gap keep their
    exact ends; the result lists them in ``known_gaps``
    (a gap shorter than the new interval would otherwise vanish). An empty
    bucket stays empty: nothing is interpolated.

    ``bucket_s`` must be at least twice the series' interval (with that, two
    neighbouring buckets are never far enough apart to look like a new gap).
    """
    if not isinstance(bucket_s, (int, float)) or isinstance(bucket_s, bool) or bucket_s < 2 * series.interval_s:
        raise ValueError(f"bucket_s must be at least twice the interval ({2 * series.interval_s:g} s), not {bucket_s!r}")
    samples = series.samples
    if not samples:
        return JobSeries((), float(bucket_s))
    cpu = _monotonic([s.cpu_s for s in samples])
    read = _monotonic([float(s.read) for s in samples])
    write = _monotonic([float(s.write) for s in samples])
    t0 = samples[0].t
    gap_before = [False] + [gap for _, _, gap in series.pairs()]

    # Parts: runs of consecutive samples in one bucket with no gap inside.
    parts: list[list[int]] = []
    for i, s in enumerate(samples):
        bucket = math.floor((s.t - t0) / bucket_s)
        if parts and not gap_before[i] and math.floor((samples[parts[-1][-1]].t - t0) / bucket_s) == bucket:
            parts[-1].append(i)
        else:
            parts.append([i])

    def rebased(i: int) -> Sample:
        return replace(samples[i], cpu_s=cpu[i], read=int(read[i]), write=int(write[i]))

    out: list[Sample] = []
    for part in parts:
        first = part[0]
        if gap_before[first] or first == 0:
            if len(part) > 1:
                out.append(rebased(first))  # the series' start or a gap's far end, exactly
            members = part[1:]  # the pairs the last sample will stand for
        else:
            members = part  # the pair from the previous bucket's last sample counts too
        if not members:
            out.append(rebased(first))
            continue
        lasti = part[-1]
        span = [(samples[i].cores, samples[i].t - samples[i - 1].t) for i in members]
        cores = _weighted_mean(span)
        gpus: dict[str, list[GpuSample]] = {}
        util_pairs: dict[str, list[tuple[float, float]]] = {}
        for i in part:
            for g in samples[i].gpus:
                gpus.setdefault(g.key, []).append(g)
        for i in members:
            for g in samples[i].gpus:
                util_pairs.setdefault(g.key, []).append((g.util, samples[i].t - samples[i - 1].t))
        merged = []
        for key, seen in gpus.items():
            util = _weighted_mean(util_pairs.get(key, []))
            if util is None:
                util = sum(g.util for g in seen) / len(seen)
            merged.append(GpuSample(index=seen[-1].index, uuid=seen[-1].uuid, name=seen[-1].name, util=util,
                                    mem_used=max(g.mem_used for g in seen), mem_total=max(g.mem_total for g in seen)))
        out.append(Sample(
            t=samples[lasti].t, seq=samples[lasti].seq, cpu_s=cpu[lasti],
            cores=cores if cores is not None else samples[lasti].cores,
            rss=max(samples[i].rss for i in part), read=int(read[lasti]), write=int(write[lasti]),
            nproc=max(samples[i].nproc for i in part), nthreads=max(samples[i].nthreads for i in part),
            gpus=tuple(sorted(merged, key=lambda g: (g.index, g.key))),
        ))
    return JobSeries(tuple(out), float(bucket_s), known_gaps=tuple(series.gaps()))

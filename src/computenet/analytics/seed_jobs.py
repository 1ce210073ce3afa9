"""Jobs of a synthetic operator year, vectorised: sizes, owners, and when they ran.

Pure numpy, no I/O. Sizes are heavy-tailed (seed_calibration says where the
shapes come from); owners are chosen so that each owner's total meets its
target share at any scale (see ``allocate``); times follow the segment's
seasonality.
"""

from __future__ import annotations

import heapq
from functools import lru_cache
from datetime import date, datetime, timezone

import numpy as np

from . import seed_calibration as cal

DAY = 86_400
CHINA_OFFSET_S = 8 * 3600  # office hours are Beijing time; times are stored in UTC
EXACT_ITEMS = 4_000  # the largest items are placed one by one (see allocate)


def cpu_shapes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cores, elapsed seconds) of ``n`` CPU jobs."""
    buckets = np.asarray(cal.CPU_SIZE_BUCKETS) / sum(cal.CPU_SIZE_BUCKETS)
    cores = cal.CPU_CORES_PER_TRACE_PROC * 2 ** rng.choice(len(buckets), size=n, p=buckets)
    return cores.astype(np.int64), runtimes(rng, n, cal.CPU_RUNTIME_MU, cal.CPU_RUNTIME_SIGMA)


def gpu_shapes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cards, elapsed seconds) of ``n`` GPU jobs."""
    p = np.asarray(cal.GPU_SIZE_P) / sum(cal.GPU_SIZE_P)
    cards = np.asarray(cal.GPU_SIZES, dtype=np.int64)[rng.choice(len(p), size=n, p=p)]
    return cards, runtimes(rng, n, cal.GPU_RUNTIME_MU, cal.GPU_RUNTIME_SIGMA)


def runtimes(rng: np.random.Generator, n: int, mu: float, sigma: float) -> np.ndarray:
    seconds = np.exp(rng.normal(mu, sigma, size=n))
    return np.clip(seconds, cal.MIN_RUNTIME_S, cal.MAX_RUNTIME_S).astype(np.int64)


@lru_cache(maxsize=None)
def mean_units(kind: str) -> float:
    """Expected core-seconds (cpu) or card-seconds (gpu) of one job, from a fixed large sample."""
    rng = np.random.default_rng(12345)
    size, seconds = (cpu_shapes if kind == "cpu" else gpu_shapes)(rng, 400_000)
    return float((size * seconds).mean())


def allocate(sizes: np.ndarray, shares, rng: np.random.Generator, exact: int = EXACT_ITEMS) -> np.ndarray:
    """The owner (index into ``shares``) of each item, so that owners' totals meet their shares.

    The largest ``exact`` items go one by one to the owner furthest below its
    target (a heap); the rest, in random order, are cut along their running
    total at the owners' remaining targets. Each owner then misses its target
    by at most one of the remaining items, which are small: shares hold at any scale.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    shares = np.asarray(shares, dtype=np.float64)
    owner = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) == 0 or shares.sum() <= 0:
        return owner
    deficit = shares / shares.sum() * sizes.sum()
    order = np.argsort(-sizes, kind="stable")
    heap = [(-d, i) for i, d in enumerate(deficit)]
    heapq.heapify(heap)
    for item in order[:exact]:
        _, i = heapq.heappop(heap)
        owner[item] = i
        deficit[i] -= sizes[item]
        heapq.heappush(heap, (-deficit[i], i))
    rest = order[exact:]
    if len(rest):
        rest = rng.permutation(rest)
        remaining = np.maximum(deficit, 0)
        if remaining.sum() <= 0:
            remaining = shares.copy()
        bounds = np.cumsum(remaining / remaining.sum() * sizes[rest].sum())
        middle = np.cumsum(sizes[rest]) - sizes[rest] / 2
        owner[rest] = np.minimum(np.searchsorted(bounds, middle, side="right"), len(shares) - 1)
    return owner


def year_bounds(year: int) -> tuple[int, int]:
    """The year in UTC, as epoch seconds [start, end)."""
    start = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp()
    return int(start), int(end)


def day_weights(year: int, segment: str) -> np.ndarray:
    """How busy each day of the year is for a segment (relative)."""
    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    index = np.arange(days)
    weights = 1 + cal.GROWTH_WITHIN_YEAR * (index / (days - 1) - 0.5)
    weekday = (date(year, 1, 1).weekday() + index) % 7
    weights = weights * np.where(weekday >= 5, cal.WEEKEND_FACTOR, 1.0)
    festival = (cal.SPRING_FESTIVAL[year] - date(year, 1, 1)).days
    weights[max(festival - 7, 0):festival + 11] *= cal.SPRING_FESTIVAL_FACTOR
    national = (date(year, 10, 1) - date(year, 1, 1)).days
    weights[national:national + 7] *= cal.NATIONAL_DAY_FACTOR
    if segment == "university":  # winter vacation around the festival, summer vacation
        weights[max(festival - 21, 0):festival + 21] *= cal.UNIVERSITY_VACATION_FACTOR
        summer = (date(year, 7, 15) - date(year, 1, 1)).days
        weights[summer:summer + 48] *= cal.UNIVERSITY_VACATION_FACTOR
    return weights


def submit_times(rng: np.random.Generator, year: int, segment_of_job: np.ndarray) -> np.ndarray:
    """Epoch seconds (UTC) at which each job was submitted, by its segment's seasonality."""
    start, _ = year_bounds(year)
    out = np.empty(len(segment_of_job), dtype=np.int64)
    hourly = np.asarray(cal.HOURLY, dtype=np.float64) / sum(cal.HOURLY)
    for s, segment in enumerate(cal.SEGMENTS):
        mine = np.flatnonzero(segment_of_job == s)
        weights = day_weights(year, segment)
        days = rng.choice(len(weights), size=len(mine), p=weights / weights.sum())
        local_hour = rng.choice(24, size=len(mine), p=hourly)
        second = (local_hour * 3600 - CHINA_OFFSET_S) % DAY + rng.integers(0, 3600, size=len(mine))
        out[mine] = start + days * DAY + np.minimum(second, DAY - 1)
    return out


END_SLACK_S = 2 * DAY  # room left at the year's end for the queue a late job meets


def run_times(rng: np.random.Generator, year: int, submit: np.ndarray, elapsed: np.ndarray):
    """(submit, settle delay): a job that could not end and be settled within the year (with some
    room to queue) was submitted at another time of the year where it can, drawn evenly.
    Moved to just before the end instead, the last week would carry every job that ran into
    the next year: more than the nodes have. When a job starts is the placement's."""
    settle_delay = rng.integers(60, 900, size=len(submit))
    start_of_year, end_of_year = year_bounds(year)
    latest = np.maximum(end_of_year - 1 - elapsed - settle_delay - END_SLACK_S, start_of_year)
    late = submit > latest
    redrawn = start_of_year + (rng.random(int(late.sum())) * (latest[late] - start_of_year)).astype(np.int64)
    submit = submit.copy()
    submit[late] = redrawn
    return submit, settle_delay


def states(rng: np.random.Generator, n: int) -> np.ndarray:
    names = np.asarray([name for name, _ in cal.STATES])
    p = np.asarray([share for _, share in cal.STATES])
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def time_limits(rng: np.random.Generator, elapsed: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Requested minutes: users ask for 1.2-5 x what they use, within the 7-day limit; TIMEOUT hit it."""
    factor = rng.uniform(1.2, 5.0, size=len(elapsed))
    minutes = np.ceil(elapsed * factor / 60).astype(np.int64)
    minutes = np.clip(minutes, np.ceil(elapsed / 60).astype(np.int64), cal.MAX_RUNTIME_S // 60)
    timeout = state == "TIMEOUT"
    minutes[timeout] = np.ceil(elapsed[timeout] / 60).astype(np.int64)
    return np.maximum(minutes, 1)

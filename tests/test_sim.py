"""The simulator: exact EASY and FCFS start times on a hand-computed trace, agreement of a
pooled run with a single cluster, conservation of work across policies, the real traces."""

from decimal import Decimal
from pathlib import Path

import pytest

from computenet.sim.engine import Rerouting, SimCluster, simulate
from computenet.sim.policies import LeastLoaded, RoundRobin, RouterPolicy, Static, pooled
from computenet.sim.report import plot, summarize
from computenet.sim.trace import Trace, TraceError, TraceJob, read_alibaba, read_swf

TRACES = Path(__file__).parents[2] / "shared" / "traces"
FIXTURES = Path(__file__).parent / "fixtures" / "traces"


def _hand_trace():
    # one 10-core cluster; (id, submit, run = estimate, cores)
    jobs = [TraceJob(1, 0, 100, 6, 100), TraceJob(2, 1, 50, 8, 50), TraceJob(3, 2, 200, 4, 200),
            TraceJob(4, 3, 50, 2, 50), TraceJob(5, 4, 500, 2, 500)]
    return Trace("hand", jobs, 10)


def _starts(result):
    return {r.job.id: r.start for r in result.results}


def test_easy_on_a_hand_computed_trace():
    # 1 runs 0-100 on 6 cores. 2 (8 cores) waits for it: shadow 100, 2 cores spare.
    # 3 (4 cores, 200 s) would delay 2: waits. 4 (2 cores, ends 53 < 100): backfilled at 3.
    # 5 (2 cores, 500 s) fits the 2 spare cores: backfilled at 4. 2 starts at 100, 3 at 150.
    result = simulate(_hand_trace(), [SimCluster("one", 10)], RoundRobin())
    assert _starts(result) == {1: 0, 2: 100, 3: 150, 4: 3, 5: 4}


def test_fcfs_on_the_same_trace():
    result = simulate(_hand_trace(), [SimCluster("one", 10, backfill=False)], RoundRobin())
    assert _starts(result) == {1: 0, 2: 100, 3: 150, 4: 150, 5: 150}


def test_estimates_plan_and_real_runtimes_end():
    # 1 asks for 100 s but ends at 20: 2 starts at 20, not at 100
    jobs = [TraceJob(1, 0, 20, 10, 100), TraceJob(2, 1, 10, 10, 10)]
    assert _starts(simulate(Trace("t", jobs, 10), [SimCluster("one", 10)], RoundRobin())) == {1: 0, 2: 20}


def test_swf_reader_and_its_refusals(tmp_path):
    sample = read_swf(FIXTURES / "sdsc-sp2-first-500.swf")
    assert len(sample.jobs) + sample.skipped == 500 and sample.max_cores == 128
    assert sample.jobs[0].submit == 0 and all(j.estimate >= 1 for j in sample.jobs)
    bad = tmp_path / "bad.swf"
    bad.write_text("1 2 3\n")
    with pytest.raises(TraceError, match="3 fields, SWF has 18"):
        read_swf(bad)
    empty = tmp_path / "empty.swf"
    empty.write_text("; nothing\n")
    with pytest.raises(TraceError, match="no usable jobs"):
        read_swf(empty)


def _three(total: int):
    # 50 / 30 / 20 % of the traced machine: owned, owned, leased
    return [SimCluster("own-a", total // 2, ownership="owned", price_core_hour=Decimal("0.10"),
                       cost_core_hour=Decimal("0.04")),
            SimCluster("own-b", total * 3 // 10, ownership="owned", price_core_hour=Decimal("0.10"),
                       cost_core_hour=Decimal("0.04")),
            SimCluster("lease-c", total - total // 2 - total * 3 // 10, ownership="leased",
                       price_core_hour=Decimal("0.12"), cost_core_hour=Decimal("0.08"))]


def test_pooled_equals_one_cluster_and_work_is_conserved_across_policies(tmp_path):
    trace = read_swf(FIXTURES / "sdsc-sp2-first-500.swf")
    clusters = _three(trace.max_cores)
    one = simulate(trace, [SimCluster("sdsc", trace.max_cores)], RoundRobin())
    pool = simulate(trace, pooled(clusters), RouterPolicy("earliest_start"))
    assert _starts(one) == _starts(pool)  # one cluster: every policy is the same EASY
    runs = {name: simulate(trace, clusters, policy) for name, policy in (
        ("static", Static([0.5, 0.3, 0.2])), ("round_robin", RoundRobin()), ("least_loaded", LeastLoaded()),
        ("earliest_start", RouterPolicy("earliest_start")),
        ("owned_first", RouterPolicy("owned_first", {"max_wait_s": 1800})))}
    rerouting = Rerouting(every_s=300, margin_s=300, window=32)
    runs["rerouted"] = simulate(trace, clusters, RouterPolicy("earliest_start"), rerouting=rerouting)
    assert rerouting.moves > 0 and len(rerouting.moved) == rerouting.moves  # each job moves at most once
    work = {name: sum(r.busy_core_seconds) for name, r in runs.items()}
    expected = sum(int(j.cores * j.run) for j in trace.jobs if j.cores <= max(c.cores for c in clusters))
    assert set(work.values()) == {expected}, work
    summaries = {name: summarize(r) for name, r in runs.items()}
    pooled_bsld = summarize(pool).mean_bsld
    assert summaries["earliest_start"].mean_bsld < summaries["static"].mean_bsld
    assert pooled_bsld <= summaries["earliest_start"].mean_bsld * 1.5
    owned_first = summaries["owned_first"]
    assert owned_first.jobs_per_cluster["lease-c"] < summaries["round_robin"].jobs_per_cluster["lease-c"]
    assert owned_first.revenue > 0 and owned_first.cost > 0
    paths = plot(list(runs.values()), tmp_path, "sdsc")
    assert all(p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_the_shared_traces_read():
    if not TRACES.exists():
        pytest.skip("../shared/traces is not here")
    hpc2n = read_swf(TRACES / "HPC2N-2002-2.2-cln.swf.gz", limit=2000)
    assert len(hpc2n.jobs) == 2000 and hpc2n.max_cores == 240
    ali = read_alibaba(TRACES / "alibaba-gpu-v2023-openb_pod_list_default.csv")
    assert len(ali.jobs) + ali.skipped == 8152 and len(ali.jobs) == 7255  # the pods that were scheduled
    assert sum(1 for j in ali.jobs if j.gpus) > 5000 and ali.estimated_limits == len(ali.jobs)

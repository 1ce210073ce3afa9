"""Size-aware placement (issue 16, routing quality): earliest-start that sends a job to the
smallest cluster among those starting it as soon (or within a slack), keeping the large
cluster's room for the jobs only it can take."""

from __future__ import annotations

import pytest

from computenet.sim.compare import SpecError, compare, make_policy
from computenet.sim.engine import SimCluster, simulate
from computenet.sim.policies import RouterPolicy
from computenet.sim.trace import Trace, TraceJob

NETWORK = [SimCluster("big", 10), SimCluster("small", 4)]


def _starts(result):
    return {r.job.id: (result.clusters[r.cluster].name, r.start) for r in result.results}


def _trace():
    # 1: 2 cores for 100 s at t=0 (both clusters start it at once); 2: 10 cores at t=1 (only big fits)
    return Trace("hand", [TraceJob(1, 0, 100, 2, 100), TraceJob(2, 1, 50, 10, 50)], 10)


def test_earliest_start_breaks_the_tie_by_name_and_the_wide_job_waits():
    assert _starts(simulate(_trace(), NETWORK, RouterPolicy("earliest_start"))) == {
        1: ("big", 0), 2: ("big", 100)}


def test_sized_sends_the_narrow_job_to_the_small_cluster_and_the_wide_one_starts_at_once():
    assert _starts(simulate(_trace(), NETWORK, RouterPolicy("earliest_start", sized_slack_s=0))) == {
        1: ("small", 0), 2: ("big", 1)}


def test_the_slack_trades_a_later_start_for_the_smaller_cluster():
    # small is busy until 30 with job 1; job 2 (2 cores) would start at once on big, at 30 on small
    jobs = [TraceJob(1, 0, 30, 4, 30), TraceJob(2, 5, 10, 2, 10)]
    trace = Trace("slack", jobs, 10)
    exact = _starts(simulate(trace, NETWORK, RouterPolicy("earliest_start", sized_slack_s=0)))
    loose = _starts(simulate(trace, NETWORK, RouterPolicy("earliest_start", sized_slack_s=60)))
    assert exact[2] == ("big", 5) and loose[2] == ("small", 30)


def test_policy_names():
    assert make_policy("earliest_start+sized", NETWORK).sized_slack_s == 0
    assert make_policy("earliest_start+sized600+reroute", NETWORK).sized_slack_s == 600
    for bad, message in [("cheapest+sized", "goes with earliest_start"), ("earliest_start+sizedx", "seconds"),
                         ("earliest_start+sized-5", "negative")]:
        with pytest.raises(SpecError, match=message):
            make_policy(bad, NETWORK)
    names = [s.policy for _, s in compare(_trace(), NETWORK, ["earliest_start+sized"], show_progress=False)]
    assert names == ["earliest_start+sized", "pooled"]

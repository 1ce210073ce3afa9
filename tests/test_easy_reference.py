"""Issue 16: the EASY engine against hand-computed starts (its two mechanisms: jobs that
run past their limits, several jobs ending at the reservation instant) and, job by job,
against the independent reference in easy_reference.py on random and real traces."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from computenet.clusters.base import QueueEntry
from computenet.domain.states import JobState
from computenet.routing.estimate import History, predict_wait
from computenet.routing.model import Target
from computenet.routing.easy import Need, Pool, Running, Waiting, predict_starts
from computenet.sim.engine import SimCluster, simulate
from computenet.sim.policies import RoundRobin
from computenet.sim.trace import Trace, TraceJob, read_swf

from easy_reference import easy_starts

TRACES = Path(__file__).parents[2] / "shared" / "traces"
SMALL = Target("small", "batch", nodes=1, cores_per_node=10, mem_per_node_mb=64000)
SWF_TRACES = sorted(TRACES.glob("*.swf*")) if TRACES.exists() else []


def _engine_starts(jobs, cores, backfill=True, kill_at_limit=False):
    result = simulate(Trace("t", jobs, cores), [SimCluster("one", cores, backfill=backfill)], RoundRobin(),
                      kill_at_limit=kill_at_limit)
    return {r.job.id: r.start for r in result.results}


def _reference_starts(jobs, cores, backfill=True, kill_at_limit=False):
    return easy_starts([(j.id, j.submit, j.run, j.estimate, j.cores) for j in jobs], cores, backfill,
                       kill_at_limit)


# -- mechanism 1: a job that runs past its requested time --

OVERRUN = [TraceJob(1, 0, 1000, 8, 100),  # A: asks 100 s, runs 1,000 s
           TraceJob(2, 200, 100, 10, 200),  # B: the whole machine
           TraceJob(3, 210, 50, 2, 60)]  # C: 2 cores, done by 270


def test_an_overrunning_job_is_replayed_whole_and_the_head_reserved_at_its_real_end():
    # A's limit becomes 1,000 s: B is reserved t=1000 with nothing spare; C ends at 270 <= 1000,
    # so it backfills at once on the 2 idle cores. (The old engine planned A as ending "now"
    # at every pass and started C at 1,100.)
    assert _engine_starts(OVERRUN, 10) == {1: 0, 2: 1000, 3: 210}


def test_kill_at_the_limit_ends_the_overrunning_job_there():
    # A ends at 100 (Slurm's kill); B starts on arrival at 200 and holds all 10 cores until 300.
    assert _engine_starts(OVERRUN, 10, kill_at_limit=True) == {1: 0, 2: 200, 3: 300}


# -- mechanism 2: several jobs ending at the reservation instant --

TIED = [TraceJob(1, 0, 100, 5, 100), TraceJob(2, 0, 100, 4, 100),  # A, B: both end at 100
        TraceJob(3, 1, 100, 6, 100),  # C, the head: reserved at 100, when 10 cores are free
        TraceJob(4, 2, 1000, 1, 1000)]  # D: fits the 4 spare at 100, so it backfills now


def test_every_job_ending_at_the_reservation_frees_its_cores_then():
    # (The old engine stopped counting at A, found nothing spare, and started D at 100.)
    assert _engine_starts(TIED, 10) == {1: 0, 2: 0, 3: 100, 4: 2}


def test_the_live_prediction_counts_every_end_at_the_reservation():
    running = [Running(Need(5), planned_end=100, expected_end=100), Running(Need(4), planned_end=100,
                                                                             expected_end=100)]
    queue = [Waiting("C", Need(6), 100), Waiting("D", Need(1), 1000)]
    assert predict_starts(0, Pool(10), running, queue) == {"C": 100, "D": 0}


def _overdue_queue(elapsed_s):
    # 8 of 10 cores held by a job with a 100 s limit, run for ``elapsed_s``; the whole machine waits
    return [QueueEntry("1", "batch", JobState.RUNNING, 8, 1, 0, 100, elapsed_s, 0),
            QueueEntry("2", "batch", JobState.PENDING, 10, 1, 0, 200, 0, 10)]


def test_a_running_job_past_its_limit_is_expected_to_run_on_as_long_again():
    # 900 s past its limit: expected (and planned) to end 900 s from now, not "now". The head
    # is reserved at 900, so a 2-core job of 60 s starts at once (the old plan put it after
    # the head, at 200); a whole-machine job waits for the head too: 900 + 200.
    queue = _overdue_queue(1000)
    assert predict_wait(SMALL, queue, 2, 0, 60) == 0
    assert predict_wait(SMALL, queue, 10, 0, 60) == 1100


def test_a_running_job_just_past_its_expected_end_runs_on_at_least_a_minute():
    # 10 s past its limit: it is expected to end in a minute (the least), the head then
    queue = _overdue_queue(110)
    assert predict_wait(SMALL, queue, 2, 0, 60) == 0
    assert predict_wait(SMALL, queue, 2, 0, 61) == 260  # would delay the head: after it
    assert predict_wait(SMALL, queue, 10, 0, 60) == 260


def test_a_running_job_past_its_expected_run_time_runs_on_as_long_again_within_its_limit():
    # history: jobs run half their limits. This one (limit 1000, expected 500) has run 700:
    # 200 s overdue, so it is expected to end in 200 s (the old rule said within a minute);
    # the head (10 cores, expected 100 s) runs 200-300, then a whole-machine job.
    queue = [QueueEntry("1", "batch", JobState.RUNNING, 8, 1, 0, 1000, 700, 0),
             QueueEntry("2", "batch", JobState.PENDING, 10, 1, 0, 200, 0, 10)]
    assert predict_wait(SMALL, queue, 10, 0, 60, History(runtime_ratio=0.5)) == 300


def test_the_reference_gives_the_hand_computed_starts_too():
    assert _reference_starts(OVERRUN, 10) == {1: 0, 2: 1000, 3: 210}
    assert _reference_starts(OVERRUN, 10, kill_at_limit=True) == {1: 0, 2: 200, 3: 300}
    assert _reference_starts(TIED, 10) == {1: 0, 2: 0, 3: 100, 4: 2}


# -- job by job against the reference --

job_shape = st.tuples(st.integers(0, 40),  # submit gap: many ties at 0
                      st.sampled_from([1, 5, 10, 30, 60, 100]),  # run: many equal ends
                      st.sampled_from([1, 5, 10, 30, 60, 100, 200]),  # asked: often below the run
                      st.integers(1, 16))


def _trace(shapes):
    jobs, t = [], 0
    for i, (gap, run, asked, cores) in enumerate(shapes):
        t += gap if gap > 20 else 0  # about half the jobs arrive with the one before
        jobs.append(TraceJob(i, float(t), float(run), cores, float(asked)))
    return jobs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=st.lists(job_shape, min_size=1, max_size=40), cores=st.integers(8, 16), backfill=st.booleans(),
       kill=st.booleans())
def test_the_engine_starts_every_job_when_the_reference_does(shapes, cores, backfill, kill):
    jobs = _trace(shapes)
    assert _engine_starts(jobs, cores, backfill, kill) == _reference_starts(jobs, cores, backfill, kill)


@pytest.mark.skipif(not SWF_TRACES, reason="../shared/traces is not here")
@pytest.mark.parametrize("path", SWF_TRACES, ids=lambda p: p.name.split(".swf")[0])
def test_the_engine_agrees_with_the_reference_on_the_shared_traces(path):
    trace = read_swf(path, limit=10_000)
    engine = _engine_starts(trace.jobs, trace.max_cores)
    reference = _reference_starts(trace.jobs, trace.max_cores)
    differ = [i for i in reference if engine.get(i) != reference[i]]
    assert len(engine) == len(reference) and not differ, \
        f"{len(differ)} of {len(reference)} jobs start elsewhere, first {differ[:5]}"


# -- the routed simulator keeps each cluster's plan until that cluster changes --

SLICE = Path(__file__).parent / "fixtures" / "traces" / "sdsc-sp2-first-500.swf"


class _NeverKept(dict):
    def get(self, *_):  # a plan made afresh at every arrival, as before plans were kept
        return None


@pytest.mark.parametrize("policy", ["earliest_start", "owned_first", "earliest_start+reroute"])
def test_kept_plans_route_every_job_as_fresh_plans_do(policy):
    from computenet.sim.compare import make_policy, parse_clusters
    from computenet.sim.engine import Rerouting

    trace = read_swf(SLICE)
    network = parse_clusters("own-a:owned:0.5,own-b:owned:0.3,lease-c:leased:0.2", 128)
    trace = Trace(trace.name, [j for j in trace.jobs if j.cores <= 64], 128)
    runs = []
    for fresh in (True, False):
        chooser = make_policy(policy, network)
        if fresh:
            chooser._plans = _NeverKept()
        rerouting = Rerouting(every_s=300, margin_s=300, window=32) if policy.endswith("+reroute") else None
        result = simulate(trace, network, chooser, rerouting=rerouting)
        runs.append({r.job.id: (r.cluster, r.start) for r in result.results})
    assert runs[0] == runs[1] and len(runs[0]) == len(trace.jobs)


def test_a_kept_plan_asked_later_answers_as_a_plan_made_then():
    # made at 0: 8 of 10 cores busy until 100, the whole machine waits (100-300). Asked at 50, a
    # 2-core job of 60 s would end at 110, after the reservation: it waits for the head, as a
    # plan made at 50 says (it would have started at 0, had it come then)
    from computenet.routing.easy import QueuePlan

    head = [Waiting("B", Need(10), 200)]
    kept = QueuePlan(0, Pool(10), [Running(Need(8), planned_end=100, expected_end=100)], head)
    then = QueuePlan(0, Pool(10), [Running(Need(8), planned_end=50, expected_end=50)], head)
    assert kept.start(Need(2), 60, at=50) == then.start(Need(2), 60) + 50 == 300
    assert kept.start(Need(2), 60) == 0

"""The router's pure parts: the queue as squeue prints it (golden), wait prediction
on it, feasibility with reasons, and each policy's ranking and explanation."""

from decimal import Decimal

import pytest

from computenet.clusters.slurm import commands, parsers
from computenet.domain.resources import ResourceRequest
from computenet.domain.states import JobState
from computenet.routing import feasibility
from computenet.routing.estimate import History, predict_wait
from computenet.routing.model import Candidate, Constraints, Target
from computenet.routing.policies import RANKERS
from computenet.routing.router import Router

from test_slurm_parsers import fixture

D = Decimal
ALPHA_CPU = Target("alpha", "cpu", nodes=2, cores_per_node=32, mem_per_node_mb=64000, max_time_minutes=2880,
                   is_default=True, node_names=frozenset({"alpha-n1", "alpha-n2"}), nested_partitions=frozenset({"debug"}))
ALPHA_DEBUG = Target("alpha", "debug", nodes=1, cores_per_node=32, mem_per_node_mb=64000, max_time_minutes=30,
                     node_names=frozenset({"alpha-n1"}))
BETA_CPU = Target("beta", "cpu", nodes=1, cores_per_node=16, mem_per_node_mb=64000, is_default=True,
                  node_names=frozenset({"beta-c1"}))
BETA_GPU = Target("beta", "gpu", nodes=2, cores_per_node=32, mem_per_node_mb=256000, gpus_per_node=4,
                  gpu_type="a100", node_names=frozenset({"beta-g1", "beta-g2"}))


def test_queue_argv_and_parse_of_real_squeue():
    beta = fixture("squeue_queue_beta")
    assert commands.squeue_queue_argv() == beta["argv"]
    entries = {e.native_id: e for e in parsers.parse_queue(beta["stdout"])}
    assert len(entries) == 7 and {"19_0", "19_1", "19_2"} <= set(entries)  # array tasks, one row each
    gpu_running = entries["15"]
    assert (gpu_running.state, gpu_running.cpus, gpu_running.gpus, gpu_running.time_limit_s) == (
        JobState.RUNNING, 4, 2, 600)
    assert gpu_running.node_names == ("beta-g1",) and gpu_running.elapsed_s == 1
    assert (entries["18"].nodes, entries["18"].gpus, entries["18"].reason) == (2, 8, "Resources")  # per node x 2
    assert entries["19_0"].time_limit_s == 86400 and entries["17"].time_limit_s == 3600
    alpha = {e.native_id: e for e in parsers.parse_queue(fixture("squeue_queue_alpha")["stdout"])}
    assert alpha["31"].node_names == ("alpha-n1",) and alpha["32"].reason == "JobHeldUser"
    assert alpha["30"].cpus == 64 and alpha["30"].state == JobState.PENDING


def test_hostlists_and_durations():
    assert parsers.expand_hostlist("n[1-3,7],gpu[08-09]") == ("n1", "n2", "n3", "n7", "gpu08", "gpu09")
    assert parsers.expand_hostlist("(null)") == ()
    assert [parsers.parse_duration(t) for t in ("0:05", "10:00", "1:00:00", "1-02:03:04", "UNLIMITED")] == [
        5, 600, 3600, 93784, None]
    with pytest.raises(parsers.ParseError):
        parsers.parse_duration("soon")


def test_wait_prediction_on_the_captured_beta_queue():
    queue = parsers.parse_queue(fixture("squeue_queue_beta")["stdout"])
    # beta/cpu: job 16 holds all 16 cores for 10:00 - 0:01; job 17 (8 cores, 1 h) and three
    # 2-core array tasks (1 day) wait ahead of us. At 599 s: 17 and 19_0..2 start (14 cores);
    # ours (2 cores) fits the 2 left at once: no reservation is delayed
    assert predict_wait(BETA_CPU, queue, cores=2, gpus=0, limit_s=600) == 599
    # a 4-core job must wait for job 17's hour as well (the array tasks run a day)
    assert predict_wait(BETA_CPU, queue, cores=4, gpus=0, limit_s=600) == 599 + 3600
    # beta/gpu: 15 runs (2 of 8 GPUs) until 599 s; 18 needs all 8 from then on. Ours needs 2 GPUs
    # for 20 min: it would delay 18's reservation, so it waits for 18 to end: 599 + 300
    assert predict_wait(BETA_GPU, queue, cores=4, gpus=2, limit_s=1200) == 899
    # ...unless it ends before the reservation: 5 min fits the gap now
    assert predict_wait(BETA_GPU, queue, cores=4, gpus=2, limit_s=300) == 0
    # jobs end early in this cluster's history: resources come back sooner
    assert predict_wait(BETA_CPU, queue, 2, 0, 600, History(runtime_ratio=0.5)) == pytest.approx(299)
    assert predict_wait(BETA_CPU, queue, 2, 0, 600, History(bias_s=30)) == 629
    # per user: root's jobs (all of them here) end at a tenth of their limits; others' at the limit
    by_user = History(runtime_ratio=1.0, user_ratios=(("root", 0.1),))
    # job 16 expected at 600 x 0.1 - 1 = 59 s, but a running job is never expected sooner than in a minute
    assert predict_wait(BETA_CPU, queue, 2, 0, 600, by_user) == 60
    assert by_user.ratio_for("someone") == 1.0


def test_shared_nodes_count_for_each_partition():
    queue = parsers.parse_queue(fixture("squeue_queue_alpha")["stdout"])
    # the debug job (4 cores on alpha-n1, 5 min) also takes alpha/cpu's cores; the held job takes nothing.
    # alpha/cpu: 64-core job 30 waits for those 4 cores (until 299 s); ours then waits behind it
    # unless it ends before: a 1-core 1-min job backfills into the 60 free cores
    assert predict_wait(ALPHA_CPU, queue, 1, 0, 60) == 0
    assert predict_wait(ALPHA_CPU, queue, 1, 0, 3600) == 299 + 1200
    # alpha/debug sees the debug job and nothing of the cpu queue (cpu is not inside debug)
    assert predict_wait(ALPHA_DEBUG, queue, 32, 0, 60) == 299


def test_feasibility_says_why():
    res = ResourceRequest(nodes=1, ntasks=1, cpus_per_task=64, time_limit_minutes=60)
    c = feasibility.check(res, BETA_CPU, Constraints())
    assert not c.feasible and c.reasons == ["asks for 64 cores on a node; nodes of partition cpu have 16"]
    gpu = ResourceRequest(ntasks=1, cpus_per_task=4, gpus_per_node=1, gpu_type="h100", time_limit_minutes=60)
    assert "has a100 GPUs, not h100" in feasibility.check(gpu, BETA_GPU, Constraints()).reasons[0]
    cpu_job = ResourceRequest(time_limit_minutes=60)
    assert "asks for no GPU" in feasibility.check(cpu_job, BETA_GPU, Constraints()).reasons[0]
    assert feasibility.check(cpu_job, BETA_GPU, Constraints(partition="gpu")).feasible  # pinned: allowed
    long_job = ResourceRequest(time_limit_minutes=45)
    assert "above the maximum" in feasibility.check(long_job, ALPHA_DEBUG, Constraints()).reasons[0]
    offline = Target("gamma", "cpu", 1, 8, 1000, is_default=True, health="offline", region="north")
    reasons = feasibility.check(cpu_job, offline, Constraints(region="south")).reasons
    assert reasons == ["in region north, not south", "cluster gamma is offline"]
    dedicated = Target("delta", "cpu", 1, 8, 1000, is_default=True, dedicated_to=("bigpharma",))
    assert not feasibility.check(cpu_job, dedicated, Constraints(tenant="uni")).feasible
    assert feasibility.check(cpu_job, dedicated, Constraints(tenant="bigpharma")).feasible


def _candidates():
    def cand(cluster, ownership, wait, price, data=False):
        t = Target(cluster, "cpu", 1, 32, 64000, is_default=True, ownership=ownership)
        return Candidate(t, time_limit_minutes=60, wait_s=wait, price=D(price), has_data=data)

    return [cand("own-busy", "owned", 1200, "10.00"), cand("leased-free", "leased", 0, "14.00"),
            cand("partner-cheap", "partner", 3600, "6.00", data=True), cand("own-later", "owned", 7200, "9.00")]


@pytest.mark.parametrize("policy,options,winner", [
    ("earliest_start", {}, "leased-free"),
    ("cheapest", {}, "partner-cheap"),
    ("owned_first", {"max_wait_s": 1800}, "own-busy"),  # 20 min of wait on owned capacity is acceptable
    ("owned_first", {"max_wait_s": 600}, "leased-free"),  # not with a 10 min bound
    ("data_locality", {}, "partner-cheap"),
    ("weighted", {"weights": {"wait": 1, "price": 0, "leased": 0, "data": 0}}, "leased-free"),
    ("weighted", {"weights": {"wait": 0, "price": 1, "leased": 0, "data": 0}}, "partner-cheap"),
    ("weighted", {"weights": {"wait": 0.2, "price": 0.2, "leased": 1, "data": 0}}, "own-busy"),
])
def test_each_policy_ranks_and_explains(policy, options, winner):
    ranked = RANKERS[policy](_candidates(), **options)
    assert ranked[0].target.cluster == winner
    assert all(c.explanation and c.score is not None for c in ranked)
    assert ranked[0].explanation.count(":") >= 1  # says why it won


def test_router_applies_bounds_and_keeps_every_candidate():
    res = ResourceRequest(time_limit_minutes=60)
    targets = [ALPHA_CPU, BETA_CPU]
    prices = {"alpha": D("3.00"), "beta": D("1.00")}
    waits = {"alpha": 0.0, "beta": 5400.0}
    decision = Router("earliest_start").route(res, targets, Constraints(max_wait_s=3600),
                                              lambda t, m: prices[t.cluster], lambda t, m: waits[t.cluster])
    assert decision.chosen.target.cluster == "alpha"
    assert [c.target.cluster for c in decision.rejected] == ["beta"]
    assert "predicted wait 90 min, above your maximum of 60 min" in decision.rejected[0].reasons[0]
    cheap = Router("earliest_start").route(res, targets, Constraints(max_price=D("2.00")),
                                           lambda t, m: prices[t.cluster], lambda t, m: waits[t.cluster])
    assert cheap.chosen.target.cluster == "beta"
    out = cheap.to_json()
    assert out["chosen"] == "beta/cpu" and len(out["candidates"]) == 2
    with pytest.raises(ValueError):
        Router("fastest")


def test_node_features_rule_out_what_cannot_meet_a_constraint():
    from computenet.routing.feasibility import missing_features

    skylake = Target("beta", "cpu", 1, 16, 64000, is_default=True, features=frozenset({"cpu", "skylake"}))
    job = ResourceRequest(time_limit_minutes=5, constraint="icelake")
    assert feasibility.check(job, skylake, Constraints()).reasons == ["nodes of partition cpu lack feature icelake"]
    assert feasibility.check(ResourceRequest(time_limit_minutes=5, constraint="cpu&skylake"), skylake,
                             Constraints()).feasible
    assert missing_features("icelake|skylake", frozenset({"skylake"})) is None
    assert missing_features("a&b", frozenset({"a"})) == "b"
    assert missing_features("[rack1|rack2]", frozenset()) is None  # Slurm's to judge
    assert missing_features("x", None) is None  # features unknown: Slurm's to judge


def test_the_circuit_breaker_opens_after_failures_and_closes_on_success(platform):
    from computenet.services.network import routing as live

    cfg = platform.settings.routing  # 3 failures in a row keep a cluster out for 120 s
    with platform.db.session() as session:
        for _ in range(cfg.breaker_failures - 1):
            live.record_failure(session, "local", platform)
        assert not any(t.breaker_open for t in live.targets(session, platform))
        live.record_failure(session, "local", platform)
        (target,) = live.targets(session, platform)
        assert target.breaker_open
        c = feasibility.check(ResourceRequest(time_limit_minutes=5), target, Constraints())
        assert c.reasons == ["cluster local failed recent submissions (circuit open)"]
        live.record_success(session, "local")
        assert not live.targets(session, platform)[0].breaker_open


def test_an_open_circuit_goes_half_open_as_soon_as_a_probe_answers(platform):
    """Issue 13 item 13: no fixed cooldown; the API says when the cluster is tried again."""
    from computenet.api.views import cluster_out
    from computenet.services.network import routing as live
    from computenet.services.network.cluster_probe import ClusterProbe
    from computenet.store.models import Cluster
    from sqlalchemy import select

    cfg = platform.settings.routing
    assert cfg.breaker_cooldown_seconds >= 60  # the probe, not the cooldown, brings it back
    with platform.db.session() as session:
        for _ in range(cfg.breaker_failures):
            live.record_failure(session, "local", platform)
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        shown = cluster_out(cluster, cfg.probe_interval_seconds)
        assert shown.retry_at is not None and shown.retry_at <= cluster.breaker_open_until
    assert ClusterProbe(platform).run_once() == ["local"]  # the local executor answers at once
    with platform.db.session() as session:
        (target,) = live.targets(session, platform)
        assert not target.breaker_open
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        assert cluster_out(cluster, cfg.probe_interval_seconds).retry_at is None
        live.record_failure(session, "local", platform)  # half-open: one failure opens it again
        assert live.targets(session, platform)[0].breaker_open
    assert ClusterProbe(platform).run_once() == ["local"]
    with platform.db.session() as session:
        live.record_success(session, "local")  # a success closes it for good
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        assert cluster.failures == 0 and cluster.breaker_open_until is None
    assert ClusterProbe(platform).run_once() == []  # nothing out of service: nothing probed

"""GPU replay (sim/gpu_replay.py): hand-computed placements, allocation and fragmentation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from computenet.sim.gpu_replay import (
    MILLI, POLICIES, GpuNode, NodeState, Pod, fragmentation, read_nodes, read_pods, replay, typical_pods)
from computenet.sim.trace import TraceError

TRACES = Path(__file__).parents[2] / "shared" / "traces"
NODES = TRACES / "alibaba-gpu-v2023-openb_node_list_all_node.csv"
PODS = TRACES / "alibaba-gpu-v2023-openb_pod_list_default.csv"


def node(name: str, gpus: int = 1, model: str | None = "T4", cpu: int = 64_000, mem: int = 262_144) -> GpuNode:
    return GpuNode(name, cpu, mem, gpus, model if gpus else None)


def pod(name: str, num_gpu: int = 1, milli: int = MILLI, cpu: int = 1000, mem: int = 1024,
        models: tuple[str, ...] = ()) -> Pod:
    return Pod(name, cpu, mem, num_gpu, milli if num_gpu else 0, frozenset(models))


def placed(result) -> dict[str, tuple[str, tuple[int, ...]] | None]:
    return {p[0]: (p[1], p[2]) for p in result.placements if p is not None}


def check_no_overcommit(nodes: list[GpuNode], pods: list[Pod], result) -> None:
    """Recount every node's use from the placements: nothing beyond its CPUs, memory or any GPU."""
    by_name = {n.name: n for n in nodes}
    cpu, mem, gpu = {}, {}, {}
    order = (pods * 100)[:len(result.placements)]  # file order, repeated (no shuffle in these tests)
    for p, where in zip(order, result.placements):
        if where is None:
            continue
        name, gpus = where[1], where[2]
        assert where[0] == p.name
        cpu[name] = cpu.get(name, 0) + p.cpu_milli
        mem[name] = mem.get(name, 0) + p.memory_mib
        assert len(gpus) == p.num_gpu and len(set(gpus)) == p.num_gpu
        for g in gpus:
            gpu[(name, g)] = gpu.get((name, g), 0) + p.gpu_milli
            assert g < by_name[name].gpus
        if p.models:
            assert by_name[name].model in p.models
    for name, used in cpu.items():
        assert used <= by_name[name].cpu_milli and mem[name] <= by_name[name].memory_mib
    assert all(v <= MILLI for v in gpu.values())


@pytest.mark.parametrize("policy", POLICIES)
def test_fractional_shares_pack_one_gpu_until_the_next_share_does_not_fit(policy):
    nodes = [node("n0")]
    pods = [pod("a", milli=500), pod("b", milli=300), pod("c", milli=300)]
    r = replay(nodes, pods, policy, load=1.1 / 1.0, keep_placements=True, checkpoints=0)
    # a and b share the GPU (800/1000); c needs 300 with 200 left: the first failure, at 80 % allocated
    assert placed(r)["a"] == ("n0", (0,)) and placed(r)["b"] == ("n0", (0,))
    assert r.placements[2] is None
    assert r.first_failure.allocated == pytest.approx(0.8)
    assert r.failed_gpu_pods >= 1


def test_best_fit_puts_a_share_on_the_tightest_gpu_and_keeps_room_for_a_larger_one():
    nodes = [node("n0", gpus=2)]
    pods = [pod("a", milli=500), pod("b", milli=800), pod("c", milli=200), pod("d", milli=500)]
    first = replay(nodes, pods, "router", load=2.0, keep_placements=True, checkpoints=0)
    best = replay(nodes, pods, "best_fit", load=2.0, keep_placements=True, checkpoints=0)
    # a -> GPU 0 (500 left), b -> GPU 1 (200 left); c (200): first fit takes GPU 0, best fit GPU 1
    assert placed(first)["c"] == ("n0", (0,)) and placed(best)["c"] == ("n0", (1,))
    # d (500) then fits only where best fit left GPU 0 whole at 500
    assert first.placements[3] is None and placed(best)["d"] == ("n0", (0,))
    assert best.first_failure is None or best.first_failure.allocated == pytest.approx(1.0)


@pytest.mark.parametrize("policy", POLICIES)
def test_whole_gpus_are_not_taken_from_a_shared_gpu(policy):
    nodes = [node("n0", gpus=4)]
    pods = [pod("share", milli=500), pod("four", num_gpu=4), pod("three", num_gpu=3)]
    r = replay(nodes, pods, policy, load=8.5 / 4, keep_placements=True, checkpoints=0)
    assert r.placements[1] is None  # three whole GPUs are free, not four
    shared = placed(r)["share"][1][0]
    assert placed(r)["three"][0] == "n0" and shared not in placed(r)["three"][1]  # not the shared GPU
    assert r.first_failure.allocated == pytest.approx(0.5 / 4)


def test_fragmentation_is_fgds_measure_weighted_by_pod_shapes():
    n = node("n0", gpus=4)
    state = NodeState(n)
    state.place(pod("share", milli=500), [0])  # free: 500, 1000, 1000, 1000
    typical = typical_pods([pod("four", num_gpu=4), pod("half", milli=500), pod("cpu", num_gpu=0)])
    assert [w for _, w in typical] == [0.5, 0.5]  # CPU-only pods are not GPU demand
    # the 4-GPU shape cannot run here: all 3,500 free is a fragment for it; the 500 share fits GPU 0's 500
    frag, free = fragmentation([state], typical)
    assert (frag, free) == (pytest.approx(0.5 * 3500), 3500)
    # a 600 share would not fit GPU 0's 500: those 500 count for it
    frag2, _ = fragmentation([state], typical_pods([pod("big", milli=600)]))
    assert frag2 == pytest.approx(500)


@pytest.mark.parametrize("policy", POLICIES)
def test_gpu_model_constraint(policy):
    nodes = [node("t4", model="T4"), node("v100", model="V100M16")]
    pods = [pod("v1", models=("V100M16", "V100M32")), pod("v2", models=("V100M16",))]
    r = replay(nodes, pods, policy, load=1.0, keep_placements=True, checkpoints=0)
    assert placed(r)["v1"] == ("v100", (0,))
    assert r.placements[1] is None  # the T4 is free but not of the model asked
    assert r.first_failure.allocated == pytest.approx(0.5)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_node_out_of_cpu_or_memory_cannot_take_a_gpu_pod(policy):
    nodes = [node("n0", gpus=2, cpu=8000, mem=16_384)]
    pods = [pod("a", cpu=6000, mem=4096), pod("b", cpu=4000, mem=1024), pod("c", cpu=2000, mem=16_000),
            pod("d", cpu=2000, mem=12_288)]
    r = replay(nodes, pods, policy, load=3.0, keep_placements=True, checkpoints=0)
    got = r.placements[:4]
    assert got[0] is not None and got[1] is None and got[2] is None  # b: 2 cores left; c: 12,288 MiB left
    assert got[3][:2] == ("d", "n0") and got[3][2] != got[0][2]
    # when b failed: 2 cores and 12,288 MiB left beside the free GPU; of the four shapes (a quarter each)
    # only d's fits, so the free GPU is a fragment for the other three: 75 %
    assert r.first_failure.allocated == pytest.approx(0.5)
    assert r.first_failure.fragmentation == pytest.approx(0.75)
    assert r.final.allocated == 1.0 and r.final.fragmentation == 0.0


def test_cpu_pods_router_keeps_them_off_gpu_nodes_best_fit_too():
    nodes = [node("gpu", gpus=1, cpu=8000), node("cpu", gpus=0, cpu=4000)]
    pods = [pod("c1", num_gpu=0, cpu=4000), pod("c2", num_gpu=0, cpu=4000), pod("g", cpu=4000)]
    router = replay(nodes, pods, "router", load=1.0, keep_placements=True, checkpoints=0)
    best = replay(nodes, pods, "best_fit", load=1.0, keep_placements=True, checkpoints=0)
    assert placed(router)["c1"][0] == "cpu" and placed(best)["c1"][0] == "cpu"
    # the CPU node is full: the router refuses the GPU partition to a job that asks for no GPU; best fit does not
    assert router.placements[1] is None and router.failed_cpu_pods == 1
    assert placed(best)["c2"][0] == "gpu"
    assert placed(router)["g"] == ("gpu", (0,)) and placed(best)["g"] == ("gpu", (0,))


def test_router_takes_the_first_node_that_fits_in_a_partition():
    nodes = [node("a0", gpus=2), node("a1", gpus=2)]
    pods = [pod("x", milli=600), pod("y", milli=600), pod("z", num_gpu=2)]
    r = replay(nodes, pods, "router", load=1.0, keep_placements=True, checkpoints=0)
    assert placed(r) == {"x": ("a0", (0,)), "y": ("a0", (1,)), "z": ("a1", (0, 1))}


def test_arrivals_repeat_the_pods_until_the_demand_reaches_the_load():
    nodes = [node("n0", gpus=2)]
    r = replay(nodes, [pod("p")], "best_fit", load=1.5, checkpoints=0)
    assert r.arrived_pods == 3 and r.placed_pods == 2 and r.failed_gpu_pods == 1
    assert r.final.allocated == 1.0 and r.final.arrived == pytest.approx(1.5)


@pytest.mark.parametrize("seed", range(20))
def test_random_sets_never_overcommit(seed):
    rng = random.Random(seed)
    models = ["T4", "V100M16", "G2"]
    nodes = [node(f"n{i}", gpus=rng.choice([0, 1, 2, 4, 8]), model=rng.choice(models),
                  cpu=rng.choice([8000, 32_000, 96_000]), mem=rng.choice([32_768, 262_144])) for i in range(8)]
    nodes.append(node("g", gpus=2))
    pods = []
    for i in range(30):
        n = rng.choice([0, 1, 1, 1, 2, 4, 8])
        milli = rng.choice([100, 250, 500, 810, MILLI]) if n == 1 else MILLI
        pods.append(pod(f"p{i}", n, milli, cpu=rng.choice([1000, 4000, 12_000]), mem=rng.choice([1024, 16_384]),
                        models=tuple(rng.sample(models, rng.choice([0, 0, 1, 2]))) if n else ()))
    for policy in POLICIES:
        r = replay(nodes, pods, policy, load=1.5, seed=seed, keep_placements=True)
        check_no_overcommit(nodes, pods, r)
        assert 0.0 <= r.final.allocated <= 1.0 and 0.0 <= r.final.fragmentation <= 1.0
        assert r.placed_pods + r.failed_gpu_pods + r.failed_cpu_pods == r.arrived_pods


def test_bad_rows_are_named(tmp_path):
    bad = tmp_path / "pods.csv"
    bad.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np0,1000,1024,1,1500,\n")
    with pytest.raises(TraceError, match="row 2: gpu_milli 1500"):
        read_pods(bad)
    bad.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np0,lots,1024,1,500,\n")
    with pytest.raises(TraceError, match="row 2: cpu_milli 'lots'"):
        read_pods(bad)
    bad.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np0,1000,1024,2,500,\n")
    with pytest.raises(TraceError, match="only one GPU can be shared"):
        read_pods(bad)
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,1000,1024,0,\n")
    with pytest.raises(TraceError, match="no node has a GPU"):
        read_nodes(nodes)


@pytest.mark.skipif(not PODS.exists(), reason="../shared/traces is not here")
def test_real_trace_first_pods_all_fit_and_nothing_is_overcommitted():
    nodes, pods = read_nodes(NODES), read_pods(PODS, limit=300)
    assert len(nodes) == 1523 and sum(n.gpus for n in nodes) == 6212
    assert pods[0] == Pod("openb-pod-0000", 12000, 16384, 1, 1000, frozenset())
    demand = sum(p.gpu_demand for p in pods)
    for policy in POLICIES:
        # the first 300 pods ask for a few per cent of the GPUs: every one is placed
        r = replay(nodes, pods, policy, load=demand / (6212 * MILLI), keep_placements=True)
        assert r.arrived_pods == 300 and r.placed_pods == 300 and r.first_failure is None
        assert r.final.allocated == pytest.approx(demand / (6212 * MILLI))
        check_no_overcommit(nodes, pods, r)


def test_router_sized_keeps_the_eight_gpu_node_for_an_eight_gpu_pod():
    nodes = [node("big", gpus=8, model="G2"), node("small", gpus=1, model="T4")]
    pods = [pod("one"), pod("eight", num_gpu=8)]
    plain = replay(nodes, pods, "router", load=1.0, keep_placements=True, checkpoints=0)
    sized = replay(nodes, pods, "router_sized", load=1.0, keep_placements=True, checkpoints=0)
    # both start at once everywhere: the router breaks the tie by partition name (G2x8 before T4x1)
    assert placed(plain)["one"] == ("big", (0,)) and plain.placements[1] is None
    assert plain.first_failure.allocated == pytest.approx(1 / 9)
    assert placed(sized) == {"one": ("small", (0,)), "eight": ("big", tuple(range(8)))}
    assert sized.first_failure is None and sized.final.allocated == 1.0


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def test_cli_gpu_replay_json_and_errors(tmp_path):
    from typer.testing import CliRunner

    from computenet.cli.main import app

    nodes = _csv(tmp_path / "nodes.csv", "sn,cpu_milli,memory_mib,gpu,model", ["n0,8000,16384,2,T4"])
    pods = _csv(tmp_path / "pods.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec",
                ["p0,1000,1024,1,500,", "p1,1000,1024,1,600,", "p2,1000,1024,1,1000,"])
    runner = CliRunner()
    result = runner.invoke(app, ["sim", str(pods), "--gpu-replay", "--nodes", str(nodes), "--load", "1",
                                 "--policies", "best_fit", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (r,) = data["results"]
    # 500 and 600 shares take one GPU each (they do not fit together); the whole-GPU pod then fails at 55 %
    assert (r["policy"], r["placed_pods"], r["failed_gpu_pods"]) == ("best_fit", 2, 1)
    assert r["first_failure"]["allocated"] == pytest.approx(0.55)
    cases = [(["--policies", "fcfs"], "use router, router_sized"), ([], None), (["--load", "0"], "--load")]
    for args, message in cases:
        extra = [] if args == [] else ["--nodes", str(nodes)]
        result = runner.invoke(app, ["sim", str(pods), "--gpu-replay", *extra, *args])
        assert result.exit_code == 1
        assert (message or "--gpu-replay needs --nodes") in result.output

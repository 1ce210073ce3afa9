"""Every resource shape Slurm allocates is quoted, held and checked as Slurm allocates it.

The figures come from the test bed (Slurm 22.05, cons_tres, beta/gpu: 2 nodes of
32 cores, 256000 MB and 4 A100s), read with ``scontrol show job`` (AllocTRES):

  -n 4 --gpus-per-task=1               cpu=4  gres/gpu=4
  -n 2 --gpus-per-task=2 --cpus-per-gpu=3  cpu=12 gres/gpu=4
  --gpus=2 --cpus-per-gpu=4            cpu=8  gres/gpu=2
  --gpus=4 --gpus-per-task=1           cpu=4  gres/gpu=4
  --gpus=2 --mem-per-gpu=1000          mem=2000M
  --exclusive [-N 2]                   cpu=32 (64), gres/gpu=4 (8): whole nodes
  -p cpu --gpus=1 / --cpus-per-gpu     "Requested node configuration is not available"

An array's tasks are each a job: ``--array=1-1000`` is held and quoted for 1000 tasks.
"""

from decimal import Decimal

import pytest

from computenet.domain.resources import RequestError, allocation, array_task_count
from computenet.domain.sbatch import ScriptError, parse_submission
from computenet.routing import feasibility
from computenet.routing.model import Constraints, Target
from computenet.services.errors import InsufficientFunds, InvalidRequest
from computenet.services.jobs.jobs import estimate_job, submit_job

from conftest import local_cluster, slurm_clusters

BETA_GPU = Target("beta", "gpu", nodes=2, cores_per_node=32, mem_per_node_mb=256000, gpus_per_node=4,
                  gpu_type="a100")
BETA_CPU = Target("beta", "cpu", nodes=1, cores_per_node=16, mem_per_node_mb=32000, is_default=True)


def spec(flags: str):
    return parse_submission("#!/bin/bash\ntrue\n", flags.split())[1]


def alloc(flags: str, target: Target = BETA_GPU):
    s = spec(flags)
    return allocation(s.resources, cores_per_node=target.cores_per_node, mem_per_node_mb=target.mem_per_node_mb,
                      gpus_per_node=target.gpus_per_node)


@pytest.mark.parametrize("flags, cores, gpus, nodes", [
    ("-n 4 --gpus-per-task=1", 4, 4, 1),
    ("-n 4 --gpus-per-task=1 -c 2", 8, 4, 1),
    ("-n 2 --gpus-per-task=2 --cpus-per-gpu=3", 12, 4, 1),
    ("--gpus=2", 1, 2, 1),
    ("--gpus=2 --cpus-per-gpu=4", 8, 2, 1),
    ("--gpus=4 --gpus-per-task=1", 4, 4, 1),
    ("--gres=gpu:2 --cpus-per-gpu=3", 6, 2, 1),
    ("-N 2 --gpus-per-node=1", 2, 2, 2),
    ("--exclusive", 32, 4, 1),
    ("--exclusive -N 2", 64, 8, 2),
    ("--exclusive -n 40", 64, 8, 2),  # more cores than a node has: Slurm takes two whole nodes
    ("-n 3 -c 2", 6, 0, 1),
])
def test_allocation_matches_what_slurm_allocated_on_the_test_bed(flags, cores, gpus, nodes):
    a = alloc(flags)
    assert (a.cores, a.gpus, a.nodes) == (cores, gpus, nodes)


def test_memory_per_gpu_and_exclusive_memory():
    assert alloc("--gpus=2 --mem-per-gpu=1000").mem_mb == 2000
    assert alloc("--gpus-per-node=2 --mem-per-gpu=500").mem_mb == 1000
    assert alloc("--exclusive -N 2").mem_mb == 2 * 256000  # whole nodes: their memory too
    assert alloc("-N 2 --mem=0").mem_mb == 2 * 256000  # sbatch: --mem=0 is all of each node's memory
    assert alloc("--exclusive", BETA_CPU) == allocation(spec("--exclusive").resources, cores_per_node=16,
                                                        mem_per_node_mb=32000, gpus_per_node=0)
    assert alloc("--exclusive", BETA_CPU).cores == 16 and alloc("--exclusive", BETA_CPU).gpus == 0


@pytest.mark.parametrize("flags, message", [
    ("--gpus-per-task=1", "--gpus-per-task needs --ntasks"),
    ("-c 2 --cpus-per-gpu=4 --gpus=1", "mutually exclusive"),
    ("--gpus=1 --mem-per-gpu=500 --mem=3000", "mutually exclusive"),
    ("--gpus=1 --mem-per-gpu=500 --mem-per-cpu=3000", "mutually exclusive"),
    ("-n 2 --mem-per-gpu=500", "--mem-per-gpu needs GPUs"),
    ("-n 2 --gpus-per-task=x", "--gpus-per-task"),
    ("--gpus=1 --cpus-per-gpu=0", "--cpus-per-gpu"),
])
def test_shapes_slurm_refuses_are_refused_with_the_reason(flags, message):
    with pytest.raises(ScriptError, match=message):
        spec(flags)


@pytest.mark.parametrize("flags", ["-n 4 --gpus-per-task=1 -t 5", "--gpus=1 --cpus-per-gpu=2 -t 5",
                                   "--gpus=1 --mem-per-gpu=1G -t 5", "-N 1 --gpus-per-node=1 -t 5"])
def test_gpu_shapes_are_not_feasible_on_partitions_without_gpus(flags):
    c = feasibility.check(spec(flags).resources, BETA_CPU, Constraints())
    assert not c.feasible and any("GPUs on a node" in r for r in c.reasons), c.reasons
    assert feasibility.check(spec(flags).resources, BETA_GPU, Constraints()).feasible


def test_gpu_shapes_that_do_not_fit_a_node_are_refused():
    c = feasibility.check(spec("--gpus=2 --cpus-per-gpu=20").resources, BETA_GPU, Constraints())
    assert not c.feasible and any("40 cores on a node" in r for r in c.reasons), c.reasons
    c = feasibility.check(spec("--gpus=2 --mem-per-gpu=200G").resources, BETA_GPU, Constraints())
    assert not c.feasible and any("MB of memory on a node" in r for r in c.reasons), c.reasons


@pytest.mark.parametrize("text, count", [
    (None, 1), ("0", 1), ("1-1000", 1000), ("1-1000%10", 1000), ("1,3,5-9:2", 5), ("0-9,5-14", 15),
    ("0-15:4", 4), ("7-7", 1),
])
def test_array_task_count(text, count):
    assert array_task_count(text) == count


@pytest.mark.parametrize("text, message", [("5-1", "ends before it starts"), ("0-99999999999", "largest"),
                                           ("1-10:0", "step")])
def test_array_nonsense_is_refused(text, message):
    with pytest.raises(RequestError, match=message):
        array_task_count(text)
    with pytest.raises(ScriptError, match=message):
        spec(f"--array={text}")


# -- quotes and holds through the service (local executor: 36.00 a core-hour, 90.00 a GPU-hour) --

def add_user(platform, name: str, balance: str = "100.00"):
    """A user with a funded default account (no API token: these tests call the services)."""
    import uuid

    from computenet.services.tenancy import accounts

    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        acc = accounts.create_account(session, f"{name}-lab", owner=user)
        accounts.top_up(session, acc, balance, key=f"test:{uuid.uuid4()}")
        return user.id, None


def _price(platform, uid, script):
    decision = estimate_job(platform, uid, script)
    return {c.target.name: (c.price if c.feasible else c.reasons) for c in decision.ranked + decision.rejected}


@pytest.mark.slurm
def test_array_is_quoted_and_held_for_every_task(testbed, make_platform):
    # arrays run on Slurm only (the local executor refuses them by the option table): alpha/cpu, 0.05/core-hour
    platform = make_platform(slurm_clusters(testbed))
    uid, _ = add_user(platform, "arr", balance="50.00")
    one = _price(platform, uid, "#!/bin/bash\n#SBATCH -M alpha -c 2 -t 60\ntrue\n")["alpha/cpu"]
    assert one == Decimal("0.10")
    assert _price(platform, uid, "#!/bin/bash\n#SBATCH -M alpha --array=1-1000 -c 2 -t 60\ntrue\n")["alpha/cpu"] == \
        Decimal("100.00")
    # the % limit changes how many run at once, not what they cost
    assert _price(platform, uid, "#!/bin/bash\n#SBATCH -M alpha --array=1-1000%5 -c 2 -t 60\ntrue\n")["alpha/cpu"] == \
        Decimal("100.00")
    # 50.00 covers five hundred tasks, not a thousand: refused before any row or sbatch call
    with pytest.raises(InsufficientFunds, match="100.00"):
        submit_job(platform, uid, "#!/bin/bash\n#SBATCH -M alpha --array=1-1000 -c 2 -t 60\ntrue\n")


def test_the_local_executor_refuses_an_array_before_pricing_it(platform):
    uid, _ = add_user(platform, "arrl")
    refused = _price(platform, uid, "#!/bin/bash\n#SBATCH --array=1-10 -c 2 -t 60\ntrue\n")["local/local"]
    assert any("--array" in reason for reason in refused)
    with pytest.raises(InvalidRequest, match="--array"):
        submit_job(platform, uid, "#!/bin/bash\n#SBATCH --array=1-10 -c 2 -t 60\ntrue\n")


def test_exclusive_is_quoted_as_the_whole_node(platform):
    uid, _ = add_user(platform, "excl")
    prices = _price(platform, uid, "#!/bin/bash\n#SBATCH --exclusive -c 1 -t 60\ntrue\n")
    assert prices["local/local"] == Decimal("144.00")  # 4 slots x 36.00, not 1 x 36.00


def test_gpus_per_task_is_priced_and_needs_a_gpu_cluster(make_platform):
    platform = make_platform([local_cluster("cpuonly"), local_cluster("gpubox", slots=8, gpus=4)])
    uid, _ = add_user(platform, "gpt")
    prices = _price(platform, uid, "#!/bin/bash\n#SBATCH -n 2 --gpus-per-task=1 -t 60\ntrue\n")
    assert prices["gpubox/local"] == Decimal("252.00")  # 2 cores x 36 + 2 GPUs x 90
    assert isinstance(prices["cpuonly/local"], list) and any("GPUs on a node" in r for r in prices["cpuonly/local"])
    prices = _price(platform, uid, "#!/bin/bash\n#SBATCH --gpus=2 --cpus-per-gpu=3 -t 60\ntrue\n")
    assert prices["gpubox/local"] == Decimal("396.00")  # 6 cores x 36 + 2 GPUs x 90
    with pytest.raises(InvalidRequest, match="GPUs on a node"):
        submit_job(platform, uid, "#!/bin/bash\n#SBATCH -M cpuonly -n 2 --gpus-per-task=1 -t 60\ntrue\n")


@pytest.mark.slurm
def test_a_quote_beyond_any_account_is_a_clear_refusal(testbed, make_platform):
    from computenet.config import Price

    dear = slurm_clusters(testbed)[0].model_copy(update={"prices": {"*": Price(core_hour=Decimal("100000"))}})
    platform = make_platform([dear])
    uid, _ = add_user(platform, "huge")
    # 4,000,001 tasks x 4 cores x a day at 100000.00: about 4 x 10^13, beyond what any account holds
    with pytest.raises(InvalidRequest, match="more than any account can hold"):
        submit_job(platform, uid, "#!/bin/bash\n#SBATCH -M alpha --array=0-4000000 -c 4 -t 1-0\ntrue\n")

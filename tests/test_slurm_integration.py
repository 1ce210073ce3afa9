"""End to end on the real Slurm test bed: two clusters, accounting, GPUs.

Run `scripts/slurm-testbed start` and export COMPUTENET_TESTBED first; under
CI=true these tests fail (never skip) when the test bed is missing.
"""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import func, select

from computenet.client import ApiError, ComputeNetClient
from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Charge, Job, UsageRecordRow

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


@pytest.fixture
def bed(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    _, token = add_user(platform, "sam", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        pollers = {name: ClusterPoller(platform, name) for name in ("alpha", "beta")}

        def step():
            for poller in pollers.values():
                poller.run_once()

        yield platform, client, step


def settled(client, job_id, step, timeout=90):
    return poll_until(lambda: (lambda j: j if j.settled else None)(client.job(job_id)), step=step,
                      timeout=timeout, what=f"job {job_id} to be settled")


def charges_of(platform, job_id):
    with platform.db.session() as session:
        return list(session.scalars(select(Charge).where(Charge.job_id == job_id).order_by(Charge.id)))


def expected(core_seconds, gpu_seconds, core_price, gpu_price="0"):
    raw = (Decimal(core_seconds) * Decimal(core_price) + Decimal(gpu_seconds) * Decimal(gpu_price)) / 3600
    return raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_partitions_prices_and_health(bed):
    _, client, _ = bed
    clusters = {c.name: c for c in client.clusters()}
    assert clusters["alpha"].health == "online" and clusters["beta"].health == "online"
    alpha = {p.name: p for p in clusters["alpha"].partitions}
    beta = {p.name: p for p in clusters["beta"].partitions}
    assert alpha["cpu"].nodes == 2 and alpha["cpu"].cores_per_node == 32 and alpha["cpu"].is_default
    assert alpha["debug"].max_time_minutes == 30 and alpha["debug"].price_core_hour == Decimal("0.08")
    assert (beta["gpu"].gpus_per_node, beta["gpu"].gpu_type) == (4, "a100")
    assert beta["gpu"].price_gpu_hour == Decimal("8.00")


def test_cpu_job_on_alpha_is_charged_once(bed):
    platform, client, step = bed
    job = client.submit("#!/bin/bash\n#SBATCH -c 4 -t 5 -J cpu-work\necho start on $SLURM_CLUSTER_NAME\nsleep 3\necho end\n",
                        [], "cpu.sh")
    assert (job.cluster, job.partition, job.state) == ("alpha", "cpu", "PENDING") and job.native_id
    done = settled(client, job.id, step)
    assert done.state == "COMPLETED" and done.exit_code == 0
    assert client.output(job.id).data == "start on alpha\nend\n"
    with platform.db.session() as session:
        (row,) = session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id))
        assert row.cpus == 4 and 3 <= row.elapsed_seconds <= 30 and row.state == "COMPLETED"
    (charge,) = charges_of(platform, job.id)
    assert charge.core_seconds == 4 * row.elapsed_seconds and charge.gpu_seconds == 0
    assert charge.amount == expected(charge.core_seconds, 0, "0.05") == done.cost
    for _ in range(3):  # more passes, same single charge
        step()
    assert len(charges_of(platform, job.id)) == 1
    with platform.db.session() as session:
        assert accounts.ledger_problems(session) == []


def test_gpu_job_on_beta_is_accounted_in_gpu_hours(bed):
    platform, client, step = bed
    job = client.submit("#!/bin/bash\n#SBATCH -p gpu --gres=gpu:a100:2 -c 2 -t 5\n"
                        "echo gpus=$CUDA_VISIBLE_DEVICES\nsleep 2\n")
    assert (job.cluster, job.partition, job.gpus) == ("beta", "gpu", 2)
    done = settled(client, job.id, step)
    assert done.state == "COMPLETED"
    assert client.output(job.id).data == "gpus=0,1\n"
    with platform.db.session() as session:
        (row,) = session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id))
    assert (row.gpus, row.gpu_type, row.cpus) == (2, "a100", 2)
    (charge,) = charges_of(platform, job.id)
    assert charge.gpu_seconds == 2 * row.elapsed_seconds and charge.core_seconds == 2 * row.elapsed_seconds
    assert charge.amount == expected(charge.core_seconds, charge.gpu_seconds, "0.06", "8.00")
    assert charge.amount > 0


def test_failed_and_cancelled_jobs_on_both_clusters(bed):
    platform, client, step = bed
    failing = client.submit("#!/bin/bash\n#SBATCH -t 5\necho oops >&2\nexit 3\n", ["-M", "alpha", "-e", "err-%j.txt"])
    sleeper = client.submit("#!/bin/bash\n#SBATCH -t 10\nsleep 300\n", ["-M", "beta"])
    poll_until(lambda: client.job(sleeper.id).state == "RUNNING", step=step, what="sleeper to start")
    client.cancel(sleeper.id)
    failed = settled(client, failing.id, step)
    assert failed.state == "FAILED" and failed.exit_code == 3
    assert client.output(failing.id, "stderr").data == "oops\n"
    cancelled = settled(client, sleeper.id, step)
    assert cancelled.state == "CANCELLED" and cancelled.cluster == "beta"
    assert len(charges_of(platform, failing.id)) == 1 and len(charges_of(platform, sleeper.id)) == 1


def test_array_job_charges_every_task(bed):
    platform, client, step = bed
    job = client.submit("#!/bin/bash\n#SBATCH --array=0-2 -t 5 -c 2 -o task-%A_%a.out\necho task $SLURM_ARRAY_TASK_ID\n",
                        ["-M", "alpha"])
    done = settled(client, job.id, step)
    assert done.state == "COMPLETED"
    charges = charges_of(platform, job.id)
    assert len(charges) == 3
    assert done.cost == sum(c.amount for c in charges)


def test_dependency_in_platform_ids(bed):
    platform, client, step = bed
    first = client.submit("#!/bin/bash\n#SBATCH -t 5\nsleep 2\n", ["-M", "beta"])
    second = client.submit("#!/bin/bash\n#SBATCH -t 5\necho after\n", ["-d", f"afterok:{first.id}"])
    assert second.cluster == "beta"  # pinned to its dependency's cluster
    done = settled(client, second.id, step)
    assert done.state == "COMPLETED" and done.start_time >= client.job(first.id).end_time


def test_refusals_leave_nothing(bed):
    platform, client, step = bed
    cases = [
        (["-p", "gpu", "--gres=gpu:a100:5"], "5 GPUs on a node"),  # we refuse before sbatch
        (["-c", "1000"], "1000 cores"),  # Slurm would queue this forever
        (["-p", "debug", "-t", "1:00:00"], "above the maximum"),  # and this
        (["-C", "no-such-feature"], "lack feature no-such-feature"),  # nodes do not have it (sinfo %f)
        (["-C", "[nope1|nope2]"], "refused the job"),  # a form we leave to Slurm, which refuses it
    ]
    for args, fragment in cases:
        with pytest.raises(ApiError) as err:
            client.submit("#!/bin/bash\ntrue\n", args)
        assert err.value.status == 400 and fragment in err.value.detail
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Job.id))) == 0


def test_late_accounting_on_real_slurm_is_charged(bed):
    """slurmdbd down while a job ends: the job is COMPLETED but unsettled, and is
    charged once the record arrives after slurmdbd comes back."""
    import os
    import subprocess
    from pathlib import Path

    platform, client, step = bed
    testbed = [str(Path(__file__).parent.parent / "scripts" / "slurm-testbed")]
    base = os.environ["COMPUTENET_TESTBED"]
    subprocess.run(testbed + ["pause-accounting", base], check=True, capture_output=True, timeout=60)
    try:
        job = client.submit("#!/bin/bash\n#SBATCH -t 5 -c 2\nsleep 2\n", ["-M", "alpha"])
        poll_until(lambda: client.job(job.id).state == "COMPLETED", step=step, timeout=60, what="job to end")
        for _ in range(3):
            step()
        waiting = client.job(job.id)
        assert not waiting.settled and waiting.cost is None  # no record yet: not charged, not free
        assert [c.health for c in client.clusters() if c.name == "alpha"] == ["degraded"]
    finally:
        subprocess.run(testbed + ["resume-accounting", base], check=True, capture_output=True, timeout=60)
    done = settled(client, job.id, step)
    (charge,) = charges_of(platform, job.id)
    assert charge.core_seconds >= 4 and done.cost == charge.amount == expected(charge.core_seconds, 0, "0.05")


def test_enforcement_blocks_in_slurm_lifts_on_top_up_and_meters_direct_jobs(bed, testbed):
    import subprocess
    import uuid

    from computenet.billing import funds
    from computenet.services import audit
    from computenet.services.billing.enforcement import Enforcer, map_account
    from computenet.store.models import Account

    platform, client, step = bed
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}

    def slurm(*argv):
        return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)

    # a Slurm account of this test's own, so no other test ever meets a block
    slurm("sacctmgr", "-i", "add", "account", "cnetenf", "cluster=alpha", "description=t", "organization=t")
    slurm("sacctmgr", "-i", "add", "user", "root", "account=cnetenf", "cluster=alpha")
    with platform.db.session() as session:
        pi = accounts.create_user(session, "enf-pi")
        lab = accounts.create_account(session, "enf-lab", owner=pi)
        map_account(session, "alpha", "cnetenf", lab, audit.Who("ops", "test"))
    enforcer = Enforcer(platform)
    try:
        assert enforcer.run_once().blocked == ["alpha/cnetenf"]  # no money: blocked in Slurm itself
        refused = slurm("sbatch", "--parsable", "-A", "cnetenf", "-t", "1", "--chdir=/tmp", "--wrap", "true")
        assert refused.returncode == 1 and "AssocGrpSubmitJobsLimit" in refused.stderr
        # Slurm loses the block (a restore, a hand edit): the next pass puts it back
        slurm("sacctmgr", "-i", "modify", "account", "where", "name=cnetenf", "cluster=alpha", "set", "GrpSubmitJobs=-1")
        assert enforcer.run_once().blocked == ["alpha/cnetenf"]
        with platform.db.session() as session:
            accounts.top_up(session, session.get(Account, lab.id), "10.00", key=f"enf:{uuid.uuid4()}")
        assert enforcer.run_once().unblocked == ["alpha/cnetenf"]
        direct = slurm("sbatch", "--parsable", "-A", "cnetenf", "-c", "2", "-t", "1", "--chdir=/tmp",
                       "--output=/dev/null", "--wrap", "sleep 2")
        assert direct.returncode == 0, direct.stderr
        native = direct.stdout.strip()

        def charged():
            with platform.db.session() as session:
                job = session.scalar(select(Job).where(Job.native_id == native, Job.origin == "direct"))
                return job if job is not None and job.settled_at is not None else None

        job = poll_until(charged, step=step, timeout=90, what="the direct job to be charged")
        assert job.account_id == lab.id and job.owner_id == pi.id and job.cores == 2
        (charge,) = charges_of(platform, job.id)
        assert charge.amount == expected(charge.core_seconds, 0, "0.05")
        with platform.db.session() as session:
            assert funds.funds(session, session.get(Account, lab.id)).balance == Decimal("10.00") - charge.amount
    finally:
        slurm("sacctmgr", "-i", "modify", "account", "where", "name=cnetenf", "cluster=alpha", "set", "GrpSubmitJobs=-1")


def test_exhaustion_hold_suspends_and_holds_in_slurm_and_resumes_on_top_up(bed):
    from computenet.billing import funds
    from computenet.services.billing import exhaustion
    from computenet.services.billing.exhaustion import ExhaustionWatch

    platform, client, step = bed
    with platform.db.session() as session:
        account = accounts.get_account(session, "sam-lab")
        exhaustion.set_policy(session, account, "hold", 0)
    running = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 1 -t 10\nsleep 120\n")
    waiting = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 1 -t 10 --begin=now+600\ntrue\n")
    poll_until(lambda: client.job(running.id).state == "RUNNING", step=step, what="RUNNING")
    with platform.db.session() as session:
        # the balance goes: what is left, and more, is taken by a correction
        account = accounts.get_account(session, "sam-lab")
        available = funds.funds(session, account).available
        from computenet.billing import ledger
        ledger.transfer(session, "test:correction", funds.customer(session, account),
                        funds.revenue(session, "hpc", "CNY"), ledger.cents(available) + 100, "adjustment")
    watch = ExhaustionWatch(platform)
    assert watch.run_once().exhausted == ["sam-lab"]
    assert sorted(watch.run_once().paused) == sorted([running.id, waiting.id])
    poll_until(lambda: client.job(running.id).state == "SUSPENDED", step=step, what="SUSPENDED in Slurm")
    adapter = platform.adapter("alpha")
    assert adapter.status([waiting.native_id])[waiting.native_id].reason == "JobHeldAdmin"
    with platform.db.session() as session:
        accounts.top_up(session, accounts.get_account(session, "sam-lab"), "50.00", key="sam:pay")
    assert sorted(watch.run_once().resumed) == sorted([running.id, waiting.id])
    poll_until(lambda: client.job(running.id).state == "RUNNING", step=step, what="RUNNING again")
    assert adapter.status([waiting.native_id])[waiting.native_id].reason != "JobHeldAdmin"
    for job in (running, waiting):
        client.cancel(job.id)

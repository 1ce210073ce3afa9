"""Monitoring under real Slurm (test bed): the injected agent samples the batch job's processes
on the node; the samples come back and the analysis sees one busy core of four."""

from decimal import Decimal

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import BillingConfig, MonitoringConfig
from computenet.services.monitoring import SampleCollector
from computenet.services.poller import ClusterPoller
from computenet.store.models import Job

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


def test_a_slurm_job_is_sampled_and_diagnosed(testbed, make_platform):
    # seconds at the test bed's list prices round to nothing: a minimum charge makes the waste visible
    platform = make_platform(slurm_clusters(testbed), billing=BillingConfig(minimum_charge=Decimal("1.00")),
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=0.5))
    _, token = add_user(platform, "sid", balance="50.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 4 -t 5\n"
                            "python3 -c 'import time\nt = time.time()\nwhile time.time() - t < 5: pass'\n")
        poller, collector = ClusterPoller(platform, "alpha"), SampleCollector(platform)
        seen_running = []

        def done():
            poller.run_once()
            read = collector.run_once()
            with platform.db.session() as session:
                row = session.get(Job, job.id)
                if row.state == "RUNNING" and read.get(job.id):
                    seen_running.append(read[job.id])  # samples arrive while it runs, not only at the end
                return row if row.monitor_state == "done" and row.settled_at else None
        poll_until(done, timeout=120, what="the Slurm job sampled, ended and charged")
        stats = client.stats(job.id)
    assert stats["samples"] >= 6, stats
    assert 0.15 <= stats["efficiency"]["cpu_efficiency"] <= 0.35, stats["efficiency"]
    single = next(f for f in stats["findings"] if f["code"] == "single_threaded")
    assert Decimal(stats["price"]) == Decimal("1.00") and Decimal(single["wasted"]) == Decimal("0.75")
    assert seen_running, "no samples were read while the job ran"


def test_srun_work_is_measured_by_slurms_step_accounting(testbed, make_platform):
    """Two busy srun tasks of a 4-task job run under slurmstepd, where the batch agent cannot see them;
    sstat snapshots taken while it runs give the CPU efficiency instead (about 2 of 4 cores)."""
    from computenet.services.step_usage import StepUsageCollector

    platform = make_platform(slurm_clusters(testbed), billing=BillingConfig(minimum_charge=Decimal("1.00")),
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=0.5))
    _, token = add_user(platform, "stan", balance="50.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -n 4 -c 1 -t 5\n"
                            "srun -n 2 python3 -c 'import time\nt = time.time()\nwhile time.time() - t < 12: pass'\n")
        poller, collector, steps = ClusterPoller(platform, "alpha"), SampleCollector(platform), \
            StepUsageCollector(platform)
        taken = []

        def done():
            poller.run_once()
            collector.run_once()
            taken.append(steps.run_once())
            with platform.db.session() as session:
                row = session.get(Job, job.id)
                return row if row.monitor_state == "done" and row.settled_at else None
        poll_until(done, timeout=120, what="the srun job ended, charged, with step snapshots")
        stats = client.stats(job.id)
    assert sum(taken) >= 4, taken
    assert stats["partial"] and stats["steps"]["steps"] >= 2 and stats["steps"]["tasks"] >= 3, stats["steps"]
    assert stats["samples"] >= 4 and stats["steps"]["cpu_seconds"] >= 12, stats["steps"]  # two busy tasks
    assert 0.3 <= stats["efficiency"]["cpu_efficiency"] <= 0.65, (stats["efficiency"], stats["steps"])
    assert not any(f["code"] in ("single_threaded", "idle_cores") for f in stats["findings"])

"""Monitoring under real Slurm (test bed): the injected agent samples the batch job's processes
on the node; the samples come back and the analysis sees one busy core of four.

The jobs spin for a fixed amount of CPU time, not wall time, and print what they really got: on a
busy machine a spinning process gets less than a core, so the expected efficiency is computed from
the CPU time the job reports over its elapsed time, never assumed."""

from decimal import Decimal

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import BillingConfig, MonitoringConfig
from computenet.services.monitoring.monitoring import SampleCollector
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Job

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm


# spins until it has had SECONDS of CPU, then prints "cpu=<seconds> wall=<seconds>"
SPIN = ("python3 -c 'import time\nw = time.time()\nwhile time.process_time() < {seconds}: pass\n"
        "print(\"cpu=%.3f wall=%.3f\" % (time.process_time(), time.time() - w))'")


def _got(client, job_id: int, cores: int) -> tuple[float, float]:
    """(the cores the job's spinners really had on average, the CPU efficiency that implies over
    the job's elapsed time) from what each spinner printed."""
    lines = [line for line in client.output(job_id).data.splitlines() if line.startswith("cpu=")]
    assert lines, "the job printed no CPU time"
    cpu = sum(float(line.split()[0][4:]) for line in lines)
    wall = max(float(line.split()[1][5:]) for line in lines)
    job = client.job(job_id)
    elapsed = (job.end_time - job.start_time).total_seconds() if job.start_time and job.end_time else wall
    return cpu / wall, cpu / (max(elapsed, wall) * cores)


def test_a_slurm_job_is_sampled_and_diagnosed(testbed, make_platform):
    # seconds at the test bed's list prices round to nothing: a minimum charge makes the waste visible
    platform = make_platform(slurm_clusters(testbed), billing=BillingConfig(minimum_charge=Decimal("1.00")),
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=0.5))
    _, token = add_user(platform, "sid", balance="50.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 4 -t 5\n"
                            + SPIN.format(seconds=5) + "\n")
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
        cores_got, expected = _got(client, job.id, cores=4)
    assert stats["samples"] >= 6, stats
    # what the samples saw matches what the spinner really had (one core on an idle machine: 0.25)
    assert abs(stats["efficiency"]["cpu_efficiency"] - expected) <= 0.1, (stats["efficiency"], expected)
    assert Decimal(stats["price"]) == Decimal("1.00")
    if cores_got >= 0.9:  # the spinner had a whole core: the finding must say one core was busy
        single = next(f for f in stats["findings"] if f["code"] == "single_threaded")
        assert Decimal(single["wasted"]) == Decimal("0.75")
    assert seen_running, "no samples were read while the job ran"


def test_srun_work_is_measured_by_slurms_step_accounting(testbed, make_platform):
    """Two busy srun tasks of a 4-task job run under slurmstepd, where the batch agent cannot see them;
    sstat snapshots taken while it runs give the CPU efficiency instead (about 2 of 4 cores)."""
    from computenet.services.monitoring.step_usage import StepUsageCollector

    platform = make_platform(slurm_clusters(testbed), billing=BillingConfig(minimum_charge=Decimal("1.00")),
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=0.5))
    _, token = add_user(platform, "stan", balance="50.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -M alpha -p cpu -n 4 -c 1 -t 5\n"
                            "srun -n 2 " + SPIN.format(seconds=12) + "\n")
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
        cores_got, expected = _got(client, job.id, cores=4)
    assert sum(taken) >= 4, taken
    assert stats["partial"] and stats["steps"]["steps"] >= 2 and stats["steps"]["tasks"] >= 3, stats["steps"]
    assert stats["samples"] >= 4 and stats["steps"]["cpu_seconds"] >= 12, stats["steps"]  # two busy tasks
    # about 2 of 4 cores on an idle machine; whatever the two spinners really had on a busy one
    assert abs(stats["efficiency"]["cpu_efficiency"] - expected) <= 0.12, (stats["efficiency"], stats["steps"], expected)
    if cores_got >= 1.8:
        assert not any(f["code"] in ("single_threaded", "idle_cores") for f in stats["findings"])

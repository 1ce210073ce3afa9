"""Old jobs' series downsampled with their totals, peaks and gaps intact; Slurm step snapshots
(sstat) folded into a view; and the efficiency table over users, projects and periods with who
may see what."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ApiError, ComputeNetClient
from computenet.config import MonitoringConfig
from computenet.monitoring.steps import StepSnapshot, view
from computenet.services.tenancy import accounts, tenants
from computenet.services.monitoring.monitoring import SampleCollector, analyse
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.monitoring.sample_retention import SampleCompactor
from computenet.store.models import Job, JobSample, JobStepSample
from computenet.store.types import utcnow

from conftest import local_cluster, poll_until


def test_step_view_counts_every_step_once_at_its_largest():
    snaps = [StepSnapshot(100, "batch", 1, 1, 10, 100), StepSnapshot(100, "0", 4, 2, 30, 400),
             StepSnapshot(160, "batch", 1, 1, 20, 150), StepSnapshot(160, "0", 4, 2, 150, 300),
             StepSnapshot(220, "batch", 1, 1, 25, 120)]  # step 0 ended: its 150 s still count
    v = view(snaps, cores=4, started_at=40)
    assert (v.steps, v.tasks, v.nodes) == (2, 5, 2)
    assert v.cpu_seconds == 175 and v.window_s == 180
    assert v.cpu_efficiency == pytest.approx(175 / (4 * 180))
    assert v.peak_rss == 500  # the highest sum within one snapshot, not the sum of peaks
    assert view([], 4, 40) is None
    assert view(snaps, cores=4, started_at=None).cpu_efficiency is None  # no start: no window, no verdict


@pytest.fixture
def org(make_platform):
    platform = make_platform([local_cluster(slots=8)],
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=0.5, downsample_s=60))
    with platform.db.session() as session:
        tenant = tenants.create_tenant(session, "uni", "university")
        people = {name: accounts.create_user(session, name) for name in ("pi", "student", "admin", "outsider",
                                                                         "auditor")}
        project = tenants.create_project(session, tenant, "md-lab", people["pi"])
        tenants.set_member(session, project, people["student"])
        accounts.top_up(session, project, "100.00", key="md:grant")
        for name in ("pi", "student", "admin"):
            people[name].tenant_id = tenant.id
        people["admin"].role, people["auditor"].role = "tenant_admin", "finance"
        accounts.create_account(session, "outsider-lab", owner=people["outsider"])
        tokens = {name: accounts.issue_token(session, user) for name, user in people.items()}
    with EmbeddedServer(platform, run_services=False) as srv:
        clients = {name: ComputeNetClient(srv.url, token) for name, token in tokens.items()}
        poller, collector = ClusterPoller(platform, "local"), SampleCollector(platform)
        jobs = {}
        for name in ("pi", "student"):
            jobs[name] = clients[name].submit("#!/bin/bash\n#SBATCH -c 2 -t 5 -A md-lab\nsleep 1.5\n").id

        def ended():
            poller.run_once()
            collector.run_once()
            with platform.db.session() as session:
                return all(session.get(Job, j).monitor_state == "done" and session.get(Job, j).settled_at
                           for j in jobs.values())
        poll_until(ended, timeout=90, what="both jobs ended, charged and their samples read")
        yield platform, clients, jobs, srv
        for c in clients.values():
            c.close()


def _seen(client, **filters):
    return sorted(r["job"] for r in client.efficiency(**filters))


def test_who_sees_whose_efficiency(org):
    platform, c, jobs, srv = org
    pi_job, student_job = jobs["pi"], jobs["student"]
    assert _seen(c["student"]) == [student_job]  # by default: one's own
    assert _seen(c["student"], project="md-lab") == [student_job]  # a plain member: own jobs in the project
    assert _seen(c["pi"], project="md-lab") == [pi_job, student_job]  # the PI: the whole project
    assert _seen(c["admin"], user="student") == [student_job]  # the tenant's admin: the tenant's users
    assert _seen(c["auditor"], project="md-lab") == [pi_job, student_job]
    rows = c["pi"].efficiency(project="md-lab")
    assert {r["user"] for r in rows} == {"pi", "student"} and {r["project"] for r in rows} == {"md-lab"}
    for who, filters, status in (("student", {"user": "pi"}, 404), ("outsider", {"user": "student"}, 404),
                                 ("outsider", {"project": "md-lab"}, 404), ("pi", {"user": "nobody"}, 404),
                                 ("student", {"project": "md-lab", "user": "pi"}, 404)):
        with pytest.raises(ApiError) as refused:
            c[who].efficiency(**filters)
        assert refused.value.status == status, (who, filters, refused.value)


def test_efficiency_over_a_period(org):
    platform, c, jobs, srv = org
    with platform.db.session() as session:
        session.get(Job, jobs["student"]).end_time = utcnow() - timedelta(days=40)
    today = utcnow().date()
    assert _seen(c["pi"], project="md-lab", since=str(today)) == [jobs["pi"]]
    assert _seen(c["pi"], project="md-lab", until=str(today - timedelta(days=30))) == [jobs["student"]]
    with pytest.raises(ApiError) as refused:
        c["pi"].efficiency(since=str(today), until=str(today - timedelta(days=1)))
    assert refused.value.status == 400 and "before" in str(refused.value)
    bad = httpx.get(f"{srv.url}/efficiency", params={"from": "last tuesday"},
                    headers=dict(c['pi'].http.headers))
    assert bad.status_code == 422


def _day_of_samples(job_id: int, start: float) -> list[dict]:
    """A day at 10 s: one busy core of 2, RSS ramping to 3 GB at noon, the agent away 14:00-14:30."""
    rows, cpu = [], 0.0
    for i in range(8640):
        t = start + 10 * i
        if 14 * 3600 <= t - start < 14.5 * 3600:
            continue
        cpu += 10.0
        rss = int(3e9 * (1 - abs(t - start - 43200) / 43200))
        rows.append(dict(job_id=job_id, t=t, seq=i, cpu_s=cpu, cores=1.0, rss=rss, read_bytes=i * 4096,
                         write_bytes=i * 1024, nproc=2, nthreads=3, gpus=None))
    return rows


def test_old_jobs_are_downsampled_keeping_totals_peaks_and_gaps(org):
    platform, c, jobs, srv = org
    job_id, fresh = jobs["pi"], jobs["student"]
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        session.query(JobSample).filter(JobSample.job_id == job_id).delete()
        start = (utcnow() - timedelta(days=41)).timestamp()
        session.execute(JobSample.__table__.insert(), _day_of_samples(job_id, start))
        job.start_time = utcnow() - timedelta(days=41)
        job.end_time = job.start_time + timedelta(days=1)
        job.sample_interval_s = 10.0
        for step, cpu in (("batch", 100.0), ("batch", 900.0), ("0", 50.0)):
            session.add(JobStepSample(job_id=job_id, t=start + cpu, step=step, ntasks=1, nodes=1, cpu_s=cpu,
                                      rss=1, read_bytes=0, write_bytes=0))
        before = analyse(session, platform, job)
    assert before["samples"] > 8000 and len(before["series"]["t"]) <= 2000  # charts get a readable series

    with platform.db.session() as session:
        top = session.scalar(select(func.max(JobSample.id)))
    assert SampleCompactor(platform).run_once() == 1  # the job that ended today is left alone
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        after = analyse(session, platform, job)
        rows = session.scalar(select(func.count()).select_from(JobSample).where(JobSample.job_id == job_id))
        steps = sorted(session.scalars(select(JobStepSample.cpu_s).where(JobStepSample.job_id == job_id)))
        assert session.scalar(select(func.max(JobSample.id))) == top  # rows rewritten in place: no new ids
        assert job.monitor_state == "archived" and session.get(Job, fresh).monitor_state == "done"
    assert rows <= 8640 * 10 / 60 + 5  # one row a minute instead of one per 10 s
    assert steps == [50.0, 900.0]  # each step's last snapshot holds its total
    b, a = before["efficiency"], after["efficiency"]
    assert a["cpu_seconds"] == b["cpu_seconds"] and a["peak_rss"] == b["peak_rss"]
    assert a["cpu_efficiency"] == pytest.approx(b["cpu_efficiency"], rel=1e-6)
    assert a["mean_cores"] == pytest.approx(b["mean_cores"], rel=1e-6)
    assert after["gaps"] == before["gaps"] and len(after["gaps"]) == 1  # the agent's absence is still there
    assert after["interval_s"] == 60
    assert SampleCompactor(platform).run_once() == 0  # done once


def test_wait_prediction_from_a_users_earlier_runs_of_the_same_job(make_platform):
    """Jobs outside the app centre are predicted from their owner's earlier runs of the same job
    name (three at least); someone else's runs of a job with that name say nothing about it."""
    from decimal import Decimal

    from computenet.clusters.base import QueueEntry
    from computenet.domain.states import JobState
    from computenet.services.network.routing import app_ratios
    from computenet.store.models import Account, Cluster, JobProfile

    from conftest import add_user

    platform = make_platform([local_cluster(slots=4)])
    ada, _ = add_user(platform, "ada")
    bob, _ = add_user(platform, "bob")
    with platform.db.session() as session:
        cluster = session.query(Cluster).filter(Cluster.name == "local").one()

        def job(owner, name, native_id, state="RUNNING"):
            account = session.query(Account).filter(Account.name == ("ada-lab" if owner == ada else "bob-lab")).one()
            row = Job(owner_id=owner, account_id=account.id, cluster_id=cluster.id, partition="local", spec={},
                      script="", workdir="", stdout_path="", stderr_path="", cores=2, name=name, native_id=native_id,
                      state=state, time_limit_minutes=100)
            session.add(row)
            session.flush()
            return row

        mine, theirs = job(ada, "relax.sh", "301"), job(bob, "relax.sh", "302")
        for i, (owner, runtime) in enumerate([(ada, 600), (ada, 660), (ada, 720), (bob, 5000), (bob, 5100),
                                              (bob, 5200), (bob, 5300)]):
            done = job(owner, "relax.sh", str(400 + i), "COMPLETED")
            session.add(JobProfile(job_id=done.id, app="job:relax.sh", user_id=owner, cluster_id=cluster.id, cores=2,
                                   gpus=0, runtime_s=runtime, time_limit_s=6000, cpu_efficiency=0.9, peak_rss=1,
                                   gpu_utilisation=None, price=Decimal("1.00"), wasted=Decimal("0"),
                                   finished_at=utcnow() - timedelta(hours=i)))
        session.flush()
        entries = [QueueEntry(native_id=n, partition="local", state=JobState.RUNNING, cpus=2, nodes=1, gpus=0,
                              time_limit_s=6000, elapsed_s=0, priority=1) for n in ("301", "302")]
        ratios = dict(app_ratios(session, "local", entries))
        assert ratios["301"] == pytest.approx(660 / 6000)  # ada's own three runs
        assert ratios["302"] == pytest.approx(5150 / 6000)  # bob's four
        assert mine.id != theirs.id
        session.query(JobProfile).filter(JobProfile.user_id == ada, JobProfile.runtime_s == 720).delete()
        assert "301" not in dict(app_ratios(session, "local", entries))  # two runs are not a habit


@pytest.mark.parametrize("script,app", [
    ("#!/bin/bash\n#SBATCH -n 64\nmodule load lammps\nsrun lmp_mpi -in in.lj\n", "lammps"),
    ("#!/bin/bash\nmpirun -np 8 gmx_mpi mdrun -deffnm md\n", "gromacs"),
    ("#!/bin/bash\nmpirun pw.x -in scf.in > scf.out\n", "quantum-espresso"),
    ("#!/bin/bash\nblockMesh\nsimpleFoam -parallel\n", "openfoam"),
    ("#!/bin/bash\ntorchrun --nproc_per_node=8 train.py\n", "pytorch-ddp"),
    ("#!/bin/bash\n# lmp_mpi is what we used to run\npython3 analyse.py\n", None),  # comments do not count
    ("#!/bin/bash\n./my_lmp_wrapper.sh\ncat plmp.x\n", None),  # part of another word is not the program
    ("#!/bin/bash\necho done  # then run pw.x\n", None),
])
def test_the_application_is_inferred_from_the_executable(script, app):
    from computenet.monitoring.infer import infer_app, profile_key

    assert infer_app(script) == app
    assert profile_key(None, script, "run.sh") == (app or "job:run.sh")
    assert profile_key({"name": "lammps"}, script, "x") == "lammps"  # the app centre's name comes first


def test_samples_older_than_the_job_are_not_its_own(org):
    """A samples file left in a reused job directory by an earlier job with the same id (the
    platform's database was reset, the cluster's filesystem was not) must not be read as this
    job's: its CPU would be counted on top of this job's."""
    from computenet.monitoring.series import Sample
    from computenet.services.monitoring.monitoring import ingest

    platform, c, jobs, srv = org
    job_id = jobs["pi"]

    def sample(t, cpu):
        return Sample.from_json({"t": t, "seq": 0, "cpu_s": cpu, "cores": 1.0, "rss": 1, "read": 0, "write": 0,
                                 "nproc": 1, "nthreads": 1, "gpus": []})
    with platform.db.session() as session:
        submitted = session.get(Job, job_id).submitted_at.timestamp()
        stored = session.scalar(select(func.count()).select_from(JobSample).where(JobSample.job_id == job_id))
        assert ingest(session, job_id, [sample(submitted - 3600, 500.0), sample(submitted - 900, 900.0)]) == 0
        assert ingest(session, job_id, [sample(submitted - 60, 1.0)]) == 1  # a node clock a minute behind is fine
        assert session.scalar(select(func.count()).select_from(JobSample)
                              .where(JobSample.job_id == job_id)) == stored + 1

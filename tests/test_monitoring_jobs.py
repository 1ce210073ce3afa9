"""Monitoring real jobs on the embedded local executor: the agent rides in the batch script,
its samples come back into the database, and the analysis reads them (efficiency, findings, cost)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app
from computenet.config import MonitoringConfig
from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.services.monitoring.monitoring import SampleCollector
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Job, JobSample

from conftest import add_user, local_cluster, poll_until

# spins until it has had {s} seconds of CPU (not wall time: a busy machine steals CPU from it) and prints
# what it really got, so a test compares the measured efficiency with that, never with an assumed share
BUSY = ("python3 -c 'import time\nw = time.time()\nwhile time.process_time() < {s}: pass\n"
        "print(\"cpu=%.3f wall=%.3f\" % (time.process_time(), time.time() - w))'")


def got(client, job_id: int, cores: int) -> tuple[float, float, float]:
    """(the cores the spinner really had, the CPU efficiency that implies over the job's elapsed time,
    that elapsed time in seconds) from what the spinner printed and the job's own times."""
    line = next(x for x in client.output(job_id).data.splitlines() if x.startswith("cpu="))
    cpu, wall = (float(part.split("=")[1]) for part in line.split())
    job = client.job(job_id)
    elapsed = max((job.end_time - job.start_time).total_seconds(), wall)
    return cpu / wall, cpu / (elapsed * cores), elapsed


@pytest.fixture
def watched(make_platform):
    platform = make_platform([local_cluster(slots=8)],
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=0.5))
    _, token = add_user(platform, "mona", balance="100.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        poller, collector = ClusterPoller(platform, "local"), SampleCollector(platform)

        def run(script: str) -> dict:
            job = client.submit(script)

            def ended():
                poller.run_once()
                collector.run_once()
                with platform.db.session() as session:
                    row = session.get(Job, job.id)
                    return row if row.monitor_state == "done" and row.settled_at else None
            poll_until(ended, timeout=90, what=f"job {job.id} ended, charged and its samples read")
            return client.stats(job.id)
        yield platform, client, run, srv, token


def test_one_busy_process_on_four_cores_is_a_quarter_efficient_and_priced(watched):
    platform, client, run, srv, token = watched
    stats = run(f"#!/bin/bash\n#SBATCH -c 4 -t 5\n{BUSY.format(s=5)}\n")
    eff = stats["efficiency"]
    cores_got, expected, _ = got(client, stats["job"], cores=4)
    assert stats["samples"] >= 6 and len(stats["gaps"]) <= 1  # a loaded machine may stall one sample
    assert abs(eff["cpu_efficiency"] - expected) <= 0.1, (eff, expected)  # 0.25 when the spinner had a core
    codes = {f["code"]: f for f in stats["findings"]}
    paid = Decimal(stats["price"])
    assert paid > 0
    whole_core = cores_got >= 0.9  # else the machine was too busy to show one busy core of four
    if whole_core:
        assert "single_threaded" in codes and "idle_cores" not in codes
        assert Decimal(codes["single_threaded"]["wasted"]) == (paid * 3 / 4).quantize(Decimal("0.01"))
        assert "-c 1" in codes["single_threaded"]["recommendation"] or \
            "-n 1" in codes["single_threaded"]["recommendation"]
    shown = CliRunner().invoke(app, ["job", str(stats["job"]), "--stats"],
                               env={"COMPUTENET_URL": srv.url, "COMPUTENET_TOKEN": token, "COLUMNS": "160"})
    assert shown.exit_code == 0 and "CPU" in shown.output and "of 4 cores" in shown.output, shown.output
    png = client.stats_png(stats["job"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    chart = platform.settings.data_dir / "chart.png"
    shown = CliRunner().invoke(app, ["job", str(stats["job"]), "--stats", "--png", str(chart)],
                               env={"COMPUTENET_URL": srv.url, "COMPUTENET_TOKEN": token})
    assert shown.exit_code == 0 and chart.read_bytes().startswith(b"\x89PNG"), shown.output
    table = CliRunner().invoke(app, ["efficiency"], env={"COMPUTENET_URL": srv.url, "COMPUTENET_TOKEN": token,
                                                         "COLUMNS": "200"})
    assert table.exit_code == 0 and str(stats["job"]) in table.output, table.output
    assert "single_threaded" in table.output or not whole_core, table.output


def test_memory_peak_is_seen(watched):
    platform, client, run, *_ = watched
    grab = "python3 -c 'import time\nb = bytearray(2 * 1024 ** 3)\nb[::4096] = bytes(len(b) // 4096)\ntime.sleep(2)'"
    stats = run(f"#!/bin/bash\n#SBATCH -c 1 --mem=4G -t 5\n{grab}\n")
    assert stats["efficiency"]["peak_rss"] >= 1.9 * 1024 ** 3
    assert 0.45 <= stats["efficiency"]["mem_efficiency"] <= 0.6
    from computenet.store.models import JobProfile

    with platform.db.session() as session:  # what the efficiency report prices (over-requested memory, findings)
        profile = session.get(JobProfile, stats["job"])
        assert profile.mem_requested_bytes == 4 * 1024 ** 3
        assert {f["code"] for f in profile.findings} == {f["code"] for f in stats["findings"]}


def test_a_sleeping_job_is_idle(watched):
    platform, client, run, *_ = watched
    stats = run("#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 3\n")
    codes = [f["code"] for f in stats["findings"]]
    assert "idle_job" in codes and "idle_cores" not in codes
    assert stats["efficiency"]["cpu_efficiency"] < 0.05


def test_a_killed_agent_leaves_a_gap_not_zeros(watched):
    platform, client, run, *_ = watched
    script = ("#!/bin/bash\n#SBATCH -c 1 -t 5\n"
              f"{BUSY.format(s=6)} &\nsleep 2\nkill -KILL \"$__cnet_agent\"\nwait\n")
    stats = run(script)
    eff, times = stats["efficiency"], stats["series"]["t"]
    with platform.db.session() as session:
        job = session.get(Job, stats["job"])
        start, end = job.start_time.timestamp(), job.end_time.timestamp()
        assert session.query(JobSample).filter(JobSample.job_id == job.id).count() == len(times)
    assert end - times[-1] >= 2.5  # nothing recorded after the kill: no zeros were made up
    assert eff["covered_fraction"] < 0.7
    # efficiency is the CPU time the job really got over the time observed (1 core), not over the whole
    # run with the unseen end counted as idle; compared with what the process got, not with a share of
    # the machine (another process may take the core)
    assert eff["cpu_seconds"] > 0
    observed = eff["cpu_seconds"] / (times[-1] - start)
    assert abs(eff["cpu_efficiency"] - observed) <= 0.05 * observed, (eff, observed)
    assert eff["cpu_efficiency"] >= 1.4 * eff["cpu_seconds"] / (end - start), eff


def test_a_non_shell_script_runs_unmonitored(watched):
    platform, client, run, *_ = watched
    job = client.submit("#!/usr/bin/env python3\n#SBATCH -c 1 -t 5\nprint('hello')\n")
    with platform.db.session() as session:
        assert session.get(Job, job.id).monitor_state is None
    assert client.stats(job.id)["monitored"] is None


def test_prometheus_metrics_for_operators(watched):
    from sqlalchemy import select

    from computenet.store.models import User

    platform, client, run, srv, token = watched
    run("#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1\n")
    client.submit("#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 30\n")
    import httpx

    assert httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    with platform.db.session() as session:
        session.scalar(select(User).where(User.name == "mona")).role = "operator"
    response = httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#"))
    assert lines['computenet_jobs{cluster="local",state="COMPLETED"}'] == "1"
    assert lines['computenet_cluster_cores{cluster="local"}'] == "8"
    assert lines['computenet_cluster_up{cluster="local",health="online"}'] == "1"
    assert int(lines["computenet_samples_stored_total"]) >= 2 and "computenet_step_snapshots_total" in lines
    assert 'computenet_queue_depth{cluster="local"}' in lines


@pytest.mark.parametrize("action", ["notify", "cancel"])
def test_a_job_keeping_its_gpu_idle_is_reported_once_or_cancelled(make_platform, action):
    import time as clock

    from computenet.services.monitoring.idle_gpus import watch_idle_gpus
    from computenet.store.models import Notification

    platform = make_platform([local_cluster(slots=4, gpus=2)], monitoring=MonitoringConfig(
        interval_s=10, idle_gpu_minutes=30, idle_gpu_action=action))
    user_id, token = add_user(platform, "gia", balance="500.00")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -c 1 --gres=gpu:1 -t 60\nsleep 120\n")
        poller = ClusterPoller(platform, "local")
        poll_until(lambda: client.job(job.id).state == "RUNNING", step=poller.run_once, timeout=30, what="running")
        now = clock.time()

        def samples(minutes: float, util: int, end: float) -> list[JobSample]:
            return [JobSample(job_id=job.id, t=end - minutes * 60 + i * 10, seq=i, cpu_s=i * 0.1, cores=0.01,
                              rss=10**8, read_bytes=0, write_bytes=0, nproc=2, nthreads=2,
                              gpus=[{"index": 0, "uuid": "GPU-x", "name": "NVIDIA A100", "util": util,
                                     "mem_used": 10**9, "mem_total": 80 * 10**9}])
                    for i in range(int(minutes * 6) + 1)]
        with platform.db.session() as session:  # 20 idle minutes: not yet
            session.add_all(samples(20, 0, now - 600))
        assert watch_idle_gpus(platform, job.id) is None
        with platform.db.session() as session:  # then 11 more (31 in all, no gap)
            session.add_all(samples(10, 1, now)[1:])
        assert watch_idle_gpus(platform, job.id) == ("notified" if action == "notify" else "cancelled")
        assert watch_idle_gpus(platform, job.id) is None  # once
        with platform.db.session() as session:
            notes = session.query(Notification).filter(Notification.user_id == user_id,
                                                       Notification.kind == "idle_gpu").all()
            assert len(notes) == 1 and "idle for 30 minutes" in notes[0].message
        if action == "cancel":
            ended = poll_until(lambda: (lambda j: j if j.state == "CANCELLED" else None)(client.job(job.id)),
                               step=poller.run_once, timeout=30, what="the idle job cancelled")
            assert ended.state == "CANCELLED"
        else:
            assert client.job(job.id).state == "RUNNING"
            client.cancel(job.id)


def test_a_busy_gpu_or_a_gap_is_not_idle():
    from computenet.services.monitoring.idle_gpus import idle_gpu_minutes

    def row(t, util):
        return JobSample(job_id=1, t=t, seq=0, cpu_s=0, cores=0, rss=0, read_bytes=0, write_bytes=0, nproc=1,
                         nthreads=1, gpus=[{"util": util}, {"util": 0}])
    idle = [row(i * 10.0, 0) for i in range(100)]
    assert 16 <= idle_gpu_minutes(idle, 10) <= 17
    assert idle_gpu_minutes(idle[:-1] + [row(990.0, 50)], 10) == 0  # one card busy now
    with_gap = [row(i * 10.0, 0) for i in range(50)] + [row(2000.0 + i * 10, 0) for i in range(30)]
    assert 4.5 <= idle_gpu_minutes(with_gap, 10) <= 5  # only since the gap


def test_the_application_characteristics_database(watched):
    from computenet.services.monitoring.app_profiles import characteristics, typical_runtime_s

    platform, client, run, *_ = watched
    seen = []  # (efficiency the spinner's CPU implies, elapsed) of each run
    for seconds in (1, 3):
        stats = run(f"#!/bin/bash\n#SBATCH -J busy -c 2 -t 5\n{BUSY.format(s=seconds)}\n")
        seen.append(got(client, stats["job"], cores=2)[1:])
    efficiencies, runtimes = sorted(e for e, _ in seen), sorted(r for _, r in seen)
    with platform.db.session() as session:
        (row,) = characteristics(session, app="job:busy")  # not an app-centre run: never shown as an app
        # the middle of the two runs: what their spinners really had (one busy process of two cores: 0.5)
        assert row["jobs"] == 2 and runtimes[0] - 1 <= row["runtime_s"]["p50"] <= runtimes[1] + 1, (row, seen)
        assert efficiencies[0] - 0.1 <= row["cpu_efficiency_p50"] <= efficiencies[1] + 0.1, (row, seen)
        assert row["runtime_by_cores"].keys() == {"2"}
        (by_user,) = characteristics(session, app="job:busy", by="user")
        assert by_user["user"] == "mona"
        assert runtimes[0] - 1 <= typical_runtime_s(session, "job:busy", cores=2) <= runtimes[1] + 1
        assert typical_runtime_s(session, "nothing-like-it") is None


def test_wait_prediction_uses_what_an_apps_runs_take(make_platform):
    from datetime import timedelta

    from computenet.clusters.base import QueueEntry
    from computenet.domain.states import JobState
    from computenet.routing.estimate import History, plan, wait_on
    from computenet.routing.model import Target
    from computenet.services.network.routing import app_ratios
    from computenet.store.models import Account, Cluster, JobProfile, User
    from computenet.store.types import utcnow

    target = Target(cluster="local", partition="local", nodes=1, cores_per_node=4, mem_per_node_mb=8000)
    running = [QueueEntry(native_id="101", partition="local", state=JobState.RUNNING, cpus=4, nodes=1, gpus=0,
                          time_limit_s=3600, elapsed_s=0, priority=1, user="u")]
    as_limit = wait_on(plan(target, running, History()), 4, 0, 600, History())
    by_app = History(job_ratios=(("101", 0.1),))
    assert as_limit == pytest.approx(3600, abs=1)
    assert wait_on(plan(target, running, by_app), 4, 0, 600, by_app) == pytest.approx(360, abs=1)

    platform = make_platform([local_cluster(slots=4)])
    user_id, _ = add_user(platform, "ada")
    with platform.db.session() as session:
        cluster = session.query(Cluster).filter(Cluster.name == "local").one()
        account = session.query(Account).filter(Account.name == "ada-lab").one()
        app = {"name": "lammps", "version": "x", "params": {}}
        common = dict(owner_id=user_id, account_id=account.id, cluster_id=cluster.id, partition="local",
                      spec={}, script="", workdir="", stdout_path="", stderr_path="", cores=4, app=app)
        queued = Job(name="lammps", native_id="101", state="RUNNING", time_limit_minutes=60, **common)
        plain = Job(name="other", native_id="102", state="RUNNING", time_limit_minutes=60,
                    **{**common, "app": None})
        done = [Job(name="lammps", native_id=str(200 + i), state="COMPLETED", time_limit_minutes=60, **common)
                for i in range(3)]
        session.add_all([queued, plain, *done])
        session.flush()
        for i, job in enumerate(done):  # past lammps runs on 4 cores took 5-7 minutes
            session.add(JobProfile(job_id=job.id, app="lammps", user_id=user_id, cluster_id=cluster.id, cores=4,
                                   gpus=0, runtime_s=300 + 60 * i, time_limit_s=3600, cpu_efficiency=0.9,
                                   peak_rss=10**9, gpu_utilisation=None, price=Decimal("1.00"),
                                   wasted=Decimal("0"), finished_at=utcnow() - timedelta(hours=i)))
        session.flush()
        entries = [running[0], QueueEntry(native_id="102", partition="local", state=JobState.RUNNING, cpus=4,
                                          nodes=1, gpus=0, time_limit_s=3600, elapsed_s=0, priority=1)]
        assert app_ratios(session, "local", entries) == (("101", pytest.approx(0.1)),)
        assert session.get(User, user_id).name == "ada"


def test_agents_post_their_samples_to_the_control_plane_with_a_per_job_token(make_platform):
    import socket

    import httpx

    from computenet.monitoring.agent_key import agent_token

    with socket.socket() as probe:  # the server's port, known before the platform (agents need the URL)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    platform = make_platform([local_cluster(slots=4)], monitoring=MonitoringConfig(
        interval_s=0.5, agent_url=f"http://127.0.0.1:{port}", agent_secret="test-secret"))
    _, token = add_user(platform, "pia")
    with EmbeddedServer(platform, port=port, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        job = client.submit(f"#!/bin/bash\n#SBATCH -c 1 -t 5\n{BUSY.format(s=4)}\n")
        poller = ClusterPoller(platform, "local")

        def posted():  # no SampleCollector runs here: only what the agent sent
            with platform.db.session() as session:
                return session.query(JobSample).filter(JobSample.job_id == job.id).count() >= 3
        poll_until(posted, step=poller.run_once, timeout=60, what="samples posted by the agent")
        good = agent_token(platform.settings, job.id)
        sample = {"t": round(time.time(), 3) + 0.0005, "seq": 0, "cpu_s": 0.0, "cores": 0.0, "rss": 1,
                  "read": 0, "write": 0, "nproc": 1, "nthreads": 1, "gpus": []}  # not older than the job
        for who, status in ((agent_token(platform.settings, job.id + 1), 403), ("x", 403), (token, 403)):
            answer = httpx.post(f"{srv.url}/monitoring/samples", json={"job": str(job.id), "samples": [sample]},
                                headers={"Authorization": f"Bearer {who}"})
            assert answer.status_code == status, answer.text
        first = httpx.post(f"{srv.url}/monitoring/samples", json={"job": str(job.id), "samples": [sample]},
                           headers={"Authorization": f"Bearer {good}"})
        again = httpx.post(f"{srv.url}/monitoring/samples", json={"job": str(job.id), "samples": [sample]},
                           headers={"Authorization": f"Bearer {good}"})
        assert first.json() == {"stored": 1} and again.json() == {"stored": 0}  # idempotent
        client.cancel(job.id)


@pytest.mark.parametrize("script, state, code", [
    ("set -euo pipefail\nsleep 1\necho fine\n", "COMPLETED", 0),
    ("set -euo pipefail\nsleep 1\nexit 3\n", "FAILED", 3),
    ("set -e\nsleep 1 &\nwait\n", "COMPLETED", 0),  # a bare wait does not wait for the agent
])
def test_the_agent_never_changes_how_a_job_ends(watched, script, state, code):
    platform, client, run, *_ = watched
    stats = run("#!/bin/bash\n#SBATCH -c 1 -t 5\n" + script)
    job = client.job(stats["job"])
    assert (job.state, job.exit_code) == (state, code), job.events
    assert stats["monitored"] == "done"


def test_jobs_sharing_a_directory_keep_their_own_samples(watched):
    platform, client, run, *_ = watched
    first = run("#!/bin/bash\n#SBATCH -c 1 -t 5 -D shared\nsleep 2\n")
    second = run("#!/bin/bash\n#SBATCH -c 1 -t 5 -D shared\nsleep 2\n")
    assert first["samples"] and second["samples"]
    assert min(second["series"]["t"]) > max(first["series"]["t"])  # none of the first job's samples


def test_work_launched_outside_the_batch_shell_gets_no_cpu_verdict(watched):
    platform, client, run, *_ = watched
    stats = run("#!/bin/bash\n#SBATCH -c 2 -t 5\ncommand -v srun >/dev/null || sleep 3\n")
    assert stats["partial"] and "srun" in stats["partial"]
    assert not [f for f in stats["findings"] if f["code"] in ("idle_job", "idle_cores", "single_threaded")]

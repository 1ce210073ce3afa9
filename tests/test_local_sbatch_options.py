"""The local executor honours the sbatch options one host can, each checked from inside a real job,
and refuses the rest with the option named (sbatch_options' local column)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from computenet.clusters.base import SubmitRejected, SubmitRequest
from computenet.clusters.local.adapter import LocalCluster
from computenet.domain import job_env, sbatch_options
from computenet.domain.sbatch import parse_submission
from computenet.domain.states import JobState

from conftest import poll_until


@pytest.fixture
def cluster(tmp_path):
    return LocalCluster("local", tmp_path / "spool", slots=2, mem_mb=4000, max_time_minutes=60,
                        workdir_root=str(tmp_path / "spaces"), isolation_mode="off")


def submit(cluster, tmp_path, script, flags=None):
    text, spec, args = parse_submission(script, flags)
    work = tmp_path / "spaces" / "ann" / "jobs" / "1"
    return cluster.submit(SubmitRequest(
        script=text, spec=spec, job_name="job", workdir=str(work), output=str(work / "out-%j.txt"),
        error=str(work / "out-%j.txt"), comment="computenet:1", script_args=tuple(args),
        environment={"COMPUTENET_JOB_ID": "1"}))


def finished(cluster, job, timeout=30):
    return poll_until(lambda: (lambda s: s if s.state.is_terminal else None)(cluster.status([job])[job]),
                      timeout=timeout, what=f"job {job} to end")


def output(tmp_path, job) -> str:
    return (tmp_path / "spaces" / "ann" / "jobs" / "1" / f"out-{job}.txt").read_text()


ENV = "#!/bin/bash\necho \"HOME=$HOME MYVAR=${MYVAR-unset} PATH=${PATH-unset} A=${A-unset} B=${B-unset}\"\n" \
      "echo \"PER_CPU=${SLURM_MEM_PER_CPU-unset} PER_NODE=${SLURM_MEM_PER_NODE-unset} ID=$SLURM_JOB_ID\"\n"


@pytest.mark.parametrize("flags,expected", [
    ([], {"HOME": "SPACE", "MYVAR": "unset", "PER_CPU": "1024", "PER_NODE": "unset"}),
    (["--export=ALL,MYVAR=42"], {"MYVAR": "42", "HOME": "SPACE"}),
    (["--export=NONE"], {"HOME": "", "MYVAR": "unset"}),  # (bash puts in a PATH of its own)
    (["--export=A=1,B=2"], {"A": "1", "B": "2", "HOME": ""}),
    (["--export=PATH,A=x"], {"A": "x", "HOME": ""}),
    (["--mem-per-cpu=300M"], {"PER_CPU": "300", "PER_NODE": "unset"}),
    (["--mem=500M"], {"PER_NODE": "500", "PER_CPU": "unset"}),
])
def test_the_environment_is_the_users_as_export_says(cluster, tmp_path, flags, expected):
    job = submit(cluster, tmp_path, ENV, flags)
    assert finished(cluster, job).state is JobState.COMPLETED
    seen = dict(word.split("=", 1) for word in output(tmp_path, job).split())
    space = str(tmp_path / "spaces" / "ann")
    for name, value in expected.items():
        assert seen[name] == (space if value == "SPACE" else value), (name, seen)
    assert seen["ID"] == job  # SLURM_* are always there
    assert os.environ.get("HOME") != seen["HOME"]  # never the server's


def test_begin_keeps_the_job_pending_until_then(cluster, tmp_path):
    job = submit(cluster, tmp_path, "#!/bin/bash\ndate -u +%s\n", ["--begin=now+3"])
    submitted = datetime.now(timezone.utc)
    status = cluster.status([job])[job]
    assert status.state is JobState.PENDING and status.reason == "BeginTime"
    later = submit(cluster, tmp_path, "#!/bin/bash\ntrue\n")  # not held up behind it
    assert finished(cluster, later).state is JobState.COMPLETED
    assert finished(cluster, job).state is JobState.COMPLETED
    started = datetime.fromtimestamp(int(output(tmp_path, job).split()[0]), timezone.utc)
    assert started >= submitted.replace(microsecond=0) + timedelta(seconds=2)


def test_a_job_over_its_memory_limit_ends_out_of_memory(cluster, tmp_path):
    hog = "#!/bin/bash\npython3 -c 'x = bytearray(400 * 1024 * 1024); print(\"allocated\")'\n"
    job = submit(cluster, tmp_path, hog, ["--mem=100M"])
    assert finished(cluster, job).state is JobState.OUT_OF_MEMORY
    assert "allocated" not in output(tmp_path, job)
    fits = submit(cluster, tmp_path, hog.replace("400", "20"), ["--mem=200M"])
    assert finished(cluster, fits).state is JobState.COMPLETED


def test_signal_arrives_before_the_time_limit(cluster, tmp_path):
    script = ("#!/bin/bash\ntrap 'echo got USR1 after $SECONDS s; exit 0' USR1\n"
              "for i in $(seq 1 1200); do sleep 0.1; done\necho no signal\n")
    job = submit(cluster, tmp_path, script, ["-t", "1", "--signal=B:USR1@57"])
    assert finished(cluster, job, timeout=40).state is JobState.COMPLETED
    # every process of the job gets it (bash reports the sleep it ended); one host has no steps to spare
    line = [x for x in output(tmp_path, job).splitlines() if x.startswith("got USR1 after ")][0]
    assert int(line.split()[3]) < 30


def test_open_mode_append_keeps_what_was_there(cluster, tmp_path):
    work = tmp_path / "spaces" / "ann" / "jobs" / "1"
    for word, flags in (("one", []), ("two", ["--open-mode=append"])):
        text, spec, _ = parse_submission(f"#!/bin/bash\necho {word}\n", flags)
        job = cluster.submit(SubmitRequest(script=text, spec=spec, job_name="j", workdir=str(work),
                                           output=str(work / "keep.log"), error=str(work / "keep.log"),
                                           comment="computenet:2"))
        finished(cluster, job)
    assert (work / "keep.log").read_text() == "one\ntwo\n"


def test_hold_then_release(cluster, tmp_path):
    job = submit(cluster, tmp_path, "#!/bin/bash\necho ran\n", ["--hold", "--time-min=5"])
    assert cluster.status([job])[job].state is JobState.PENDING
    cluster.resume(job)
    assert finished(cluster, job).state is JobState.COMPLETED and output(tmp_path, job) == "ran\n"


@pytest.mark.parametrize("flags,named", [
    (["--constraint=a100"], "--constraint"), (["--qos=high"], "--qos"), (["--reservation=r"], "--reservation"),
    (["--nice=5"], "--nice"), (["-L", "matlab"], "--licenses"), (["--tmp=10G"], "--tmp"), (["--requeue"], "--requeue"),
    (["--mail-type=END"], "--mail-type"), (["-w", "n1"], "--nodelist"), (["--exclusive=user"], "--exclusive"),
])
def test_what_one_host_cannot_honour_is_refused_by_name(cluster, tmp_path, flags, named):
    with pytest.raises(SubmitRejected, match=named):
        submit(cluster, tmp_path, "#!/bin/bash\ntrue\n", flags)


def test_every_option_has_a_verdict_for_every_kind():
    for option in sbatch_options.OPTIONS:
        for kind in sbatch_options.KINDS:
            verdict = option.verdict(kind)
            assert verdict.status in ("honoured", "translated", "refused", "platform") and verdict.how


def test_begin_forms():
    now = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
    assert job_env.parse_begin("now+1hour", now) == now + timedelta(hours=1)
    assert job_env.parse_begin("now+90", now) == now + timedelta(seconds=90)
    assert job_env.parse_begin("16:00", now) == now + timedelta(hours=1)
    assert job_env.parse_begin("14:00", now) == now + timedelta(hours=23)
    assert job_env.parse_begin("2026-03-12T08:30", now) == datetime(2026, 3, 12, 8, 30, tzinfo=timezone.utc)
    assert job_env.parse_begin("tomorrow", now) == datetime(2026, 3, 11, tzinfo=timezone.utc)
    assert job_env.parse_begin("03/20", now) == datetime(2026, 3, 20, tzinfo=timezone.utc)
    with pytest.raises(job_env.OptionValueError):
        job_env.parse_begin("next tuesday", now)

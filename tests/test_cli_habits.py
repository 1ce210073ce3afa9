"""squeue, sacct, scancel and scontrol habits through `cnet`, against a real server and the local executor."""

import json

import pytest
from typer.testing import CliRunner

from computenet.cli import jobs_cmds
from computenet.cli.main import app
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, poll_until

runner = CliRunner()


@pytest.fixture
def cli(platform, server, tmp_path):
    _, token = add_user(platform, "lee")

    def run(*args, input=None, token=token):
        env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token,
               "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "80"}
        return runner.invoke(app, list(args), env=env, input=input)

    run.poller = ClusterPoller(platform, "local")
    return run


def submit(cli, *flags, script="#!/bin/bash\necho \"name=$SLURM_JOB_NAME\"\n"):
    result = cli("submit", *flags, input=script)
    assert result.exit_code == 0, result.output + result.stderr
    return int(result.stdout.split()[3])


def ended(cli, job_id):
    poll_until(lambda: json.loads(cli("jobs", "--json", "-t", "all").stdout)[[
        j["id"] for j in json.loads(cli("jobs", "--json", "-t", "all").stdout)].index(job_id)]["state"]
        in ("COMPLETED", "FAILED", "CANCELLED"), step=cli.poller.run_once, what=f"job {job_id} to end")


@pytest.fixture
def three_jobs(cli):
    """One ended job and two held (PENDING) ones; a long name to see it whole in a pipe."""
    done = submit(cli, "-J", "quick", "-t", "5")
    ended(cli, done)
    long_name = "a-rather-long-job-name-that-a-box-table-would-cut-at-80-columns"
    held = [submit(cli, "--hold", "-J", long_name, "-t", "10"), submit(cli, "--hold", "-J", "b", "-t", "10")]
    cli.poller.run_once()
    return done, held, long_name


def test_jobs_states_compact_and_long_lists_and_formats(cli, three_jobs):
    done, (first, second), long_name = three_jobs
    pending = cli("jobs", "-t", "PD", "-o", "%i", "-h").stdout.split()
    assert pending == [str(second), str(first)]  # newest first
    assert cli("jobs", "-t", "pending,running", "-o", "%i", "-h").stdout.split() == pending
    assert cli("jobs", "-t", "CD", "-o", "%i", "-h").stdout.split() == [str(done)]
    assert cli("jobs", "-t", "all", "-o", "%i", "-h").stdout.split() == [str(second), str(first), str(done)]
    bad = cli("jobs", "-t", "XX")
    assert bad.exit_code == 1 and "unknown state 'XX'" in bad.stderr
    # squeue's letters, widths and justification; the header in squeue's words
    out = cli("jobs", "-t", "PD", "-o", "%.6i|%-4j|%t|%T|%P|%u|%l|%D|%C").stdout.splitlines()
    assert out[0] == " JOBID|NAME|ST|STATE|PARTITION|USER|TIME_LIMIT|NODES|CPUS"
    assert out[1] == f"{second:>6}|b   |PD|PENDING|local|lee|10:00|1|1"
    assert out[2].startswith(f"{first:>6}|a-ra|PD|")  # squeue cuts to the width asked
    assert cli("jobs", "-o", "%Q").stderr.count("unknown format field %Q") == 1


def test_jobs_filters_by_name_partition_cluster_user_and_dates(cli, platform, three_jobs):
    done, (first, second), long_name = three_jobs
    ids = lambda *a: cli("jobs", "-a", "-o", "%i", "-h", *a).stdout.split()  # noqa: E731
    assert ids("-n", "b,quick") == [str(second), str(done)]
    assert ids("-p", "local") == [str(second), str(first), str(done)]
    assert ids("-p", "gpu") == [] and ids("-M", "elsewhere") == [] and ids("-M", "local") != []
    assert ids("-u", "lee") == [str(second), str(first), str(done)]
    other = cli("jobs", "-u", "root")
    assert other.exit_code == 1 and "no user 'root'" in other.stderr  # not told apart from someone unseen
    _, token = add_user(platform, "kim")
    assert cli("jobs", "-a", "-u", "lee", token=token).exit_code == 1  # kim may not list lee's jobs
    assert ids("-S", "now-1days") == [str(second), str(first), str(done)]
    assert ids("-E", "2000-01-01") == []
    assert ids("-S", "2999-01-01") == [str(second), str(first)]  # only jobs that have not ended
    bad = cli("jobs", "-S", "yesterday")
    assert bad.exit_code == 1 and "--starttime 'yesterday' is not a date" in bad.stderr


def test_jobs_piped_json_noheader_and_paging(cli, three_jobs, monkeypatch):
    done, (first, second), long_name = three_jobs
    piped = cli("jobs", "-a")
    assert long_name in piped.stdout  # whole, although COLUMNS is 80
    assert "│" not in piped.stdout and "┃" not in piped.stdout  # plain columns, no box
    lines = piped.stdout.splitlines()
    assert lines[0].split()[:4] == ["JOBID", "NAME", "WHERE", "STATE"] and len(lines) == 4
    assert len(cli("jobs", "-a", "-h").stdout.splitlines()) == 3
    rows = json.loads(cli("jobs", "--all", "--json").stdout)
    assert [r["id"] for r in rows] == [second, first, done] and rows[0]["state"] == "PENDING"
    monkeypatch.setattr(jobs_cmds, "PAGE", 2)  # --all pages through: nothing stops at a page
    assert cli("jobs", "-a", "-o", "%i", "-h").stdout.split() == [str(second), str(first), str(done)]
    cut = cli("jobs", "-a", "--limit", "2", "-o", "%i", "-h")
    assert cut.stdout.split() == [str(second), str(first)] and "stopped at --limit 2" in cut.stderr


def test_cancel_by_filter_and_an_ended_job_is_not_cancelled(cli, three_jobs):
    done, (first, second), _ = three_jobs
    result = cli("cancel", "-n", "b")
    assert result.exit_code == 0 and f"job {second}: cancel requested" in result.stdout
    assert str(first) not in result.stdout
    poll_until(lambda: cli("jobs", "-t", "CA", "-o", "%i", "-h").stdout.split() == [str(second)],
               step=cli.poller.run_once, what="b to be cancelled")
    assert cli("jobs", "-t", "PD", "-o", "%i", "-h").stdout.split() == [str(first)]
    again = cli("cancel", str(done))
    assert again.exit_code == 1 and f"job {done}: not cancelled: it has already ended (COMPLETED)" in again.stderr
    assert cli("cancel").exit_code == 1
    nothing = cli("cancel", "-t", "R")
    assert nothing.exit_code == 0 and "no job matches" in nothing.stderr
    assert cli("cancel", "-u", "lee", "-t", "PD").exit_code == 0
    poll_until(lambda: cli("jobs", "-o", "%i", "-h").stdout.split() == [], step=cli.poller.run_once,
               what="every job to be cancelled")


def test_update_hold_release(cli, tmp_path):
    job = submit(cli, "--hold", "-J", "before", "-t", "20")
    cli.poller.run_once()
    assert cli("jobs", "-o", "%t %r", "-h").stdout.split() == ["PD", "JobHeldUser"]
    longer = cli("update", str(job), "TimeLimit=30")
    assert longer.exit_code == 1 and "can only be lowered (it is 20 min)" in longer.stderr
    assert "has no partition 'gpu'" in cli("update", str(job), "Partition=gpu").stderr
    assert "cannot update 'Nodes=2'" in cli("update", str(job), "Nodes=2").stderr
    ok = cli("update", f"JobId={job}", "TimeLimit=5:00", "JobName=after")
    assert ok.exit_code == 0, ok.stderr
    assert "after on local/local, time limit 5 min (PENDING)" in ok.stdout
    assert cli("jobs", "-o", "%j %l", "-h").stdout.split() == ["after", "5:00"]
    assert "updated by its owner: TimeLimit=5 JobName=after" in " ".join(cli("job", str(job)).stdout.split())
    held = cli("hold", str(job))
    assert held.exit_code == 0 and f"job {job}: held (PENDING)" in held.stdout
    released = cli("release", str(job))
    assert released.exit_code == 0 and f"job {job}: released" in released.stdout
    ended(cli, job)
    assert cli("output", str(job)).stdout == "name=after\n"  # the job ran under its new name
    late = cli("hold", str(job), "999")
    assert late.exit_code == 1 and "only a waiting (PENDING) job can be held" in late.stderr
    assert "no job 999" in late.stderr
    assert "has ended (COMPLETED)" in cli("update", str(job), "JobName=x").stderr


def test_update_api_refuses_unknown_fields_and_bad_limits(alice):
    from computenet.client import ApiError

    response = alice.http.post("/jobs/1/update", json={"nodes": 2})
    assert response.status_code == 422 and "nodes" in response.text
    with pytest.raises(ApiError) as caught:
        alice.update(1, time_limit="soon")
    assert caught.value.status == 404  # someone's job or nobody's: not found either way
    job = alice.submit("#!/bin/bash\ntrue\n", ["--hold", "-t", "10"])
    with pytest.raises(ApiError) as caught:
        alice.update(job.id, time_limit="soon")
    assert caught.value.status == 400 and "invalid time limit 'soon'" in caught.value.detail
    with pytest.raises(ApiError) as caught:
        alice.update(job.id)
    assert caught.value.status == 400 and "nothing to update" in caught.value.detail


def test_job_shows_every_time_limit_resources_memory_and_exit_code(cli):
    job = submit(cli, "-J", "shown", "-t", "7", "--mem=300M", "-c", "2")
    ended(cli, job)
    text = cli("job", str(job)).stdout
    for label in ("submit  2", "start   2", "end      2", "time    limit 7:00", "nodes   1   cpus 2   gpus 0",
                  "memory asked 300.0M", "MaxRSS", "state   COMPLETED   exit code 0"):
        assert label in text, (label, text)
    assert "elapsed 0:0" in text  # accounting's elapsed for a short job

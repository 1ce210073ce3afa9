"""Issue 17 leftovers: where a Slurm job carries the platform's tag (a cluster's job_tag), and the
environment sbatch runs with on a cluster without run_as_users (the job's, never the server's).

The first tests are pure (argv, parsers, environment builders: no database, no Slurm); the ones
marked slurm run jobs on the test bed (alpha, on this host and over SSH; beta through slurmrestd).
"""

from __future__ import annotations

from datetime import timezone

import pytest
from pydantic import ValidationError

from computenet.clusters.base import SubmitRequest
from computenet.clusters.slurm import commands, parsers, tags
from computenet.clusters.slurm.adapter import SlurmCluster
from computenet.clusters.slurm.ssh import SshTransport
from computenet.clusters.slurm.transport import LocalTransport
from computenet.clusters.slurmrest import api
from computenet.config import ClusterConfig
from computenet.domain import job_env
from computenet.domain.sbatch import ScriptError, parse_submission

SECRET = "COMPUTENET_SECRET_PROBE"


def _request(script: str = "#!/bin/bash\ntrue\n", flags: list[str] | None = None, **extra) -> SubmitRequest:
    text, spec, args = parse_submission(script, flags or [])
    return SubmitRequest(script=text, spec=spec, job_name="j", workdir="/w/ann/jobs/7", output="/w/ann/jobs/7/o",
                         error="/w/ann/jobs/7/o", comment="computenet:7", script_args=tuple(args),
                         environment={"COMPUTENET_JOB_ID": "7"}, **extra)


# -- the tag ------------------------------------------------------------------------------------

def test_the_tag_goes_in_the_configured_field_and_the_users_comment_is_kept():
    plain = commands.sbatch_argv(_request())
    assert "--wckey=computenet:7" in plain and not any(a.startswith("--comment") for a in plain)
    assert "--comment=computenet:7" in commands.sbatch_argv(_request(), job_tag="comment")
    # the script's own comment: sbatch would read it, and the command line's would replace it
    script = '#!/bin/bash\n#SBATCH --comment="my run 3"\ntrue\n'
    assert "--wckey=computenet:7" in commands.sbatch_argv(_request(script))  # theirs stays in the script
    argv = commands.sbatch_argv(_request(script), job_tag="comment")
    assert [a for a in argv if a.startswith("--comment")] == ["--comment=computenet:7 my run 3"]
    # the command line's comment wins over the script's, as in sbatch, and is not repeated after the tag
    argv = commands.sbatch_argv(_request(script, ["--comment=from the flags"]), job_tag="comment")
    assert [a for a in argv if a.startswith("--comment")] == ["--comment=computenet:7 from the flags"]
    # a user's own wckey (a site that enforces them): theirs stays, the tag goes in the comment
    argv = commands.sbatch_argv(_request(flags=["--wckey=proj42", "--comment=mine"]))
    assert "--wckey=proj42" in argv and "--comment=computenet:7 mine" in argv
    assert not any(a.startswith("--wckey=computenet") for a in argv) and "--comment=mine" not in argv


def test_a_users_value_may_not_pose_as_a_tag():
    for flag in ("--comment=computenet:12", "--wckey= computenet:12", "--comment=computenet:12 and more"):
        with pytest.raises(ScriptError, match="platform's tag"):
            parse_submission("#!/bin/bash\ntrue\n", [flag])
    with pytest.raises(ScriptError, match="platform's tag"):
        parse_submission("#!/bin/bash\n#SBATCH --comment=computenet:3\ntrue\n", [])
    parse_submission("#!/bin/bash\ntrue\n", ["--comment=about computenet:12"])  # not at the start: theirs


def test_the_tag_is_read_back_from_either_field_the_configured_one_first():
    assert tags.read("computenet:7 my run", "", "comment") == "computenet:7"
    assert tags.read("my run", "computenet:8", "comment") == "computenet:8"
    assert tags.read("computenet:7", "computenet:8", "comment") == "computenet:7"
    assert tags.read("computenet:7", "computenet:8", "wckey") == "computenet:8"
    assert tags.read("theirs", "(null)") == "theirs" and tags.read("(null)", "") is None
    with pytest.raises(ValueError, match="job_tag"):
        tags.check_field("name")
    base = ["5", "5", "alpha", "cpu", "a", "u", "COMPLETED", "0:0", "2026-11-22T03:01:43",
            "2026-11-22T03:01:45", "2026-11-22T03:01:46", "1", "cpu=1,mem=1M,node=1", "1", "1", "5"]
    row = "\x1f".join(base + ["computenet:9 my run", "proj42", "n"]) + "\n"
    assert [r.comment for r in parsers.parse_sacct(row, "alpha", timezone.utc, "comment")] == ["computenet:9"]
    queue = "41\x1f2026-12-07T00:29:14\x1fcomputenet:7 my run\x1f(null)\n"
    assert list(parsers.parse_squeue_comments(queue, timezone.utc, "comment")) == ["computenet:7"]


def test_slurmrestd_tags_the_same_field_and_reads_it_back():
    request = _request()
    assert api.submit_body(request, "comment")["job"]["comment"] == "computenet:7"
    assert api.submit_body(request)["job"]["wckey"] == "computenet:7"
    answer = {"jobs": [{"job_id": 10, "array_job_id": 0, "comment": "", "wckey": "computenet:4", "submit_time": 60},
                       {"job_id": 11, "array_job_id": 11, "array_task_id": 0, "comment": "computenet:5 x",
                        "wckey": "", "submit_time": 61},
                       {"job_id": 12, "array_job_id": 11, "array_task_id": 1, "comment": "computenet:5 x",
                        "wckey": "", "submit_time": 61}]}
    found = api.parse_jobs_by_tag(answer, "comment")
    assert found["computenet:4"] == [("10", found["computenet:4"][0][1])] and found["computenet:5"][0][0] == "11"
    assert len(found["computenet:5"]) == 1  # an array once, by its own id
    db = {"jobs": [{"job_id": 3, "cluster": "beta", "time": {"submission": 60}, "state": {"current": "PENDING"},
                    "comment": {"job": "mine"}, "wckey": {"wckey": "computenet:3"}}]}
    assert api.parse_db_jobs(db, "beta")[0].comment == "computenet:3"


def test_job_tag_is_validated_in_the_configuration():
    slurm = dict(name="a", kind="slurm", workdir_root="/w")
    assert ClusterConfig(**slurm).job_tag == "wckey"
    assert ClusterConfig(**slurm, job_tag="comment").job_tag == "comment"
    with pytest.raises(ValidationError, match="job_tag"):
        ClusterConfig(**slurm, job_tag="name")
    with pytest.raises(ValidationError, match="job_tag is for slurm clusters"):
        ClusterConfig(name="l", kind="local", job_tag="comment")


# -- the environment ------------------------------------------------------------------------------

def test_sbatchs_environment_is_the_jobs_login_not_the_servers(monkeypatch):
    monkeypatch.setenv(SECRET, "s3cret")
    monkeypatch.setenv("HOME", "/root/service-home")
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    monkeypatch.setenv("LC_ALL", "$(reboot)")  # not a locale: left out
    transport = LocalTransport("/etc/slurm/x.conf", bin_dir="/opt/slurm/bin")
    adapter = SlurmCluster("alpha", transport)
    env = adapter.job_environment(_request(space="/w/ann"))
    assert env["HOME"] == "/w/ann" and env["USER"] == env["LOGNAME"] == transport.account
    assert env["PATH"].startswith("/opt/slurm/bin:") and env["TZ"] == "Asia/Shanghai" and env["SHELL"]
    assert env["COMPUTENET_JOB_ID"] == "7" and SECRET not in env and "LC_ALL" not in env
    assert set(env) == {"PATH", "LANG", "TZ", "USER", "LOGNAME", "HOME", "SHELL", "COMPUTENET_JOB_ID"}
    assert transport.environment(env)["SLURM_CONF"] == "/etc/slurm/x.conf"  # what sbatch itself needs
    assert adapter.job_environment(_request())["HOME"] == "/w/ann/jobs/7"  # no space given: its directory
    # as the user (run_as_users): the account switch sets HOME and SHELL from their passwd entry
    as_user = adapter.job_environment(_request(run_as="cnet-ann", space="/w/ann"))
    assert as_user["USER"] == "cnet-ann" and "HOME" not in as_user and "SHELL" not in as_user
    # the local executor starts its jobs from the same builder
    assert job_env.login_environment("u", "/h", host={SECRET: "x", "LANG": "zh_CN.UTF-8"}) == {
        "PATH": job_env.DEFAULT_PATH, "LANG": "zh_CN.UTF-8", "USER": "u", "LOGNAME": "u", "HOME": "/h",
        "SHELL": job_env.DEFAULT_SHELL}


def test_the_remote_sbatch_gets_the_same_and_nothing_of_this_host(monkeypatch):
    monkeypatch.setenv(SECRET, "s3cret")
    transport = SshTransport("login1", username="svc", accept_any_host_key=True, slurm_conf="/etc/slurm/s.conf")
    try:
        adapter = SlurmCluster("alpha", transport)
        env = adapter.job_environment(_request(space="/w/ann"))
        assert env["USER"] == "svc" and env["HOME"] == "/w/ann" and SECRET not in env and "TZ" not in env
        line = transport.command(["sbatch", "--parsable"], env)
        assert line.startswith("env -i PATH=") and "HOME=/w/ann" in line and "USER=svc" in line
        assert "SLURM_CONF=/etc/slurm/s.conf" in line and SECRET not in line and line.endswith("sbatch --parsable")
        # as the user: HOME and SHELL are their own login's (set by sshd, expanded by their shell)
        mine = transport.command(["sbatch"], adapter.job_environment(_request(run_as="ann")), as_user="ann")
        assert mine.startswith('env -i HOME="$HOME" SHELL="$SHELL" PATH=') and "USER=ann" in mine
        # other commands: PATH and LANG only, as before
        assert transport.command(["squeue"]) == "env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin " \
                                                "LANG=C.UTF-8 SLURM_CONF=/etc/slurm/s.conf squeue"
    finally:
        transport.close()


def test_a_forged_tag_is_refused_over_the_api_with_its_reason(platform, server):
    from computenet.client.sdk import ApiError, ComputeNetClient

    from conftest import add_user

    _, token = add_user(platform, "forger")
    with ComputeNetClient(server.url, token) as client:
        with pytest.raises(ApiError) as refused:
            client.submit("#!/bin/bash\ntrue\n", ["--comment=computenet:1", "-t", "1"])
    assert refused.value.status == 400 and "platform's tag" in str(refused.value)

"""`cnet` against a running server, as a user would type it."""

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, poll_until

runner = CliRunner()


@pytest.fixture
def cli(platform, server, tmp_path):
    _, token = add_user(platform, "lee")
    env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "COLUMNS": "200"}

    def run(*args, input=None):
        return runner.invoke(app, list(args), env=env, input=input)

    run.token, run.url = token, server.url
    return run


def job_id_of(result) -> str:
    match = re.search(r"Submitted batch job (\d+) ", result.output)
    assert match, result.output
    return match.group(1)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_submit_with_sbatch_flags_jobs_job_output_balance(cli, platform, tmp_path):
    script = write(tmp_path, "count.sh", "#!/bin/bash\n#SBATCH -c 1 -t 10\necho \"args: $@\"\nsleep 1.2\n")
    result = cli("submit", "-c", "2", "-J", "counter", script, "one", "two")
    assert result.exit_code == 0, result.output
    assert "to local/local (may cost up to 12.00)" in result.output  # 2 cores x 10 min x 36.00/h
    job = job_id_of(result)
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: "COMPLETED" in cli("jobs", "--all").output, step=poller.run_once, what="job to complete")
    listing = cli("jobs", "--all").output
    assert "counter" in listing and "COMPLETED" in listing
    assert "counter" not in cli("jobs").output  # squeue-like: only active by default
    detail = cli("job", job).output
    assert "SUBMITTING" in detail and "COMPLETED" in detail and "workdir" in detail
    out = cli("output", job)
    assert out.exit_code == 0 and out.output == "args: one two\n"
    poll_until(lambda: "charge" in cli("balance").output, step=poller.run_once, what="the charge")
    balance = cli("balance").output
    assert "lee-lab (default)" in balance and "top-up" in balance and "charge" in balance and "hold" in balance
    assert "local" in cli("clusters").output


def test_script_from_stdin_and_follow(cli, platform):
    result = cli("submit", "-t", "5", input="#!/bin/bash\nfor i in 1 2 3; do echo tick $i; sleep 0.3; done\n")
    assert result.exit_code == 0, result.output
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: "COMPLETED" in cli("jobs", "--all").output, step=poller.run_once, what="job to end")
    assert cli("output", job_id_of(result), "--follow").output == "tick 1\ntick 2\ntick 3\n"


def test_cancel(cli, platform, tmp_path):
    script = write(tmp_path, "sleep.sh", "#!/bin/bash\nsleep 60\n")
    submitted = cli("submit", script)
    assert submitted.exit_code == 0
    result = cli("cancel", job_id_of(submitted))
    assert result.exit_code == 0 and "cancel requested" in result.output
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: "CANCELLED" in cli("jobs", "--all").output, step=poller.run_once, what="job to be cancelled")


@pytest.mark.parametrize("args,fragment", [
    (["submit", "--frobnicate", "x.sh"], "unknown sbatch option --frobnicate"),
    (["submit", "/nonexistent/job.sh"], "cannot read /nonexistent/job.sh"),
    (["job", "999"], "no job 999"),
    (["output", "999"], "no job 999"),
])
def test_errors_are_clear_and_exit_non_zero(cli, args, fragment):
    result = cli(*args)
    assert result.exit_code != 0
    assert fragment in result.output


def test_bad_script_content_is_refused(cli, platform, tmp_path):
    path = tmp_path / "binary.sh"
    path.write_bytes(b"#!/bin/bash\necho \xff\n")
    result = cli("submit", str(path))
    assert result.exit_code == 1 and "not UTF-8" in result.output
    bad = write(tmp_path, "bad.sh", "#!/bin/bash\n#SBATCH -p nowhere\ntrue\n")
    result = cli("submit", bad)
    assert result.exit_code == 1 and "unknown partition 'nowhere'" in result.output
    from sqlalchemy import func, select
    from computenet.store.models import Job
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Job.id))) == 0


def test_login_saves_credentials_privately(cli, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg2"), "COLUMNS": "200"}
    result = runner.invoke(app, ["login", cli.url, cli.token], env=env)
    assert result.exit_code == 0 and "as lee" in result.output
    saved = tmp_path / "cfg2" / "computenet" / "login.json"
    assert json.loads(saved.read_text())["token"] == cli.token
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    assert runner.invoke(app, ["clusters"], env=env).exit_code == 0


def test_not_logged_in(tmp_path):
    result = runner.invoke(app, ["jobs"], env={"XDG_CONFIG_HOME": str(tmp_path), "COMPUTENET_URL": "",
                                               "COMPUTENET_TOKEN": ""})
    assert result.exit_code == 1 and "not signed in" in result.output


def test_demo_runs_on_a_fresh_home_and_serves_the_portal(tmp_path):
    """`cnet demo --serve`: in-process server, SQLite, local cluster, real jobs, charges; then the portal
    stays up with a sign-in for the demo user, until SIGTERM."""
    import signal
    import time

    import httpx

    from computenet.cli.embedded import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="160", TMPDIR=str(tmp_path))
    cnet = Path(sys.executable).with_name("cnet")
    port = free_port()
    proc = subprocess.Popen([str(cnet), "demo", "--serve", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    out = ""
    try:
        deadline = time.monotonic() + 150
        while "Ctrl-C stops the server" not in out and time.monotonic() < deadline and proc.poll() is None:
            out += proc.stdout.readline()
        assert "Ctrl-C stops the server" in out, out
        password = re.search(r"password (Try-\S+)", out).group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=10) as browser:
            signed = browser.post("/login", data={"login": "demo", "password": password, "next": "/"})
            assert signed.status_code == 303, signed.text
            assert "demo-lab" in browser.get("/").text
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        out += rest
    assert proc.returncode == 0, out
    assert "demo finished" in out and "problems" not in out
    assert "pi ~= 3.14159" in out and "fails on purpose, exit 3" in out
    assert "CANCELLED" in out and "FAILED" in out and "COMPLETED" in out
    assert "charged" in out and "balance 99." in out
    assert not list(tmp_path.glob("cnet-demo-*"))  # cleaned up


def test_usage_and_bill(cli, platform, tmp_path):
    from datetime import datetime, timezone

    script = write(tmp_path, "u.sh", "#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n")
    assert cli("submit", script).exit_code == 0
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: "charge" in cli("balance").output, step=poller.run_once, what="the charge")
    usage = cli("usage", "--by", "cluster")
    assert usage.exit_code == 0 and "local" in usage.output and "total" in usage.output
    assert cli("usage", "--from", "yesterday").exit_code == 1
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    bill = cli("bill", month)
    assert bill.exit_code == 0 and "opening balance 0.00" in bill.output and "closing balance" in bill.output
    as_csv = cli("bill", month, "--format", "csv")
    assert as_csv.output.startswith("account,month,currency,date,kind,amount,") and ",charge," in as_csv.output
    summary = cli("bill", month, "--format", "summary-csv")
    assert summary.exit_code == 0 and "lee-lab," + month + ",CNY,closing_balance,," in summary.output
    assert '"opening_balance": "0.00"' in cli("bill", month, "--format", "json").output
    assert cli("bill", "2026-13").exit_code == 1
    pdf = tmp_path / "bill.pdf"
    saved = cli("bill", month, "--format", "pdf", "--out", str(pdf))
    assert saved.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF-")

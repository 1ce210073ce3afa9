"""The smaller CLI defects of issue 17, each as a user met it."""

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app
from computenet.client import ApiError, ComputeNetClient
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, poll_until

runner = CliRunner()
CNET = str(Path(sys.executable).with_name("cnet"))


@pytest.fixture
def cli(platform, server, tmp_path):
    _, token = add_user(platform, "lee")
    env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "COLUMNS": "200"}

    def run(*args, input=None):
        return runner.invoke(app, list(args), env=env, input=input)

    run.env, run.token, run.url = env, token, server.url
    return run


@pytest.mark.parametrize("flags", [["--array=0-3"], ["--dependency=singleton"]])
def test_estimate_does_not_promise_what_submit_refuses(cli, flags):
    script = "#!/bin/bash\n#SBATCH -t 5\ntrue\n"
    result = cli("estimate", *flags, input=script)
    assert " now " not in result.stdout and "nowhere fits" in result.stdout
    assert "the local executor" in result.stdout
    assert result.exit_code == 1 and "nothing fits" in result.stderr
    assert cli("submit", *flags, input=script).exit_code == 1


def test_estimate_exits_non_zero_when_nothing_fits(cli):
    result = cli("estimate", "-c", "64", input="#!/bin/bash\ntrue\n")
    assert result.exit_code == 1 and "nothing fits" in result.stderr
    assert cli("estimate", "-c", "1", "-t", "5", input="#!/bin/bash\ntrue\n").exit_code == 0


def test_bill_refuses_an_unknown_format_and_a_month_not_yyyy_mm(cli):
    xml = cli("bill", "2026-12", "--format", "xml")
    assert xml.exit_code == 1 and "--format 'xml': use table, csv, summary-csv, json or pdf" in xml.stderr
    slash = cli("bill", "12/2026")
    assert slash.exit_code == 1 and "month '12/2026' is not YYYY-MM" in slash.stderr
    assert "Not Found" not in slash.output


def test_server_port_out_of_range_is_a_usage_error_not_a_traceback():
    result = runner.invoke(app, ["server", "--port", "99999"])
    assert result.exit_code == 2 and "less than or equal to 65535" in " ".join(result.output.split())
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def admin_env(tmp_path, db_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update(COMPUTENET_DATA_DIR=str(tmp_path / "data"), COMPUTENET_DATABASE_URL=db_url, HOME=str(tmp_path))
    return env


def test_admin_money_arguments_are_checked_before_anything_is_written(tmp_path, db_url, clean_db):
    env = admin_env(tmp_path, db_url)
    dropped = subprocess.run([CNET, "admin", "user-add", "ann", "--balance", "10"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert dropped.returncode == 1 and "--balance needs --account" in dropped.stderr
    made = subprocess.run([CNET, "admin", "user-add", "ann", "--account", "ann-lab", "--balance", "ten"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 1 and "--balance 'ten': not an amount" in made.stderr
    assert "Traceback" not in made.stderr
    ok = subprocess.run([CNET, "admin", "user-add", "ann", "--account", "ann-lab", "--balance", "10"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr  # the refusals above wrote no user 'ann'
    bad = subprocess.run([CNET, "admin", "credit-limit", "ann-lab", "abc"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and "amount 'abc': not an amount" in bad.stderr and "Traceback" not in bad.stderr


def test_files_get_does_not_overwrite_a_local_file_without_force(cli, tmp_path, monkeypatch):
    source = tmp_path / "data.txt"
    source.write_text("from the workspace\n")
    assert cli("files", "put", str(source)).exit_code == 0
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "here"
    mine.mkdir()
    local = mine / "data.txt"
    local.write_text("my own edits\n")
    refused = cli("files", "get", "data.txt", str(local))
    assert refused.exit_code == 1 and "exists here; --force replaces it" in refused.stderr
    assert local.read_text() == "my own edits\n"
    assert cli("files", "get", "data.txt", str(local), "--force").exit_code == 0
    assert local.read_text() == "from the workspace\n"


def test_files_put_resumes_an_interrupted_upload_and_leaves_no_orphan(cli, platform, tmp_path, monkeypatch):
    platform.settings.files.chunk_mb = 1
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 100))  # four chunks
    sent = []
    real_call = ComputeNetClient._call

    def flaky(self, method, path, **kwargs):
        if method == "PUT" and "/chunks/" in path:
            sent.append(path)
            if len(sent) == 2 and fail_once:
                raise ApiError(0, "connection reset by peer")
        return real_call(self, method, path, **kwargs)

    fail_once = True
    monkeypatch.setattr(ComputeNetClient, "_call", flaky)
    first = cli("files", "put", str(big))
    assert first.exit_code == 1 and "connection reset" in first.stderr
    arrived = len(sent) - 1
    fail_once, sent[:] = False, []
    again = cli("files", "put", str(big))
    assert again.exit_code == 0, again.output
    assert len(sent) == 4 - arrived  # only the chunks the server lacked
    uploads = platform.settings.storage_root() / ".uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # no orphan beside it
    out = tmp_path / "back.bin"
    assert cli("files", "get", "big.bin", str(out)).exit_code == 0
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()


def test_output_follow_outlives_a_server_restart(platform, tmp_path):
    _, token = add_user(platform, "lee")
    first = EmbeddedServer(platform, run_services=False).start()
    port = first.port
    with ComputeNetClient(first.url, token) as c:
        job = c.submit("#!/bin/bash\n#SBATCH -t 5\necho one\nsleep 4\necho two\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update(COMPUTENET_URL=first.url, COMPUTENET_TOKEN=token, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    follower = subprocess.Popen([CNET, "output", "--follow", str(job.id)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    poller = ClusterPoller(platform, "local")
    got = []
    reader = threading.Thread(target=lambda: got.append(follower.stdout.readline()), daemon=True)
    reader.start()
    poll_until(lambda: got, step=poller.run_once, what="the first line")
    assert got == ["one\n"]
    first.stop()  # the server goes away while the job runs
    time.sleep(1.5)
    second = EmbeddedServer(platform, port=port, run_services=False).start()
    try:
        poll_until(lambda: follower.poll() is not None, step=poller.run_once, timeout=60,
                   what="cnet output --follow to end with the job")
        rest, errors = follower.communicate(timeout=10)
    finally:
        second.stop()
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, errors
    assert rest == "two\n" and "retrying" in errors

"""One filesystem view and sbatch's submit habits, through `cnet` against a live embedded server
(its background loops run the local executor's jobs): a job reads uploaded files by relative
path, its files appear in `cnet files`, and --stage, --parsable, --wait, --test-only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app
from computenet.store.models import Job

from conftest import add_user, local_cluster, poll_until


@pytest.fixture
def cli(make_platform, tmp_path, monkeypatch):
    from computenet.cli import submit

    monkeypatch.setattr(submit, "WAIT_POLL_S", 0.2)
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "fsv", balance="200.00")
    with EmbeddedServer(platform, run_services=True) as server:
        env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "COLUMNS": "200"}
        runner = CliRunner()

        def invoke(*args: str, code: int | None = 0):
            result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
            if code is not None:
                assert result.exit_code == code, result.output
            return result
        yield invoke, platform


def script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/bash\n#SBATCH -t 5\n" + body)
    return str(path)


def submitted(result) -> str:
    match = re.search(r"Submitted batch job (\d+) ", result.output)
    assert match, result.output
    return match.group(1)


def ended(invoke, job_id: str) -> str:
    return poll_until(lambda: (lambda out: out if re.search(r"COMPLETED|FAILED", out) else None)(
        invoke("job", job_id).output), timeout=60, what=f"job {job_id} to end")


def out_name(platform, job_id: str) -> str:
    """slurm-%j.out: %j is the cluster's job id, not the platform's (they differ on a shared database)."""
    with platform.db.session() as session:
        return session.get(Job, int(job_id)).stdout_path.rsplit("/", 1)[-1]


def jobs_in(platform) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_staged_file_is_read_by_relative_path_and_the_job_dir_is_in_files(cli, tmp_path, monkeypatch):
    invoke, platform = cli
    (tmp_path / "input.dat").write_text("42 atoms\n")
    job_sh = script(tmp_path, "job.sh", 'wc -c < "$1" > size.txt\ncat input.dat\n')
    monkeypatch.chdir(tmp_path)
    # README: cnet submit -c 4 -t 2:00:00 --stage input.dat job.sh input.dat
    job = submitted(invoke("submit", "-c", "1", "--stage", "input.dat", "job.sh", "input.dat"))
    assert "COMPLETED" in ended(invoke, job)
    listing = invoke("files", "ls", f"jobs/{job}").output
    for name in ("input.dat", "size.txt", out_name(platform, job)):
        assert name in listing, listing
    invoke("files", "get", f"jobs/{job}/{out_name(platform, job)}", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "42 atoms\n"
    invoke("files", "get", f"jobs/{job}/size.txt", str(tmp_path / "size.txt"))
    assert (tmp_path / "size.txt").read_text().strip() == "9"
    assert f"jobs/{job}" in invoke("job", job).output.replace(str(platform.settings.storage_root()), "")
    # the upload made for the submission is gone; only the job's copy stays
    assert ".cnet-submit" not in invoke("files", "ls").output


def test_a_job_reads_the_workspace_and_chdir_keeps_sbatch_meaning(cli, tmp_path):
    invoke, platform = cli
    (tmp_path / "x.txt").write_text("from the workspace\n")
    invoke("files", "put", str(tmp_path / "x.txt"), "data/x.txt")
    # the default working directory is jobs/<id> inside the workspace: ../../data is the upload
    job = submitted(invoke("submit", script(tmp_path, "a.sh", "cat ../../data/x.txt\n")))
    assert "COMPLETED" in ended(invoke, job)
    assert out_name(platform, job) in invoke("files", "ls", f"jobs/{job}").output
    assert f"{job}/" in invoke("files", "ls", "jobs/").output
    # --chdir names a directory of the workspace: relative paths and the output file are there
    job2 = submitted(invoke("submit", "--chdir", "data", script(tmp_path, "b.sh", "tr a-z A-Z < x.txt > up.txt\n")))
    assert "COMPLETED" in ended(invoke, job2)
    listing = invoke("files", "ls", "data").output
    assert "up.txt" in listing and out_name(platform, job2) in listing
    invoke("files", "get", "data/up.txt", str(tmp_path / "up.txt"))
    assert (tmp_path / "up.txt").read_text() == "FROM THE WORKSPACE\n"


def test_stage_a_workspace_path(cli, tmp_path):
    invoke, platform = cli
    (tmp_path / "in.lj").write_text("units lj\n")
    invoke("files", "put", str(tmp_path / "in.lj"), "md/in.lj")
    job = submitted(invoke("submit", "--stage", "~/md/in.lj", script(tmp_path, "c.sh", "cat in.lj\n")))
    assert "COMPLETED" in ended(invoke, job)
    invoke("files", "get", f"jobs/{job}/{out_name(platform, job)}", str(tmp_path / "o"))
    assert (tmp_path / "o").read_text() == "units lj\n"


def test_args_after_the_script_are_the_scripts_even_a_stage(cli, tmp_path):
    invoke, _ = cli
    job = submitted(invoke("submit", script(tmp_path, "d.sh", 'echo "$@"\n'), "--stage", "nothing.dat", "7"))
    assert "COMPLETED" in ended(invoke, job)
    assert invoke("output", job).output == "--stage nothing.dat 7\n"


@pytest.mark.parametrize("args, fragment", [
    (["--stage", "missing.dat"], "missing.dat: no such file here"),
    (["--stage="], "--stage needs a file"),
    (["--stage", "SAME/in.dat", "--stage", "in.dat"], "two staged files are named 'in.dat'"),
    (["--stage", "~/not/there.dat"], "does not exist"),
    (["--stage", "~/../../etc/passwd"], "'..'"),
])
def test_bad_stage_is_refused_and_nothing_is_submitted(cli, tmp_path, monkeypatch, args, fragment):
    invoke, platform = cli
    (tmp_path / "SAME").mkdir()
    (tmp_path / "SAME" / "in.dat").write_text("a")
    (tmp_path / "in.dat").write_text("b")
    monkeypatch.chdir(tmp_path)
    result = invoke("submit", *args, script(tmp_path, "e.sh", "true\n"), code=None)
    assert result.exit_code != 0 and fragment in result.output, result.output
    assert jobs_in(platform) == 0


def test_parsable_prints_only_the_id(cli, tmp_path):
    invoke, _ = cli
    out = invoke("submit", "--parsable", script(tmp_path, "f.sh", "true\n")).output
    assert re.fullmatch(r"\d+\n", out), out
    pinned = invoke("submit", "--parsable", "-M", "local", script(tmp_path, "g.sh", "true\n")).output
    assert re.fullmatch(r"\d+;local\n", pinned), pinned
    # from the script's own #SBATCH lines too, as sbatch reads them
    in_script = tmp_path / "h.sh"
    in_script.write_text("#!/bin/bash\n#SBATCH --parsable\ntrue\n")
    assert re.fullmatch(r"\d+\n", invoke("submit", str(in_script)).output)


def test_wait_exits_with_the_jobs_exit_code(cli, tmp_path):
    invoke, _ = cli
    result = invoke("submit", "--wait", script(tmp_path, "w.sh", "sleep 0.5\nexit 3\n"), code=3)
    assert "Submitted batch job" in result.output
    assert invoke("submit", "-W", "--parsable", script(tmp_path, "ok.sh", "true\n")).exit_code == 0


def test_test_only_says_where_and_submits_nothing(cli, tmp_path):
    invoke, platform = cli
    result = invoke("submit", "--test-only", "-c", "1", script(tmp_path, "t.sh", "true\n"))
    assert "job would start at" in result.output and "local/local" in result.output
    assert "nothing was submitted" in result.output
    refused = invoke("submit", "--test-only", "-c", "4096", script(tmp_path, "big.sh", "true\n"), code=1)
    assert "cannot run anywhere" in refused.output
    assert jobs_in(platform) == 0


def test_the_api_refuses_test_only_and_bad_inputs(make_platform, tmp_path):
    from computenet.client import ApiError, ComputeNetClient

    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "api-fsv")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as c:
        with pytest.raises(ApiError) as refused:
            c.submit("#!/bin/bash\n#SBATCH --test-only\ntrue\n")
        assert refused.value.status == 400 and "--test-only submits nothing" in refused.value.detail
        for bad, fragment in ((["../x"], ".."), (["nope.dat"], "does not exist"), (["@nobody/x"], "no project")):
            with pytest.raises(ApiError) as refused:
                c.submit("#!/bin/bash\ntrue\n", inputs=bad)
            assert refused.value.status in (400, 404) and fragment in refused.value.detail, refused.value.detail
    assert jobs_in(platform) == 0

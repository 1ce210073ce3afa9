"""`cnet files ...`, `cnet quota`, `cnet apps`, `cnet app show`, `cnet run` against a live
embedded server (its background loops run jobs and fetch their outputs)."""

from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app

from conftest import FIXTURES, add_user, local_cluster


@pytest.fixture
def cli(make_platform, tmp_path):
    platform = make_platform([local_cluster(tags=["stand-in"])])
    _, token = add_user(platform, "cli-user", balance="200.00")
    with EmbeddedServer(platform, run_services=True) as server:
        env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "COLUMNS": "200"}
        runner = CliRunner()

        def invoke(*args: str, code: int = 0):
            result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
            assert result.exit_code == code, result.output
            return result.output
        yield invoke, platform


def test_files_commands(cli, tmp_path):
    invoke, platform = cli
    local = tmp_path / "data.bin"
    local.write_bytes(b"x" * 100_000)
    out = invoke("files", "put", str(local), "inbox/")
    assert "~/inbox/data.bin: 100000 bytes" in out
    assert "data.bin" in invoke("files", "ls", "inbox")
    invoke("files", "mkdir", "archive")
    assert "archive/data.bin" in invoke("files", "mv", "inbox/data.bin", "archive/")
    back = tmp_path / "back.bin"
    out = invoke("files", "get", "archive/data.bin", str(back))
    assert "(verified)" in out and back.read_bytes() == local.read_bytes()
    assert "exists" in invoke("files", "put", str(local), "archive/data.bin", code=1)
    invoke("files", "put", "--force", str(local), "archive/data.bin")
    quota = invoke("quota")
    assert "~" in quota and "97.7 KiB" in quota and "50.0 GiB" in quota
    err = invoke("files", "ls", "../other", code=1)
    assert "error" in err and "'..'" in err
    invoke("files", "rm", "-r", "archive")
    invoke("files", "rm", "inbox")
    assert "(empty)" in invoke("files", "ls", "")


def test_apps_show_dry_run_and_run(cli, tmp_path):
    invoke, platform = cli
    listing = invoke("apps")
    assert "lammps" in listing and "molecular-dynamics" in listing
    shown = invoke("app", "show", "lammps", "--lang", "zh")
    assert "分子动力学" in shown and "steps" in shown and "local (stand-in)" in shown
    dry = invoke("run", "lammps", "--param", "steps=50", "--input", str(FIXTURES / "apps" / "in.lj"), "--dry-run")
    assert "python3 .cnet-stand-in -in in.lj -var steps 50" in dry and "-n 2" in dry
    out = invoke("run", "lammps", "--param", "steps=50", "--input", str(FIXTURES / "apps" / "in.lj"), "--wait")
    assert "COMPLETED; outputs done" in out and "log.lammps" in out
    uploaded = platform.settings.storage_root() / "users" / "cli-user" / "inputs" / "in.lj"
    assert hashlib.sha256(uploaded.read_bytes()).hexdigest() == \
        hashlib.sha256((FIXTURES / "apps" / "in.lj").read_bytes()).hexdigest()
    bad = invoke("run", "lammps", "--param", "steps=0", "--input", "inputs/in.lj", code=1)
    assert "steps" in bad


def test_a_dry_run_checks_the_form_without_uploading_the_input(cli, tmp_path):
    invoke, platform = cli
    local = tmp_path / "big.lj"
    local.write_bytes(b"units lj\n" + b"#" * 200_000)
    dry = invoke("run", "lammps", "--param", "steps=50", "--input", str(local), "--dry-run")
    assert "python3 .cnet-stand-in -in big.lj -var steps 50" in dry and "-n 2" in dry
    assert "big.lj, 200009 bytes (local, not uploaded)" in dry
    assert not (platform.settings.storage_root() / "users" / "cli-user" / "inputs").exists()
    # the form is still checked on the server without the file
    assert "steps" in invoke("run", "lammps", "--param", "steps=0", "--input", str(local), "--dry-run", code=1)
    assert not (platform.settings.storage_root() / "users" / "cli-user" / "inputs").exists()
    # a local path that is not a file and not in the workspace is still refused
    missing = invoke("run", "lammps", "--input", "data/none.lj", "--dry-run", code=1)
    assert "does not exist" in missing


def test_local_inputs_are_refused_outside_a_dry_run_or_for_a_non_input(make_platform):
    from computenet.services.apps import app_runs
    from computenet.services.errors import InvalidRequest

    platform = make_platform([local_cluster(tags=["stand-in"])])
    uid, _ = add_user(platform, "dry-user", balance="10.00")
    cases = [({"input": "in.lj"}, {"input": 10}, False, "dry run only"),
             ({"input": "in.lj"}, {"steps": 10}, True, "not an input"),
             ({"input": "sub/in.lj"}, {"input": 10}, True, "must name a file"),
             ({"input": "in.lj"}, {"input": -1}, True, "whole number")]
    for params, local, dry, said in cases:
        with pytest.raises(InvalidRequest) as refused:
            app_runs.run_app(platform, uid, "lammps", {"steps": 5, **params}, dry_run=dry, local_inputs=local)
        assert said in str(refused.value)
    assert not (platform.settings.storage_root() / "users" / "dry-user").exists()

"""Configuration (file + COMPUTENET_* variables) and `cnet server` as a real process."""

import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from computenet.client import ComputeNetClient
from computenet.config import load_settings

CNET = str(Path(sys.executable).with_name("cnet"))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update(extra)
    return env


def test_file_then_environment(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("COMPUTENET_"):
            monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text(
        'default_cluster = "b"\n'
        '[server]\nport = 9000\n'
        '[[clusters]]\nname = "a"\nkind = "local"\nslots = 2\nprices = { "*" = { core_hour = 0.05 } }\n'
        '[[clusters]]\nname = "b"\nkind = "slurm"\nslurm_conf = "/etc/slurm/slurm.conf"\nworkdir_root = "/share"\n'
        'prices = { gpu = { core_hour = "0.10", gpu_hour = 7.25 } }\n'
    )
    settings = load_settings(config)
    assert settings.server.port == 9000 and settings.default_cluster == "b"
    a, b = settings.clusters
    # TOML decimals are read as Decimal, never through float
    assert a.price_for("anything").core_hour == Decimal("0.05")
    assert b.price_for("gpu").gpu_hour == Decimal("7.25") and b.price_for("cpu") is None
    monkeypatch.setenv("COMPUTENET_SERVER__PORT", "9100")
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", "postgresql://x@y/z")
    settings = load_settings(config)
    assert settings.server.port == 9100 and settings.db_url == "postgresql://x@y/z"


@pytest.mark.parametrize("body,fragment", [
    ('[[clusters]]\nname = "s"\nkind = "slurm"\n', "workdir_root"),
    ('[[clusters]]\nname = "a"\nkind = "local"\n[[clusters]]\nname = "a"\nkind = "local"\n', "unique"),
    ('default_cluster = "zz"\n', "not a configured cluster"),
    ('[[clusters]]\nname = "bad name!"\nkind = "local"\n', "name"),
    ('[[clusters]]\nname = "a"\nkind = "local"\nprices = { "*" = { core_hour = "-1" } }\n', "greater than or equal"),
    ('[[clusters]]\nname = "a"\nkind = "pbs"\n', "kind"),
])
def test_bad_configuration_is_named(tmp_path, body, fragment):
    config = tmp_path / "config.toml"
    config.write_text(body)
    with pytest.raises(ValidationError) as err:
        load_settings(config)
    assert fragment in str(err.value)


def test_default_is_sqlite_in_the_data_dir(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("COMPUTENET_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COMPUTENET_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.db_url == f"sqlite:///{tmp_path}/computenet.db"
    assert [c.kind for c in settings.clusters] == ["local"]


def test_admin_and_server_processes(tmp_path, db_url, clean_db):
    """`cnet admin user-add`, then `cnet server` serves it over HTTP."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(COMPUTENET_DATA_DIR=str(tmp_path), COMPUTENET_DATABASE_URL=db_url,
                    COMPUTENET_SERVER__PORT=str(port), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    made = subprocess.run([CNET, "admin", "user-add", "zoe", "--account", "zoe-lab", "--balance", "20.00",
                           "--save-login"], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    token = made.stdout.split("(shown once):")[1].split()[0]
    again = subprocess.run([CNET, "admin", "user-add", "zoe"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "exists" in again.stdout + again.stderr
    server = subprocess.Popen([CNET, "server"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120  # a cold start on a busy 2-core machine took 31 s
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "cnet server did not start"
            time.sleep(0.2)
        # the second port: the sessions' own origin (api/session_origin.py), which serves nothing else
        line = ""
        while "Interactive sessions are served on" not in line:
            line = server.stdout.readline()
            assert line, "cnet server did not say where sessions are served"
        sessions_origin = line.split("served on")[1].strip()
        assert sessions_origin.startswith("http://localhost:")
        assert httpx.get(f"{sessions_origin}/health").status_code == 404
        with ComputeNetClient(f"http://127.0.0.1:{port}", token) as client:
            job = client.submit("#!/bin/bash\n#SBATCH -t 1\necho from the server\n")
            done = client.wait(job.id, timeout=60, settled=True)  # the server's own pollers settle it
            assert done.state == "COMPLETED" and client.output(job.id).data == "from the server\n"
            assert client.me().accounts[0].balance == Decimal("20.00") - done.cost
        listed = subprocess.run([CNET, "jobs", "--all"], env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and "COMPLETED" in listed.stdout  # the saved login works
        check = subprocess.run([CNET, "admin", "check-ledger"], env=env, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0 and "consistent" in check.stdout
    finally:
        server.terminate()
        server.wait(15)


def test_the_readme_configuration_example_loads(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("COMPUTENET_"):
            monkeypatch.delenv(key)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    examples = [block.split("```", 1)[0] for block in readme.split("```toml\n")[1:]]
    assert len(examples) >= 3  # the clusters, LDAP and OIDC examples
    loaded = []
    for number, example in enumerate(examples):  # every example loads as written
        config = tmp_path / f"config{number}.toml"
        config.write_text(example)
        loaded.append(load_settings(config))
    settings = next(s for s in loaded if "hpc1" in [c.name for c in s.clusters])
    assert any(s.auth.ldap is not None and s.auth.ldap.groups for s in loaded)
    assert any(s.auth.oidc and s.auth.oidc[0].groups for s in loaded)
    hpc1 = settings.cluster("hpc1")
    assert hpc1.price_for("gpu").gpu_hour_by_model["a100"] == Decimal("9.50")
    assert hpc1.billing_strategy("gpu") == "max_gpus_cores" and hpc1.product_line("gpu") == "ai"
    assert settings.billing.minimum_charge == Decimal("0.01") and settings.default_cluster == "hpc1"

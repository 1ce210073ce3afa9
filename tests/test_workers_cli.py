"""`cnet server --role` on SQLite and `cnet admin workers`, run as the operator would (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from computenet.workers.leases import Leases


def cnet(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    return subprocess.run([str(Path(sys.executable).parent / "cnet"), *args], env={**clean, "COLUMNS": "200", **env},
                          capture_output=True, text=True, timeout=120)


def test_split_roles_are_refused_on_sqlite_naming_why(tmp_path):
    for role in ("api", "worker"):
        done = cnet("server", "--role", role, env={"COMPUTENET_DATA_DIR": str(tmp_path)})
        assert done.returncode == 1
        assert "needs PostgreSQL" in done.stderr and "--role all" in done.stderr
    assert not (tmp_path / "computenet.db").exists()  # refused before anything was written
    done = cnet("server", "--role", "backup", env={"COMPUTENET_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1 and "choose all, api or worker" in done.stderr


def test_admin_workers_lists_holder_and_last_outcome(clean_db, db_url, tmp_path):
    leases = Leases(clean_db, "node7:4242:abcd1234")
    leases.ensure("poller:hpc1", 5)
    lease = leases.claim("poller:hpc1")
    leases.finish_run(lease, leases.start_run(lease, record=False), 0.5, "ClusterError: squeue timed out")
    leases.ensure("delivery", 10)  # never run, nobody holds it
    done = cnet("admin", "workers", env={"COMPUTENET_DATA_DIR": str(tmp_path), "COMPUTENET_DATABASE_URL": db_url})
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "node7:4242:abcd1234" in lines["poller:hpc1"] and "squeue timed out" in lines["poller:hpc1"]
    assert "(none; was -)" in lines["delivery"]

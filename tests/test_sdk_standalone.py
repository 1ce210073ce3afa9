"""The SDK as its own distribution (issue 20 item 6): clients/python installs into a venv of its own with
its declared dependencies only, imports without the server stack, and drives a real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from computenet.cli.embedded import EmbeddedServer
from conftest import add_user

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = ROOT / "clients" / "python"
SERVER_STACK = ["numpy", "sqlalchemy", "duckdb", "pyarrow", "matplotlib", "fastapi", "computenet"]


def _clean_env() -> dict[str, str]:
    # nothing of this process's environment may make the server's packages visible there
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A venv holding computenet-client and what it declares, nothing else. pip finds its dependencies
    where the main install finds them (this machine's pip configuration: local index and wheels)."""
    base = tmp_path_factory.mktemp("sdk")
    venv, source = base / "venv", base / "computenet-client"
    # built from a copy: pip builds in the source tree, and the two backends' runs may build at once
    shutil.copytree(CLIENT_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env(), timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)], capture_output=True,
                          text=True, env=_clean_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def _run(python: Path, code: str, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run([str(python), "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env={**_clean_env(), **(env or {})}, timeout=timeout, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]) if env is None else {"out": done.stdout}


def test_client_alone_has_no_server_stack(client_venv):
    seen = _run(client_venv, """
        import importlib.util, json, sys
        import computenet_client, computenet_client.models
        from pathlib import Path
        stack = sys.argv[1:]
        print(json.dumps({"missing": [n for n in stack if importlib.util.find_spec(n) is None],
                          "typed": (Path(computenet_client.__file__).parent / "py.typed").is_file(),
                          "loaded": sorted(n for n in stack if n in sys.modules)}))
    """, *SERVER_STACK)
    assert seen["missing"] == SERVER_STACK  # none of the server's packages can even be imported there
    assert seen["loaded"] == [] and seen["typed"]


CLIENT_RUN = """
    import asyncio, json, sys
    from decimal import Decimal
    from computenet_client import AsyncComputeNetClient, ComputeNetClient, JobOut

    url, token = sys.argv[1], sys.argv[2]
    # two seconds: a job charged by whole seconds costs something
    script = "#!/bin/bash\\n#SBATCH -n 1 -t 5\\nsleep 2\\necho hello from {}\\n".format
    with ComputeNetClient(url, token) as cn:
        before = cn.me().account().available
        job = cn.submit(script("sdk"), [], "sdk-hello.sh")
        assert isinstance(job, JobOut)
        done = cn.wait(job.id, timeout=240, interval=0.3, settled=True)
        after = cn.me().account().available
        text = "".join(cn.follow(job.id, interval=0.3, deadline=60))
        states = [e.to_state for e in cn.job_events(job.id, interval=0.3, timeout=30)]
        second = cn.submit(script("two"), [], "sdk-two.sh", idempotency_key="sdk-test-two")
        again = cn.submit(script("two"), [], "sdk-two.sh", idempotency_key="sdk-test-two")
        paged = [j.id for j in cn.iter_jobs(page_size=1)]

    async def main():
        async with AsyncComputeNetClient(url, token) as acn:
            ajob = await acn.submit(script("async"), [], "sdk-async.sh")
            adone = await acn.wait(ajob.id, timeout=240, interval=0.3)
            aout = (await acn.output(ajob.id)).data
            apaged = [j.id async for j in acn.iter_jobs(page_size=2)]
            return adone.state, aout, apaged

    astate, aout, apaged = asyncio.run(main())
    print(json.dumps({"state": done.state, "exit": done.exit_code, "cost": str(done.cost), "text": text,
                      "states": states, "before": str(before), "after": str(after),
                      "spent": str(before - after), "ids": [job.id, second.id, again.id], "paged": paged,
                      "astate": astate, "aout": aout, "apaged": apaged}))
"""


def test_client_alone_drives_a_real_server(client_venv, platform):
    """submit -> wait -> output -> balance from the client-only venv, against a server on a real port."""
    _, token = add_user(platform, "sdkuser", balance="100.00")
    with EmbeddedServer(platform, run_services=True) as srv:
        seen = _run(client_venv, CLIENT_RUN, srv.url, token)
    assert seen["state"] == "COMPLETED" and seen["exit"] == 0, seen
    assert seen["text"] == "hello from sdk\n", seen
    assert seen["states"][-1] == "COMPLETED" and {"PENDING", "RUNNING"} & set(seen["states"]), seen
    first, second, again = seen["ids"]
    assert second == again != first, seen  # the idempotency key gave the first job back
    # once the job is charged, what the account can spend went down by exactly its cost
    assert Decimal(seen["spent"]) == Decimal(seen["cost"]) > 0, seen
    # pages of one, followed through Link: rel="next", newest first, every job once
    assert seen["paged"] == [second, first], seen
    assert seen["astate"] == "COMPLETED" and seen["aout"] == "hello from async\n", seen
    assert seen["apaged"] == sorted(seen["apaged"], reverse=True) and len(seen["apaged"]) == 3, seen


def test_the_guide_s_examples_run_with_the_client_alone(client_venv, platform):
    """Every python block of docs/sdk.md, as written, in the client-only venv against a real server."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "sdk.md").read_text(), re.S)
    assert len(blocks) >= 5
    _, token = add_user(platform, "sdkdocs", balance="100.00")
    with EmbeddedServer(platform, run_services=True) as srv:
        outputs = [_run(client_venv, block, env={"COMPUTENET_URL": srv.url, "COMPUTENET_TOKEN": token})["out"]
                   for block in blocks]
    assert "COMPLETED" in outputs[0] and "hello" in outputs[0]
    assert "step 1\nstep 2\nstep 3\n" in outputs[1] and "-> COMPLETED" in outputs[1]
    assert outputs[2].split() == ["404", "not_found"]
    assert "['COMPLETED', 'COMPLETED', 'COMPLETED']" in outputs[3]
    assert "docs-in.dat 3000" in outputs[4]
    assert outputs[5].strip() == "['local']"

#!/usr/bin/env python3
"""How long `cnet` takes to start: `cnet version`, `cnet --help`, `cnet jobs --help`, and a real
`cnet jobs` against a server this script starts (in its own process tree, on a temporary SQLite).

Each command runs --runs times, interleaved with `python -c pass` (the baseline in the same run, so a
busy machine slows both alike); the table shows median and fastest wall time and the ratio of the
medians to the baseline. Issue 17 asks for <= 0.3 s for `cnet version` and `cnet jobs`.

    .venv/bin/python bench/cli_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

TARGET_S = 0.3


def _cnet() -> str:
    found = Path(sys.executable).with_name("cnet")
    if not found.exists():
        sys.exit(f"no cnet next to {sys.executable}: install the project into this venv first")
    return str(found)


def _time(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return took


def _server(data: Path):
    """A local-cluster platform with one user, served on a free port; returns (server, token)."""
    from computenet.cli.embedded import EmbeddedServer
    from computenet.config import ClusterConfig, Price, Settings
    from computenet.services import accounts
    from computenet.services.platform import Platform

    settings = Settings(_env_prefix="COMPUTENET_BENCH_IGNORED_", data_dir=data,
                        clusters=[ClusterConfig(name="local", kind="local", slots=2, mem_mb=4000,
                                                prices={"*": Price(core_hour=Decimal("1.00"))})])
    platform = Platform(settings)
    platform.start()
    with platform.db.session() as session:
        user = accounts.create_user(session, "bench")
        accounts.create_account(session, "bench-lab", owner=user)
        token = accounts.issue_token(session, user, "bench")
    return EmbeddedServer(platform, run_services=False), token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cnet = _cnet()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        server, token = _server(Path(tmp) / "data")
        with server:
            env = {**os.environ, "COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token,
                   "XDG_CONFIG_HOME": str(Path(tmp) / "cfg"), "COLUMNS": "120"}
            commands = {"python -c pass": [sys.executable, "-c", "pass"],
                        "cnet version": [cnet, "version"], "cnet --help": [cnet, "--help"],
                        "cnet jobs --help": [cnet, "jobs", "--help"], "cnet jobs": [cnet, "jobs"]}
            for argv in commands.values():  # warm the page cache and .pyc files; not counted
                _time(argv, env)
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, argv in commands.items():
                    times[name].append(_time(argv, env))
    base = statistics.median(times["python -c pass"])
    table = Table(title=f"cnet start-up, {args.runs} runs each, {host.node()} "
                        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})", title_justify="left")
    for column in ("command", "median s", "fastest s", "x python -c pass", f"<= {TARGET_S} s"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, runs in times.items():
        median = statistics.median(runs)
        verdict = "" if name.startswith("python") else ("yes" if median <= TARGET_S else "[red]no[/]")
        table.add_row(name, f"{median:.3f}", f"{min(runs):.3f}", f"{median / base:.1f}", verdict)
    console.print(table)


if __name__ == "__main__":
    main()

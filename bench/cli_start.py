#!/usr/bin/env python3
"""How long `cnet` takes to start: `cnet version`, `cnet --help`, `cnet jobs --help`, and a real
`cnet jobs` against a server this script starts (in its own process tree, on a temporary SQLite).

Each command runs --runs times, interleaved with `python -c pass` (the baseline in the same run, so a
busy machine slows both alike); the table shows median and fastest wall time and the ratio of the
medians to the baseline; CPU s is the command's own user+system time. Issue 17 asks for <= 0.3 s
for `cnet version` and `cnet jobs`. The figures also go to bench/results/cli_start-<time>.json.

    .venv/bin/python bench/cli_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
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


def _cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _time(argv: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one run (CPU time moves less than wall time on a busy machine)."""
    cpu, start = _cpu_of_children(), time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return took, _cpu_of_children() - cpu


def _server(data: Path):
    """A local-cluster platform with one user, served on a free port; returns (server, token)."""
    from computenet.cli.embedded import EmbeddedServer
    from computenet.config import ClusterConfig, Price, Settings
    from computenet.services.tenancy import accounts
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
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, argv in commands.items():
                    wall, used = _time(argv, env)
                    times[name].append(wall)
                    cpu[name].append(used)
    base = statistics.median(times["python -c pass"])
    table = Table(title=f"cnet start-up, {args.runs} runs each, {host.node()} "
                        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})", title_justify="left")
    for column in ("command", "median s", "fastest s", "CPU s (median)", "x python -c pass", f"<= {TARGET_S} s"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, runs in times.items():
        median = statistics.median(runs)
        verdict = "" if name.startswith("python") else ("yes" if median <= TARGET_S else "[red]no[/]")
        table.add_row(name, f"{median:.3f}", f"{min(runs):.3f}", f"{statistics.median(cpu[name]):.3f}",
                      f"{median / base:.1f}", verdict)
    console.print(table)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
               "load_1min": os.getloadavg()[0], "runs": args.runs,
               "commands": {name: {"median_s": statistics.median(runs), "fastest_s": min(runs),
                                   "cpu_median_s": statistics.median(cpu[name]),
                                   "vs_python_pass": statistics.median(runs) / base} for name, runs in times.items()}}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"cli_start-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"results in {path}")


if __name__ == "__main__":
    main()

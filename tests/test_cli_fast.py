"""`cnet` starts without its heavy libraries, and prints user data as typed (issue 17, item 4).

Start-up time itself is measured by bench/cli_start.py, not here: a timed test fails on a busy machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app

from conftest import add_user, local_cluster

HEAVY = ("numpy", "matplotlib", "sqlalchemy", "duckdb", "pyarrow")

# Runs a command in a fresh interpreter, then reports which heavy libraries it imported.
PROBE = """
import json, sys
from computenet.cli.main import app
sys.argv = ["cnet", *json.loads(sys.argv[1])]
try:
    app()
except SystemExit:
    pass
print("\\nLOADED " + json.dumps(sorted(m for m in {HEAVY} if sys.modules.get(m) is not None)))
"""


def _heavy_loaded(args: list[str], heavy: tuple[str, ...] = HEAVY, env: dict | None = None) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.replace("{HEAVY}", repr(heavy)), json.dumps(args)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "120", **(env or {})})
    assert done.returncode == 0, done.stderr
    line = [s for s in done.stdout.splitlines() if s.startswith("LOADED ")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][len("LOADED "):])


def test_importing_the_cli_imports_no_heavy_library():
    code = ("import sys; import computenet.cli.main; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["version"], ["--help"], ["jobs", "--help"], ["admin", "--help"],
                                  ["report", "--help"], ["finance", "--help"]])
def test_quick_commands_and_every_help_leave_heavy_libraries_out(args):
    assert _heavy_loaded(args) == []


def test_a_command_that_needs_a_heavy_library_still_gets_it(tmp_path):
    # `cnet report` reads Parquet through DuckDB: the lazy import must happen when it runs
    assert "duckdb" in _heavy_loaded(["report", "utilization", "--from", "2026-01-01", "--to", "2026-01-31",
                                      "--data", str(tmp_path)])


@pytest.fixture
def cli(make_platform, tmp_path):
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "markup-user", balance="100.00")
    with EmbeddedServer(platform) as server:
        env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "COLUMNS": "200",
               "XDG_CONFIG_HOME": str(tmp_path / "cfg")}

        def invoke(*args: str, code: int = 0) -> str:
            result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
            assert result.exit_code == code, result.output
            return result.output
        yield invoke


# what `cnet jobs` has no use for, yet once imported with the client: httpx's own command line (click,
# pygments, rich.syntax, rich.progress) and the sbatch parser behind one constant of the wire models
UNUSED_BY_JOBS = HEAVY + ("httpx._main", "click", "pygments", "rich.syntax", "rich.progress",
                          "computenet.domain.sbatch", "computenet.domain.resources", "concurrent.futures.thread")


def test_cnet_jobs_against_a_server_loads_only_what_it_uses(make_platform, tmp_path):
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "fast-user")
    with EmbeddedServer(platform) as server:
        env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
        assert _heavy_loaded(["jobs"], UNUSED_BY_JOBS, env) == []
        assert _heavy_loaded(["jobs", "--all"], UNUSED_BY_JOBS, env) == []


def test_a_job_name_with_markup_prints_as_typed(cli, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\nsleep 30\n")
    submitted = cli("submit", "-t", "5", "-J", "[bold]x[/bold]", str(script))
    job_id = submitted.split("Submitted batch job ")[1].split()[0]
    assert "[bold]x[/bold]" in cli("jobs")
    assert "[bold]x[/bold]" in cli("job", job_id)
    cli("cancel", job_id)


def test_a_path_with_brackets_prints_as_typed(cli, tmp_path):
    local = tmp_path / "we[ir]d.lj"
    local.write_text("units lj\n")
    assert "~/data/we[ir]d.lj: 9 bytes" in cli("files", "put", str(local), "data/")
    assert "we[ir]d.lj" in cli("files", "ls", "data")
    assert "moved to ~/data/an[other].lj" in cli("files", "mv", "data/we[ir]d.lj", "data/an[other].lj")
    missing = cli("files", "get", "data/we[ir]d.lj", str(tmp_path / "back.lj"), code=1)
    assert "we[ir]d.lj" in missing  # the error names the path as typed, not "wed.lj"


def test_the_time_format_hint_prints_colons_not_emoji(cli, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    refused = cli("submit", "-t", "1:2:3:4", str(script), code=1)
    assert "H:M:S" in refused and "D-H:M:S" in refused and "Ⓜ" not in refused


def _every_command(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _every_command(sub, (*path, name))


def test_help_texts_show_their_brackets():
    # help is Rich markup (rich_markup_mode="rich"): an unescaped "[auth]" or "[param=]" vanishes from it
    import re

    from typer.main import get_command

    styles = {"b", "bold", "i", "dim", "red", "green", "yellow", "cyan"}
    mangled = []
    for path, command in _every_command(get_command(app)):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        for text in texts:
            for tag in re.findall(r"(?<!\\)\[([a-z#/@][^\[]*?)\]", text):  # what Rich reads as a tag
                if tag.lstrip("/") not in styles and tag != "/":
                    mangled.append(f"cnet {' '.join(path)}: [{tag}]")
    assert not mangled, mangled
    shown = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "300"})
    assert "[param=]FILE" in shown.output

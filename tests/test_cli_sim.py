"""`cnet sim` as an operator types it: JSON and CSV output, the title's counts, plain
text in a pipe, and clear errors for bad input (issue 16, "The CLI")."""

import csv
import gzip
import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app

runner = CliRunner()
SLICE = Path(__file__).parent / "fixtures" / "traces" / "sdsc-sp2-first-500.swf"
FAST = ["--policies", "round_robin", "--jobs", "200"]


def _sim(*args):
    return runner.invoke(app, ["sim", *map(str, args)])


def _swf(tmp_path, lines, name="tiny.swf"):
    # id submit wait run alloc cpu mem req_procs req_time req_mem status user group app queue part prev think
    path = tmp_path / name
    path.write_text("; MaxProcs: 10\n" + "".join(
        f"{i} {submit} 0 {run} {procs} -1 -1 {procs} {asked} -1 1 1 1 1 1 1 -1 -1\n"
        for i, (submit, run, procs, asked) in enumerate(lines, start=1)))
    return path


def test_json_counts_the_jobs_simulated_left_out_and_overrun(tmp_path):
    # on 10 cores split 5/3/2 the 8-core job fits no cluster; job 2 ran 500 s on a 100 s limit
    trace = _swf(tmp_path, [(0, 100, 8, 100), (0, 500, 2, 100), (10, 50, 1, 60), (20, 50, 4, 60)])
    result = _sim(trace, "--policies", "round_robin", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["jobs"], data["left_out"], data["overran"], data["kill_at_limit"]) == (3, 1, 1, False)
    assert [r["policy"] for r in data["results"]] == ["round_robin", "pooled"]
    assert all(r["jobs"] == 3 for r in data["results"])


def test_csv_has_a_row_per_policy_and_a_column_per_cluster():
    result = _sim(SLICE, *FAST, "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["policy"] for r in rows] == ["round_robin", "pooled"]
    assert {"utilization_own-a", "utilization_own-b", "utilization_lease-c"} <= set(rows[0])
    assert float(rows[0]["mean_bounded_slowdown"]) >= 1


def test_in_a_pipe_the_table_is_plain_text_with_the_counts_in_its_title():
    result = _sim(SLICE, *FAST)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("sdsc-sp2-first-500: 194 jobs simulated on own-a 64, own-b 38, lease-c 26; 6 left out: "
                        "wider than the largest cluster; 8 ran past their time limits: replayed whole")
    assert lines[1].split()[:2] == ["policy", "mean"] and not any(c in result.stdout for c in "┃│━")
    assert [line.split()[0] for line in lines[2:]] == ["round_robin", "pooled"]


def test_kill_at_limit_is_reported(tmp_path):
    trace = _swf(tmp_path, [(0, 500, 2, 100), (10, 50, 1, 60)])
    result = _sim(trace, "--policies", "round_robin", "--kill-at-limit")
    assert result.exit_code == 0, result.output
    assert "1 ran past their time limits: killed at their limits" in result.stdout.splitlines()[0]


def test_pooled_is_accepted_as_a_policy():
    result = _sim(SLICE, "--jobs", "100", "--policies", "pooled", "--json")
    assert result.exit_code == 0, result.output
    assert [r["policy"] for r in json.loads(result.stdout)["results"]] == ["pooled"]


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--cores", "0"], "--cores must be at least 1"),
    (["--gpus", "-1"], "--gpus cannot be negative"),
    (["--policies", " , "], "--policies: name at least one"),
    (["--policies", "fastest"], "unknown policy 'fastest'"),
    (["--json", "--csv"], "--json and --csv: choose one"),
])
def test_bad_options_are_clear_errors(args, message):
    result = _sim(SLICE, *args)
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert result.stdout == ""


def test_a_truncated_gz_is_a_clear_error(tmp_path):
    whole = gzip.compress(SLICE.read_bytes())
    cut = tmp_path / "cut.swf.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    result = _sim(cut, *FAST)
    assert result.exit_code == 1 and "cut.swf.gz: the gzip file is truncated or corrupt" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unwritable_plots_path_is_refused_before_simulating(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _sim(SLICE, *FAST, "--plots", blocker / "plots")
    assert result.exit_code == 1 and "--plots" in result.stderr and "cannot create the folder" in result.stderr
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = _sim(SLICE, *FAST, "--plots", locked)
        assert result.exit_code == 1 and "not writable" in result.stderr


def test_a_trace_whose_every_job_is_too_wide_says_so(tmp_path):
    trace = _swf(tmp_path, [(0, 100, 8, 100), (5, 100, 9, 100)])
    result = _sim(trace, "--policies", "round_robin")
    assert result.exit_code == 1 and "all 2 jobs are wider than the largest cluster (5 cores)" in result.stderr

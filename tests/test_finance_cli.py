"""`cnet finance ...` as a user types it: tables for reading, --json for scripts, clear errors."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures" / "finance"
runner = CliRunner()


def cnet(*args):
    return runner.invoke(app, ["finance", *map(str, args)], env={"COLUMNS": "220"})


def test_show_json_and_table():
    result = cnet("show", FIXTURES / "sample-statement.csv", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["unit"] == "100m-yuan" and [y["year"] for y in data["years"]] == [2016, 2017, 2018]
    assert data["years"][1]["amounts"]["net_profit"] == "0.35"  # 3500 万元, normalised
    assert abs(Decimal(data["cagr"]["revenue"]["value"]) - Decimal("0.3")) < Decimal("1e-20")
    assert data["valuation"]["pe"]["value"] == "90"
    table = cnet("show", FIXTURES / "sample-statement.csv")
    assert table.exit_code == 0 and "revenue CAGR 2016-2018 (2 periods)" in table.output
    assert "30.0 %" in table.output and "missing year: no 2015 figures" in table.output
    assert "converted to 100m-yuan" in table.output


def test_star_command():
    result = cnet("star", FIXTURES / "sample-statement.json", "--json")
    assert result.exit_code == 0, result.output
    verdicts = [r["verdict"] for r in json.loads(result.output)]
    assert verdicts == ["met", "met", "met", "met", "cannot judge"]
    table = cnet("star", FIXTURES / "sample-statement.json")
    assert "cannot be judged from figures" in table.output


def test_scenario_command_checks_the_printed_report():
    result = cnet("scenario", "--check", FIXTURES / "star-2019-printed-claims.json",
                  "--peers", FIXTURES / "star-market-2019-computer-firms.csv", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [row["pe"] for row in data["scenario"]["rows"]] == ["73.32", "79.43", "91.65", "109.98"]
    assert [c["verdict"] for c in data["text_checks"]] == ["contradiction", "agrees"]
    assert any("without 视联动力" in note for note in data["base"])
    plain = cnet("scenario", "--pe", "61.1", "--base", "12.1", "--premium", "1.2,1.3,1.5,1.8",
                 "--sector-cap", "23280")
    assert plain.exit_code == 0 and "887.172" in plain.output and "1,330.758" in plain.output


def test_peers_command():
    result = cnet("peers", FIXTURES / "star-market-2019-computer-firms.csv", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["peers"]) == 17 and data["cagr_periods"]["reported_revenue_cagr"]["2"] == [17, 17]
    table = cnet("peers", FIXTURES / "star-market-2019-computer-firms.csv")
    assert "rounding" in table.output and "mean of the yearly ratios for 17 of 17" in table.output
    assert "'红筹2' is not one of the five" in table.output


def test_errors_are_one_clear_line(tmp_path):
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("# unit: 100m-yuan\nyear,revenue\n2017,2.60\n2018,338000000\n")
    for args, message in ([("show", mixed), "mixes units"],
                          [("show", FIXTURES / "sample-statement.csv", "--from", "2020"),
                           "no data from 2020 (the statement covers 2016-2018)"],
                          [("show", tmp_path / "nothing.json"), "no such file"],
                          [("scenario", "--pe", "61.1", "--base", "-12.1"), "profit base must be positive"],
                          [("scenario",), "give --pe and --base"],
                          [("operator", "--db", f"sqlite:///{tmp_path / 'empty.db'}"), "cannot read the ledger"]):
        result = cnet(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_scenario_checks_follow_the_options_given():
    # another P/E than the report's: the printed table no longer follows from it, and the check says so
    result = cnet("scenario", "--check", FIXTURES / "star-2019-printed-claims.json", "--pe", "50", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["scenario"]["sector_pe"] == "50" and len(data["scenario"]["rows"]) == 4
    assert {c["verdict"] for c in data["table_checks"] if "market cap" in c["what"]} == {"contradiction"}


@pytest.mark.parametrize("args, files, message", [
    (["show", "{d}/trailing.csv"], {"trailing.csv": "# unit: 100m-yuan\nyear,revenue\n2017,1,\n"},
     "more cells than the header"),
    (["show", "{d}/unit.json"], {"unit.json": '{"unit": 5, "years": {"2018": {"revenue": "1"}}}'},
     "unit must be text"),
    (["peers", "{d}/missing.csv"], {}, "no such file"),
    (["peers", "{d}/printed.csv", "--unit", "100m-yuan"],
     {"printed.csv": "company,revenue_2016,revenue_2018,reported_revenue_cagr\nA,1.0,2.0,n/a\n"},
     "is not a number"),
    (["show", "{d}/latin1.csv"], {"latin1.csv": b"# unit: 100m-yuan\nyear,revenue\n2017,1\n# caf\xe9\n"},
     "cannot be read"),
])
def test_bad_files_get_a_message_not_a_traceback(tmp_path, args, files, message):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    result = CliRunner().invoke(app, ["finance", *[a.format(d=tmp_path) for a in args]])
    said = " ".join(result.output.split())  # Rich wraps long paths
    assert result.exit_code == 1 and message in said, (result.output, result.exception)

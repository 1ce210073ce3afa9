"""Issue 21 item 4: bad finance input is refused with a message naming the cell, never a traceback."""

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.analytics.peers import read_peers
from computenet.analytics.statements_io import StatementError, read_csv, read_json
from computenet.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures" / "finance"
TABLE = FIXTURES / "star-market-2019-computer-firms.csv"
HEADER = "# unit: 100m-yuan\n# market_cap: 45\n"


def cnet(*args):
    result = CliRunner().invoke(app, ["finance", *map(str, args)], env={"COLUMNS": "220"})
    return result, " ".join(result.output.split())  # Rich wraps long lines


def statement(rows: str) -> str:
    return HEADER + rows


# --- statements -------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, message", [
    ("year,revenue,rd_expense\n2017,2.0,0.5\n2018,-3.38,0.8\n",
     "T revenue 2018: -3.38 100m-yuan is negative; revenue cannot be below zero"),
    ("year,revenue,gross_profit\n2018,3.38,5.00\n",
     "T gross_profit 2018: 5.00 100m-yuan is above revenue (3.38 100m-yuan)"),
    ("year,revenue,rd_expense\n2018,3.38,4.00\n",
     "T rd_expense 2018: 4.00 100m-yuan is above revenue (3.38 100m-yuan)"),
    ("year,revenue,rd_expense\n2018,3.38,-0.5\n", "T rd_expense 2018: -0.5 100m-yuan is negative"),
    ("year,revenue,cost_of_revenue\n2018,3.38,-1\n", "T cost_of_revenue 2018: -1 100m-yuan is negative"),
    ("year,revenue\n2017,1e400\n2018,2\n", "T revenue 2017: '1e400' is not an amount (exponent notation"),
    ("year,revenue\n2017,NaN\n2018,2\n", "T revenue 2017: 'NaN' is not an amount"),
    ("year,revenue\n2017,Infinity\n2018,2\n", "T revenue 2017: 'Infinity' is not an amount"),
    ("year,revenue\n2017,1.2.3\n2018,2\n", "T revenue 2017: '1.2.3' is not an amount"),
])
def test_bad_statement_cells_are_named(rows, message):
    with pytest.raises(StatementError) as caught:
        read_csv(statement(rows), "T")
    assert message in str(caught.value)


def test_json_exponents_and_non_finite_numbers_are_named():
    years = {"2018": {"revenue": 0}}
    for raw, said in (("1e400", "'1E+400' is not an amount (exponent notation"),
                      ("NaN", "is not a finite number"), ("Infinity", "is not a finite number")):
        text = json.dumps({"company": "T", "unit": "100m-yuan", "years": years}).replace("0}", raw + "}")
        with pytest.raises(StatementError) as caught:
            read_json(text)
        assert "T revenue 2018" in str(caught.value) and said in str(caught.value), str(caught.value)


def test_negative_revenue_no_longer_meets_standard_2(tmp_path):
    # before: R&D over a negative revenue gave a "met" standard 2 (cumulative ratio over a negative base)
    path = tmp_path / "neg.csv"
    path.write_text(statement("year,revenue,rd_expense\n2016,2.5,0.5\n2017,2.6,0.6\n2018,-3.38,0.8\n"))
    for command in ("show", "star"):
        result, said = cnet(command, path)
        assert result.exit_code == 1 and "revenue 2018: -3.38 100m-yuan is negative" in said, result.output
        assert "met" not in said and result.exception is None or isinstance(result.exception, SystemExit)


# --- peer tables ------------------------------------------------------------------------------

def _table(tmp_path: Path, change) -> Path:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("company,"))
    columns = lines[header].split(",")
    rows = [dict(zip(columns, line.split(","))) for line in lines[header + 1:]]
    change(rows)
    body = [",".join(row.get(c, "") for c in columns if c in row) for row in rows]
    path = tmp_path / "peers.csv"
    path.write_text("\n".join(lines[:header + 1] + body) + "\n", encoding="utf-8")
    return path


def _set(company: str, **cells):
    def change(rows):
        row = next(r for r in rows if r["company"] == company)
        row.update(cells)
    return change


def test_a_row_with_a_missing_cell_is_named(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("company,revenue_2016,revenue_2018,net_profit_2016\nA,1.0,2.0\n")
    with pytest.raises(StatementError, match="A net_profit_2016: the cell is missing"):
        read_peers(path, "100m-yuan")
    result, said = cnet("peers", "--unit", "100m-yuan", path)
    assert result.exit_code == 1 and "A net_profit_2016: the cell is missing" in said, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_one_firm_in_wan_under_a_yi_header_is_noticed(tmp_path):
    # 世纪空间 written in 万元 (2.86 亿 = 28600 万) while the header says 亿元
    path = _table(tmp_path, _set("世纪空间", revenue_2016="28600", revenue_2017="46300", revenue_2018="60400",
                                 net_profit_2016="1600", net_profit_2017="4600", net_profit_2018="7200"))
    with pytest.raises(StatementError) as caught:
        read_peers(path)
    said = str(caught.value)
    assert "世纪空间 revenue_2018 (60400 100m-yuan)" in said and "another unit than the header" in said, said
    # the same firm with its cells labelled is a statement of fact, and reads as the same firm
    labelled = _table(tmp_path, _set("世纪空间", **{f"{item}_{y}": f"{v} 万元" for item, values in (
        ("revenue", (28600, 46300, 60400)), ("net_profit", (1600, 4600, 7200)))
        for y, v in zip((2016, 2017, 2018), values)}))
    firm = next(p for p in read_peers(labelled) if p.company == "世纪空间")
    original = next(p for p in read_peers(TABLE) if p.company == "世纪空间")
    assert firm.statement.value("revenue", 2018) == original.statement.value("revenue", 2018)


def test_one_year_of_a_firm_in_another_unit_is_noticed(tmp_path):
    path = _table(tmp_path, _set("世纪空间", revenue_2017="46300"))
    with pytest.raises(StatementError, match="世纪空间: revenue jumps"):
        read_peers(path)


@pytest.mark.parametrize("cells, message", [
    ({"revenue_2018": "-6.04"}, "世纪空间 revenue_2018: -6.04 100m-yuan is negative"),
    ({"rd_ratio_2018": "102.6"}, "世纪空间 rd_ratio_2018: 102.6 % is above 100 %"),
    ({"rd_ratio_2018": "-1"}, "世纪空间 rd_ratio_2018: -1 % is negative"),
    ({"gross_margin_2017": "154.3"}, "世纪空间 gross_margin_2017: 154.3 % is above 100 %"),
    ({"gross_margin_2017": "n/a"}, "世纪空间 gross_margin_2017: printed percentage 'n/a' is not a number"),
    ({"reported_revenue_cagr": "1e400"}, "世纪空间 reported_revenue_cagr: printed percentage '1e400' is not a number"),
    ({"reported_profit_yoy_2018": "NaN"}, "世纪空间 reported_profit_yoy_2018: printed percentage 'NaN' is not a number"),
    ({"net_margin_2018": "Infinity"}, "世纪空间 net_margin_2018: printed percentage 'Infinity' is not a number"),
    ({"revenue_2016": "1e400"}, "世纪空间 revenue_2016: '1e400' is not an amount (exponent notation"),
])
def test_bad_peer_cells_are_named(tmp_path, cells, message):
    path = _table(tmp_path, _set("世纪空间", **cells))
    with pytest.raises(StatementError) as caught:
        read_peers(path)
    assert message in str(caught.value)
    result, said = cnet("peers", path)
    assert result.exit_code == 1 and message in said and isinstance(result.exception, SystemExit), result.output


# --- no traceback on any input ----------------------------------------------------------------

HOSTILE = ["", " ", "-", "-0", "-1", "0", "1e400", "1E-400", "NaN", "-Infinity", "inf", "1.2.3", "1,,2", "亿元",
           "5 亿元", "5 万", "5 dollars", "0.0000000000000000000000000000001", "9" * 60, "100", "-100", "%",
           "12.5%", "\"", "1_000", "٣", "１２", "None", "true", "[]", "{}", "\x00"]


def _mutants(text: str, count: int, seed: int):
    """The text with one or two cells replaced by hostile values, or a line cut short or dropped."""
    rng = random.Random(seed)
    lines = text.splitlines()
    data = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    for _ in range(count):
        copy = list(lines)
        for _ in range(rng.choice((1, 2))):
            i = rng.choice(data)
            cells = copy[i].split(",")
            action = rng.random()
            if action < 0.8:
                cells[rng.randrange(len(cells))] = rng.choice(HOSTILE)
            elif action < 0.9:
                cells = cells[:rng.randrange(1, len(cells) + 1)]
            else:
                cells.append(rng.choice(HOSTILE))
            copy[i] = ",".join(cells)
        yield "\n".join(copy) + "\n"


@pytest.mark.parametrize("command, fixture, extra", [
    ("peers", "star-market-2019-computer-firms.csv", ["--json"]),
    ("peers", "star-market-2019-computer-firms.csv", ["--unit", "100m-yuan"]),
    ("show", "sample-statement.csv", ["--json"]),
    ("star", "sample-statement.csv", []),
])
def test_no_traceback_on_mutated_input(tmp_path, command, fixture, extra):
    text = (FIXTURES / fixture).read_text(encoding="utf-8")
    path = tmp_path / fixture
    for number, mutant in enumerate(_mutants(text, 60, seed=hash(command + fixture + str(extra)) % 1000)):
        path.write_text(mutant, encoding="utf-8", errors="surrogatepass")
        result = CliRunner().invoke(app, ["finance", command, str(path), *extra], env={"COLUMNS": "220"})
        ok = result.exit_code == 0 or (result.exit_code == 1 and isinstance(result.exception, SystemExit))
        assert ok, (number, mutant, result.output, repr(result.exception))
        assert "Traceback" not in result.output


def test_no_traceback_on_mutated_json_statement(tmp_path):
    data = json.loads((FIXTURES / "sample-statement.json").read_text(encoding="utf-8"))
    rng = random.Random(7)
    path = tmp_path / "s.json"
    values = HOSTILE + [None, 1, -1, 1.5, True, [], {}, {"value": "1e400"}, {"value": "1", "unit": 5}]
    for number in range(80):
        copy = json.loads(json.dumps(data))
        year = rng.choice(sorted(copy["years"]))
        item = rng.choice(sorted(copy["years"][year]) + ["market_cap", "unit", "company"])
        if item in ("market_cap", "unit", "company"):
            copy[item] = rng.choice(values)
        else:
            copy["years"][year][item] = rng.choice(values)
        path.write_text(json.dumps(copy, ensure_ascii=False), encoding="utf-8")
        for command in ("show", "star"):
            result = CliRunner().invoke(app, ["finance", command, str(path)], env={"COLUMNS": "220"})
            ok = result.exit_code == 0 or (result.exit_code == 1 and isinstance(result.exception, SystemExit))
            assert ok, (number, copy, result.output, repr(result.exception))


# --- printed claims (scenario --check) --------------------------------------------------------

CLAIMS = FIXTURES / "star-2019-printed-claims.json"


@pytest.mark.parametrize("path, value, message", [
    (("table", 3, "share_percent"), "5 dollars", "table[3].share_percent: '5 dollars' is not a number"),
    (("table", 0, "pe"), "1e400", "table[0].pe: '1e400' is not a number"),
    (("sums", 1), 1, "sums must be a list of objects"),
    (("sums", 0, "year"), "MMXVIII", "sums[0].year: 'MMXVIII' is not a number"),
    (("sector_cap",), True, "sector_cap: True is not a number"),
    (("table",), {"premium": "1.2"}, "table must be a list of objects"),
])
def test_bad_claims_are_named(tmp_path, path, value, message):
    data = json.loads(CLAIMS.read_text(encoding="utf-8"))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    bad = tmp_path / "claims.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result, said = cnet("scenario", "--check", bad, "--peers", TABLE)
    assert result.exit_code == 1 and message in said and isinstance(result.exception, SystemExit), result.output


def test_a_base_with_its_own_unit_relates_to_the_peer_sums(tmp_path):
    data = json.loads(CLAIMS.read_text(encoding="utf-8"))
    data["profit_base"] = "121000 万元"  # = 12.1 亿元, the table's unit
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["finance", "scenario", "--check", str(path), "--peers", str(TABLE), "--json"])
    assert result.exit_code == 0, result.output
    assert any("without 视联动力" in note for note in json.loads(result.output)["base"])

"""What a report prints about its own valuation, checked against the arithmetic.

A claims file (JSON) holds the scenario's inputs and its printed table, any
figures its text quotes, and its printed totals over the peer table. Checking
them shows where the printed figures are rounding of the same arithmetic and
where they contradict each other, instead of picking one to believe.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional

from .peers import Peer, SumCheck, check_sum, explain_base
from .reconcile import Check
from .statements_io import UNIT_FACTORS, StatementError, parse_amount, unit_name
from .valuation import Scenario, check_row, scenario


@dataclass
class Claims:
    sector_pe: str
    premiums: list[str]
    profit_base: str
    sector_cap: Optional[str]
    unit: str
    table: list[dict] = field(default_factory=list)  # premium, pe, market_cap, share_percent as printed
    text_claims: list[dict] = field(default_factory=list)  # the same keys, as the text states them
    sums: list[dict] = field(default_factory=list)  # item, year, printed
    base_item: str = "net_profit"
    base_year: Optional[int] = None


_NUMBER = re.compile(r"^[-+]?(?:[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)$")
ROW_KEYS = ("premium", "pe", "market_cap", "share_percent")
SUM_ITEMS = ("revenue", "net_profit")


def _claim_number(value: object, where: str) -> str:
    """A printed figure as text: digits only (no exponent, NaN, float or boolean), named when it is not."""
    text = str(value).strip() if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool) else None
    if text is None or not _NUMBER.match(text):
        raise StatementError(f"{where}: {value!r} is not a number")
    return text


def _rows(data: dict, key: str, path: Path) -> list[dict]:
    rows = data.get(key) or []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise StatementError(f"{path}: {key} must be a list of objects")
    for number, row in enumerate(rows):
        if row.get("premium") is None:
            raise StatementError(f"{path}: {key}[{number}].premium is missing")
        for name in ROW_KEYS:
            if row.get(name) is not None:
                _claim_number(row[name], f"{path}: {key}[{number}].{name}")
    return rows


def read_claims(path: Path) -> Claims:
    """The claims file, every figure checked by name before any arithmetic sees it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal, parse_constant=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StatementError(f"{path}: cannot read the claims ({exc})") from None
    if not isinstance(data, dict):
        raise StatementError(f"{path}: expected a JSON object with sector_pe, profit_base, unit")
    missing = [key for key in ("sector_pe", "profit_base", "unit") if not data.get(key)]
    if missing:
        raise StatementError(f"{path}: missing {', '.join(missing)}")
    if not isinstance(data["unit"], str):
        raise StatementError(f"{path}: unit: {data['unit']!r} is not a unit")
    for key in ("sector_pe", "sector_cap"):
        if data.get(key) is not None:
            _claim_number(data[key], f"{path}: {key}")
    if not isinstance(data["profit_base"], (str, int, Decimal)) or isinstance(data["profit_base"], bool):
        raise StatementError(f"{path}: profit_base: {data['profit_base']!r} is not an amount")
    table, text_claims = _rows(data, "table", path), _rows(data, "text_claims", path)
    premiums = data.get("premiums") or [row["premium"] for row in table]
    if not isinstance(premiums, list):
        raise StatementError(f"{path}: premiums must be a list")
    premiums = [_claim_number(p, f"{path}: premiums[{n}]") for n, p in enumerate(premiums)]
    sums = data.get("sums") or []
    if not isinstance(sums, list) or not all(isinstance(s, dict) for s in sums):
        raise StatementError(f"{path}: sums must be a list of objects")
    for number, total in enumerate(sums):
        if total.get("item") not in SUM_ITEMS:
            raise StatementError(f"{path}: sums[{number}].item must be one of {', '.join(SUM_ITEMS)}")
        for key in ("year", "printed"):
            text = _claim_number(total.get(key), f"{path}: sums[{number}].{key}")
            if key == "year" and not text.isdigit():
                raise StatementError(f"{path}: sums[{number}].year: {total['year']!r} is not a year")
    base = data.get("base") or {}
    if not isinstance(base, dict) or base.get("item", "net_profit") not in SUM_ITEMS:
        raise StatementError(f"{path}: base must be an object whose item is one of {', '.join(SUM_ITEMS)}")
    if base.get("year") is not None and not _claim_number(base["year"], f"{path}: base.year").isdigit():
        raise StatementError(f"{path}: base.year: {base['year']!r} is not a year")
    return Claims(str(data["sector_pe"]), premiums, str(data["profit_base"]),
                  None if data.get("sector_cap") is None else str(data["sector_cap"]), data["unit"], table,
                  text_claims, sums, base.get("item", "net_profit"),
                  None if base.get("year") is None else int(base["year"]))


def claims_scenario(claims: Claims) -> Scenario:
    return scenario(claims.sector_pe, claims.premiums, claims.profit_base, claims.sector_cap, claims.unit)


def _row_checks(table: Scenario, rows: list[dict], source: str) -> list[Check]:
    checks = []
    for row in rows:
        checks += check_row(table, row["premium"], row.get("pe"), row.get("market_cap"), row.get("share_percent"),
                            source=source)
    return checks


def check_scenario(claims: Claims, table: Optional[Scenario] = None) -> tuple[Scenario, list[Check], list[Check]]:
    """(our table, the printed table's checks, the text's checks); by default on the claims' own inputs."""
    table = table or claims_scenario(claims)
    return table, _row_checks(table, claims.table, "table"), _row_checks(table, claims.text_claims, "text")


def implied_base(table: Scenario, claims: Claims) -> Optional[tuple[Decimal, Decimal]]:
    """The profit base the printed market caps imply at the printed P/E (lowest, highest)."""
    base = table.shown(table.base.yuan)
    implied = [base * _number(row["market_cap"]) / table.shown(table.row(row["premium"]).market_cap)
               for row in claims.table if row.get("market_cap")]
    return (min(implied), max(implied)) if implied else None


def _number(text: object) -> Decimal:
    return Decimal(str(text).replace(",", ""))


def check_peer_totals(claims: Claims, peers: list[Peer]) -> tuple[list[SumCheck], list[str]]:
    """The printed totals over the peers, and how the scenario's profit base relates to them."""
    sums = [check_sum(peers, s["item"], int(s["year"]), str(s["printed"])) for s in claims.sums]
    year = claims.base_year or max(p.statement.years[-1] for p in peers)
    base = parse_amount(claims.profit_base, unit_name(claims.unit), "profit_base")  # '12.1 亿元' too
    return sums, explain_base(peers, claims.base_item, year, str(base.yuan / UNIT_FACTORS[peers[0].statement.unit]))

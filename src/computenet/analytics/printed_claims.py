"""What a report prints about its own valuation, checked against the arithmetic.

A claims file (JSON) holds the scenario's inputs and its printed table, any
figures its text quotes, and its printed totals over the peer table. Checking
them shows where the printed figures are rounding of the same arithmetic and
where they contradict each other, instead of picking one to believe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional

from .peers import Peer, SumCheck, check_sum, explain_base
from .reconcile import Check
from .statements_io import StatementError
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


def read_claims(path: Path) -> Claims:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StatementError(f"{path}: cannot read the claims ({exc})") from None
    missing = [key for key in ("sector_pe", "profit_base", "unit") if not data.get(key)]
    if missing:
        raise StatementError(f"{path}: missing {', '.join(missing)}")
    table = data.get("table") or []
    premiums = data.get("premiums") or [row["premium"] for row in table]
    base = data.get("base") or {}
    return Claims(str(data["sector_pe"]), [str(p) for p in premiums], str(data["profit_base"]),
                  None if data.get("sector_cap") is None else str(data["sector_cap"]), data["unit"], table,
                  data.get("text_claims") or [], data.get("sums") or [], base.get("item", "net_profit"),
                  base.get("year"))


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
    return sums, explain_base(peers, claims.base_item, year, claims.profit_base)

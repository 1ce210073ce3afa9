"""`cnet finance`: a company's growth, margins, valuation and STAR listing standards; sector scenarios."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from .lazy import lazy
from .main import fail

# imported when a finance command runs, not when `cnet` starts (see lazy.py)
finance = lazy("computenet.analytics.finance")
peer_table = lazy("computenet.analytics.peers")
printed_claims = lazy("computenet.analytics.printed_claims")
star = lazy("computenet.analytics.star")
statements_io = lazy("computenet.analytics.statements_io")
valuation = lazy("computenet.analytics.valuation")
render = lazy("computenet.cli.finance_render")

if TYPE_CHECKING:
    from ..analytics.finance import FinanceReport
    from ..analytics.peers import Peer
    from ..analytics.reconcile import Check

finance_app = typer.Typer(no_args_is_help=True, help="Finance view: statements, STAR standards, valuation scenarios.")
console = Console(emoji=False)
JSON_HELP = "print JSON (for scripts) instead of tables"
DEFAULT_PREMIUMS = ["1.2", "1.3", "1.5", "1.8"]



def _json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _show_report(report: "FinanceReport", as_json: bool) -> None:
    if as_json:
        return _json(report.as_dict())
    tables, notes = render.statement_tables(report)
    for table in tables:
        console.print(table)
    for number, note in enumerate(notes, 1):
        console.print(f"[{number}] {note}", highlight=False, markup=False)


@finance_app.command("show")
def show(file: Path = typer.Argument(..., help="statement: .csv (a row per year) or .json"),
         first: Optional[int] = typer.Option(None, "--from", help="first year of the period"),
         last: Optional[int] = typer.Option(None, "--to", help="last year of the period"),
         as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Growth (yoy, CAGR), gross and net margin, R&D ratio, P/E, P/S, market cap / (net profit + R&D)."""
    try:
        report = finance.analyse(statements_io.read_statement(file), first, last)
    except statements_io.StatementError as exc:
        fail(str(exc))
    _show_report(report, as_json)


@finance_app.command("star")
def star_cmd(file: Path = typer.Argument(..., help="statement with market cap (and facts for standard 5)"),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Each of the five STAR listing standards: met, not met or cannot judge, and why."""
    try:
        results = star.evaluate(statements_io.read_statement(file))
    except statements_io.StatementError as exc:
        fail(str(exc))
    if as_json:
        return _json([r.as_dict() for r in results])
    console.print(render.star_table(results))


def _premiums(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@finance_app.command("scenario")
def scenario(pe: Optional[str] = typer.Option(None, help="sector P/E (e.g. the sector mean, 61.1)"),
             base: Optional[str] = typer.Option(None, help="profit base, e.g. 12.1 (in --unit) or '12.1 亿元'"),
             premium: Optional[str] = typer.Option(None, help="premium multiples of the sector P/E "
                                                               "(default: the claims' premiums, else 1.2,1.3,1.5,1.8)"),
             sector_cap: Optional[str] = typer.Option(None, help="the sector's market cap, for the share"),
             unit: str = typer.Option("100m-yuan", help="unit of --base and --sector-cap: yuan, 10k-yuan, 100m-yuan"),
             check: Optional[Path] = typer.Option(None, help="a report's printed claims (JSON) to check; "
                                                             "its inputs are used where no option gives them"),
             peers: Optional[Path] = typer.Option(None, help="the peer table, to relate the base to its sum"),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Premium multiples of a sector P/E applied to a profit base: P/E, market cap, share of the sector."""
    try:
        claims = printed_claims.read_claims(check) if check else None
        premiums = _premiums(premium) if premium else DEFAULT_PREMIUMS
        if claims is not None:
            pe, base = pe or claims.sector_pe, base or claims.profit_base
            sector_cap = sector_cap or claims.sector_cap
            premiums = _premiums(premium) if premium else claims.premiums
        if pe is None or base is None:
            raise valuation.ScenarioError("give --pe and --base (or --check with a claims file)")
        table = valuation.scenario(pe, premiums, base, sector_cap, unit)
        table_checks = text_checks = []
        if claims is not None:
            _, table_checks, text_checks = printed_claims.check_scenario(claims, table)
        sums, base_notes = [], []
        if claims is not None and peers is not None:
            sums, base_notes = printed_claims.check_peer_totals(claims, peer_table.read_peers(peers))
    except (statements_io.StatementError, valuation.ScenarioError) as exc:
        fail(str(exc))
    implied = printed_claims.implied_base(table, claims) if claims else None
    if as_json:
        return _json({"scenario": table.as_dict(), "table_checks": [c.as_dict() for c in table_checks],
                      "text_checks": [c.as_dict() for c in text_checks], "sums": [vars(s) for s in sums],
                      "base": base_notes, "implied_base": None if implied is None else [str(v) for v in implied]})
    console.print(render.scenario_table(table))
    if table_checks:
        console.print(render.checks_table("the printed table", table_checks))
    if text_checks:
        console.print(render.checks_table("the text's figures", text_checks))
    if implied:
        console.print(f"the printed market caps imply a profit base of {implied[0]:.3f} to {implied[1]:.3f} "
                      f"at P/E {table.sector_pe.yuan} (printed base {render.amount(table.shown(table.base.yuan))})",
                      highlight=False)
    for total in sums:
        console.print(f"{total.what}: {render.verdict(total.verdict)}: {total.reason}", highlight=False)
    for note in base_notes:
        console.print(note, highlight=False, markup=False)


@finance_app.command("peers")
def peers(file: Path = typer.Argument(..., help="a peer table (CSV) with printed percentages"),
          unit: Optional[str] = typer.Option(None, help="the table's money unit, if its header does not say"),
          all_checks: bool = typer.Option(False, "--all", help="list every check, not only the differences"),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The peer table's printed growth, CAGR, margins and R&D ratios against recomputation, with reasons."""
    try:
        rows = peer_table.read_peers(file, unit)
        fits = {column: peer_table.period_fit(rows, column)
                for column in ("reported_revenue_cagr", "reported_profit_cagr")}
        method = peer_table.rd_method(rows)
    except (statements_io.StatementError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        return _json({"peers": [{"company": p.company, "standard": p.standard,
                                 "listing": None if p.listing is None else p.listing.as_dict(),
                                 "checks": [c.as_dict() for c in p.checks]} for p in rows],
                      "cagr_periods": {k: {str(n): list(v) for n, v in fit.items()} for k, fit in fits.items()},
                      "rd_method": vars(method), "not_recomputable": peer_table.NOT_RECOMPUTABLE})
    console.print(render.peers_table(rows))
    shown = [c for p in rows for c in p.checks if all_checks or c.verdict != render.AGREES]
    console.print(render.checks_table("every check" if all_checks else "where printed and recomputed differ",
                                      [_named(p, c) for p in rows for c in p.checks if c in shown]))
    for column, fit in fits.items():
        console.print(f"{column}: " + ", ".join(f"{n} periods reproduce {hit} of {tried}"
                                                for n, (hit, tried) in fit.items()), highlight=False)
    if method.largest_gap is None:
        console.print("R&D 3-year ratio: no firm has both the printed ratio and the yearly ratios", highlight=False)
    else:
        company, printed, cumulative = method.largest_gap
        console.print(f"R&D 3-year ratio: the printed figure is the mean of the yearly ratios for "
                      f"{method.mean_matches} of {method.firms} firms, cumulative R&D / cumulative revenue "
                      f"(the STAR standard 2 definition) for {method.cumulative_matches}; largest gap {company}: "
                      f"{printed} % vs {cumulative:.2f} %", highlight=False, markup=False)
    for company, printed, cumulative in method.flips:
        console.print(f"  {company}: the printed {printed} % is {'at or over' if printed >= 15 else 'under'} 15 %, "
                      f"the cumulative {cumulative:.2f} % is not: standard 2's threshold reads differently",
                      highlight=False, markup=False)
    for column, why in peer_table.NOT_RECOMPUTABLE.items():
        console.print(f"{column}: {why}", highlight=False, markup=False)
    for peer in rows:
        if peer.listing is None and peer.standard:
            console.print(f"{peer.company}: standard {peer.standard!r} is not one of the five; not evaluated",
                          highlight=False, markup=False)


def _named(peer: "Peer", check: "Check") -> "Check":
    return replace(check, what=f"{peer.company} {check.what}")


@finance_app.command("operator")
def operator(db: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
             currency: str = typer.Option("CNY", help="the ledger currency to report"),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The platform operator's own revenue, cost of capacity, growth and margins, from its ledger."""
    from ..analytics.finance_operator import operator_statement
    from ..analytics.reports import operational_warehouse
    from ..config import load_settings
    from ..store.db import Database
    from sqlalchemy.exc import SQLAlchemyError

    settings = load_settings() if db is None else None  # its cluster costs apply to its own database
    try:
        database = Database(db or settings.db_url)
    except (SQLAlchemyError, ValueError) as exc:
        fail(f"cannot open the database: {exc}")
    try:
        report = finance.analyse(operator_statement(operational_warehouse(database, settings), currency))
    except statements_io.StatementError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:  # no such database, or not yet created with `cnet admin init`
        fail(f"cannot read the ledger: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        database.dispose()
    _show_report(report, as_json)

"""`cnet balance`, `cnet usage`, `cnet bill`: a user's money, from the API."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer

from rich.markup import escape

from . import render
from .main import api, client, console, fail, utc_option


def balance() -> None:
    """Your accounts: balance, what running jobs may still cost, recent charges."""
    with client() as c:
        me = api(lambda: c.me(entries=10))
    for acc in me.accounts:
        credit = f", credit limit {render.money(acc.credit_limit)}" if acc.credit_limit else ""
        console.print(f"[bold]{escape(acc.name)}[/]{' (default)' if acc.is_default else ''}: balance "
                      f"{render.money(acc.balance)} {acc.currency}, held for running jobs {render.money(acc.reserved)}"
                      f"{credit}, available {render.money(acc.available)}")
        for e in acc.entries:
            amount = f"({render.money(-e.amount)})" if e.pending else render.money(e.amount)
            word = render.ENTRY_WORDS.get(e.kind, e.kind)
            console.print(f"  {e.created_at:%Y-%m-%d %H:%M:%S} {word:<10} {amount:>12}  {e.memo}", highlight=False,
                          markup=False)
    if not me.accounts:
        console.print("you belong to no account yet")


def usage(by: str = typer.Option("cluster", "--by", help="user, account, cluster, partition or day"),
          start: Optional[str] = typer.Option(None, "--from", help="from this day (UTC)"),
          end: Optional[str] = typer.Option(None, "--to", help="up to this day (UTC, exclusive)")) -> None:
    """Core-hours, GPU-hours and cost in your accounts, grouped."""
    from rich.table import Table

    with client() as c:
        rows = api(lambda: c.usage(by, utc_option(start, "--from"), utc_option(end, "--to")))
    table = Table(header_style="bold")
    for column, justify in ((by.upper(), "left"), ("JOBS", "right"), ("CORE-H", "right"), ("GPU-H", "right"),
                            ("COST", "right")):
        table.add_column(column, justify=justify)
    for r in rows:
        table.add_row(escape(str(r.key)), str(r.jobs), f"{r.core_hours:,.2f}", f"{r.gpu_hours:,.2f}",
                      render.money(r.cost))
    if rows:
        table.add_row("[bold]total", str(sum(r.jobs for r in rows)), f"{sum(r.core_hours for r in rows):,.2f}",
                      f"{sum(r.gpu_hours for r in rows):,.2f}", render.money(sum(r.cost for r in rows)))
    console.print(table)


def check_month(month: str) -> None:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        fail(f"month {month!r} is not YYYY-MM (e.g. 2026-12)")


def default_account(c) -> str:
    """The caller's default account (or their first), for commands whose --account was left out."""
    accounts = api(c.me).accounts
    default = [a for a in accounts if a.is_default] or accounts
    if not default:
        fail("you belong to no account")
    return default[0].name


def bill(month: str = typer.Argument(..., help="YYYY-MM"),
         account: Optional[str] = typer.Option(None, help="default: your default account"),
         fmt: str = typer.Option("table", "--format", help="table, csv (the lines), summary-csv (the totals), json or pdf"),
         out: Optional[Path] = typer.Option(None, "--out", help="write the PDF (or CSV) here")) -> None:
    """The monthly statement of an account: opening balance, every charge, closing balance."""
    from rich.table import Table

    if fmt not in ("table", "csv", "summary-csv", "json", "pdf"):
        fail(f"--format {fmt!r}: use table, csv, summary-csv, json or pdf")
    check_month(month)
    with client() as c:
        account = account or default_account(c)
        if fmt in ("csv", "summary-csv", "pdf"):
            data = api(lambda: c.statement_file(account, month, fmt))
            if out is None and fmt == "pdf":
                out = Path(f"{account}-{month}.pdf")
            if out is None:
                sys.stdout.write(data.decode())
            else:
                out.write_bytes(data)
                console.print(f"statement written to {out}", markup=False)
            return
        data = api(lambda: c.statement(account, month))
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    console.print(f"[bold]Statement {escape(data['month'])} for {escape(data['account'])}[/] "
                  f"({escape(data['currency'])})")
    console.print(f"opening balance {data['opening_balance']}")
    table = Table(header_style="bold")
    for column, justify in (("DATE", "left"), ("WHAT", "left"), ("JOB", "right"), ("CORE-H", "right"),
                            ("GPU-H", "right"), ("AMOUNT", "right"), ("DETAIL", "left")):
        table.add_column(column, justify=justify)
    for line in data["lines"]:
        table.add_row(line["date"], render.ENTRY_WORDS.get(line["kind"], line["kind"]), str(line["job_id"] or ""),
                      line["core_hours"], line["gpu_hours"], line["amount"], escape(line["memo"] or ""))
    console.print(table)
    lines = ", ".join(f"{k} {v}" for k, v in sorted(data["by_product_line"].items())) or "none"
    console.print(f"top-ups {data['top_ups']}, charges {data['charges']} (by product line: {lines})\n"
                  f"closing balance {data['closing_balance']}; held for running jobs {data['held_at_close']}")

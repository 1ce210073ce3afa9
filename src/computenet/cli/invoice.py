"""`cnet invoice MONTH`: the numbered invoice of an account's closed month (issued on first request)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .main import api, client, console, fail
from .money import check_month, default_account


def invoice(month: str = typer.Argument(..., help="YYYY-MM, a closed month"),
            account: Optional[str] = typer.Option(None, help="default: your default account"),
            fmt: str = typer.Option("table", "--format", help="table, json, pdf or html"),
            lang: str = typer.Option("en", "--lang", help="en or zh-CN (the PDF's and page's language)"),
            out: Optional[Path] = typer.Option(None, "--out", help="write the PDF or HTML here")) -> None:
    """The invoice of a closed month: issuer, customer, number, lines with discount and VAT, total due."""
    if fmt not in ("table", "json", "pdf", "html"):
        fail(f"--format {fmt!r}: use table, json, pdf or html")
    if lang not in ("en", "zh-CN"):
        fail(f"--lang {lang!r}: use en or zh-CN")
    check_month(month)
    with client() as c:
        account = account or default_account(c)
        data = api(lambda: c.issue_invoice(account, month))
        if fmt in ("pdf", "html"):
            body = api(lambda: c.invoice_file(account, month, fmt, lang))
            out = out or Path(f"{data['number']}.{fmt}")
            out.write_bytes(body)
            console.print(f"invoice {data['number']} written to {out}", markup=False)
            return
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    console.print(f"[bold]Invoice {escape(data['number'])}[/] {escape(data['month'])} for "
                  f"{escape(data['customer'])} ({escape(data['account'])}), issued {data['issued']}, due {data['due']}")
    table = Table(header_style="bold")
    for column in ("PRODUCT LINE", "QUANTITY", "UNIT", "UNIT PRICE", "AMOUNT", "DISCOUNT", "NET", "VAT %", "VAT",
                   "TOTAL"):
        table.add_column(column, justify="left" if column in ("PRODUCT LINE", "UNIT") else "right")
    for line in data["lines"]:
        table.add_row(escape(line["product_line"]), line["quantity"] or "", line["unit"], line["unit_price"] or "",
                      line["gross"], line["discount"], line["net"], line["tax_percent"], line["tax"], line["total"])
    console.print(table)
    console.print(f"net {data['net']}, VAT {data['tax']}, [bold]total due {data['total_due']} {data['currency']}[/]")

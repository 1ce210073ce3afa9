#!/usr/bin/env python3
"""What printing a billing document costs: a statement of --lines job lines (and a 1-page invoice)
as HTML (the baseline: the template the portal shows, inside print.html) and as PDF through WeasyPrint (billing/pdf.py),
best of --repeat, in this process; the PDF's cost is printed as a ratio of the HTML's.

    .venv/bin/python bench/documents.py [--lines 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from decimal import Decimal as D

from pypdf import PdfReader  # in the test extras

from computenet.billing.document import Header, invoice_document, statement_document
from computenet.billing.invoice import Party, build_invoice
from computenet.billing.pdf import document_pdf, environment, footer
from computenet.billing.statements import Line, Statement

ISSUER = Party("北京算力网络科技有限公司", "北京市海淀区中关村大街1号院", "91110108MA01ABCDEF", "中国工商银行北京中关村支行")


def statement(lines: int) -> Statement:
    rows = [Line(f"2026-11-{1 + i % 28:02d} 10:00:00", "post", D("-1.25"), 100 + i, f"分子动力学模拟 md-run-{i}", "hpc",
                 D("12.5000"), D("0"), f"job {100 + i}", D("0.10"), None) for i in range(lines)]
    charges = D("1.25") * lines
    return Statement(account="tsinghua-chem", currency="CNY", month="2026-11", opening_balance=D("100000.00"),
                     closing_balance=D("100000.00") - charges, top_ups=D("0.00"), charges=charges,
                     by_product_line={"hpc": charges}, lines=rows)


def best(work, repeat: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of the fastest of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        work()
        after = resource.getrusage(resource.RUSAGE_SELF)
        runs.append((time.perf_counter() - began, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    page = environment().get_template("billing/print.html")  # the very HTML WeasyPrint lays out
    header = Header(issuer=ISSUER.name, issuer_address=ISSUER.address, issuer_tax_id=ISSUER.tax_id,
                    payment=ISSUER.payment, customer="清华大学化学系", number="ST-202611-000001", issued="2026-12-01",
                    period="2026-11-01 00:00 – 2026-12-01 00:00 UTC", language="zh-CN")
    document_pdf(statement_document(statement(3), header))  # WeasyPrint's import and fonts, once
    st = statement(args.lines)
    invoice = invoice_document(build_invoice(statement(3), number="INV-2026-000001", customer="清华大学化学系",
                                             issued="2026-12-01", due="2026-12-31", issuer=ISSUER,
                                             tax_rates={"hpc": D("6")}), "zh-CN")
    print(f"billing documents, best of {args.repeat} (wall / CPU seconds)")
    for name, doc in ((f"statement of {args.lines} lines", statement_document(st, header)), ("invoice", invoice)):
        html_wall, html_cpu = best(lambda: page.render(doc=doc, footer=footer(doc.language)), args.repeat)
        pdf = document_pdf(doc)
        pdf_wall, pdf_cpu = best(lambda: document_pdf(doc), args.repeat)
        print(f"  {name:28} HTML {html_wall:6.3f} / {html_cpu:6.3f}   PDF {pdf_wall:6.2f} / {pdf_cpu:6.2f}  "
              f"({len(PdfReader(io.BytesIO(pdf)).pages)} pages, PDF = {pdf_cpu / max(html_cpu, 1e-6):,.0f}x "
              f"the HTML's CPU)")


if __name__ == "__main__":
    main()

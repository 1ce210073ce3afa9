"""HTML to PDF for every document the platform prints (billing/pdf.py: statements and invoices;
analytics/monthly_render.py: the monthly operator report), through WeasyPrint.

A document may carry text from users and customers (job names, company names), so it fetches
nothing while it prints: only data: URLs (an embedded logo, charts as PNG) are read, never the
network or this server's files, whatever the text says."""

from __future__ import annotations


def html_to_pdf(html: str, stylesheets: tuple = ()) -> bytes:
    from weasyprint import HTML, URLFetcher  # loads Pango: only when a PDF is asked for

    fetcher = URLFetcher(allowed_protocols={"data"})
    return HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=list(stylesheets))

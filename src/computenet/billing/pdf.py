"""Billing documents (invoices, statements) as PDF: WeasyPrint prints the same Jinja template the portal
shows (templates/billing/_document.html, inside print.html) with a print stylesheet (print.css): A4,
a title block with the issuer's logo, table headers repeated on every page, right-aligned numbers, long
text wrapped inside its cell and a running "page N of M" footer in the document's language.

Text is set in Noto Sans CJK SC (fonts-noto-cjk) in both languages; WeasyPrint embeds a subset of
each font it uses, so the file reads the same everywhere and its text can be searched and copied."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from .document import TEMPLATES, Document, Header, statement_document
from .document_words import PAGE_WORDS
from .statements import Statement


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                       trim_blocks=True, lstrip_blocks=True)


def footer(language: str) -> Markup:
    """The CSS ``content`` of the running footer: "page N of M" with the page counters in place."""
    words = PAGE_WORDS.get(language, PAGE_WORDS["en"])
    pieces = re.split(r"%\((page|pages)\)s", words)  # text, counter, text, counter, text
    css = [f"counter({piece})" if n % 2 else '"' + piece.replace("\\", "\\\\").replace('"', '\\"') + '"'
           for n, piece in enumerate(pieces) if piece]
    return Markup(" ".join(css))  # our own words, quoted for CSS: nothing here to escape for HTML


LONG_TABLE = 40  # rows
TEXT_EMS = 60.7  # the printable width (A4 less print.css's margins, 182 mm) in ems of its 8.5 pt text


def _ems(text: str) -> float:
    """About how wide text is set in Noto Sans CJK SC: a CJK character 1 em, others at most 0.62 em."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.62 for ch in text)


def fixed_layouts(doc: Document) -> Markup:
    """CSS giving each long table a fixed layout with its columns as wide as their widest cell (the long
    text column takes the rest). WeasyPrint's automatic layout measures every cell of a table again on
    each page it runs onto, so a statement's time grew with lines x pages; a fixed one is measured once."""
    rules = []
    for n, table in enumerate(doc.tables, start=1):
        if len(table.rows) < LONG_TABLE or not any(c.wide for c in table.columns):
            continue
        widths = {j: max(_ems(c.label), *(_ems(row[j - 1]) for row in table.rows))
                  for j, c in enumerate(table.columns, start=1) if not c.wide}
        if sum(widths.values()) > 0.7 * TEXT_EMS:  # too little left for the long text: measure it all
            continue
        at = f"article > table:nth-of-type({n})"
        rules.append(f"{at} {{ table-layout: fixed; }}")
        rules += [f"{at} th:nth-child({j}) {{ width: {ems:.2f}em; }}" for j, ems in widths.items()]
    return Markup("\n".join(rules))  # numbers and selectors only: no text of the document


@lru_cache(maxsize=1)
def _stylesheet():
    from weasyprint import CSS

    return CSS(filename=str(TEMPLATES / "billing" / "print.css"))


def document_pdf(doc: Document) -> bytes:
    from weasyprint import HTML, URLFetcher  # loaded only to print: it takes a while to import

    html = environment().get_template("billing/print.html").render(doc=doc, footer=footer(doc.language),
                                                                  layouts=fixed_layouts(doc))
    # data: URLs only (the logo, embedded by billing/document.py): a document fetches nothing from the
    # network or from this server's files, whatever its text says
    fetcher = URLFetcher(allowed_protocols={"data"})
    return HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=[_stylesheet()])


def statement_pdf(st: Statement, header: Optional[Header] = None) -> bytes:
    return document_pdf(statement_document(st, header))

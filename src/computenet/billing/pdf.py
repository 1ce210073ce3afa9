"""Billing documents (invoices, statements) as PDF: WeasyPrint prints the same Jinja template the portal
shows (templates/billing/_document.html, inside print.html) with a print stylesheet (print.css): A4,
a title block with the issuer's logo, table headers repeated on every page, right-aligned numbers, long
text wrapped inside its cell and a running "page N of M" footer in the document's language.

Text is set in Noto Sans CJK SC (fonts-noto-cjk) in both languages; WeasyPrint embeds a subset of
each font it uses, so the file reads the same everywhere and its text can be searched and copied."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..printing import html_to_pdf
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


@lru_cache(maxsize=1)
def _stylesheet():
    from weasyprint import CSS

    return CSS(filename=str(TEMPLATES / "billing" / "print.css"))


def document_pdf(doc: Document) -> bytes:
    html = environment().get_template("billing/print.html").render(doc=doc, footer=footer(doc.language))
    return html_to_pdf(html, (_stylesheet(),))  # the logo comes embedded (billing/document.py)


def statement_pdf(st: Statement, header: Optional[Header] = None) -> bytes:
    return document_pdf(statement_document(st, header))

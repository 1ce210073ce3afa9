"""Reading a billing PDF as a customer's reader would, for the PDF tests: poppler (poppler-utils) extracts
each page's words with their boxes and renders pages to PNG, pypdf walks the fonts."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

SCREENSHOTS = Path(os.environ.get("COMPUTENET_SCREENSHOTS", "/tmp/computenet-screenshots"))
MM = 72 / 25.4
# billing/templates/billing/print.css: the body stays inside these margins, the footer inside the bottom one
LEFT = RIGHT = 14 * MM
TOP, BOTTOM = 16 * MM, 18 * MM
EDGE = 5 * MM  # the footer keeps this far from the paper's edge

def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


@dataclass
class Word:
    page: int
    x0: float
    x1: float
    y0: float
    y1: float
    text: str


@dataclass
class Page:
    number: int
    width: float
    height: float
    words: list[Word]

    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def pages(pdf: Path) -> list[Page]:
    """Every page's words with their boxes (points from the top left), in reading order."""
    tree = ET.fromstring(run("pdftotext", "-bbox", str(pdf), "-").replace('xmlns="http://www.w3.org/1999/xhtml"', ""))
    out = []
    for number, page in enumerate(tree.iter("page"), start=1):
        words = [Word(number, float(w.get("xMin")), float(w.get("xMax")), float(w.get("yMin")), float(w.get("yMax")),
                      w.text or "") for w in page.iter("word")]
        out.append(Page(number, float(page.get("width")), float(page.get("height")), words))
    return out


def outside_printable_area(page: Page) -> list[Word]:
    """Words past the margins: the body inside all four, the footer inside the bottom margin."""
    wrong = []
    for w in page.words:
        inside_x = LEFT - 1 <= w.x0 and w.x1 <= page.width - RIGHT + 1
        body = TOP - 1 <= w.y0 and w.y1 <= page.height - BOTTOM + 1
        footer = page.height - BOTTOM <= w.y0 and w.y1 <= page.height - EDGE
        if not (inside_x and (body or footer)):
            wrong.append(w)
    return wrong


def overlapping(page: Page) -> list[tuple[str, str]]:
    """Pairs of words on one line whose boxes overlap: a cell's text running into the next one."""
    found = []
    by_line = sorted(page.words, key=lambda w: (round(w.y0), w.x0))
    for a, b in zip(by_line, by_line[1:]):
        if round(a.y0) == round(b.y0) and b.x0 < a.x1 - 0.5:
            found.append((a.text, b.text))
    return found


def unembedded_fonts(data: bytes) -> list[str]:
    """The fonts (Type0's descendants included) that carry no font program: FontFile, FontFile2 or FontFile3."""
    from pypdf import PdfReader

    missing, seen = [], 0
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            for leaf in [d.get_object() for d in font.get("/DescendantFonts", [])] or [font]:
                seen += 1
                descriptor = leaf.get("/FontDescriptor")
                if descriptor is None or not any(k in descriptor.get_object()
                                                 for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    missing.append(str(leaf.get("/BaseFont")))
    assert seen, "no fonts in the PDF"
    return missing


def font_names(data: bytes) -> set[str]:
    from pypdf import PdfReader

    return {str(font.get_object()["/BaseFont"]) for page in PdfReader(io.BytesIO(data)).pages
            for font in (page["/Resources"].get("/Font") or {}).values()}


def first_page_png(pdf: Path, name: str) -> Path:
    """Page 1 at 80 dpi, kept under SCREENSHOTS (e.g. invoice-en.png) for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = SCREENSHOTS / Path(name).stem  # pdftoppm adds the suffix
    run("pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem))
    return stem.with_suffix(".png")


def _cjk_font_installed() -> bool:
    return bool(shutil.which("fc-list")) and "Noto Sans CJK SC" in run("fc-list", ":lang=zh-cn", "family")


needs_fonts = pytest.mark.skipif(not shutil.which("pdftotext") or not _cjk_font_installed(),
                                 reason="poppler-utils or fonts-noto-cjk not installed (scripts/test installs them)")


def logo_data_url() -> str:
    """A made-up issuer logo (a PNG drawn with Pillow, WeasyPrint's own dependency) as a data: URL."""
    import base64

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (360, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 116, 116), radius=18, fill="#1f3a5f")
    draw.ellipse((30, 30, 90, 90), outline="white", width=10)
    draw.rectangle((140, 38, 350, 52), fill="#1f3a5f")
    draw.rectangle((140, 68, 300, 82), fill="#7a8ca3")
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()

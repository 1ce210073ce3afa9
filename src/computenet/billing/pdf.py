"""A statement or an invoice as a PDF: plain text pages, the font embedded (billing/document.py lays them out).

Text is set in Noto Sans Mono CJK SC (fonts-noto-cjk; COMPUTENET_PDF_FONT="path[#index]"
names another OpenType CJK font): Latin is half width and CJK full width, so the
columns line up in both. Only the glyphs a statement uses are embedded (a subset,
made with fontTools), with a ToUnicode map so the text can be searched and copied.
Long text wraps inside the page. Without that font the statement falls back to
Courier and Adobe's predefined STSong-Light, which the reader must supply.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from .statements import Statement, month_bounds

PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN, LEADING, SIZE = 40, 12, 8.5
LINES_PER_PAGE = (PAGE_H - 2 * MARGIN) // LEADING
COLUMNS = int((PAGE_W - 2 * MARGIN) / (SIZE / 2))  # half-width cells across the printable width
DEFAULT_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc#7"  # Noto Sans Mono CJK SC


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _is_latin(ch: str) -> bool:
    return ord(ch) < 256


def _show(text: str) -> str:
    """Text operators for one line: Courier runs as (..), CJK runs as UTF-16BE <..>."""
    ops = []
    for latin, chars in groupby(text, key=_is_latin):
        run = "".join(chars)
        if latin:
            run = "".join(ch if ch.isprintable() else " " for ch in run)
            ops.append(f"/F1 {SIZE} Tf ({_escape(run)}) Tj")
        else:
            ops.append(f"/F2 {SIZE} Tf <{run.encode('utf-16-be').hex().upper()}> Tj")
    return " ".join(ops) or "( ) Tj"


def cells(ch: str) -> int:
    """Half-width cells a character takes in the mono font: 2 for CJK, 1 otherwise."""
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def width(text: str) -> int:
    return sum(cells(ch) for ch in text)


def wrap(text: str, columns: int) -> list[str]:
    """Break text into pieces of at most ``columns`` cells, at a space where one is near."""
    pieces, rest = [], text
    while width(rest) > columns:
        used, cut = 0, 0
        while used + cells(rest[cut]) <= columns:
            used += cells(rest[cut])
            cut += 1
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space + 1
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:]
    return pieces + [rest]


@dataclass(frozen=True)
class Header:
    """Who issues the statement to whom: the document's top block."""

    issuer: str = "ComputeNet"
    issuer_address: str = ""
    issuer_tax_id: str = ""
    payment: str = ""
    customer: str = ""  # the organisation (tenant); the account code is printed anyway
    number: str = ""
    issued: str = ""  # a date
    period: str = ""  # start - end with the time zone
    language: str = "en"


LABELS = {
    "en": {"statement": "Statement", "issuer": "Issuer", "tax_id": "Tax ID", "customer": "Customer",
           "account": "Account", "number": "Statement no.", "issued": "Issue date", "period": "Period",
           "currency": "Currency", "closed": "closed", "open": "open, not yet final", "payment": "Payment"},
    "zh-CN": {"statement": "对账单", "issuer": "出具方", "tax_id": "纳税人识别号", "customer": "客户",
              "account": "账户", "number": "对账单编号", "issued": "出具日期", "period": "账期",
              "currency": "币种", "closed": "已结账", "open": "未结账，金额可能变动", "payment": "付款方式"},
}


def statement_header(issuer, account_id: int, customer: str, month: str, zone: str, language: str,
                     today: Optional[date] = None) -> Header:
    """The header for one account's month: ``issuer`` is the configured IssuerConfig; the number is
    stable (the same account and month always print the same number); the period is the UTC month
    the ledger is cut at, said with its time zone, and the issue date is today in ``zone``."""
    start, end = month_bounds(month)
    issued = today or datetime.now(ZoneInfo(zone)).date()
    return Header(issuer=issuer.name, issuer_address=issuer.address, issuer_tax_id=issuer.tax_id,
                  payment=issuer.payment, customer=customer, number=f"ST-{month.replace('-', '')}-{account_id:06d}",
                  issued=issued.isoformat(), period=f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC",
                  language=language if language in LABELS else "en")


def pad(text: str, cells_wide: int, right: bool = False) -> str:
    """Pad to a width in half-width cells (a CJK character takes two)."""
    space = " " * max(0, cells_wide - width(text))
    return space + text if right else text + space


TABLE_WORDS = {
    "en": {"opening": "Opening balance", "date": "date", "what": "what", "job": "job", "core": "core-h",
           "gpu": "GPU-h", "amount": "amount", "detail": "detail", "in": "Top-ups and transfers in",
           "charges": "Charges", "closing": "Closing balance", "held": "Held for running jobs"},
    "zh-CN": {"opening": "期初余额", "date": "日期", "what": "类型", "job": "作业", "core": "核时",
              "gpu": "卡时", "amount": "金额", "detail": "明细", "in": "充值及转入",
              "charges": "消费", "closing": "期末余额", "held": "运行中作业冻结"},
}
KIND_WORDS_ZH = {"topup": "充值", "hold": "冻结", "post": "消费", "void": "解冻", "charge": "消费", "refund": "退款",
                 "transfer": "转账", "adjustment": "调整"}


def statement_detail(line, language: str = "en") -> str:
    name = (line.job_name or "").strip()
    text = f"{name}: {line.memo}" if name and name not in line.memo else line.memo
    prices = []  # the unit prices the job was rated at
    for hours, price, unit in ((line.core_hours, getattr(line, "price_core_hour", None), ("core-h", "核时")),
                               (line.gpu_hours, getattr(line, "price_gpu_hour", None), ("GPU-h", "卡时"))):
        if price is not None and hours:
            prices.append(f"{price.normalize():f}/{unit[language == 'zh-CN']}")
    if prices:
        text += ("  单价 " if language == "zh-CN" else "  at ") + ", ".join(prices)
    return text


def to_pdf(st: Statement, header: Optional[Header] = None) -> bytes:
    """The statement's PDF, laid out from the same Document the HTML page shows (billing/document.py)."""
    from .document import PAGE_WORDS, statement_document, text_lines

    doc = statement_document(st, header)
    return pages_pdf(text_lines(doc, COLUMNS), PAGE_WORDS.get(doc.language, PAGE_WORDS["en"]))


def pages_pdf(lines: list[str], page_word: str = "page %d of %d") -> bytes:
    """Lines already inside the printable width, cut into pages, each closed by its number."""
    per_page = LINES_PER_PAGE - 2  # a blank line and the page number close each page
    pages = [lines[i:i + per_page] for i in range(0, len(lines), per_page)] or [[]]
    pages = [page + [""] * (per_page - len(page) + 1) + [pad(page_word % (n, len(pages)), COLUMNS, True)]
             for n, page in enumerate(pages, start=1)]
    source = font_source()
    return _embedded(pages, source) if source else _standard(pages)


def font_source() -> Optional[tuple[str, int]]:
    """(file, index in a collection) of the statement font, or None where it is not installed."""
    path, _, index = (os.environ.get("COMPUTENET_PDF_FONT") or DEFAULT_FONT).partition("#")
    return (path, int(index or 0)) if Path(path).is_file() else None


@lru_cache(maxsize=2)
def _cmap(path: str, index: int) -> tuple[dict[int, int], dict[int, int]]:
    """char -> CID and CID -> advance (1/1000 em), read once per font."""
    from fontTools.ttLib import TTFont  # matplotlib's dependency: loaded only to render

    font = TTFont(path, fontNumber=index, lazy=True)
    cid = {code: int(name[3:]) if name.startswith("cid") else 0 for code, name in font.getBestCmap().items()}
    metrics = font["hmtx"].metrics
    scale = 1000 / font["head"].unitsPerEm
    advance = {int(name[3:]): round(metrics[name][0] * scale) for name in metrics if name.startswith("cid")}
    return cid, advance


def _subset(path: str, index: int, text: str) -> tuple[bytes, str, list[int]]:
    """The font's CFF program holding only the glyphs of ``text``: (data, font name, bounding box)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=index)
    name = font["name"].getDebugName(6) or "CJKMono"
    options = subset.Options()
    options.desubroutinize, options.hinting, options.notdef_outline = True, False, True
    options.layout_features, options.name_IDs = [], []
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes={ord(ch) for ch in text})
    subsetter.subset(font)
    data = font["CFF "].compile(font)
    return data, name, [round(v) for v in font["CFF "].cff[0].FontBBox]


def _embedded(pages: list[list[str]], source: tuple[str, int]) -> bytes:
    cid_of, advance = _cmap(*source)
    question = cid_of.get(ord("?"), 0)
    used: dict[int, str] = {}  # CID -> the character it stands for (ToUnicode)

    def show(text: str) -> str:
        codes = []
        for ch in text:
            ch = ch if ch.isprintable() else " "
            cid = cid_of.get(ord(ch), question)
            used.setdefault(cid, ch if cid != question or ch == "?" else "?")
            codes.append(f"{cid:04X}")
        return f"<{''.join(codes)}> Tj"

    contents = []
    for page in pages:
        body = [f"BT /F1 {SIZE} Tf {LEADING} TL {MARGIN} {PAGE_H - MARGIN} Td"]
        body += [f"{show(text)} T*" if text else "T*" for text in page]
        body.append("ET")
        contents.append("\n".join(body).encode("ascii"))
    data, name, bbox = _subset(source[0], source[1], "".join(used.values()))
    tag = "".join(chr(65 + b % 26) for b in hashlib.sha256("".join(sorted(used.values())).encode()).digest()[:6])
    base = f"{tag}+{name}"
    widths = " ".join(f"{cid} [{advance.get(cid, 1000)}]" for cid in sorted(used))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the pages are numbered
        f"<< /Type /Font /Subtype /Type0 /BaseFont /{base} /Encoding /Identity-H "
        f"/DescendantFonts [4 0 R] /ToUnicode 7 0 R >>".encode(),
        f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{base} "
        f"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        f"/FontDescriptor 5 0 R /DW 1000 /W [{widths}] >>".encode(),
        f"<< /Type /FontDescriptor /FontName /{base} /Flags 4 /FontBBox [{' '.join(map(str, bbox))}] "
        f"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 733 /StemV 80 /FontFile3 6 0 R >>".encode(),
        _stream(data, "/Subtype /CIDFontType0C"),
        _stream(_to_unicode(used)),
    ]
    return _assemble(objects, contents, "/F1 3 0 R")


def _to_unicode(used: dict[int, str]) -> bytes:
    entries = sorted(used.items())
    blocks = []
    for i in range(0, len(entries), 100):  # at most 100 entries per bfchar block
        chunk = entries[i:i + 100]
        pairs = "\n".join(f"<{cid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for cid, ch in chunk)
        blocks.append(f"{len(chunk)} beginbfchar\n{pairs}\nendbfchar")
    return ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
            "1 begincodespacerange <0000> <FFFF> endcodespacerange\n" + "\n".join(blocks) +
            "\nendcmap CMapName currentdict /CMap defineresource pop end end").encode("ascii")


def _stream(data: bytes, extra: str = "") -> bytes:
    packed = zlib.compress(data)
    return f"<< /Length {len(packed)} /Filter /FlateDecode {extra}>>\nstream\n".encode() + packed + b"\nendstream"


def _standard(pages: list[list[str]]) -> bytes:
    """Without the font file: Courier and the reader's own STSong-Light (nothing embedded)."""
    contents = []
    for page in pages:
        body = [f"BT /F1 {SIZE} Tf {LEADING} TL {MARGIN} {PAGE_H - MARGIN} Td"]
        body += [f"{_show(text)} T*" for text in page]
        body.append("ET")
        contents.append("\n".join(body).encode("latin-1"))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H "
        b"/DescendantFonts [5 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> "
        b"/FontDescriptor << /Type /FontDescriptor /FontName /STSong-Light /Flags 6 "
        b"/FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 "
        b"/StemV 93 >> /DW 1000 >>",
    ]
    return _assemble(objects, contents, "/F1 3 0 R /F2 4 0 R")


def _assemble(objects: list[bytes], contents: list[bytes], fonts: str) -> bytes:
    """Objects 1 (catalog) and 2 (pages, filled in here) first, then a (page, content) pair per page."""
    first = len(objects) + 1
    kids = [f"{first + 2 * n} 0 R" for n in range(len(contents))]
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    for n, content in enumerate(contents):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
                       f"/Resources << /Font << {fonts} >> >> /Contents {first + 2 * n + 1} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)

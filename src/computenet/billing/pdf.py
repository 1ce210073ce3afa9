"""A statement as a PDF: plain text pages, no dependencies.

Latin-1 text is set in the standard Courier font. Anything else (a Chinese
job name or memo) is set in Adobe's predefined CJK font STSong-Light with
the UniGB-UTF16-H encoding, which PDF readers supply themselves, so no font
file is embedded. Amounts and numbers are always Latin.
"""

from __future__ import annotations

from itertools import groupby

from .statements import KIND_WORDS, Statement

PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN, LEADING, SIZE = 40, 12, 8.5
LINES_PER_PAGE = (PAGE_H - 2 * MARGIN) // LEADING


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


def statement_lines(st: Statement) -> list[str]:
    out = [
        f"ComputeNet statement  {st.month}  account {st.account}  ({st.currency})"
        + ("  [closed]" if st.closed else ""),
        "",
        f"Opening balance {st.opening_balance:>14}",
        "",
        f"{'date':<20}{'what':<11}{'job':>8} {'core-h':>10}{'GPU-h':>9}{'amount':>13}  detail",
    ]
    for line in st.lines:
        out.append(f"{line.date:<20}{KIND_WORDS.get(line.kind, line.kind):<11}{str(line.job_id or ''):>8} {line.core_hours:>10}"
                   f"{line.gpu_hours:>9}{line.amount:>13}  {line.memo[:48]}")
    out += [
        "",
        f"Top-ups and transfers in {st.top_ups:>14}",
        f"Charges                  {st.charges:>14}",
    ]
    out += [f"  {name:<22} {total:>14}" for name, total in sorted(st.by_product_line.items())]
    out += [f"Closing balance          {st.closing_balance:>14}", f"Held for running jobs    {st.held_at_close:>14}"]
    return out


def to_pdf(st: Statement) -> bytes:
    lines = statement_lines(st)
    pages = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    objects: list[bytes] = []  # object n is objects[n - 1]
    font_id = 3
    page_ids = []
    contents = []
    for number, page in enumerate(pages, start=1):
        footer = f"page {number} of {len(pages)}"
        body = [f"BT /F1 {SIZE} Tf {LEADING} TL {MARGIN} {PAGE_H - MARGIN} Td"]
        body += [f"{_show(text)} T*" for text in page]
        body.append(f"ET BT /F1 {SIZE} Tf {PAGE_W - MARGIN - 60} {MARGIN / 2} Td ({footer}) Tj ET")
        contents.append("\n".join(body).encode("latin-1"))
    # 1 catalog, 2 pages, 3 Courier, 4 CJK font, 5 its CID font, then (page, content) pairs
    next_id = 6
    kids = []
    for content in contents:
        page_ids.append((next_id, next_id + 1))
        kids.append(f"{next_id} 0 R")
        next_id += 2
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>")
    objects.append(b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H "
                   b"/DescendantFonts [5 0 R] >>")
    objects.append(b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
                   b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> "
                   b"/FontDescriptor << /Type /FontDescriptor /FontName /STSong-Light /Flags 6 "
                   b"/FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 "
                   b"/StemV 93 >> /DW 1000 >>")
    for (page_id, content_id), content in zip(page_ids, contents):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
                       f"/Resources << /Font << /F1 {font_id} 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>".encode())
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

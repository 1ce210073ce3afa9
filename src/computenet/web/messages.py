"""The portal's translatable text: extracted from the templates and web/ Python (Babel), checked
against the catalogues. ``python -m computenet.web.messages`` lists what zh-CN lacks, as .po entries
to paste into an area's catalogue (locale/zh_CN/LC_MESSAGES/<area>.po)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from html.parser import HTMLParser

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from . import i18n

HERE = Path(__file__).parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}}
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
# below the portal, text a person reads is made with computenet.messages.msg (English str, translatable)
BELOW = ("services", "monitoring", "billing", "catalog", "files", "routing", "analytics")
BELOW_KEYWORDS = {"msg": None, "N_": None}
LETTERS = re.compile(r"[A-Za-z\u4e00-\u9fff]{2,}")
# documents laid out below the portal (the monthly report), whose words are the portal's catalogues'
BELOW_TEMPLATES = (HERE.parent / "analytics" / "templates",)
JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)


def extracted() -> dict[str, list[str]]:
    """msgid -> where it is used (file:line)."""
    found: dict[str, list[str]] = {}
    sources = [(HERE, "", METHODS, KEYWORDS)] + [
        (HERE.parent / below, f"{below}/", [("**.py", "python")], BELOW_KEYWORDS)
        for below in BELOW if (HERE.parent / below).is_dir()] + [
        (folder.parent, f"{folder.parent.name}/", [METHODS[0]], KEYWORDS) for folder in BELOW_TEMPLATES]
    for folder, prefix, methods, keywords in sources:
        for filename, line, message, _comments, _context in extract_from_dir(
                folder, methods, options_map=OPTIONS, keywords=keywords):
            for msgid in (message if isinstance(message, tuple) else (message,)):
                if msgid:
                    found.setdefault(msgid, []).append(f"{prefix}{filename}:{line}")
    return found


def translated(language: str = "zh-CN") -> set[str]:
    """The message ids the language's catalogues give a translation (even one spelt the same: "API")."""
    done = set()
    for po in (i18n.LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES").glob("*.po"):
        with po.open("rb") as handle:
            done |= {m.id for m in read_po(handle) if m.id and m.string and not m.fuzzy}
    return done


def missing(language: str = "zh-CN") -> dict[str, list[str]]:
    """Extracted messages the language's catalogues do not translate."""
    done = translated(language)
    return {m: where for m, where in extracted().items() if m not in done}


class _Text(HTMLParser):
    """Collects the text a reader sees (text nodes, and attributes read aloud or shown) with its line."""

    SHOWN = {"aria-label", "title", "placeholder", "alt", "value"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            # an input's value is data, a button's is its label
            if name in self.SHOWN and value and (name != "value" or tag == "button"):
                self.found.append((self.getpos()[0], value))

    def handle_data(self, data):
        self.found.append((self.getpos()[0], data))


def untranslated_template_text() -> list[str]:
    """Text written straight into a template (outside {{ _("...") }}) that a reader would see:
    "file:line: text". Jinja's own syntax is blanked first; markup and punctuation are not text."""
    problems = []
    found = [(path, HERE) for path in sorted((HERE / "templates").rglob("*.html"))]
    found += [(path, folder.parent.parent) for folder in BELOW_TEMPLATES for path in sorted(folder.rglob("*.html"))]
    for path, base in found:
        source = JINJA.sub(lambda m: "\x00" + "\n" * m.group(0).count("\n"), path.read_text())
        parser = _Text()
        parser.feed(source)
        parser.close()
        for line, text in parser.found:
            if LETTERS.search(text.replace("\x00", " ")):
                problems.append(f"{path.relative_to(base)}:{line}: {' '.join(text.replace(chr(0), '…').split())[:80]}")
    return problems


def main() -> int:
    lacking = missing(sys.argv[1] if len(sys.argv) > 1 else "zh-CN")
    for msgid, where in sorted(lacking.items(), key=lambda item: item[1][0]):
        print(f"#: {' '.join(where[:3])}\nmsgid {_quote(msgid)}\nmsgstr \"\"\n")
    for problem in untranslated_template_text():
        print(f"# not marked for translation: {problem}", file=sys.stderr)
    return 1 if lacking else 0


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


if __name__ == "__main__":
    raise SystemExit(main())

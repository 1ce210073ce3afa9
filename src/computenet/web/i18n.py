"""The portal's languages: gettext catalogues (Babel) per area, zh-CN and en; dates, numbers and money
formatted per locale.

Catalogues are ``locale/<locale>/LC_MESSAGES/<area>.po``, one file per area of the portal so that pages
can be added without touching each other's catalogue; they are read (and compiled in memory) once per
process. English text is the message id itself: an en catalogue would only repeat it.
"""

from __future__ import annotations

import io
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from .. import messages

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"en": "English", "zh-CN": "中文"}  # as users.language spells them
DEFAULT = "en"


def N_(message: str) -> str:
    """Marks text for the catalogues where it is written, translated later where it is shown."""
    return message


def babel_locale(language: str) -> Locale:
    return Locale.parse(language.replace("-", "_"))


@lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    """Every area's catalogue of ``language``, merged (English: none, the ids are the text)."""
    folder = LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES"
    merged: NullTranslations = NullTranslations()
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=language.replace("-", "_"))
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        part = Translations(buffer)
        if isinstance(merged, Translations):
            merged.merge(part)
        else:
            merged = part
    return merged


def choose(user_language: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The signed-in user's choice, else the language cookie, else the browser's first known language."""
    for choice in (user_language, cookie):
        if choice in LANGUAGES:
            return choice
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


class Formats:
    """Filters for templates, bound to one language."""

    def __init__(self, language: str, currency: str, timezone: str = "UTC") -> None:
        self.locale, self.currency, self.zone = babel_locale(language), currency, ZoneInfo(timezone)

    def money(self, amount: Decimal | str | None, currency: str | None = None) -> str:
        if amount is None:
            return "—"
        return format_currency(Decimal(str(amount)), currency or self.currency, locale=self.locale)

    def number(self, value, places: int | None = None) -> str:
        if value is None:
            return "—"
        if places is not None:
            value = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
        return format_decimal(value, locale=self.locale)

    def when(self, moment) -> str:
        if moment is None:
            return "—"
        return format_datetime(moment, "short" if self.locale.language == "en" else "yyyy-MM-dd HH:mm",
                               tzinfo=self.zone, locale=self.locale)

    def day(self, moment) -> str:
        if moment is None:
            return "—"
        if hasattr(moment, "astimezone") and getattr(moment, "tzinfo", None) is not None:
            moment = moment.astimezone(self.zone)
        return format_date(moment, "medium", locale=self.locale)


def localise(text, language: str, formats: Formats) -> str:
    """A service's message (messages.Text, or an exception carrying one) in ``language``: its template
    translated, money, decimals and moments in the locale's format, fragments translated in turn (in English
    the text is the services' own, character for character). Plain
    text (an error nobody wrapped) is shown as it is; a translation that does not fit its parameters falls
    back to the English text rather than failing the page."""
    made = messages.template_of(text)
    if made is None or language == DEFAULT:  # English: the services' own words, as the API and CLI say them
        return str(text)
    said = translations(language).gettext(made.template)
    if not made.params:
        return said
    values = {name: _local(value, language, formats) for name, value in made.params.items()}
    try:
        return said % values
    except (KeyError, ValueError, TypeError):
        return str(made)


def _local(value, language: str, formats: Formats):
    if isinstance(value, (messages.Text, BaseException)):
        return localise(value, language, formats)
    if isinstance(value, messages.Money):
        return formats.money(value.amount, value.currency)
    if isinstance(value, messages.When):
        return formats.when(value.moment)
    if isinstance(value, Decimal):
        return formats.number(value)
    return value

"""Text a person reads that comes from below the portal (service refusals, efficiency findings, notices),
kept translatable without the services knowing any language but English.

``msg("account %(name)s cannot cover %(cost)s", name=..., cost=Money(...))`` is a ``str``: the English
text, exactly what the API and CLI always printed. It also remembers its template (the msgid, extracted
by web/messages.py with the keyword ``msg``) and its parameters, so the portal can say it again in the
reader's language with money, numbers and dates in their locale (web/i18n.py ``localise``).

Parameters: plain values (shown as ``str()`` in English), ``Money``, ``When``, or another ``msg`` (a
fragment, translated in turn). Templates use ``%(name)s`` (or ``%(name)r`` for quoted names) as the
portal's gettext does.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


class Text(str):
    """English text with the template and parameters it was made from."""

    template: str
    params: dict

    def __new__(cls, template: str, /, **params) -> "Text":
        english = template % params if params else template
        made = super().__new__(cls, english)
        made.template, made.params = template, params
        return made

    def __reduce__(self):  # copies (dataclasses.asdict, pickle) keep the template and parameters
        return (_remake, (self.template, self.params))


def _remake(template: str, params: dict) -> Text:
    return Text(template, **params)


msg = Text  # the extraction keyword: msg("...")


def N_(template: str) -> str:
    """Marks a template for the catalogues where it is defined (filled in with msg() where it is used)."""
    return template


class Money:
    """An amount (Decimal) for a message: English as the services always wrote it (``str(amount)``,
    with `` currency`` when given), the portal's own money format in a translation."""

    def __init__(self, amount: Decimal, currency: str | None = None, english: str | None = None) -> None:
        self.amount, self.currency = amount, currency
        self.english = str(english) if english is not None else (
            f"{amount} {currency}" if currency else str(amount))

    def __str__(self) -> str:
        return self.english

    def __repr__(self) -> str:
        return f"Money({self.amount!r}, {self.currency!r})"


class When:
    """A moment for a message: English as given (default ISO 8601), the reader's date format in a translation."""

    def __init__(self, moment: datetime, english: str | None = None) -> None:
        self.moment = moment
        self.english = str(english) if english is not None else moment.isoformat()

    def __str__(self) -> str:
        return self.english


def template_of(text) -> Text | None:
    """The Text an exception or a value carries, if it is one."""
    if isinstance(text, BaseException):
        text = text.args[0] if len(text.args) == 1 else None
    return text if isinstance(text, Text) else None

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


def dump(text) -> dict | None:
    """A Text as JSON (stored with what it describes, e.g. a routing decision's reasons), None for plain
    text; ``load`` makes it a Text again so a page can say it in its reader's language later."""
    made = template_of(text)
    if made is None:
        return None
    return {"template": made.template, "params": {name: _dump(value) for name, value in made.params.items()}}


def _dump(value):
    if isinstance(value, Text):
        return {"text": dump(value)}
    if isinstance(value, Money):
        return {"money": str(value.amount), "currency": value.currency, "english": value.english}
    if isinstance(value, When):
        return {"when": value.moment.isoformat(), "english": value.english}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def load(data, english: str | None = None):
    """The Text ``dump`` made; ``english`` (the stored plain text) when ``data`` is not one, or does not
    say what ``english`` says (stored by another version)."""
    if not isinstance(data, dict) or not isinstance(data.get("template"), str):
        return english
    try:
        made = Text(data["template"], **{name: _load(value) for name, value in (data.get("params") or {}).items()})
    except (KeyError, ValueError, TypeError, ArithmeticError):
        return english
    return made if english is None or made == english else english


def _load(value):
    if isinstance(value, dict):
        if "text" in value:
            return load(value["text"])  # a fragment: the whole text is checked against its English
        if "money" in value:
            return Money(Decimal(value["money"]), value.get("currency"), value.get("english"))
        if "when" in value:
            return When(datetime.fromisoformat(value["when"]), value.get("english"))
        if "decimal" in value:
            return Decimal(value["decimal"])
    return value


def pattern(template: str):
    """A regular expression that matches what ``template`` says in English, a parameter to a group."""
    import re

    parts = re.split(r"%\((\w+)\)[sr]", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)) + r"\Z",
                      re.S)


def recognised(text: str, patterns) -> "Text | str":
    """Stored English (written before it could be kept as a template) as the Text of the first of
    ``patterns`` ((template, pattern) pairs) that says exactly it; else the text as it is."""
    for template, found in ((t, p.match(text)) for t, p in patterns):
        if found is not None:
            made = Text(template, **found.groupdict())
            if made == text:
                return made
    return text

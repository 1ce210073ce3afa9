"""Operator reports in a reader's language (en or zh-CN): their notes and why they are empty are msg()
texts (analytics/), said here as the portal says them; figures and column names stay as they are."""

from __future__ import annotations

from . import i18n

LANGUAGES = tuple(i18n.LANGUAGES)


def in_language(report, language: str | None):
    """The report with its notes in ``language`` (None or en: the English the API and CLI always gave)."""
    if not language or language == i18n.DEFAULT:
        return report
    if language not in i18n.LANGUAGES:
        raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    formats = i18n.Formats(language, (report.currency or "CNY").split("/")[0])
    return report.said(lambda text: i18n.localise(text, language, formats))


def voice(language: str | None, currency: str | None = None):
    """The monthly report's words in ``language`` (None: en): the portal's catalogues and its way of
    saying the reports' notes (analytics/monthly_render.py Voice)."""
    from ..analytics.monthly_render import Voice

    language = language or i18n.DEFAULT
    if language not in i18n.LANGUAGES:
        raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    formats = i18n.Formats(language, (currency or "CNY").split("/")[0])
    if language == i18n.DEFAULT:
        return Voice(language)
    return Voice(language, i18n.translations(language).gettext, lambda text: i18n.localise(text, language, formats))

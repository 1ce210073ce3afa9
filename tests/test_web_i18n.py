"""The portal speaks zh-CN and en completely: every string a template or page shows is marked for
translation, and every marked string has its zh-CN translation (English text is the message id)."""

from computenet.web import i18n, messages, words


def test_every_marked_string_has_a_zh_cn_translation():
    lacking = messages.missing("zh-CN")
    assert not lacking, ("untranslated (python -m computenet.web.messages prints them as .po entries):\n"
                         + "\n".join(f"  {m!r} at {w[0]}" for m, w in sorted(lacking.items())))


def test_no_template_shows_text_that_is_not_marked_for_translation():
    assert messages.untranslated_template_text() == []


def test_every_job_state_has_a_word():
    assert words.missing_states() == []


def test_catalogues_of_different_areas_do_not_disagree():
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as handle:
            for m in read_po(handle):
                if not m.id:
                    continue
                if m.id in seen and seen[m.id][0] != m.string:
                    clashes.append(f"{m.id!r}: {seen[m.id][1]} says {seen[m.id][0]!r}, {po.name} says {m.string!r}")
                seen.setdefault(m.id, (m.string, po.name))
    assert not clashes, "\n".join(clashes)


def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch):
    """A template with bare text and a marked string nobody translated are both found."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "probe.html").write_text('<p>Bare words</p>\n<p title="Hover text">{{ _("Only in English") }}</p>\n')
    monkeypatch.setattr(messages, "HERE", tmp_path)
    assert [p.split(": ", 1)[1] for p in messages.untranslated_template_text()] == ["Bare words", "Hover text"]
    assert "Only in English" in messages.missing("zh-CN")


def test_money_dates_and_numbers_follow_the_language():
    from datetime import datetime, timezone
    from decimal import Decimal

    zh, en = i18n.Formats("zh-CN", "CNY"), i18n.Formats("en", "CNY")
    assert zh.money(Decimal("1234.5")) == "¥1,234.50" and en.money(Decimal("1234.5")) == "CN¥1,234.50"
    moment = datetime(2026, 12, 7, 9, 5, tzinfo=timezone.utc)
    assert zh.when(moment) == "2026-12-07 09:05" and "12/7/26" in en.when(moment)
    beijing = i18n.Formats("zh-CN", "CNY", "Asia/Shanghai")
    assert beijing.when(moment) == "2026-12-07 17:05"

"""Every user-visible string exists in English and Chinese with the same placeholders."""

from __future__ import annotations

from bot.texts import EN, ZH, detect_locale, placeholders, t


def test_both_locales_have_the_same_keys() -> None:
    assert set(EN) == set(ZH)


def test_both_locales_fill_the_same_placeholders() -> None:
    for key in EN:
        assert placeholders(EN[key]) == placeholders(ZH[key]), key


def test_an_unknown_locale_falls_back_to_english() -> None:
    assert t("cancel.done", "fr", id=4) == "Cancelled #4."


def test_chinese_requests_are_detected_even_with_latin_names() -> None:
    assert detect_locale("给 Dana 起草一封关于发货延迟的邮件") == "zh"
    assert detect_locale("draft an email to Dana") == "en"
    assert detect_locale("email 王伟 about the launch date") == "en"

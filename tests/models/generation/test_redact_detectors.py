"""What redaction detects: e-mails, phone numbers, card numbers, IBANs, operator patterns —
and what it must leave alone (dates, times, ids, versions, amounts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.generation.redact import (
    RedactionConfigError,
    Redactor,
    iban_valid,
    load_patterns,
    luhn_valid,
)


def found(text: str, redactor: Redactor | None = None) -> list[tuple[str, str]]:
    """(label, matched text) of every finding, in text order."""
    redactor = redactor or Redactor()
    return [(f.label, text[f.start : f.end]) for f in redactor.find(text)]


# --- e-mail --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("write to jane.doe@example.com today", "jane.doe@example.com"),
        ("cc a.b+tag@mail.example.co.uk.", "a.b+tag@mail.example.co.uk"),
        ("<mailto:ops@example.org|ops@example.org>", "ops@example.org"),
        ("请发邮件到zhangsan@example.cn谢谢", "zhangsan@example.cn"),
        ("联系 zhang.san@公司.cn 即可", "zhang.san@公司.cn"),
    ],
)
def test_an_email_address_is_found_with_exactly_its_own_characters(text: str, address: str) -> None:
    assert ("EMAIL", address) in found(text)


@pytest.mark.parametrize("text", ["user@localhost", "meet @ 5", "a@b.c", "follow @atombot"])
def test_things_with_an_at_sign_that_are_not_addresses_are_left(text: str) -> None:
    assert found(text) == []


# --- phone numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("call me at (415) 555-2671 please", "(415) 555-2671"),
        ("call 415.555.2671", "415.555.2671"),
        ("dial +44 20 7946 0958 from abroad", "+44 20 7946 0958"),
        ("toll free +1-800-555-0199", "+1-800-555-0199"),
        ("+86 138 0013 8000", "+86 138 0013 8000"),
        ("请打电话138 0013 8000给我", "138 0013 8000"),
        ("电话：13800138000，谢谢", "13800138000"),
        ("上海办公室021-62345678转分机", "021-62345678"),
        ("北京 (010) 8888-6666", "(010) 8888-6666"),
    ],
)
def test_phone_numbers_are_found_in_us_cn_and_international_formats(text: str, number: str) -> None:
    assert found(text) == [("PHONE", number)]


@pytest.mark.parametrize(
    "text",
    [
        "Meet on 2024-05-12 at 10:30",
        "on 12/05/2024 from 10:30-11:45",
        "2026-12-02 09:00 UTC",
        "status of task 12 and task 1234567",
        "upgrade from version 1.2.3 to 10.4.12.1",
        "it took 3.5 hours and cost $1,234.56",
        "2,500,000 units, 1,234,567,890 dollars",
        "room 1203 on floor 12",
        "Q3 2025 revenue was 12345678",
        "id 20261202 and session 20250101123045",
        "ts 1733140000.123456",
        "ISBN 978-3-16-148410-0",
        "ip 192.168.1.100",
        "会议定在2024年5月12日下午3点，第12号任务，预算3.5万元",
    ],
)
def test_dates_times_ids_versions_and_amounts_are_not_phone_numbers(text: str) -> None:
    assert found(text) == []


def test_only_the_configured_regions_national_formats_count() -> None:
    german = "ruf an: 030 12345678"

    assert found(german) == []
    assert found(german, Redactor(regions="DE")) == [("PHONE", "030 12345678")]
    assert found("ruf an: +49 30 12345678") == [("PHONE", "+49 30 12345678")]


# --- payment cards -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("79927398713", True),
        ("79927398710", False),
        ("12a4", False),
    ],
)
def test_the_luhn_checksum(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111.", "4111-1111-1111-1111"),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("卡号6011111111111117请扣款", "6011111111111117"),
        ("mc 5555555555554444", "5555555555554444"),
    ],
)
def test_luhn_valid_card_numbers_are_found_with_spaces_or_dashes(text: str, number: str) -> None:
    assert found(text) == [("CARD", number)]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "4111 1111-1111 1111",  # mixed separators
        "order 1733140000123",  # a millisecond timestamp: starts with 1
        "4111 1111 1111",  # 12 digits
        "41111111111111111111",  # 20 digits
    ],
)
def test_numbers_that_are_not_card_numbers_are_left(text: str) -> None:
    assert [label for label, _ in found(text)] == []


# --- IBANs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89370400440532013000", True),
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("DE89370400440532013001", False),  # mod-97 fails
        ("DE8937040044053201300", False),  # one short for DE
        ("ZZ89370400440532013000", False),  # no such country
    ],
)
def test_the_iban_length_and_mod_97_check(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


@pytest.mark.parametrize(
    ("text", "iban"),
    [
        ("pay to DE89 3704 0044 0532 0130 00 by Friday", "DE89 3704 0044 0532 0130 00"),
        ("IBAN: GB82WEST12345698765432.", "GB82WEST12345698765432"),
        ("请汇款至FR1420041010050500013M02606谢谢", "FR1420041010050500013M02606"),
    ],
)
def test_ibans_are_found_compact_or_grouped(text: str, iban: str) -> None:
    assert found(text) == [("IBAN", iban)]


def test_an_iban_with_a_wrong_check_digit_is_left() -> None:
    assert found("pay to DE88 3704 0044 0532 0130 00") == []


# --- operator patterns and overlaps --------------------------------------------------------


def test_operator_patterns_redact_under_their_own_label() -> None:
    redactor = Redactor(patterns={"employee_id": r"EMP-\d{6}", "PROJECT": r"(?i)project falcon"})

    assert found("EMP-123456 leads Project Falcon", redactor) == [
        ("EMPLOYEE_ID", "EMP-123456"),
        ("PROJECT", "Project Falcon"),
    ]


def test_an_address_holding_digits_is_one_email_not_a_phone_number() -> None:
    assert found("write to 13800138000@qq.com") == [("EMAIL", "13800138000@qq.com")]


def test_one_text_with_every_kind() -> None:
    text = (
        "Email jane.doe@example.com, call +1 415-555-2671, charge 4111 1111 1111 1111, "
        "wire to DE89 3704 0044 0532 0130 00. Due 2024-05-12, 3.5 hours, task 12."
    )

    assert [label for label, _ in found(text)] == ["EMAIL", "PHONE", "CARD", "IBAN"]


# --- configuration -------------------------------------------------------------------------


def test_patterns_come_from_a_yaml_file_or_inline_json(tmp_path: Path) -> None:
    path = tmp_path / "patterns.yaml"
    path.write_text("EMPLOYEE_ID: 'EMP-\\d{6}'\nticket: 'TCK-[0-9]+'\n", encoding="utf-8")

    assert load_patterns(str(path)) == {"EMPLOYEE_ID": r"EMP-\d{6}", "ticket": "TCK-[0-9]+"}
    assert load_patterns(json.dumps({"EMPLOYEE_ID": r"EMP-\d{6}"})) == {"EMPLOYEE_ID": r"EMP-\d{6}"}
    assert load_patterns(None) == {} and load_patterns("  ") == {}


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ({"EMPLOYEE_ID": "EMP-(\\d"}, "not a valid regular expression"),
        ({"EMAIL": "x+"}, "clashes"),
        ({"ID_1": "x+"}, "ending with a letter"),
        ({"OPTIONAL": "x*"}, "matches nothing"),
    ],
)
def test_a_bad_pattern_is_refused_with_its_reason(patterns: dict[str, str], message: str) -> None:
    with pytest.raises(RedactionConfigError) as caught:
        Redactor(patterns=patterns)

    assert message in caught.value.reason


def test_a_missing_pattern_file_and_an_unknown_region_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RedactionConfigError, match="cannot read"):
        load_patterns(str(tmp_path / "absent.yaml"))
    with pytest.raises(RedactionConfigError, match="XX"):
        Redactor(regions="US,XX")

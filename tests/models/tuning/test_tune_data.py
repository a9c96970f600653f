"""The tuning data file: TRL's conversational and standard rows are accepted, anything else is
refused with the line it is on, before any training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from models.tuning import TuneInputError, load_data

SFT_ROW = {
    "messages": [
        {"role": "system", "content": "You are a workplace assistant."},
        {"role": "user", "content": "draft an email to the team about the budget"},
        {"role": "assistant", "content": "hello team , the budget is ready ."},
    ]
}
DPO_CONVERSATIONAL = {
    "prompt": [{"role": "user", "content": "draft an email about the budget"}],
    "chosen": [{"role": "assistant", "content": "hello team , the budget is ready ."}],
    "rejected": [{"role": "assistant", "content": "no"}],
}
DPO_STANDARD = {
    "prompt": "email about the budget",
    "chosen": "the budget is ready",
    "rejected": "no",
}


def jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def refusal(path: Path, method: str) -> str:
    with pytest.raises(TuneInputError) as caught:
        load_data(path, method)
    assert "\n" not in caught.value.reason
    return caught.value.reason


def test_sft_rows_are_read_as_chat_messages_without_the_export_extras(tmp_path: Path) -> None:
    row = {**SFT_ROW, "task_id": 41, "kind": "email.draft"}
    path = jsonl(tmp_path / "sft.jsonl", row, row)

    data = load_data(path, "sft")

    assert data.rows == [SFT_ROW, SFT_ROW]
    assert data.format == "conversational"
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("row", "form"), [(DPO_CONVERSATIONAL, "conversational"), (DPO_STANDARD, "standard")]
)
def test_dpo_rows_are_accepted_in_both_trl_formats(
    tmp_path: Path, row: dict[str, object], form: str
) -> None:
    data = load_data(jsonl(tmp_path / "dpo.jsonl", row, {**row, "tenant": "T1"}), "dpo")

    assert data.rows == [row, row]
    assert data.format == form


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "sft.jsonl"
    path.write_text(f"\n{json.dumps(SFT_ROW)}\n\n", encoding="utf-8")

    assert len(load_data(path, "sft").rows) == 1


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)

    assert "is empty" in refusal(path, "sft")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert "does not exist" in refusal(tmp_path / "nope.jsonl", "sft")


def test_a_malformed_json_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SFT_ROW) + "\n" + '{"messages": [\n')

    assert refusal(path, "sft").startswith("bad.jsonl line 2: not valid JSON")


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ([1, 2], "must be a JSON object"),
        ({"text": "hi"}, "messages must be a non-empty list"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "role must be one of"),
        ({"messages": [{"role": "user", "content": 3}]}, "content must be a string"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant answer"),
    ],
)
def test_a_malformed_sft_row_is_refused(tmp_path: Path, row: object, needle: str) -> None:
    reason = refusal(jsonl(tmp_path / "sft.jsonl", SFT_ROW, row), "sft")

    assert reason.startswith("sft.jsonl line 2:") and needle in reason


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"prompt": "p", "chosen": "c"}, "needs prompt, chosen and rejected"),
        ({**DPO_STANDARD, "chosen": [{"role": "assistant", "content": "c"}]}, "all be strings"),
        (
            {**DPO_CONVERSATIONAL, "chosen": [{"role": "user", "content": "c"}]},
            "role must be one of assistant",
        ),
        ({**DPO_STANDARD, "rejected": " "}, "must not be empty"),
    ],
)
def test_a_malformed_dpo_row_is_refused(tmp_path: Path, row: object, needle: str) -> None:
    reason = refusal(jsonl(tmp_path / "dpo.jsonl", row), "dpo")

    assert reason.startswith("dpo.jsonl line 1:") and needle in reason


def test_one_file_uses_one_dpo_format(tmp_path: Path) -> None:
    reason = refusal(jsonl(tmp_path / "dpo.jsonl", DPO_CONVERSATIONAL, DPO_STANDARD), "dpo")

    assert "line 2: uses the standard format but line 1 the conversational one" in reason


def test_sft_data_is_not_dpo_data(tmp_path: Path) -> None:
    assert "needs prompt, chosen and rejected" in refusal(
        jsonl(tmp_path / "sft.jsonl", SFT_ROW), "dpo"
    )


def test_an_unknown_method_is_refused(tmp_path: Path) -> None:
    assert "unknown method 'ppo'" in refusal(jsonl(tmp_path / "sft.jsonl", SFT_ROW), "ppo")


def test_a_byte_order_mark_and_windows_line_ends_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "sft.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(SFT_ROW) + "\r\n").encode() * 2)

    assert load_data(path, "sft").rows == [SFT_ROW, SFT_ROW]


def test_a_line_separator_inside_a_text_does_not_split_the_row(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=False), as the export writes, leaves U+2028 and U+0085 raw.
    messages = [{"role": "user", "content": "a\u2028b\x85c"}, SFT_ROW["messages"][2]]
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps({"messages": messages}, ensure_ascii=False) + "\n", "utf-8")

    assert load_data(path, "sft").rows == [{"messages": messages}]


def test_a_refusal_does_not_repeat_a_long_value_from_the_file(tmp_path: Path) -> None:
    row = {"messages": [{"role": "secret text " * 1000, "content": "x"}]}

    reason = refusal(jsonl(tmp_path / "sft.jsonl", row), "sft")

    assert "role must be one of" in reason and len(reason) < 200

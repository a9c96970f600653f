"""Intents files: the shipped default is complete; malformed files get an error naming the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.intents import (
    DEFAULT_INTENTS,
    OOS,
    IntentsFileError,
    load_intents,
    load_jsonl,
    parse_intents,
)

HELD_OUT = Path(__file__).resolve().parents[3] / "benchmarks/data/intents_heldout.jsonl"


def test_default_file_covers_every_intent_with_forty_examples_and_chinese() -> None:
    intents = {i.name: i for i in load_intents().intents}
    assert set(intents) == {*DEFAULT_INTENTS, OOS}
    for name, intent in intents.items():
        english = [e for e in intent.examples if not re.search(r"[\u4e00-\u9fff]", e)]
        chinese = [e for e in intent.examples if re.search(r"[\u4e00-\u9fff]", e)]
        assert len(english) >= 40, name
        assert chinese, name


def test_benchmark_held_out_messages_stay_out_of_the_default_file() -> None:
    """The held-out benchmark set only means something while none of it is trained on."""
    texts, labels = load_jsonl(HELD_OUT)
    assert set(labels) == {*DEFAULT_INTENTS, OOS}
    trained = {" ".join(e.lower().split()) for i in load_intents().intents for e in i.examples}
    assert [t for t in texts if " ".join(t.lower().split()) in trained] == []


def test_list_style_examples_are_accepted() -> None:
    parsed = parse_intents('nlu:\n  - intent: help\n    examples: ["help", "what can you do"]\n')
    assert parsed.intents[0].examples == ("help", "what can you do")


def test_content_digest_changes_with_the_content() -> None:
    first = parse_intents("nlu:\n  - intent: help\n    examples: |\n      - help\n")
    second = parse_intents("nlu:\n  - intent: help\n    examples: |\n      - help me\n")
    assert first.digest != second.digest


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (
            "nlu:\n  - intent: help\n    examples: |\n      - help\n      what can you do\n",
            5,
            "must start with '- '",
        ),
        (
            "nlu:\n  - intent: help\n    examples: |\n      - help\n"
            "  - intent: help\n    examples: |\n      - hi\n",
            5,
            "defined twice",
        ),
        ("nlu:\n  - intent: help\n    exampels: |\n      - help\n", 3, "unknown key 'exampels'"),
        ("nlu:\n  - intent: help\n    examples: [unclosed\n", 4, "invalid YAML"),
        ("nlu:\n  - intent: help\n", 2, "has no 'examples'"),
        ("nlu:\n  - examples: |\n      - help\n", 2, "no 'intent' name"),
        ("intents:\n  - intent: help\n", 1, "unknown top-level key"),
    ],
)
def test_malformed_file_error_names_the_line(
    tmp_path: Path, content: str, line: int, fragment: str
) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(IntentsFileError) as info:
        load_intents(path)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IntentsFileError, match="cannot read the file"):
        load_intents(tmp_path / "nope.yaml")

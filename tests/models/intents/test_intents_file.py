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
#: Task kinds the default file declares with ``task:`` blocks (no Python handler).
ENTERPRISE_KINDS = (
    "plan.draft",
    "report.draft",
    "notes.actions",
    "copy.draft",
    "job.posting",
    "result.revise",
)


def _is_chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def test_default_file_covers_every_intent_with_forty_examples_and_chinese() -> None:
    intents = {i.name: i for i in load_intents().intents}
    assert set(intents) == {*DEFAULT_INTENTS, *ENTERPRISE_KINDS, OOS}
    for name, intent in intents.items():
        english = [e for e in intent.examples if not _is_chinese(e)]
        chinese = [e for e in intent.examples if _is_chinese(e)]
        assert len(english) >= 40, name
        assert chinese, name
        if name in ENTERPRISE_KINDS:
            assert len(chinese) >= 40, name


def test_the_enterprise_kinds_are_declared_in_the_file_and_only_follow_ups_consume() -> None:
    intents = {i.name: i for i in load_intents().intents}
    for name in ENTERPRISE_KINDS:
        block = intents[name].task
        assert block is not None, name
        assert "request" in block.placeholders and block.produces, name
        # A required slot would stop a natural request ("write the weekly report") to ask.
        assert block.required == (), name
        expected = "thread" if name == "result.revise" else "none"
        assert block.consumes == expected, name
    revise = intents["result.revise"].task
    assert revise is not None and "previous" in revise.placeholders
    assert [i.name for i in intents.values() if i.task is not None] == list(ENTERPRISE_KINDS)


def test_no_example_is_listed_twice() -> None:
    """A repeated example weighs twice in training; one under two intents teaches nothing."""
    seen: dict[str, str] = {}
    repeated = []
    for intent in load_intents().intents:
        for example in intent.examples:
            key = _normalized(example)
            if key in seen:
                repeated.append((example, seen[key], intent.name))
            seen[key] = intent.name
    assert repeated == []


def test_benchmark_held_out_messages_stay_out_of_the_default_file() -> None:
    """The held-out benchmark set only means something while none of it is trained on."""
    texts, labels = load_jsonl(HELD_OUT)
    assert set(labels) == {*DEFAULT_INTENTS, *ENTERPRISE_KINDS, OOS}
    for name in ENTERPRISE_KINDS:
        rows = [t for t, label in zip(texts, labels, strict=True) if label == name]
        assert len(rows) >= 8 and sum(map(_is_chinese, rows)) >= 4, name
    trained = {_normalized(e) for i in load_intents().intents for e in i.examples}
    assert [t for t in texts if _normalized(t) in trained] == []


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


TASK_FILE = """\
nlu:
  - intent: report.draft
    slots: [topic]
    task:
{block}
    examples: |
      - write the weekly status report
"""


def task_file(block: str) -> str:
    return TASK_FILE.format(block="\n".join("      " + line for line in block.splitlines()))


def test_a_task_block_is_read_with_its_defaults() -> None:
    parsed = parse_intents(task_file("label: report\nprompt: Write about {topic}."))
    block = parsed.intents[0].task
    assert block is not None
    assert (block.label.en, block.label.zh) == ("report", "report")
    assert (block.format, block.max_tokens, block.consumes, block.produces) == (
        "plain",
        512,
        "none",
        True,
    )
    assert block.required == ()


@pytest.mark.parametrize(
    ("block", "line", "fragment"),
    [
        ("label: r\nprompt: |\n  Write it.\n  About {topik}.", 8, "unknown placeholder {topik}"),
        ("label: r\nprompt: About {previous}.", 6, "needs 'consumes: previous'"),
        ("label: r", 5, "has no 'prompt'"),
        ("prompt: Write it.", 5, "has no 'label'"),
        ("label: r\nprompt: Write it.\ncolour: red", 7, "unknown key 'colour'"),
        ("label: r\nprompt: Write it.\nmax_tokens: lots", 7, "'max_tokens' must be a whole"),
        ("label: r\nprompt: Write it.\nmax_tokens: 8", 7, "between 16 and 4096"),
        ("label: r\nprompt: Write it.\nproduces: maybe", 7, "'produces' must be true or false"),
        ("label: r\nprompt: Write it.\nformat: html", 7, "'format' must be one of"),
        ("label: r\nprompt: Write it.\nconsumes: always", 7, "'consumes' must be one of"),
        ("label: r\nprompt: [Write it]", 6, "'prompt' must be a string"),
        ("label: {en: report}\nprompt: Write it.", 5, "'label' has no zh text"),
        ("label: r\nprompt: Write it.\nrequired:\n  owner: Who?", 8, "not one of the intent's"),
        ("label: r\nprompt: Write it.\nrequired: [topic]", 7, "must map slot names"),
        ("label: r\nprompt: 'Write {topic!r}.'", 6, "may not carry a conversion"),
        ("label: r\nprompt: 'Write { it.'", 6, "not a valid template"),
    ],
)
def test_a_malformed_task_block_names_the_file_and_line(
    tmp_path: Path, block: str, line: int, fragment: str
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(task_file(block), encoding="utf-8")
    with pytest.raises(IntentsFileError) as info:
        load_intents(path)
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{path}, line {line}: ")
    assert fragment in str(info.value)


def test_oos_cannot_declare_a_task(tmp_path: Path) -> None:
    content = (
        "nlu:\n  - intent: help\n    examples: [help]\n"
        "  - intent: oos\n    task:\n      label: x\n      prompt: y\n    examples: [weather]\n"
    )
    with pytest.raises(IntentsFileError) as info:
        parse_intents(content, "f.yaml")
    assert info.value.line == 6 and "'oos' cannot have a 'task'" in str(info.value)


def test_a_slot_named_like_a_placeholder_is_refused() -> None:
    content = (
        "nlu:\n  - intent: r\n    slots: [request]\n    task:\n      label: x\n"
        "      prompt: y\n    examples: [hi]\n"
    )
    with pytest.raises(IntentsFileError) as info:
        parse_intents(content, "f.yaml")
    assert info.value.line == 5 and "clashes with a placeholder" in str(info.value)

"""Prompt variants in the intents file: read with the task block, refused naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.intents import IntentsFileError, load_intents, parse_intents

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
    """An intents file whose ``task:`` block is ``block``; its first line is file line 5."""
    return TASK_FILE.format(block="\n".join("      " + line for line in block.splitlines()))


def test_variants_replace_the_prompt_and_the_first_is_the_kinds_prompt() -> None:
    block = (
        parse_intents(
            task_file(
                "label: report\n"
                "variants:\n"
                "  - name: sections\n"
                "    prompt: Write about {topic} in sections.\n"
                "  - name: headline\n"
                "    prompt: |\n"
                "      Open with one line on {topic}.\n"
            )
        )
        .intents[0]
        .task
    )
    assert block is not None
    assert block.variants == (
        ("sections", "Write about {topic} in sections."),
        ("headline", "Open with one line on {topic}.\n"),
    )
    assert block.prompt == "Write about {topic} in sections."


def test_variants_next_to_a_prompt_add_to_it_and_the_prompt_is_named_default() -> None:
    block = (
        parse_intents(
            task_file(
                "label: r\nprompt: Plain {topic}.\nvariants:\n  - {name: short, prompt: Brief.}"
            )
        )
        .intents[0]
        .task
    )
    assert block is not None
    assert block.variants == (("default", "Plain {topic}."), ("short", "Brief."))
    assert block.prompt == "Plain {topic}."


def test_a_block_with_one_prompt_has_no_variants() -> None:
    block = parse_intents(task_file("label: r\nprompt: Write it.")).intents[0].task
    assert block is not None and block.variants == ()


def test_the_default_file_ships_two_different_status_report_prompts() -> None:
    report = next(i for i in load_intents().intents if i.name == "report.draft")
    assert report.task is not None
    names = [name for name, _ in report.task.variants]
    texts = [text for _, text in report.task.variants]
    assert names == ["sections", "headline"]
    assert texts[0] != texts[1]
    assert all("{request}" in text and "{language}" in text for text in texts)


TWO = "  - name: a\n    prompt: A.\n  - name: b\n    prompt: B.\n"


@pytest.mark.parametrize(
    ("block", "line", "fragment"),
    [
        ("label: r", 5, "has no 'prompt' (or 'variants')"),
        ("label: r\nvariants: [{name: a, prompt: A.}]", 6, "at least two prompts"),
        ("label: r\nvariants: []", 6, "must be a list"),
        ("label: r\nvariants: two prompts", 6, "must be a list"),
        ("label: r\nvariants:\n  - Write it.\n  - Write more.", 7, "must be a mapping"),
        ("label: r\nvariants:\n  - name: a\n  - name: b\n    prompt: B.", 7, "has no 'prompt'"),
        ("label: r\nvariants:\n  - prompt: A.\n  - prompt: B.", 7, "a variant has no 'name'"),
        ("label: r\nvariants:\n" + TWO + "  - name: a\n    prompt: C.", 11, "'a' is named twice"),
        (
            "label: r\nprompt: P.\nvariants:\n  - name: default\n    prompt: Q.",
            8,
            "'default' is the name of 'prompt'",
        ),
        ("label: r\nvariants:\n  - name: Short One\n    prompt: A.\n" + TWO, 7, "lowercase"),
        ("label: r\nvariants:\n  - name: a\n    prompt: A.\n    tone: dry\n" + TWO, 9, "'tone'"),
        (
            "label: r\nvariants:\n"
            + TWO
            + "  - name: c\n    prompt: |\n      Write.\n      {topik}",
            14,
            "unknown placeholder {topik}",
        ),
        ("label: r\nvariants:\n  - name: a\n    prompt: ''\n" + TWO, 8, "'prompt' is empty"),
        ("label: r\nvariants:\n  - name: a\n    prompt: 'On {previous}.'\n" + TWO, 8, "consumes"),
    ],
)
def test_a_malformed_variants_block_names_the_file_and_line(
    tmp_path: Path, block: str, line: int, fragment: str
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(task_file(block), encoding="utf-8")
    with pytest.raises(IntentsFileError) as info:
        load_intents(path)
    assert str(info.value).startswith(f"{path}, line {line}: "), str(info.value)
    assert fragment in str(info.value)

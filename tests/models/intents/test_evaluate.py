"""Evaluation of atomization on multi-intent rows: exact sequence, intent set, task count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.intents import IntentsFileError, TaskSpec
from models.intents.evaluate import evaluate_atomization, format_atomization, load_eval_rows


class ScriptedParser:
    """An ``IntentParser`` that answers each message with the intents written for it."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    def parse(self, text: str, **_: object) -> list[TaskSpec]:
        return [TaskSpec(intent) for intent in self.answers.get(text, ["oos"])]


def test_rows_with_label_and_with_labels_are_read_apart(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    rows = [
        {"text": "book a room", "label": "room.book"},
        {"text": "book a room and order lunch", "labels": ["room.book", "lunch.order"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    loaded = load_eval_rows(path)
    assert (loaded.texts, loaded.labels) == (["book a room"], ["room.book"])
    assert loaded.multi_labels == [["room.book", "lunch.order"]]


def test_a_row_without_labels_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "labels": []}\n', encoding="utf-8")
    with pytest.raises(IntentsFileError, match="line 2"):
        load_eval_rows(path)


def test_figures_by_number_of_requests() -> None:
    gold = {
        "a": ["x"],
        "a and b": ["x", "y"],
        "b and a": ["y", "x"],
        "a, b and c": ["x", "y", "z"],
    }
    answers = {"a": ["x"], "a and b": ["x", "y"], "b and a": ["x", "y"], "a, b and c": ["x", "y"]}
    report, predicted = evaluate_atomization(
        ScriptedParser(answers), list(gold), list(gold.values()), latency_samples=4
    )
    assert predicted == list(answers.values())
    assert (report.exact, report.intent_set, report.task_count) == (0.5, 0.75, 0.75)
    assert report.by_count[2] == {"rows": 2.0, "exact": 0.5, "intent_set": 1.0, "task_count": 1.0}
    assert report.by_count[3]["task_count"] == 0.0
    assert "exact intent sequence 50.0%" in format_atomization(report)[0]


def test_out_of_scope_counts_as_no_task() -> None:
    report, predicted = evaluate_atomization(
        ScriptedParser({}), ["tell me a joke"], [["x"]], latency_samples=1
    )
    assert predicted == [[]]
    assert report.task_count == 0.0

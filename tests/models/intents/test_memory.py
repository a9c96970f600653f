"""Corrections used at once: the corrected message (or a near duplicate) gets the corrected
intent at parse time, in its own scope only, until the correction is removed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.intents import IntentClassifier
from models.intents.learning import CorrectionExample
from models.intents.memory import CorrectionMemory

NOW = "2026-12-01T10:00:00+00:00"
WHEN = datetime(2026, 12, 1, tzinfo=UTC)
BOOKING = "book the large meeting room for Tuesday afternoon"


@pytest.fixture
def memory(classifier: IntentClassifier) -> CorrectionMemory:
    memory = CorrectionMemory(classifier.encoder)
    memory.add(CorrectionExample(BOOKING, "reminder.create", "slack:T1", WHEN, id=7))
    memory.add(CorrectionExample("tell me a joke", "help", "slack:T1", WHEN, id=8))
    return memory


def test_the_same_message_gets_the_corrected_intent(
    classifier: IntentClassifier, memory: CorrectionMemory
) -> None:
    assert memory.lookup("slack:T1", "Book the large meeting room  for Tuesday afternoon") == (
        "reminder.create",
        1.0,
    )
    specs = classifier.parse("tell me a joke", now_iso=NOW, overrides=memory.for_scope("slack:T1"))
    assert [s.intent for s in specs] == ["help"]


def test_a_near_duplicate_gets_it_and_a_different_message_does_not(
    memory: CorrectionMemory,
) -> None:
    near = memory.lookup("slack:T1", "book the large meeting room for tuesday afternoon please")
    assert near is not None and near[0] == "reminder.create" and 0.9 <= near[1] < 1.0
    assert memory.lookup("slack:T1", "summarize the thread about the meeting room") is None


def test_another_scope_never_sees_the_correction(
    classifier: IntentClassifier, memory: CorrectionMemory
) -> None:
    assert memory.lookup("slack:T2", BOOKING) is None
    assert memory.lookup("telegram:T1", "tell me a joke") is None
    plain = classifier.parse("tell me a joke", now_iso=NOW)
    other = classifier.parse("tell me a joke", now_iso=NOW, overrides=memory.for_scope("slack:T2"))
    assert other == plain
    assert [s.intent for s in plain] == ["oos"]


def test_a_corrected_clause_of_a_chained_message_is_relabelled(
    classifier: IntentClassifier, memory: CorrectionMemory
) -> None:
    # This team's "status report" is an email to the boss.
    clause = "draft the weekly status report"
    memory.add(CorrectionExample(clause, "email.draft", "slack:T1", WHEN))
    text = f"summarize this thread and then {clause}"
    plain = classifier.parse(text, now_iso=NOW)
    corrected = classifier.parse(text, now_iso=NOW, overrides=memory.for_scope("slack:T1"))
    assert [s.intent for s in plain] == ["summarize", "report.draft"]
    assert [s.intent for s in corrected] == ["summarize", "email.draft"]
    assert [s.span for s in corrected] == [s.span for s in plain]


def test_a_removed_correction_no_longer_applies(memory: CorrectionMemory) -> None:
    assert memory.remove("slack:T2", BOOKING) is False
    assert memory.remove("slack:T1", id=7) is True
    assert memory.lookup("slack:T1", BOOKING) is None
    assert len(memory) == 1
    memory.clear("slack:T1")
    assert memory.lookup("slack:T1", "tell me a joke") is None

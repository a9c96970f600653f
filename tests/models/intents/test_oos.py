"""Out-of-scope text is rejected (answered with help by the router), never made a task."""

from __future__ import annotations

import pytest

from models.intents import OOS, IntentClassifier

OUT_OF_SCOPE = [
    "what's the weather like in Berlin tomorrow",
    "tell me a joke",
    "book me a flight to Tokyo",
    "what is the capital of Canada",
    "order sushi for lunch",
    "play some jazz",
    "今天天气怎么样",
]


@pytest.mark.parametrize("message", OUT_OF_SCOPE)
def test_out_of_scope_message_gives_a_single_oos_spec(
    classifier: IntentClassifier, message: str
) -> None:
    specs = classifier.parse(message)
    assert [s.intent for s in specs] == [OOS]
    assert 0.0 <= specs[0].confidence <= 1.0


def test_oos_spec_carries_no_slots(classifier: IntentClassifier) -> None:
    [spec] = classifier.parse("tell me a joke")
    assert spec.slots == {}


def test_rejection_threshold_was_calibrated_on_held_out_data(classifier: IntentClassifier) -> None:
    cal = classifier.calibration
    assert cal.folds >= 2
    # 0.0 is a valid choice: the oos class alone may already reach the recall target.
    assert 0.0 <= cal.threshold < 1.0
    assert cal.oos_recall is not None and cal.oos_recall >= 0.9


def test_low_confidence_prediction_becomes_oos(classifier: IntentClassifier) -> None:
    # A gibberish line sits below the calibrated threshold for every intent.
    [(label, _)] = classifier.predict(["zxqv blorp fnord wib"])
    assert label == OOS

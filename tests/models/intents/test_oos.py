"""Out-of-scope text is rejected (answered with help by the router), never made a task."""

from __future__ import annotations

import numpy as np
import pytest

from models.intents import OOS, IntentClassifier
from models.intents.classifier import OOS_SHIFTS, shift_oos

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


def test_oos_shift_lowers_only_the_oos_probability_and_keeps_rows_normalised() -> None:
    classes = ["help", OOS, "summarize"]
    probs = np.array([[0.3, 0.5, 0.2], [0.1, 0.1, 0.8]], dtype=np.float32)
    shifted = shift_oos(probs, classes, 1.0)
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0, rtol=1e-6)
    assert shifted[0, 1] < probs[0, 1]
    # The in-scope labels keep their ratio to each other.
    assert shifted[0, 0] / shifted[0, 2] == pytest.approx(probs[0, 0] / probs[0, 2])
    # Uncertain in-scope text that "oos" won outright can now reach the threshold test.
    assert shifted[0].argmax() == 0
    assert shift_oos(probs, ["a", "b", "c"], 1.0) is probs


def test_calibration_picks_one_of_the_candidate_oos_shifts(classifier: IntentClassifier) -> None:
    assert classifier.calibration.oos_shift in OOS_SHIFTS

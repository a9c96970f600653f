"""The worker's partial-text throttle lets the first *word* through at once: when the first
stored partial held only punctuation or a stray mark, the next partial with a word in it
is stored without waiting for the interval and the token count."""

from __future__ import annotations

from models.generation.worker import PartialThrottle


def test_a_first_partial_without_a_word_lets_the_first_word_through_at_once() -> None:
    throttle = PartialThrottle(interval=0.5, tokens=64)
    assert throttle.due(1, "—", 0.0)
    throttle.stored(1, 0.0, "—")
    assert throttle.due(2, "— 您", 0.01), "the first word (here a CJK one) goes out at once"
    throttle.stored(2, 0.01, "— 您")
    assert not throttle.due(3, "— 您好", 0.02), "then the usual throttle"
    assert throttle.due(66, "— 您好 ...", 0.6)


def test_a_first_partial_with_a_word_keeps_the_usual_throttle() -> None:
    throttle = PartialThrottle(interval=0.5, tokens=64)
    throttle.stored(1, 0.0, "Hi")
    assert not throttle.due(2, "Hi,", 0.01)
    assert not throttle.due(3, "Hi, Dana", 0.02)

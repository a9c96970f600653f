"""The segmenter's dynamic programme, over a stub classifier whose scores are written here."""

from __future__ import annotations

import numpy as np

from models.intents import atomize
from models.intents.atomize import ClauseScores, SegmenterConfig, dependencies, segment
from models.intents.spec import OOS, StaticTraits


class StubScorer:
    """Scores from tables: a text's label is the first keyword it contains, and texts named
    in ``whole`` / ``broken`` are (not) whole requests; everything else is neutral."""

    def __init__(
        self, keywords: dict[str, str], whole: dict[str, float], threshold: float = 0.5
    ) -> None:
        self.keywords = keywords
        self.whole = whole
        self._labels = sorted({*keywords.values(), OOS})
        self._threshold = threshold
        self.calls: list[list[str]] = []

    @property
    def labels(self) -> list[str]:
        return self._labels

    @property
    def threshold(self) -> float:
        return self._threshold

    def score_clauses(self, texts: list[str]) -> ClauseScores:
        self.calls.append(list(texts))
        probs = np.full((len(texts), len(self._labels)), 0.02, dtype=np.float32)
        for row, text in enumerate(texts):
            label = next((v for k, v in self.keywords.items() if k in text), OOS)
            probs[row, self._labels.index(label)] = 0.9
        probs /= probs.sum(axis=1, keepdims=True)
        wholeness = np.array([self.whole.get(t, 0.5) for t in texts], dtype=np.float32)
        return ClauseScores(probabilities=probs, wholeness=wholeness)


KEYWORDS = {"room": "room.book", "lunch": "lunch.order", "expense": "expense.file"}


def labels(text: str, scorer: StubScorer, config: SegmenterConfig | None = None) -> list[str]:
    found = segment(text, scorer, config or atomize.DEFAULT_CONFIG)
    return [s.label for s in found]


def test_splits_when_both_parts_are_whole_and_the_whole_is_not() -> None:
    text = "book a room and order lunch"
    scorer = StubScorer(KEYWORDS, {"book a room": 0.95, "order lunch": 0.95, text: 0.05})
    assert labels(text, scorer) == ["room.book", "lunch.order"]


def test_stays_whole_when_a_part_is_a_fragment() -> None:
    text = "book a room for Tom and Jerry"
    scorer = StubScorer(KEYWORDS, {"book a room for Tom": 0.9, "Jerry": 0.01, text: 0.8})
    assert labels(text, scorer) == ["room.book"]


def test_stays_whole_when_the_whole_is_whole_even_if_parts_look_whole() -> None:
    text = "book a room and order lunch"
    scorer = StubScorer(KEYWORDS, {"book a room": 0.6, "order lunch": 0.6, text: 0.99})
    assert labels(text, scorer) == ["room.book"]


def test_three_requests_come_out_in_order() -> None:
    text = "order lunch, file an expense and then book a room"
    whole = {"order lunch": 0.9, "file an expense": 0.9, "book a room": 0.9, text: 0.01}
    scorer = StubScorer(KEYWORDS, whole)
    found = segment(text, scorer)
    assert [s.label for s in found] == ["lunch.order", "expense.file", "room.book"]
    assert [text[s.start : s.end] for s in found] == [
        "order lunch",
        "file an expense",
        "book a room",
    ]
    # Every run of atoms is scored in one batch.
    assert len(scorer.calls) == 1 and len(scorer.calls[0]) == 6


def test_cut_priors_decide_between_equally_whole_readings() -> None:
    text = "book a room and order lunch"
    scorer = StubScorer(KEYWORDS, {"book a room": 0.75, "order lunch": 0.75, text: 0.45})
    assert labels(text, scorer) == ["room.book", "lunch.order"]
    shy = SegmenterConfig(cut_priors=(-1.0, 0.0, 1.0))
    assert labels(text, scorer, shy) == ["room.book"]


def test_an_elliptical_part_takes_the_previous_kind() -> None:
    text = "book a room for Monday and another one for Friday"
    scorer = StubScorer(KEYWORDS, {"book a room for Monday": 0.9, text: 0.9})
    found = segment(text, scorer)
    assert [s.label for s in found] == ["room.book", "room.book"]
    assert text[found[1].start : found[1].end] == "another one for Friday"


def test_an_out_of_scope_piece_joins_the_request_before_it() -> None:
    text = "order lunch. Thanks a lot"
    scorer = StubScorer(KEYWORDS, {"order lunch.": 0.9, "Thanks a lot": 0.9, text: 0.1})
    [found] = segment(text, scorer)
    assert (found.label, text[found.start : found.end]) == ("lunch.order", text)


def test_nothing_in_scope_is_one_oos_segment() -> None:
    text = "tell me a joke and sing"
    [found] = segment(text, StubScorer(KEYWORDS, {}))
    assert found.label == OOS and (found.start, found.end) == (0, len(text))


def test_pasted_text_is_protected_only_after_a_request() -> None:
    pasted = "file an expense: lunch and a room. Then more"
    scorer = StubScorer(KEYWORDS, {"file an expense": 0.9})
    assert labels(pasted, scorer) == ["expense.file"]
    chatter = "note: order lunch and book a room"
    scorer = StubScorer(KEYWORDS, {"order lunch": 0.9, "book a room": 0.9, chatter: 0.1})
    assert labels(chatter, scorer) == ["lunch.order", "room.book"]


def test_blank_text_has_no_segments() -> None:
    assert segment("  \n", StubScorer(KEYWORDS, {})) == []


def test_dependencies_follow_what_kinds_produce_and_consume() -> None:
    traits = StaticTraits(producers=frozenset({"report.draft"}), consumers=frozenset({"mail.send"}))
    intents = ["report.draft", "lunch.order", "mail.send", "mail.send"]
    clauses = ["draft the report", "order lunch", "mail the result to Kim", "mail Lee hello"]
    assert dependencies(intents, clauses, traits) == [(), (), (0,), ()]
    assert dependencies(["lunch.order", "mail.send"], ["order lunch", "mail it"], traits) == [
        (),
        (),
    ]

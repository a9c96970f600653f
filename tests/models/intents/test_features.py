"""Hashed lexical features: what a message contributes besides its sentence embedding."""

from __future__ import annotations

import numpy as np
import pytest

from models.intents.features import LEXICAL_SCALE, featurize, ngrams


def _asked(text: str) -> set[str]:
    return {f for f in ngrams(text) if f.startswith("q:")}


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("how do I subscribe to digests", {"q:i", "q:subscribe", "q:to", "q:digests"}),
        ("How can we cancel #42?", {"q:we", "q:cancel", "q:#<num>", "q:?"}),
        ("怎么订阅摘要", {"q:订", "q:阅", "q:摘", "q:要", "q:订阅", "q:阅摘", "q:摘要"}),
        ("如何取消", {"q:取", "q:消", "q:取消"}),
    ],
)
def test_words_a_how_to_question_asks_about_are_marked(text: str, asked: set[str]) -> None:
    assert _asked(text) == asked


@pytest.mark.parametrize(
    "text",
    [
        "subscribe to digests",
        "how's my email coming along",
        "how is the summary going",
        "那个总结做得怎么样了",
        "这是怎么回事",
    ],
)
def test_requests_and_state_questions_are_not_how_to_questions(text: str) -> None:
    assert _asked(text) == set()


def test_first_and_last_word_have_edge_features_ignoring_final_punctuation() -> None:
    feats = ngrams("帮帮我!")
    assert feats["b:<s> 帮"] == 1
    assert feats["b:我 </s>"] == 1
    assert "b:! </s>" not in feats
    assert ngrams("is #42 done?")["b:<s> is"] == 1


def test_ids_and_numbers_keep_only_their_shape() -> None:
    assert ngrams("cancel #42") == ngrams("cancel #7")
    assert ngrams("remind me in 10 minutes") == ngrams("remind me in 25 minutes")


def test_rows_are_deterministic_and_scaled() -> None:
    indices, values = featurize("summarize #general since yesterday")
    again = featurize("summarize #general since yesterday")
    assert np.array_equal(indices, again[0]) and np.array_equal(values, again[1])
    assert float(np.linalg.norm(values)) == pytest.approx(LEXICAL_SCALE, rel=1e-5)
    assert featurize("   ")[0].size == 0

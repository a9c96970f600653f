"""Pairs of the SetFit-style contrastive fine-tuning recipe."""

from __future__ import annotations

from models.intents.finetune import contrastive_pairs

LABELS = ["a", "a", "a", "b", "b", "c"]


def test_every_round_gives_each_example_a_same_label_and_an_other_label_partner() -> None:
    pairs = contrastive_pairs(LABELS, rounds=2, max_pairs=1000)
    # "c" has no second example, so it gets no positive pair.
    positives = [(i, j) for i, j, target in pairs if target == 1.0]
    negatives = [(i, j) for i, j, target in pairs if target == 0.0]
    assert len(positives) == 2 * 5
    assert len(negatives) == 2 * 6


def test_positive_pairs_share_a_label_and_negative_pairs_do_not() -> None:
    for i, j, target in contrastive_pairs(LABELS, rounds=3, max_pairs=1000):
        assert (LABELS[i] == LABELS[j]) == (target == 1.0)
        assert i != j


def test_pairs_are_capped_and_reproducible() -> None:
    first = contrastive_pairs(LABELS, rounds=10, max_pairs=7, seed=3)
    assert len(first) == 7
    assert first == contrastive_pairs(LABELS, rounds=10, max_pairs=7, seed=3)

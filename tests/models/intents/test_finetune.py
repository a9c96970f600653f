"""Fine-tuning: contrastive pairs, the recipe choice, length-bucketed batches, head merging."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.intents.finetune import (
    AUTO_STEPS,
    CROSS_ENTROPY_MIN_EXAMPLES,
    auto_epochs,
    choose_recipe,
    contrastive_pairs,
    length_batches,
    merge_heads,
)
from models.intents.head import LinearHead

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


def test_auto_recipe_uses_pairs_for_small_data_and_cross_entropy_for_large() -> None:
    assert choose_recipe("auto", 770) == "contrastive"
    assert choose_recipe("auto", CROSS_ENTROPY_MIN_EXAMPLES) == "cross_entropy"
    # An explicit recipe is kept whatever the data size.
    assert choose_recipe("contrastive", 100_000) == "contrastive"
    assert choose_recipe("cross_entropy", 10) == "cross_entropy"


def test_auto_epochs_aim_for_a_fixed_number_of_steps_within_bounds() -> None:
    assert auto_epochs(10_003) == 6  # full BANKING77
    assert (auto_epochs(10_003) - 1) * 10_003 / 32 < AUTO_STEPS <= auto_epochs(10_003) * 10_003 / 32
    assert auto_epochs(100) == 30
    assert auto_epochs(1_000_000) == 3


def test_length_batches_cover_every_example_once_with_similar_lengths() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(1000)]
    batches = length_batches(lengths, 16, random.Random(1), window=10)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    assert all(len(batch) <= 16 for batch in batches)
    # Sorting inside windows keeps the padding far below that of random batches.
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    order = list(range(1000))
    random.Random(2).shuffle(order)
    plain = [order[k : k + 16] for k in range(0, 1000, 16)]
    padded_plain = sum(len(b) * max(lengths[i] for i in b) for b in plain)
    assert padded < 0.7 * padded_plain


def test_length_batches_are_reproducible_for_a_seed() -> None:
    lengths = list(range(100))
    assert length_batches(lengths, 8, random.Random(5)) == length_batches(
        lengths, 8, random.Random(5)
    )


def _head(seed: int, labels: list[str]) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(
        weight=rng.normal(size=(len(labels), 8)).astype(np.float32),
        bias=rng.normal(size=len(labels)).astype(np.float32),
        labels=labels,
    )


def test_merged_head_gives_the_geometric_mean_of_both_heads_probabilities() -> None:
    refit, joint = _head(0, ["a", "b", "c"]), _head(1, ["a", "b", "c"])
    x = np.random.default_rng(2).normal(size=(20, 8)).astype(np.float32)
    geometric = np.sqrt(refit.probabilities(x) * joint.probabilities(x))
    expected = geometric / geometric.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        merge_heads(refit, joint).probabilities(x), expected, rtol=1e-4, atol=1e-6
    )


def test_heads_with_other_labels_are_not_merged() -> None:
    with pytest.raises(ValueError, match="labels"):
        merge_heads(_head(0, ["a", "b"]), _head(1, ["b", "a"]))

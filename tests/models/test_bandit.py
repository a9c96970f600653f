"""The Thompson sampler: tries every variant, then mostly uses the one rated better."""

from __future__ import annotations

import numpy as np
import pytest

from models.bandit import Votes, run_simulation, simulate, thompson_choice


def test_the_better_variant_gets_most_pulls_in_a_seeded_simulation() -> None:
    run = run_simulation([0.7, 0.4], rounds=500, seed=7)
    assert sum(run.pulls) == 500
    assert run.pulls[0] > 0.85 * 500, run.pulls
    assert run.pulls[1] > 0, "the worse variant is still tried"
    # Choosing at random would lose 0.15 votes a round half the time: 37.5 in 500 rounds.
    assert run.regret < 15, run.regret


def test_the_simulation_is_the_same_for_the_same_seed() -> None:
    first = run_simulation([0.7, 0.4], rounds=300, seed=3)
    assert run_simulation([0.7, 0.4], rounds=300, seed=3) == first
    assert simulate([0.7, 0.4], 300, seed=3) == first.regret
    other = [run_simulation([0.7, 0.4], rounds=300, seed=s).pulls for s in range(4, 8)]
    assert any(pulls != first.pulls for pulls in other), "the seed matters"


def test_regret_is_the_rate_lost_per_round_against_always_choosing_the_best() -> None:
    run = run_simulation([0.6, 0.6], rounds=50, seed=0)
    assert run.regret == 0.0  # equal variants: nothing to lose
    run = run_simulation([0.9, 0.2, 0.5], rounds=400, seed=1)
    lost = 0.7 * run.pulls[1] + 0.4 * run.pulls[2]
    assert run.regret == pytest.approx(lost)
    assert run.best_share == run.pulls[0] / 400


def test_clear_votes_decide_and_unrated_variants_are_all_tried() -> None:
    rng = np.random.default_rng(0)
    votes = {"concise": Votes(up=40, down=2), "detailed": Votes(up=2, down=40)}
    picks = [thompson_choice(["concise", "detailed"], votes, rng) for _ in range(100)]
    assert picks == ["concise"] * 100
    fresh = [thompson_choice(["a", "b"], {}, rng) for _ in range(200)]
    assert 60 < fresh.count("a") < 140, fresh.count("a")


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        thompson_choice([], {}, rng)
    with pytest.raises(ValueError):
        run_simulation([], 10, seed=0)
    with pytest.raises(ValueError):
        run_simulation([1.2, 0.3], 10, seed=0)
    assert run_simulation([0.5], 0, seed=0).best_share == 0.0

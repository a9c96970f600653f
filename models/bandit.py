"""Thompson sampling over prompt variants: pick the one whose 👍 rate is probably best.

Each variant's 👍 rate gets a Beta(1 + up, 1 + down) posterior (a uniform prior updated by
its votes). To choose, draw one rate from every posterior and take the highest: a variant
with few votes still gets tried (its posterior is wide), one that is clearly worse is
tried less and less. The functions here are pure; the caller passes the random generator,
so a seed makes every choice reproducible.

:func:`simulate` runs the sampler against known 👍 rates and reports its regret (what it
lost against always choosing the best variant), for ``benchmarks/learning.py`` and tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Votes:
    """👍 and 👎 counts of one variant."""

    up: int = 0
    down: int = 0


def thompson_choice(
    arms: Sequence[str], votes: Mapping[str, Votes], rng: np.random.Generator
) -> str:
    """The arm with the highest draw from Beta(1 + up, 1 + down); arms without votes count 0/0.

    Draws happen for every arm in the order given, so one seed gives one sequence of choices.
    """
    if not arms:
        raise ValueError("thompson_choice needs at least one arm")
    ups = np.array([votes.get(a, Votes()).up for a in arms], dtype=float)
    downs = np.array([votes.get(a, Votes()).down for a in arms], dtype=float)
    draws = rng.beta(1.0 + ups, 1.0 + downs)
    return arms[int(np.argmax(draws))]


@dataclass(frozen=True)
class Simulation:
    """The outcome of :func:`run_simulation`.

    ``regret``: the sum over rounds of (best rate − rate of the arm chosen), i.e. the 👍 votes
    expected to be lost against always using the best variant. ``pulls``: how often each arm
    was chosen, in the order of the rates.
    """

    rates: tuple[float, ...]
    rounds: int
    pulls: tuple[int, ...]
    ups: tuple[int, ...]
    regret: float

    @property
    def best_share(self) -> float:
        """The share of rounds that chose the best arm (0 with no rounds)."""
        best = int(np.argmax(self.rates))
        return self.pulls[best] / self.rounds if self.rounds else 0.0


def run_simulation(rates: Sequence[float], rounds: int, seed: int) -> Simulation:
    """Thompson sampling for ``rounds`` rounds against arms whose true 👍 rates are ``rates``.

    Every round chooses one arm, draws a 👍 with that arm's rate, and updates its counts.
    Deterministic for a given ``seed``.
    """
    if not rates:
        raise ValueError("run_simulation needs at least one rate")
    if any(not 0.0 <= r <= 1.0 for r in rates):
        raise ValueError("rates must lie between 0 and 1")
    if rounds < 0:
        raise ValueError("rounds must not be negative")
    rng = np.random.default_rng(seed)
    arms = [str(i) for i in range(len(rates))]
    counts = {a: Votes() for a in arms}
    pulls = [0] * len(rates)
    best = max(rates)
    regret = 0.0
    for _ in range(rounds):
        index = int(thompson_choice(arms, counts, rng))
        pulls[index] += 1
        regret += best - rates[index]
        got = counts[arms[index]]
        if rng.random() < rates[index]:
            counts[arms[index]] = Votes(up=got.up + 1, down=got.down)
        else:
            counts[arms[index]] = Votes(up=got.up, down=got.down + 1)
    return Simulation(
        rates=tuple(float(r) for r in rates),
        rounds=rounds,
        pulls=tuple(pulls),
        ups=tuple(counts[a].up for a in arms),
        regret=regret,
    )


def simulate(rates: Sequence[float], rounds: int, seed: int) -> float:
    """The regret of Thompson sampling in a seeded simulation (see :func:`run_simulation`).

    ``simulate([0.7, 0.4], 1000, seed=0)`` is the 👍 votes lost in 1,000 rated results against
    always using the better of two variants; choosing uniformly at random loses 150.
    """
    return run_simulation(rates, rounds, seed).regret

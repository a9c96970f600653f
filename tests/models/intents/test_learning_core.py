"""Retraining from corrections: a candidate that is not worse is promoted, a worse one is
refused, and a promoted one classifies the corrected messages as corrected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.intents import IntentClassifier, IntentsFile, parse_intents
from models.intents.learning import (
    CorrectionExample,
    corrections_until,
    heldout_keys,
    normalise,
    not_worse,
    retrain,
)
from models.intents.shared import shared_encoder

SCOPE = "slack:T1"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

SMALL_INTENTS = """
nlu:
  - intent: email.draft
    examples: |
      - draft an email to Dana about the delayed shipment
      - write an email to Tom about the launch
      - email the vendor that the order is cancelled
      - compose a short email to the finance team about the budget
      - send an email to Mike about the standup
      - please email Sarah and ask if the slides are ready
      - write a note to Alex by email about the invoice
      - I need an email to the client explaining the outage
      - shoot an email to Priya about the hiring plan
      - draft a follow-up email to the candidate
  - intent: reminder.create
    examples: |
      - remind me tomorrow at 9 to call the bank
      - set a reminder for Friday to follow up with Dana
      - remind me in two hours to check the oven
      - ping me on Monday about the report
      - remind the team at 3pm about the demo
      - create a reminder to renew the passport next month
      - don't let me forget the dentist on Thursday
      - reminder at noon: submit the expenses
      - remind me every morning to stretch
      - nudge me tonight to send the invoice
  - intent: summarize
    examples: |
      - summarize this thread
      - give me a summary of the channel
      - tl;dr of the discussion above
      - recap what was decided here
      - what did I miss in this channel
      - sum up the conversation
      - short summary of the thread please
      - key points of this discussion
      - digest the last 50 messages for me
      - what is this thread about
  - intent: oos
    examples: |
      - tell me a joke
      - what's the weather like
      - who won the game last night
      - I like turtles
      - how tall is the Eiffel tower
      - good morning everyone
      - lol
      - what is the meaning of life
"""

#: Messages the file says nothing about, corrected by people of the scope.
BOOKING = [
    "book the large meeting room for Tuesday",
    "reserve a desk near the window for tomorrow",
    "book a room for the offsite planning",
]


@pytest.fixture(scope="module")
def intents() -> IntentsFile:
    return parse_intents(SMALL_INTENTS)


@pytest.fixture(scope="module")
def base(intents: IntentsFile) -> IntentClassifier:
    texts, labels = intents.examples()
    return IntentClassifier.train(
        texts, labels, encoder_instance=shared_encoder(), intents_digest=intents.digest
    )


def _correct(text: str, label: str, minutes: int = 0, scope: str = SCOPE) -> CorrectionExample:
    return CorrectionExample(text, label, scope, T0 + timedelta(minutes=minutes))


def test_the_heldout_split_is_fixed_by_the_text_and_spares_a_few_examples_per_label(
    intents: IntentsFile,
) -> None:
    texts, labels = intents.examples()
    items = list(zip(texts, labels, strict=True))
    held = heldout_keys(items)
    assert held == heldout_keys(list(reversed(items)))
    assert held, "a fifth of 38 examples is held out"
    for label in set(labels):
        train = [t for t, lab in items if lab == label and normalise(t) not in held]
        assert len(train) >= 2


def test_right_corrections_are_promoted_and_learned(
    intents: IntentsFile, base: IntentClassifier
) -> None:
    # "tell me when the build is done" is a reminder for this team, not small talk.
    corrections = [
        _correct("tell me when the build is done", "reminder.create", 1),
        _correct("Tell me  when the build is done", "reminder.create", 2),  # the same message
        _correct("shoot a mail over to the auditors about controls", "email.draft", 3),
        _correct("catch me up on the thread", "summarize", 4),
        _correct("order pizza for the team", "pizza.order", 5),  # no such intent: ignored
    ]
    outcome = retrain(intents, corrections, base)
    assert outcome.promote
    assert outcome.figures["corrections_used"] == 3
    assert outcome.figures["corrections_new"] == 3
    assert outcome.figures["corrections_ignored"] == 1
    assert outcome.figures["candidate_accuracy"] >= outcome.figures["current_accuracy"] - 0.01
    assert outcome.figures["heldout_size"] > 0
    predicted = outcome.candidate.predict([c.text for c in corrections[:4]])
    assert [p for p, _ in predicted] == [c.label for c in corrections[:4]]
    assert corrections_until(outcome.candidate) == (T0 + timedelta(minutes=4)).timestamp()
    # The promoted candidate is refit on everything, with the wholeness head for parsing.
    assert outcome.candidate.wholeness is not None
    assert outcome.figures["examples"] == len(intents.examples()[0]) + 3


def test_a_candidate_made_worse_by_wrong_corrections_is_not_promoted(
    intents: IntentsFile, base: IntentClassifier
) -> None:
    texts, labels = intents.examples()
    held = heldout_keys(list(zip(texts, labels, strict=True)))
    wrong = {"email.draft": "summarize", "summarize": "reminder.create", "reminder.create": "oos"}
    # Near copies of the held-out requests, deliberately labelled as another intent.
    noisy = [
        _correct(f"{prefix}{text}", wrong[label], k)
        for k, (text, label) in enumerate(zip(texts, labels, strict=True))
        if normalise(text) in held and label in wrong
        for prefix in ("please ", "hey, ", "can you ")
    ]
    assert noisy
    outcome = retrain(intents, noisy, base)
    assert not outcome.promote
    assert outcome.figures["candidate_accuracy"] < outcome.figures["current_accuracy"]


def test_corrections_a_promoted_classifier_learned_are_earlier_ones_at_the_next_retrain(
    intents: IntentsFile, base: IntentClassifier
) -> None:
    # Booking rooms is not something this bot does: "this was not a request".
    first = [_correct(text, "oos", k) for k, text in enumerate(BOOKING)]
    promoted = retrain(intents, first, base)
    assert promoted.promote
    assert [p for p, _ in promoted.candidate.predict(BOOKING)] == ["oos"] * 3
    more = [_correct("summarize what the vendor said", "summarize", 10)]
    outcome = retrain(intents, first + more, promoted.candidate)
    assert outcome.figures["corrections_used"] == 4
    assert outcome.figures["corrections_new"] == 1
    # Later someone relabels one booking: the latest label is the one judged (and used).
    relabel = [_correct(BOOKING[0], "reminder.create", 20)]
    outcome = retrain(intents, first + more + relabel, promoted.candidate)
    assert outcome.figures["corrections_used"] == 4
    assert outcome.figures["corrections_new"] == 2


def test_a_correction_overrides_a_file_example_of_the_same_text(
    intents: IntentsFile, base: IntentClassifier
) -> None:
    text = "ping me on Monday about the report"
    texts, labels = intents.examples()
    held = heldout_keys(list(zip(texts, labels, strict=True)))
    assert normalise(text) in held
    outcome = retrain(intents, [_correct(text.upper(), "email.draft")], base)
    # Its text leaves the held-out split (which label is right is what is being judged).
    assert outcome.figures["heldout_size"] == len(held) - 1
    assert outcome.promote
    assert outcome.figures["examples"] == len(texts)  # replaced, not added
    assert outcome.candidate.predict([text])[0][0] == "email.draft"


def test_not_worse_allows_a_loss_chance_explains_and_refuses_a_clear_one() -> None:
    current = [True] * 90 + [False] * 10
    # Loses 6 texts the current recipe got right, wins 3: net 3 of 9 disagreements.
    candidate = [False] * 6 + [True] * 84 + [True] * 3 + [False] * 7
    assert not_worse(candidate, current)
    # Loses 15 and wins none: far beyond chance (1.645 * sqrt(15) = 6.4).
    assert not not_worse([False] * 15 + [True] * 75 + [False] * 10, current)
    assert not_worse(current, current)

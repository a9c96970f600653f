"""Shared parts of the learning tests: a small intents file, its classifier (trained once per
session), and a message that classifier misreads."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.config import Settings
from storage.repository import Repository
from storage.tables import Correction, CorrectionStatus

if TYPE_CHECKING:
    from models.intents import IntentClassifier

INTENTS = """\
nlu:
  - intent: help
    examples: |
      - help
      - what can you do
      - how do I use you
      - show me the commands
      - what are your features
      - list your skills
      - how does this bot work
      - I need help using atombot
      - what kinds of requests do you take
      - explain what you are for
  - intent: task.cancel
    examples: |
      - cancel #4
      - stop task 7
      - abort it
      - cancel that task
      - kill job 12
      - drop task 3
      - never mind, cancel the email draft
      - please stop working on #18
      - cancel my last request
      - abort the summary you are writing
  - intent: task.status
    examples: |
      - status
      - status of #42
      - how is task 5 going
      - is my task done
      - show my tasks
      - what's the progress
      - is the email draft ready yet
      - how far along is #9
      - which of my tasks are still running
      - any update on my request
  - intent: summarize
    examples: |
      - summarize this thread
      - tl;dr of the channel
      - give me a summary of the discussion
      - recap this conversation
      - sum up the thread
      - what did I miss here
      - summarize the channel since yesterday
      - give me the key points of this thread
      - short summary of what was decided
      - condense this discussion into bullets
"""

#: The small file's classifier reads this as ``task.status``; the team means ``summarize``.
MISREAD = "where are we with the quarterly numbers"
WRONG = "task.status"
RIGHT = "summarize"


@pytest.fixture(scope="session")
def learning_intents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small intents file on disk."""
    path = tmp_path_factory.mktemp("learning") / "intents.yaml"
    path.write_text(INTENTS, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def base_classifier(learning_intents: Path) -> IntentClassifier:
    """The base classifier of the small file (trained once per session)."""
    from models.intents import IntentClassifier, load_intents

    classifier = IntentClassifier.from_intents(load_intents(learning_intents))
    assert classifier.predict([MISREAD])[0][0] == WRONG
    return classifier


@pytest.fixture(scope="session")
def corrected_classifier(learning_intents: Path) -> IntentClassifier:
    """A classifier of the small file plus the correction of :data:`MISREAD` (as a retrain
    would refit it), for tests about versions rather than about retraining."""
    from models.intents import IntentClassifier, load_intents

    intents = load_intents(learning_intents)
    texts, labels = intents.examples()
    classifier = IntentClassifier.train(
        [*texts, MISREAD], [*labels, RIGHT], intents_digest=intents.digest
    )
    assert classifier.predict([MISREAD])[0][0] == RIGHT
    return classifier


@pytest.fixture
def learning_settings(settings: Settings, learning_intents: Path) -> Settings:
    """Test settings on the small intents file, reloading every 50 ms, no scheduled retrain."""
    return settings.model_copy(
        update={
            "intents": learning_intents,
            "reload_seconds": 0.05,
            "retrain_after": 0,
            "retrain_cron": "",
        }
    )


async def correct(
    repo: Repository,
    text: str = MISREAD,
    right: str = RIGHT,
    *,
    platform: str = "slack",
    tenant: str = "T1",
    wrong: str | None = WRONG,
    status: str = CorrectionStatus.active,
) -> Correction:
    """Store a person's correction, as the chat does."""
    return await repo.add_correction(
        platform=platform,
        tenant=tenant,
        channel="C1",
        user="U1",
        text=text,
        right_kind=right,
        wrong_kind=wrong,
        status=status,
    )


def cli_args(*argv: str) -> argparse.Namespace:
    """``argv`` parsed by the real ``atombot`` argument parser."""
    from bot.cli import build_arg_parser

    return build_arg_parser().parse_args(list(argv))


async def run_cli(settings: Settings, *argv: str) -> int:
    """Run one ``atombot`` command in this process with ``settings``; its exit status."""
    args = cli_args(*argv)
    if getattr(args, "is_async", False):
        return int(await args.func(args, settings))
    return int(args.func(args, settings))

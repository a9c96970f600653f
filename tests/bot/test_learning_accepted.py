# ruff: noqa: F811 (the fixtures imported from learning_support are parameters here)
"""Implicit feedback: a task the classifier planned that nobody corrected is an *accepted
reading*, a training example of its tenant, once ``ATOMBOT_ACCEPT_AFTER_HOURS`` passed.

A correction, a "wrong kind" 👎, a regenerated attempt, a chat that opted out of training
and a task that is too recent never count; a person's correction of the same text always
wins over an accepted reading.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update

from bot.config import Settings
from bot.retrain import Retrainer
from models.intents.learning import CorrectionExample, retrain
from models.intents.versions import VersionStore
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task
from tests.bot.learning_support import (  # noqa: F401 (fixtures)
    MISREAD,
    RIGHT,
    WRONG,
    base_classifier,
    correct,
    learning_intents,
    learning_settings,
)

if TYPE_CHECKING:
    from pathlib import Path

    from models.intents import IntentClassifier

DAY_AGO = datetime.now(UTC) - timedelta(days=1, hours=1)


async def planned(
    repo: Repository,
    text: str,
    intent: str,
    *,
    channel: str = "C1",
    tenant: str = "T1",
    event: str,
    age: timedelta = timedelta(days=2),
    retry_of: int | None = None,
) -> int:
    """A finished task planned from a classifier reading of ``text`` as ``intent``."""
    created = await repo.create_request(
        request=RequestCreate(
            platform="slack",
            tenant=tenant,
            channel=channel,
            user="U1",
            text=text,
            event_id=event,
        ),
        tasks=[
            TaskCreate(
                kind=intent,
                inputs={"request_text": text, "intent": intent},
                retry_of=retry_of,
            )
        ],
    )
    task_id = created.tasks[0].id or 0
    await repo.finish_immediately(task_id=task_id, result="done")
    async with repo._sessions() as session:  # backdate: the window is hours, a test is not
        await session.execute(
            update(Task)
            .where(Task.id == task_id)  # type: ignore[arg-type]
            .values(created_at=datetime.now(UTC) - age)
        )
        await session.commit()
    return task_id


async def test_only_uncorrected_finished_readings_older_than_the_window_count(
    repo: Repository,
) -> None:
    kept = await planned(repo, "recap the thread please", "summarize", event="e1")
    corrected = await planned(repo, "where is the budget", "task.status", event="e2")
    await repo.add_correction(
        platform="slack",
        tenant="T1",
        channel="C1",
        user="U1",
        text="where is the budget",
        right_kind="summarize",
        wrong_kind="task.status",
        task_id=corrected,
    )
    voted = await planned(repo, "cancel the offsite", "task.cancel", event="e3")
    await repo.record_feedback(task_id=voted, user="U2", score=-1, reason="wrong_kind")
    content_down = await planned(repo, "draft a note to Lee", "email.draft", event="e4")
    await repo.record_feedback(task_id=content_down, user="U2", score=-1, reason="too_long")
    await planned(repo, "recap the thread please", "summarize", event="e5", retry_of=kept)
    await planned(repo, "too fresh to trust", "summarize", event="e6", age=timedelta(hours=1))
    await planned(repo, "/cancel 12", "task.cancel", event="e7")
    await planned(repo, "private chat text", "summarize", channel="C2", event="e8")
    await repo.set_training_opt_out(platform="slack", tenant="T1", channel="C2", opt_out=True)
    await planned(repo, "other tenant text", "summarize", tenant="T2", event="e9")

    readings = await repo.accepted_readings(
        platform="slack", tenant="T1", before=DAY_AGO + timedelta(minutes=30)
    )

    assert [(r.text, r.intent) for r in readings] == [
        ("recap the thread please", "summarize"),
        ("draft a note to Lee", "email.draft"),  # a 👎 about the content confirms the kind
    ]
    assert sorted(await repo.accepted_scopes(before=DAY_AGO)) == [("slack", "T1"), ("slack", "T2")]


def test_a_correction_of_the_same_text_wins_over_an_accepted_reading(
    learning_intents: Path, base_classifier: IntentClassifier
) -> None:
    from models.intents import load_intents

    when = datetime(2026, 1, 1, tzinfo=UTC)
    accepted = CorrectionExample(MISREAD, WRONG, "slack:T1", when + timedelta(hours=1), 1, True)
    fix = CorrectionExample(MISREAD, RIGHT, "slack:T1", when, 2)

    outcome = retrain(load_intents(learning_intents), [accepted, fix], base_classifier)

    assert outcome.promote
    assert outcome.candidate.predict([MISREAD])[0][0] == RIGHT
    assert (outcome.figures["corrections_used"], outcome.figures["accepted_used"]) == (1, 0)


async def test_accepted_readings_alone_retrain_a_tenant_and_can_be_turned_off(
    learning_settings: Settings, repo: Repository
) -> None:
    """Readings nobody corrected teach the classifier what the tenant's own words mean; with
    ``ATOMBOT_LEARN_ACCEPTED=false`` the job learns from corrections alone."""
    texts = [
        "where are we with the quarterly numbers",
        "where are we with the hiring plan",
        "where are we with the launch review",
    ]
    for i, text in enumerate(texts):
        await planned(repo, text, RIGHT, event=f"a{i}")
    off = Retrainer(
        repo=repo,
        data_dir=learning_settings.data_dir,
        intents=learning_settings.intents,
        accepted=False,
    )
    assert (await off.run()).scopes == []

    job = Retrainer(
        repo=repo, data_dir=learning_settings.data_dir, intents=learning_settings.intents
    )
    (done,) = (await job.run()).scopes

    assert (done.scope, done.promoted) == ("slack:T1", True)
    assert (done.figures["accepted_used"], done.figures["corrections_used"]) == (3, 0)
    model = VersionStore.for_scope(learning_settings.data_dir, "slack:T1").load()
    assert model.predict([MISREAD])[0][0] == RIGHT
    assert (await job.run()).scopes == []  # the same readings: nothing to learn again
    await correct(repo, "where are we with the hiring plan", WRONG)
    (again,) = (await job.run()).scopes  # a correction changes what it learns from
    assert again.figures["corrections_used"] == 1

"""Why a 👎 in Slack: the ephemeral menu under a result, "wrong kind of task" re-planning
the request, and the note modal, through slack-bolt against the fake Slack platform."""

from __future__ import annotations

import pytest

from bot.adapters.slack.blocks import NOTE_ACTION, NOTE_BLOCK, NOTE_CALLBACK, note_modal
from bot.adapters.slack.payloads import Rejected, inspect
from bot.types import OTHER_REASON, Action, Button
from models.generation.base import Generator
from storage.tables import CorrectionStatus, TaskStatus
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, BEN, CHANNEL, Slack, SlackFactory, finished_result
from tests.fakes.slack_api import Ephemeral, validate_blocks, validate_view

# The wired bot of the Slack adapter's tests, reused (the fixtures by name).
fake = wiring.fake
make_slack = wiring.make_slack
working_slack = wiring.working_slack

REQUEST = "draft an email to Dana about rent"


def data(action: Action, task_id: int, choice: str | None = None) -> str:
    return Button("", action, task_id, choice).data


def menu(bot: Slack, user: str = ANA) -> Ephemeral:
    """The latest ephemeral with blocks shown to ``user`` (the "why 👎?" menu)."""
    return [e for e in bot.fake.ephemerals if e.user == user and e.blocks][-1]


def action_ids(ephemeral: Ephemeral) -> list[str]:
    return [
        element["action_id"]
        for block in ephemeral.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def thumbs_down(bot: Slack, task_id: int, ts: str, user: str = ANA) -> None:
    press = bot.fake.block_actions(
        channel_id=CHANNEL, message_ts=ts, action_id=data(Action.rate_down, task_id), user_id=user
    )
    assert (await bot.post(bot.fake.signed_interaction(press))).status == 200


async def pick(bot: Slack, action_id: str, user: str = ANA) -> None:
    press = bot.fake.ephemeral_block_actions(menu(bot, user), action_id=action_id)
    assert (await bot.post(bot.fake.signed_interaction(press))).status == 200


async def test_wrong_kind_then_a_kind_delivers_a_new_attempt_and_records_a_correction(
    working_slack: Slack,
) -> None:
    bot = working_slack
    task, ts = await finished_result(bot)
    task_id = task.id or 0

    await thumbs_down(bot, task_id, ts)
    reasons = menu(bot)
    assert validate_blocks(reasons.blocks) == []
    assert data(Action.why, task_id, "wrong_kind") in action_ids(reasons)
    assert data(Action.why, task_id, OTHER_REASON) in action_ids(reasons)

    await pick(bot, data(Action.why, task_id, "wrong_kind"))
    kinds = menu(bot)
    assert kinds.message_ts == reasons.message_ts  # the menu moved on in place
    assert data(Action.replan, task_id, "summarize") in action_ids(kinds)
    assert data(Action.replan, task_id, "oos") in action_ids(kinds)

    await pick(bot, data(Action.replan, task_id, "summarize"))
    assert "Redoing" in menu(bot).text and not action_ids(menu(bot))
    await bot.run_worker()
    await bot.deliver()

    _, second = await bot.tasks()
    assert second.kind == "summarize" and second.retry_of == task_id
    assert second.status == TaskStatus.succeeded and second.user == ANA
    delivered = bot.fake.bot_messages(CHANNEL)
    assert len(delivered) == 2 and f"#{second.id}" in delivered[-1].text
    [vote] = await bot.app.repo.feedback_of(task_id)
    assert (vote.user, vote.score, vote.reason) == (ANA, -1, "wrong_kind")
    [correction] = await bot.app.repo.corrections()
    assert (
        correction.platform,
        correction.tenant,
        correction.channel,
        correction.user,
        correction.text,
        correction.wrong_kind,
        correction.right_kind,
        correction.task_id,
        correction.status,
    ) == (
        "slack",
        bot.fake.team_id,
        CHANNEL,
        ANA,
        REQUEST,
        "email.draft",
        "summarize",
        task_id,
        CorrectionStatus.active,
    )


async def test_a_reason_and_a_note_are_stored_with_the_one_vote(working_slack: Slack) -> None:
    bot = working_slack
    task, ts = await finished_result(bot)
    task_id = task.id or 0
    await thumbs_down(bot, task_id, ts)

    await pick(bot, data(Action.why, task_id, "too_long"))
    assert "Too long" in menu(bot).text
    await thumbs_down(bot, task_id, ts)  # a second 👎: the same row, a fresh menu
    await pick(bot, data(Action.why, task_id, OTHER_REASON))

    (modal,) = bot.fake.opened_views
    assert modal["callback_id"] == NOTE_CALLBACK
    submitted = bot.fake.view_submission(
        modal, values={NOTE_BLOCK: {NOTE_ACTION: "Dana is our landlord"}}, user_id=ANA
    )
    response = await bot.post(bot.fake.signed_interaction(submitted))

    assert response.status == 200
    [vote] = await bot.app.repo.feedback_of(task_id)
    assert (vote.score, vote.reason, vote.comment) == (-1, "too_long", "Dana is our landlord")
    assert any("is saved" in e.text for e in bot.fake.ephemerals if e.user == ANA)


async def test_someone_from_another_workspace_cannot_replan(working_slack: Slack) -> None:
    bot = working_slack
    task, ts = await finished_result(bot)
    task_id = task.id or 0
    await thumbs_down(bot, task_id, ts)

    forged = bot.fake.block_actions(
        channel_id=CHANNEL,
        message_ts=ts,
        action_id=data(Action.rate_down, task_id),
        value=data(Action.replan, task_id, "summarize"),
        user_id=ANA,
        team_id="T0OTHER",
    )
    await bot.post(bot.fake.signed_interaction(forged))

    assert len(await bot.tasks()) == 1 and await bot.app.repo.corrections() == []
    assert any("no task" in e.text for e in bot.fake.ephemerals)
    with pytest.raises(LookupError):  # nobody else even sees the voter's menu
        bot.fake.ephemeral_block_actions(
            menu(bot), action_id=data(Action.why, task_id, "wrong_kind"), user_id=BEN
        )


async def test_in_review_mode_not_a_request_is_stored_pending(
    make_slack: SlackFactory, generator: Generator
) -> None:
    bot = await make_slack(generator=generator, corrections_mode="review")
    task, ts = await finished_result(bot)
    task_id = task.id or 0
    await thumbs_down(bot, task_id, ts)
    await pick(bot, data(Action.why, task_id, "wrong_kind"))

    await pick(bot, data(Action.replan, task_id, "oos"))

    assert "not a request" in menu(bot).text
    assert len(await bot.tasks()) == 1
    [correction] = await bot.app.repo.corrections()
    assert (correction.right_kind, correction.status) == ("oos", CorrectionStatus.pending)


def test_only_our_note_modal_is_taken_and_it_must_be_well_formed() -> None:
    def checked(body: dict[str, object]) -> tuple[str, bool]:
        verdict = inspect(
            body,
            command="/atom",
            shortcuts=(),
            action=lambda action_id: action_id.startswith("ab:"),
            views=(NOTE_CALLBACK,),
        )
        return verdict.kind, verdict.handled

    ours = {"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": NOTE_CALLBACK}}
    assert checked(ours) == ("view_submission", True)
    assert checked({**ours, "view": {"callback_id": "theirs"}}) == ("view_submission", False)
    with pytest.raises(Rejected):
        checked({**ours, "user": "U1"})
    with pytest.raises(Rejected):
        checked({**ours, "view": {"callback_id": NOTE_CALLBACK, "private_metadata": 7}})


def test_the_note_modal_is_a_valid_view_and_one_without_submit_is_not() -> None:
    modal = note_modal(
        title="Why 👎? and a title far too long for Slack",
        submit="Send",
        label="What was wrong with #1?",
        placeholder="What was wrong?",
        metadata='{"task": 1, "channel": "C1"}',
    )
    assert validate_view(modal) == []
    without_submit = {k: v for k, v in modal.items() if k != "submit"}
    assert validate_view(without_submit) != []

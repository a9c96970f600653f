"""Why a 👎, and "wrong kind of task": the router's side of the menu (platform-neutral)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.router import Router
from bot.types import OTHER_REASON, Action, ActionEvent, Button, Inbound, choice_token
from models.intents import IntentClassifier
from storage.repository import Repository
from storage.tables import FEEDBACK_REASONS, CorrectionStatus, TaskStatus

REQUEST = "draft an email to Dana about the delayed shipment"


@pytest.fixture
async def router(repo: Repository, parser: IntentClassifier) -> AsyncIterator[Router]:
    yield Router(repo=repo, parser=parser)


def press(
    action: Action,
    task_id: int = 1,
    *,
    choice: str | None = None,
    user: str = "ana",
    tenant: str = "t1",
    event_id: str | None = None,
    comment: str | None = None,
) -> ActionEvent:
    return ActionEvent(
        platform="console",
        tenant=tenant,
        channel="c1",
        user=user,
        action=action,
        task_id=task_id,
        event_id=event_id or f"{action}:{choice}:{user}:{tenant}",
        choice=choice,
        comment=comment,
    )


async def finished_email(router: Router, repo: Repository) -> int:
    """A finished email draft (task #1)."""
    await router.handle(
        Inbound(
            platform="console", tenant="t1", channel="c1", user="ana", text=REQUEST, event_id="e1"
        )
    )
    [claimed] = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=claimed.id or 0, worker_id="w", result="Dear Dana")
    return claimed.id or 0


def choices(buttons: tuple[tuple[Button, ...], ...]) -> list[str | None]:
    return [b.choice for row in buttons for b in row]


async def test_a_thumbs_down_offers_the_reasons_and_other(router: Router, repo: Repository) -> None:
    task_id = await finished_email(router, repo)

    reply = await router.handle_action(press(Action.rate_down, task_id))

    assert "👎 recorded" in reply.text and "What was wrong" in reply.text
    assert choices(reply.buttons) == [*FEEDBACK_REASONS, OTHER_REASON]
    assert {b.action for row in reply.buttons for b in row} == {Action.why}
    assert all(len(b.data.encode()) <= 64 for row in reply.buttons for b in row)


async def test_a_thumbs_up_offers_no_menu(router: Router, repo: Repository) -> None:
    task_id = await finished_email(router, repo)
    assert (await router.handle_action(press(Action.rate_up, task_id))).buttons == ()


async def test_a_reason_is_stored_on_the_voters_own_vote_only(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    mallory = await router.handle_action(press(Action.why, task_id, choice="too_long", user="bob"))
    mine = await router.handle_action(press(Action.why, task_id, choice="too_long"))

    assert "Only someone who rated" in mallory.text and not mallory.update_menu
    assert "Too long" in mine.text and mine.update_menu
    [vote] = await repo.feedback_of(task_id)
    assert (vote.user, vote.score, vote.reason) == ("ana", -1, "too_long")


async def test_an_unknown_reason_changes_nothing(router: Router, repo: Repository) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    reply = await router.handle_action(press(Action.why, task_id, choice="boring"))
    assert "don't know that reason" in reply.text
    [vote] = await repo.feedback_of(task_id)
    assert vote.reason is None


async def test_other_asks_for_words_which_become_the_comment(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    asked = await router.handle_action(press(Action.why, task_id, choice=OTHER_REASON))
    noted = await router.handle_action(
        press(Action.note, task_id, comment="  Dana is a customer, not a colleague  ")
    )

    assert asked.ask_comment and asked.comment_task == task_id
    assert "note on #1 is saved" in noted.text
    [vote] = await repo.feedback_of(task_id)
    assert vote.comment == "Dana is a customer, not a colleague"


async def test_changing_the_vote_keeps_one_row_and_a_thumbs_up_clears_the_reason(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    await router.handle_action(press(Action.why, task_id, choice="too_short"))
    await router.handle_action(press(Action.rate_up, task_id, event_id="up"))
    [vote] = await repo.feedback_of(task_id)
    assert (vote.score, vote.reason, vote.comment) == (1, None, None)
    assert (
        "Only someone"
        in (
            await router.handle_action(press(Action.why, task_id, choice="content", event_id="w2"))
        ).text
    )
    await router.handle_action(press(Action.rate_down, task_id, event_id="down2"))
    assert len(await repo.feedback_of(task_id)) == 1


async def test_wrong_kind_offers_the_other_visible_kinds_and_not_a_request(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    reply = await router.handle_action(press(Action.why, task_id, choice="wrong_kind"))

    offered = choices(reply.buttons)
    assert reply.update_menu and "What did you want instead" in reply.text
    assert "summarize" in offered and "reply.draft" in offered and offered[-1] == "oos"
    assert "email.draft" not in offered and "summarize.partial" not in offered
    [vote] = await repo.feedback_of(task_id)
    assert vote.reason == "wrong_kind"


async def test_picking_a_kind_replans_at_once_and_records_a_correction(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    reply = await router.handle_action(press(Action.replan, task_id, choice="summarize"))

    assert "Redoing #1 as summary" in reply.text and reply.task_ids
    new = await repo.get_task(reply.task_ids[-1])
    assert new is not None and new.kind == "summarize" and new.retry_of == task_id
    assert new.status == TaskStatus.queued and new.inputs["request_text"] == REQUEST
    assert new.request_id != (await repo.get_task(task_id)).request_id  # type: ignore[union-attr]
    [correction] = await repo.corrections()
    assert (
        correction.text,
        correction.wrong_kind,
        correction.right_kind,
        correction.user,
        correction.tenant,
        correction.channel,
        correction.task_id,
        correction.status,
    ) == (REQUEST, "email.draft", "summarize", "ana", "t1", "c1", task_id, "active")


async def test_the_same_pick_twice_makes_one_task_and_one_correction(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    first = await router.handle_action(press(Action.replan, task_id, choice="summarize"))
    again = await router.handle_action(
        press(Action.replan, task_id, choice="summarize", event_id="again")
    )
    assert again.duplicate and again.task_ids == first.task_ids
    assert len(await repo.list_tasks()) == 2
    assert len(await repo.corrections()) == 1


async def test_another_pick_replaces_the_persons_correction(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    await router.handle_action(press(Action.replan, task_id, choice="summarize"))
    await router.handle_action(press(Action.replan, task_id, choice="reply.draft"))
    assert [c.right_kind for c in await repo.corrections()] == ["reply.draft"]


async def test_not_a_request_records_oos_and_plans_nothing(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    reply = await router.handle_action(press(Action.replan, task_id, choice="oos"))

    assert "not a request" in reply.text and not reply.task_ids
    assert len(await repo.list_tasks()) == 1
    original = await repo.get_task(task_id)
    assert original is not None and original.status == TaskStatus.succeeded
    [correction] = await repo.corrections()
    assert correction.right_kind == "oos" and correction.wrong_kind == "email.draft"


async def test_only_a_voter_of_the_same_workspace_can_replan(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    stranger = await router.handle_action(
        press(Action.replan, task_id, choice="summarize", tenant="t2")
    )
    bystander = await router.handle_action(
        press(Action.replan, task_id, choice="summarize", user="bob")
    )

    assert "There is no task #1 here" in stranger.text
    assert "Only someone who rated" in bystander.text
    assert len(await repo.list_tasks()) == 1 and await repo.corrections() == []


async def test_a_kind_that_is_not_offered_is_refused(router: Router, repo: Repository) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    for kind in ("email.draft", "summarize.partial", "nonsense"):
        reply = await router.handle_action(press(Action.replan, task_id, choice=kind))
        assert "not a kind of task" in reply.text
    assert await repo.corrections() == []


async def test_a_long_kind_name_travels_as_a_token(router: Router, repo: Repository) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    reply = await router.handle_action(
        press(Action.replan, task_id, choice=choice_token("summarize"))
    )
    new = await repo.get_task(reply.task_ids[-1])
    assert new is not None and new.kind == "summarize"
    long = Button("x", Action.replan, 123456789, "a.kind.with.a.very.long.name." * 3)
    assert len(long.data.encode()) <= 64
    assert Button.decode(long.data) == (Action.replan, 123456789, choice_token(long.choice or ""))


async def test_a_kind_that_needs_a_missing_detail_asks_for_it(
    router: Router, repo: Repository
) -> None:
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))

    reply = await router.handle_action(press(Action.replan, task_id, choice="reminder.create"))

    assert "When should I remind you" in reply.text and not reply.task_ids
    assert len(await repo.list_tasks()) == 1
    [correction] = await repo.corrections()
    assert correction.right_kind == "reminder.create"


async def test_review_mode_stores_the_correction_pending(
    repo: Repository, parser: IntentClassifier
) -> None:
    router = Router(repo=repo, parser=parser, corrections_mode="review")
    task_id = await finished_email(router, repo)
    await router.handle_action(press(Action.rate_down, task_id))
    await router.handle_action(press(Action.replan, task_id, choice="oos"))
    [correction] = await repo.corrections()
    assert correction.status == CorrectionStatus.pending

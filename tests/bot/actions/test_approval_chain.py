"""Chains: "summarize this thread and email Dana the outcome" becomes summarize →
email.draft → email.send, run in order, waiting for approval before anything is sent;
"draft an email to Dana" stays a draft; actions are offered only when available."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.router import Router
from bot.types import Action, Inbound
from handlers.actions import asks_to_invite, asks_to_post, asks_to_send
from handlers.kinds import build_registry
from models.intents import load_intents
from models.intents.data import IntentsFileError
from models.intents.spec import TaskSpec
from storage.repository import Repository
from storage.tables import TaskStatus
from tests.bot.actions.actions_support import (
    FakePerformer,
    FixedParser,
    press,
    router_for,
    runner_for,
)

CHAIN = "summarize this thread and email Dana the outcome"


def chain_specs(text: str, cut: int) -> list[TaskSpec]:
    return [
        TaskSpec("summarize", {"scope": "thread"}, 1.0, (0, cut)),
        TaskSpec("email.draft", {"recipients": ["Dana"]}, 1.0, (cut + 1, len(text)), (0,)),
    ]


def inbound(text: str, event: str = "e1") -> Inbound:
    return Inbound(
        platform="console", tenant="t1", channel="c1", user="ana", text=text, event_id=event
    )


async def finish_ready(repo: Repository, kinds: tuple[str, ...], result: str) -> list[int]:
    """Do what the generation worker does for the tasks ready now; returns their ids."""
    claimed = await repo.claim(worker_id="w", limit=10, lease_seconds=30, kinds=kinds)
    for task in claimed:
        await repo.complete(task_id=task.id or 0, worker_id="w", result=f"{result} #{task.id}")
    return [task.id or 0 for task in claimed]


async def test_summarize_then_email_runs_in_order_and_waits_for_approval(
    repo: Repository,
) -> None:
    cut = CHAIN.index(" and ")
    router = router_for(repo, parser=FixedParser(chain_specs(CHAIN, cut + 4)))
    reply = await router.handle(inbound(CHAIN))
    assert "send email" in reply.text
    tasks = await repo.tasks_by_ids(list(reply.task_ids))
    assert [x.kind for x in tasks] == ["summarize", "email.draft", "email.send"]
    summary, draft, send = tasks
    assert draft.depends_on == [summary.id] and send.depends_on == [draft.id]
    assert send.inputs["recipients"] == ["Dana"]

    performer = FakePerformer()
    runner = runner_for(repo, performer)
    generative = router.kinds.generative_kinds
    await runner.tick()  # nothing is ready for the runner yet
    assert await repo.action_run(send.id or 0) is None
    assert await finish_ready(repo, generative, "summary") == [summary.id]
    await runner.tick()
    assert await repo.action_run(send.id or 0) is None  # the draft is not written yet
    assert await finish_ready(repo, generative, "Subject: Outcome\n\nDear Dana") == [draft.id]
    await runner.tick()
    waiting = await repo.get_task(send.id or 0)
    assert waiting is not None and waiting.status == TaskStatus.awaiting_approval
    assert performer.performed == []
    await router.handle_action(press(send.id or 0, Action.approve))
    await runner.tick()
    assert performer.performed == [
        (f"atombot-{send.id}-1", f"Subject: Outcome\n\nDear Dana #{draft.id}")
    ]
    entries = await repo.audit_entries()
    actions = [a.action for a in entries if a.action.startswith(("action.", "approval."))]
    assert actions == ["action.awaiting_approval", "approval.approved", "action.done"]


async def test_zh_send_request_adds_the_action_after_its_draft(repo: Repository) -> None:
    text = "总结这个讨论串，把结果发邮件给Dana"
    router = router_for(repo, parser=FixedParser(chain_specs(text, text.index("，"))))
    reply = await router.handle(inbound(text))
    kinds = [x.kind for x in await repo.tasks_by_ids(list(reply.task_ids))]
    assert kinds == ["summarize", "email.draft", "email.send"]


async def test_a_plain_draft_request_stays_a_draft(repo: Repository) -> None:
    text = "draft an email to Dana about the delayed shipment"
    spec = TaskSpec("email.draft", {"recipients": ["Dana"]}, 1.0, (0, len(text)))
    reply = await router_for(repo, parser=FixedParser([spec])).handle(inbound(text))
    assert [x.kind for x in await repo.tasks_by_ids(list(reply.task_ids))] == ["email.draft"]


async def test_without_an_available_performer_no_action_is_planned(repo: Repository) -> None:
    cut = CHAIN.index(" and ")
    router = Router(
        repo=repo, parser=FixedParser(chain_specs(CHAIN, cut + 4)), kinds=build_registry()
    )
    reply = await router.handle(inbound(CHAIN))
    kinds = [x.kind for x in await repo.tasks_by_ids(list(reply.task_ids))]
    assert kinds == ["summarize", "email.draft"]


async def test_help_lists_the_available_actions(repo: Repository) -> None:
    on = router_for(repo, parser=FixedParser([TaskSpec("help")]))
    assert "send email" in (await on.handle(inbound("help", "h1"))).text
    off = Router(repo=repo, parser=FixedParser([TaskSpec("help")]), kinds=build_registry())
    assert "is off until an operator" in (await off.handle(inbound("help", "h2"))).text


@pytest.mark.parametrize(
    ("clause", "send"),
    [
        ("email Dana the outcome", True),
        ("and email the team the notes", True),
        ("send Dana an email about the budget", True),
        ("write an email to Dana and send it", True),
        ("write the report and email it to Dana", True),
        ("draft an email and then email Dana a copy", True),
        ("把结果发邮件给Dana", True),
        ("发送一封邮件给Dana", True),
        ("draft an email to Dana about the shipment", False),
        ("write an email to the vendor", False),
        ("email to Dana", False),
        ("起草一封给Dana的邮件", False),
        ("起草一封邮件并发送给Dana", True),
    ],
)
def test_what_asks_for_an_email_to_go_out(clause: str, send: bool) -> None:
    assert asks_to_send(clause) is send


def test_invitations_and_posts_are_asked_for_in_so_many_words() -> None:
    assert asks_to_invite("invite Dana to the review tomorrow at 3pm")
    assert asks_to_invite("给Dana发会议邀请")
    assert not asks_to_invite("draft an email to Dana about the review")
    assert asks_to_post("draft a reply saying we agree and post it")
    assert not asks_to_post("draft a reply saying we agree")


OPERATOR_KIND = """\
version: "1"
nlu:
  - intent: report.draft
    slots: [topic]
    task:
      label: {en: status report, zh: 状态报告}
      prompt: |
        Write a concise status report about {topic}.
      then: [email.send]
    examples: |
      - write the weekly status report for the data platform team
      - draft a status report on the billing migration
"""


async def test_an_operator_kind_declares_the_action_that_may_follow_it(
    repo: Repository, tmp_path: Path
) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(OPERATOR_KIND, encoding="utf-8")
    kinds = build_registry(load_intents(path), actions=["email.send"])
    report = kinds.get("report.draft")
    assert report is not None and report.then == ("email.send",)
    text = "write the status report on billing and email it to Dana"
    spec = TaskSpec("report.draft", {"topic": "billing"}, 1.0, (0, len(text)))
    router = Router(repo=repo, parser=FixedParser([spec]), kinds=kinds)
    reply = await router.handle(inbound(text))
    tasks = await repo.tasks_by_ids(list(reply.task_ids))
    assert [x.kind for x in tasks] == ["report.draft", "email.send"]
    assert tasks[1].depends_on == [tasks[0].id]


def test_an_unknown_action_in_then_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(OPERATOR_KIND.replace("[email.send]", "[fax.send]"), encoding="utf-8")
    with pytest.raises(IntentsFileError, match="then") as raised:
        load_intents(path)
    assert "fax.send" in str(raised.value) and "line 9" in str(raised.value)

"""Shared pieces of the action tests: a small in-test performer, a parser that answers
with fixed specs, and a request holding a finished draft and the action after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.actions.approval import ApprovalPolicy, Approvals
from bot.actions.base import ActionContext, ActionFailed, ActionOutcome, Commit, NeedsInput
from bot.actions.registry import ActionRegistry
from bot.actions.runner import ActionRunner
from bot.router import Router
from bot.types import Action, ActionEvent
from handlers.kinds import KindRegistry, build_registry
from models.intents.spec import KindTraits, TaskSpec
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import Task

DRAFT = "Subject: Shipment\n\nHi Dana, the shipment is late by two days."


class Crash(BaseException):
    """Stands in for the process dying (SIGKILL): nothing after it runs."""


@dataclass
class FakePerformer:
    """Records what it did; fails, asks or crashes as a test scripts it."""

    kind: str = "email.send"
    #: Raised by ``perform`` one per call, before anything is done.
    failures: list[ActionFailed] = field(default_factory=list)
    #: Raised by ``prepare`` one per call (an outage or a bug, not an ActionFailed).
    prepare_errors: list[Exception] = field(default_factory=list)
    #: Ask for Dana's address until an answer is in the slots.
    ask: bool = False
    #: "before" / "after": die before or right after ``commit`` (once).
    crash: str | None = None
    performed: list[tuple[str, str]] = field(default_factory=list)
    prepared: int = 0
    contexts: list[ActionContext] = field(default_factory=list)

    def available(self) -> bool:
        return True

    async def prepare(self, ctx: ActionContext) -> dict[str, Any]:
        self.prepared += 1
        if self.prepare_errors:
            raise self.prepare_errors.pop(0)
        answers = ctx.slots.get("answers") or {}
        if self.ask:
            address = answers.get("recipient:Dana")
            if not address or "@" not in address:
                raise NeedsInput("recipient", "Dana")
            return {"recipients": [address]}
        return {"recipients": ["dana@example.com"]}

    async def perform(self, ctx: ActionContext, commit: Commit) -> ActionOutcome:
        self.contexts.append(ctx)
        if self.failures:
            raise self.failures.pop(0)
        if self.crash == "before":
            self.crash = None
            raise Crash()
        await commit()
        if self.crash == "after":
            self.crash = None
            self.performed.append((ctx.key, ctx.draft))  # it went out, then the process died
            raise Crash()
        self.performed.append((ctx.key, ctx.draft))
        return ActionOutcome(f"Sent to {ctx.slots['recipients'][0]}", {"message_id": ctx.key})


@dataclass
class FixedParser:
    """Answers every message with the same specs."""

    specs: list[TaskSpec]

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        return list(self.specs)


def kinds_with(*actions: str) -> KindRegistry:
    return build_registry(actions=actions or ("email.send",))


def runner_for(repo: Repository, performer: FakePerformer, **kw: Any) -> ActionRunner:
    performers = ActionRegistry([performer])
    kw.setdefault("backoff_seconds", 0.01)
    return ActionRunner(repo, performers, kinds=kinds_with(performer.kind), **kw)


def router_for(
    repo: Repository, *, approvers: str = "", hours: float = 24.0, parser: Any = None
) -> Router:
    kinds = kinds_with()
    return Router(
        repo=repo,
        parser=parser or FixedParser([]),
        kinds=kinds,
        approvals=Approvals(repo, kinds, ApprovalPolicy.parse(approvers, hours)),
    )


async def drafted_action(
    repo: Repository, *, user: str = "ana", kind: str = "email.send", event: str = "e1"
) -> Task:
    """A request whose email draft has finished, and the action task that sends it."""
    stored = await repo.create_request(
        request=RequestCreate(
            platform="console",
            tenant="t1",
            channel="c1",
            user=user,
            text="email Dana about the shipment",
            event_id=event,
            context={"user_name": "Ana"},
        ),
        tasks=[
            TaskCreate(
                kind="email.draft",
                inputs={"recipients": ["Dana"]},
                status="succeeded",
                result=DRAFT,
            ),
            TaskCreate(kind=kind, inputs={"recipients": ["Dana"]}, depends_on=(0,)),
        ],
    )
    return stored.tasks[1]


def press(
    task_id: int,
    action: Action,
    *,
    user: str = "ana",
    choice: str | None = None,
    comment: str | None = None,
    event: str = "p1",
) -> ActionEvent:
    return ActionEvent(
        platform="console",
        tenant="t1",
        channel="c1",
        user=user,
        action=action,
        task_id=task_id,
        event_id=event,
        choice=choice,
        comment=comment,
    )

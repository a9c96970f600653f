"""The router asks the task-kind registry: file kinds are planned, slots filled, questions
asked, and consumed results linked (the same message first, else the thread's last result).

The parser here returns fixed specs: these tests are about what the router does with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.router import Router
from bot.types import Inbound
from handlers.kinds import KindRegistry, build_registry
from models.intents import load_intents
from models.intents.spec import KindTraits, TaskSpec
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import TaskStatus

INTENTS = """\
nlu:
  - intent: report.draft
    slots: [topic, deadline]
    task:
      label: {en: status report, zh: 状态报告}
      prompt: Write a status report about {topic}, due {deadline}.
      required:
        topic: {en: "What should the report cover?", zh: "报告要涵盖什么内容？"}
    examples: [write the weekly status report]
  - intent: slides.outline
    task:
      label: slide outline
      prompt: Turn {previous} into a slide outline.
      consumes: previous
      produces: false
    examples: [turn it into slides]
"""


@dataclass
class FixedParser:
    """Answers every message with the same specs and remembers the traits it was given."""

    specs: list[TaskSpec]
    traits: list[KindTraits | None] = field(default_factory=list)

    def parse(
        self,
        text: str,
        *,
        now_iso: str | None = None,
        timezone: str = "UTC",
        traits: KindTraits | None = None,
    ) -> list[TaskSpec]:
        self.traits.append(traits)
        return list(self.specs)


@pytest.fixture
def kinds(tmp_path: Path) -> KindRegistry:
    path = tmp_path / "intents.yaml"
    path.write_text(INTENTS, encoding="utf-8")
    return build_registry(load_intents(path))


def msg(text: str, event_id: str, thread: str | None = "T1") -> Inbound:
    return Inbound(
        platform="console",
        tenant="t",
        channel="c",
        user="ana",
        text=text,
        event_id=event_id,
        thread=thread,
    )


def router(repo: Repository, kinds: KindRegistry, *specs: TaskSpec) -> Router:
    return Router(repo=repo, parser=FixedParser(list(specs)), kinds=kinds)


async def test_the_parser_gets_the_registry_as_its_traits(
    repo: Repository, kinds: KindRegistry
) -> None:
    parser = FixedParser([TaskSpec("help")])
    await Router(repo=repo, parser=parser, kinds=kinds).handle(msg("help", "e1"))
    assert parser.traits == [kinds]


async def test_declared_slots_are_filled_from_the_clause(
    repo: Repository, kinds: KindRegistry
) -> None:
    text = "write the status report about the billing migration by Friday at 5pm"
    reply = await router(repo, kinds, TaskSpec("report.draft", span=(0, len(text)))).handle(
        msg(text, "e1")
    )
    (task,) = await repo.list_tasks()
    assert task.kind == "report.draft" and f"#{task.id} status report" in reply.text
    assert task.inputs["topic"].startswith("the billing migration")
    assert task.inputs["deadline"][:4].isdigit(), "a time-like slot is an ISO time"


async def test_a_required_slot_that_cannot_be_found_is_asked_in_the_askers_language(
    repo: Repository, kinds: KindRegistry
) -> None:
    reply = await router(repo, kinds, TaskSpec("report.draft")).handle(msg("写一份周报", "e1"))
    assert reply.text == "报告要涵盖什么内容？"
    assert await repo.list_tasks() == []


async def test_consumes_previous_links_the_earlier_task_of_the_message(
    repo: Repository, kinds: KindRegistry
) -> None:
    text = "write the status report about search, then turn it into slides"
    specs = (TaskSpec("report.draft", span=(0, 36)), TaskSpec("slides.outline", span=(38, 62)))
    await router(repo, kinds, *specs).handle(msg(text, "e1"))
    report, slides = reversed(await repo.list_tasks())
    assert slides.kind == "slides.outline" and slides.depends_on == [report.id]


async def test_consumes_previous_alone_reads_the_last_result_of_the_thread(
    repo: Repository, kinds: KindRegistry
) -> None:
    text = "write the status report about search"
    await router(repo, kinds, TaskSpec("report.draft", span=(0, len(text)))).handle(msg(text, "e1"))
    (report,) = await repo.list_tasks()
    claimed = await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    assert [t.id for t in claimed] == [report.id]
    await repo.complete(task_id=report.id or 0, worker_id="w", result="Done: search v2")

    await router(repo, kinds, TaskSpec("slides.outline")).handle(msg("turn it into slides", "e2"))
    slides = (await repo.list_tasks())[0]
    assert slides.kind == "slides.outline" and slides.status == TaskStatus.queued
    assert slides.inputs["results_of"] == [report.id] and slides.depends_on == []


async def test_a_result_of_another_thread_is_not_consumed(
    repo: Repository, kinds: KindRegistry
) -> None:
    text = "write the status report about search"
    await router(repo, kinds, TaskSpec("report.draft", span=(0, len(text)))).handle(
        msg(text, "e1", thread="T1")
    )
    (report,) = await repo.list_tasks()
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=report.id or 0, worker_id="w", result="Done")

    reply = await router(repo, kinds, TaskSpec("slides.outline")).handle(
        msg("turn it into slides", "e2", thread="T2")
    )
    assert "no earlier result" in reply.text
    assert len(await repo.list_tasks()) == 1

    found = await repo.last_result(
        platform="console", tenant="t", channel="c", thread="T1", kinds=["report.draft"], user="x"
    )
    assert found is not None and found.id == report.id


async def test_a_private_result_is_consumed_by_its_owner_only(repo: Repository) -> None:
    stored = await repo.create_request(
        request=RequestCreate(
            platform="console",
            tenant="t",
            channel="c",
            thread="T3",
            user="bob",
            text="status report",
            event_id="p1",
            private=True,
        ),
        tasks=[TaskCreate(kind="report.draft", status=TaskStatus.succeeded, result="secret")],
    )
    where = {"platform": "console", "tenant": "t", "channel": "c", "thread": "T3"}
    assert await repo.last_result(**where, kinds=["report.draft"], user="ana") is None
    mine = await repo.last_result(**where, kinds=["report.draft"], user="bob")
    assert mine is not None and mine.id == stored.tasks[0].id


async def test_an_intent_without_a_kind_is_not_turned_into_a_task(
    repo: Repository, kinds: KindRegistry
) -> None:
    reply = await router(repo, kinds, TaskSpec("order.lunch")).handle(msg("order lunch", "e1"))
    assert "not something I can do" in reply.text
    assert await repo.list_tasks() == []


async def test_the_built_in_required_slot_question_comes_from_the_registry(
    repo: Repository,
) -> None:
    reply = await router(repo, build_registry(), TaskSpec("email.draft")).handle(
        msg("write an email about the budget", "e1")
    )
    assert reply.text.startswith("Who should the email go to?")

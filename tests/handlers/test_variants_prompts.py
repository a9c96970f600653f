"""Prompt variants of task kinds: the registry lists them and builds the prompt a task names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers.kinds import KindRegistry, build_registry
from models.intents import load_intents, parse_intents

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
TEAM = """\
nlu:
  - intent: report.draft
    slots: [topic]
    task:
      label: status report
      format: markdown
      max_tokens: 300
      variants:
        - name: sections
          prompt: "Write a report on {topic} with the sections Done and Next."
        - name: headline
          prompt: "Write one headline line on {topic}, then three bullets."
    examples: [write the weekly status report]
"""


def task(kind: str, variant: str | None = None, **inputs: Any) -> Any:
    from storage.tables import Task

    return Task(
        id=9,
        request_id=1,
        kind=kind,
        inputs={"request_text": "the weekly report", "locale": "en", **inputs},
        variant=variant,
        platform="console",
        tenant="t",
        user="u",
        created_at=NOW,
    )


def user_prompt(kinds: KindRegistry, kind: str, variant: str | None, **inputs: Any) -> str:
    return kinds.build(task(kind, variant, **inputs), []).messages[1]["content"]


def test_the_registry_lists_a_kinds_variants_and_single_prompt_kinds_have_none() -> None:
    kinds = build_registry(parse_intents(TEAM, "team.yaml"))
    assert kinds.variants("report.draft") == ("sections", "headline")
    assert kinds.variants("summarize") == ()
    assert kinds.variants("reminder.create") == ()  # answered at once: nothing to choose
    assert kinds.variants("no.such.kind") == ()
    report = kinds.get("report.draft")
    assert report is not None and report.describe()["variants"] == ["sections", "headline"]


def test_a_task_gets_the_prompt_of_its_variant_and_the_first_when_it_names_none() -> None:
    kinds = build_registry(parse_intents(TEAM, "team.yaml"))
    sections = user_prompt(kinds, "report.draft", "sections", topic="payments")
    headline = user_prompt(kinds, "report.draft", "headline", topic="payments")
    assert sections.startswith("Write a report on payments with the sections Done and Next.")
    assert headline.startswith("Write one headline line on payments, then three bullets.")
    assert user_prompt(kinds, "report.draft", None, topic="payments") == sections
    # A variant since removed from the file falls back to the first one.
    assert user_prompt(kinds, "report.draft", "gone", topic="payments") == sections
    # Everything around the template is the same for both: the fenced request, the format.
    for prompt in (sections, headline):
        assert "<<<DATA\nthe weekly report\nDATA>>>" in prompt
        assert prompt.endswith("Format the answer in Markdown (short headings and bullet points).")


def test_variants_share_the_kinds_budget_and_system_message() -> None:
    kinds = build_registry(parse_intents(TEAM, "team.yaml"))
    a = kinds.build(task("report.draft", "sections", topic="x"), [])
    b = kinds.build(task("report.draft", "headline", topic="x"), [])
    assert a.max_new_tokens == b.max_new_tokens == 300
    assert a.messages[0] == b.messages[0]


def test_email_drafts_offer_a_structured_variant_beside_the_default() -> None:
    kinds = build_registry()
    assert kinds.variants("email.draft") == ("default", "structured")
    default = user_prompt(kinds, "email.draft", "default", recipients=["Dana"], length="short")
    structured = user_prompt(kinds, "email.draft", "structured", recipients=["Dana"])
    assert default.startswith("Draft an email to Dana. Tone: professional and friendly.")
    assert structured.startswith("Draft an email to Dana. Tone: professional and friendly.")
    assert "Structure:" in structured and "Structure:" not in default
    # The length slot still sets the budget, whichever variant runs.
    short = kinds.build(task("email.draft", "structured", length="short"), [])
    assert short.max_new_tokens == 200


def test_the_default_status_report_variants_build_different_prompts() -> None:
    kinds = build_registry(load_intents())
    assert kinds.variants("report.draft") == ("sections", "headline")
    sections = user_prompt(kinds, "report.draft", "sections")
    headline = user_prompt(kinds, "report.draft", "headline")
    assert "Risks and blockers" in sections and "On track, At risk or Off track" in headline

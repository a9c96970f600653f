"""One message → ordered atomic tasks, with dependencies, and without over-splitting."""

from __future__ import annotations

import pytest

from models.intents import IntentClassifier

NOW = "2026-11-23T10:00:00+08:00"  # a Monday morning in Shanghai
TZ = "Asia/Shanghai"

# (message, expected intents in order, expected depends_on per task)
CASES: list[tuple[str, list[str], list[tuple[int, ...]]]] = [
    (
        "summarize this thread and then email Dana the outcome; also remind me Friday to follow up",
        ["summarize", "email.draft", "reminder.create"],
        [(), (0,), ()],
    ),
    ("email Tom and Jerry about the launch", ["email.draft"], [()]),
    ("remind me to review and approve the budget", ["reminder.create"], [()]),
    ("draft an email to Dana about the delayed shipment", ["email.draft"], [()]),
    (
        "summarize #sales since yesterday and email the summary to Priya",
        ["summarize", "email.draft"],
        [(), (0,)],
    ),
    (
        "summarize this thread. Then email the results to the leadership team",
        ["summarize", "email.draft"],
        [(), (0,)],
    ),
    (
        "cancel #42 and remind me tomorrow at 9am to call the bank",
        ["task.cancel", "reminder.create"],
        [(), ()],
    ),
    ("what's the status of #7? also cancel #8", ["task.status", "task.cancel"], [(), ()]),
    ("remind me Friday to follow up", ["reminder.create"], [()]),
    ("summarize this thread", ["summarize"], [()]),
    (
        "subscribe this channel to the daily digest and summarize this thread",
        ["digest.subscribe", "summarize"],
        [(), ()],
    ),
    ("unsubscribe #sales from the weekly digest", ["digest.unsubscribe"], [()]),
    (
        "draft a reply to this thread, then remind me in 2 hours to check the answers",
        ["reply.draft", "reminder.create"],
        [(), ()],
    ),
    ("email Sarah and ask if the slides are ready", ["email.draft"], [()]),
    (
        "write an email to bob@acme.io and alice@acme.io about the pricing change",
        ["email.draft"],
        [()],
    ),
    ("remind me to call the supplier and ask about the invoice", ["reminder.create"], [()]),
    ("remind the channel every Monday at 10 to submit timesheets", ["reminder.create"], [()]),
    (
        "summarize the last 50 messages in #engineering; then draft a reply to this thread",
        ["summarize", "reply.draft"],
        [(), ()],
    ),
    (
        "give me a summary of this thread and send it to Dana by email",
        ["summarize", "email.draft"],
        [(), (0,)],
    ),
    ("cancel tasks 3 and 4", ["task.cancel"], [()]),
    ("show my tasks", ["task.status"], [()]),
    ("help", ["help"], [()]),
    ("what can you do?", ["help"], [()]),
    (
        "summarize this: the team agreed to ship v2 next week. "
        "Then we postpone pricing and email the board.",
        ["summarize"],
        [()],
    ),
    (
        "summarize this thread; email Dana about the offsite; "
        "remind me on Monday to book the flights",
        ["summarize", "email.draft", "reminder.create"],
        [(), (), ()],
    ),
    (
        "turn off digests for #general. Also show the status of task 12",
        ["digest.unsubscribe", "task.status"],
        [(), ()],
    ),
    ("总结一下这个帖子，然后把结果发邮件给Dana", ["summarize", "email.draft"], [(), (0,)]),
    ("明天上午9点提醒我给银行打电话", ["reminder.create"], [()]),
    ("给王经理写一封邮件，说明发货延迟的原因", ["email.draft"], [()]),
    ("取消任务42", ["task.cancel"], [()]),
    (
        "draft an email to the finance team about the Q3 budget, keep it short",
        ["email.draft"],
        [()],
    ),
    (
        "recap #support this week and then remind us every Friday at 5pm to triage tickets",
        ["summarize", "reminder.create"],
        [(), ()],
    ),
]


@pytest.mark.parametrize(("message", "intents", "depends"), CASES, ids=[c[0][:40] for c in CASES])
def test_message_becomes_the_expected_ordered_tasks(
    classifier: IntentClassifier, message: str, intents: list[str], depends: list[tuple[int, ...]]
) -> None:
    specs = classifier.parse(message, now_iso=NOW, timezone=TZ)
    assert [s.intent for s in specs] == intents
    assert [s.depends_on for s in specs] == depends


# Requests that name addresses, links, files, versions, decimals or abbreviations: their dots
# never end a request (English and Chinese).
PROTECTED: list[tuple[str, list[str], list[tuple[int, ...]]]] = [
    ("draft an email to jane.doe@example.com about the contract renewal", ["email.draft"], [()]),
    (
        "summarize this article https://x.io/a.b and then email the summary to Priya",
        ["summarize", "email.draft"],
        [(), (0,)],
    ),
    (
        "remind me in 3.5 hours to call Mr. Lee about report_v1.2.pdf, e.g. before lunch",
        ["reminder.create"],
        [()],
    ),
    ("给jane.doe@example.com写一封邮件说明report_v1.2.pdf的改动", ["email.draft"], [()]),
    ("3.5小时后提醒我给Mr. Lee打电话，确认v2.1版本", ["reminder.create"], [()]),
]


@pytest.mark.parametrize(
    ("message", "intents", "depends"), PROTECTED, ids=[c[0][:40] for c in PROTECTED]
)
def test_dots_in_addresses_files_numbers_and_abbreviations_never_split(
    classifier: IntentClassifier, message: str, intents: list[str], depends: list[tuple[int, ...]]
) -> None:
    specs = classifier.parse(message, now_iso=NOW, timezone=TZ)
    assert [s.intent for s in specs] == intents
    assert [s.depends_on for s in specs] == depends


def test_the_address_stays_the_recipient(classifier: IntentClassifier) -> None:
    [spec] = classifier.parse(
        "draft an email to jane.doe@example.com about the contract renewal", now_iso=NOW
    )
    assert "jane.doe@example.com" in spec.slots["recipients"]


def test_cancel_and_status_in_one_message_are_two_tasks(classifier: IntentClassifier) -> None:
    specs = classifier.parse("cancel task 12 and show me what's still running", now_iso=NOW)
    assert [s.intent for s in specs] == ["task.cancel", "task.status"]
    assert specs[0].slots["task_ids"] == [12]


def test_another_one_is_a_second_email_of_its_own(classifier: IntentClassifier) -> None:
    message = "write an email to Lee about the offsite and another one to Kim about the budget"
    specs = classifier.parse(message, now_iso=NOW)
    assert [s.intent for s in specs] == ["email.draft", "email.draft"]
    assert [message[s.span[0] : s.span[1]] for s in specs] == [
        "write an email to Lee about the offsite",
        "another one to Kim about the budget",
    ]
    assert specs[0].slots["recipients"] == ["Lee"]
    assert specs[1].slots["recipients"] == ["Kim"]
    assert specs[1].slots["topic"] == "the budget"
    assert [s.depends_on for s in specs] == [(), ()]


def test_table_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_spans_cover_each_clause_in_order(classifier: IntentClassifier) -> None:
    message = (
        "summarize this thread and then email Dana the outcome; also remind me Friday to follow up"
    )
    specs = classifier.parse(message, now_iso=NOW, timezone=TZ)
    clauses = [message[s.span[0] : s.span[1]] for s in specs]
    assert clauses == [
        "summarize this thread",
        "email Dana the outcome",
        "remind me Friday to follow up",
    ]


def test_pasted_text_is_kept_whole_as_the_summary_input(classifier: IntentClassifier) -> None:
    message = (
        "summarize this: revenue grew 12% and costs stayed flat. Then the board approved the plan."
    )
    [spec] = classifier.parse(message, now_iso=NOW, timezone=TZ)
    assert spec.slots["scope"] == "text"
    assert (
        spec.slots["text"]
        == "revenue grew 12% and costs stayed flat. Then the board approved the plan."
    )


def test_empty_text_gives_no_tasks(classifier: IntentClassifier) -> None:
    assert classifier.parse("") == []
    assert classifier.parse("   \n ") == []


def test_a_100kb_paste_is_summarized_whole(classifier: IntentClassifier) -> None:
    pasted = "The launch slipped. Then QA found two blockers and we moved the date. " * 1500
    [spec] = classifier.parse("summarize this: " + pasted, now_iso=NOW, timezone=TZ)
    assert spec.intent == "summarize"
    assert spec.slots["text"] == pasted.strip()


def test_control_characters_do_not_break_parsing(classifier: IntentClassifier) -> None:
    specs = classifier.parse("cancel #42\x00\x07\x1b[31m", now_iso=NOW, timezone=TZ)
    assert [s.intent for s in specs] == ["task.cancel"]
    assert specs[0].slots["task_ids"] == [42]

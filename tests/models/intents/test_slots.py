"""Slot extraction: recipients, times with timezones and recurrence, scopes, task ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models.intents import IntentClassifier
from models.intents.slots import SlotContext, extract

SHANGHAI = SlotContext(
    now=datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")), timezone="Asia/Shanghai"
)
NEW_YORK = SlotContext(
    now=datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York")),
    timezone="America/New_York",
)

# (intent, text, context, expected subset of the slots)
CASES: list[tuple[str, str, SlotContext, dict[str, Any]]] = [
    (
        "email.draft",
        "draft an email to Dana about the delayed shipment",
        SHANGHAI,
        {"recipients": ["Dana"], "topic": "the delayed shipment"},
    ),
    (
        "email.draft",
        "email Tom and Jerry about the launch",
        SHANGHAI,
        {"recipients": ["Tom", "Jerry"], "topic": "the launch"},
    ),
    (
        "email.draft",
        "write an email to bob@acme.io about the pricing change, keep it brief",
        SHANGHAI,
        {"recipients": ["bob@acme.io"], "length": "short"},
    ),
    (
        "email.draft",
        "send an email to @mike about tomorrow's standup being moved",
        SHANGHAI,
        {"recipients": ["@mike"]},
    ),
    (
        "email.draft",
        "compose a formal email to jane.doe@example.com regarding the contract renewal",
        SHANGHAI,
        {"recipients": ["jane.doe@example.com"], "tone": "formal", "topic": "the contract renewal"},
    ),
    (
        "email.draft",
        "draft a long detailed email to the auditors about our controls",
        SHANGHAI,
        {"length": "long", "topic": "our controls"},
    ),
    ("email.draft", "email <@U123ABC> about the offsite", SHANGHAI, {"recipients": ["<@U123ABC>"]}),
    (
        "email.draft",
        "给王经理写一封邮件，说明发货延迟的原因，语气正式一点",
        SHANGHAI,
        {"recipients": ["王经理"], "tone": "formal"},
    ),
    ("email.draft", "write an email about the budget", SHANGHAI, {"recipients": []}),
    (
        "email.draft",
        "another one to Kim about the budget",
        SHANGHAI,
        {"recipients": ["Kim"], "topic": "the budget"},
    ),
    (
        "reminder.create",
        "remind me tomorrow at 9am to call the bank",
        SHANGHAI,
        {
            "when": "2026-11-24T09:00:00+08:00",
            "recurrence": None,
            "what": "call the bank",
            "target": "me",
        },
    ),
    (
        "reminder.create",
        "remind me Friday to follow up",
        SHANGHAI,
        {"when": "2026-11-27T09:00:00+08:00", "what": "follow up"},
    ),
    (
        "reminder.create",
        "remind me Friday at 9 to review the budget",
        SHANGHAI,
        {"when": "2026-11-27T09:00:00+08:00", "what": "review the budget"},
    ),
    (
        "reminder.create",
        "remind me tomorrow at 9 to call Bob",
        NEW_YORK,
        {"when": "2026-11-24T09:00:00-05:00", "what": "call Bob"},
    ),
    (
        "reminder.create",
        "remind me at 9 to call Bob",
        NEW_YORK,
        {"when": "2026-11-24T09:00:00-05:00", "what": "call Bob"},
    ),
    (
        "reminder.create",
        "remind me at 3 pm to send the report",
        NEW_YORK,
        {"when": "2026-11-23T15:00:00-05:00", "what": "send the report"},
    ),
    (
        "reminder.create",
        "remind me in 2 hours to check the deployment",
        SHANGHAI,
        {"when": "2026-11-23T12:00:00+08:00", "what": "check the deployment"},
    ),
    (
        "reminder.create",
        "remind me at 5pm to send the report",
        NEW_YORK,
        {"when": "2026-11-23T17:00:00-05:00", "what": "send the report"},
    ),
    (
        "reminder.create",
        "remind the channel every Monday at 10 to submit timesheets",
        SHANGHAI,
        {
            "recurrence": {"day_of_week": "mon", "hour": 10, "minute": 0},
            "target": "channel",
            "when": "2026-11-30T10:00:00+08:00",
            "what": "submit timesheets",
        },
    ),
    (
        "reminder.create",
        "set a reminder on the first of every month to pay the invoices",
        SHANGHAI,
        {"recurrence": {"day": "1", "hour": 9, "minute": 0}, "when": "2026-12-01T09:00:00+08:00"},
    ),
    (
        "reminder.create",
        "remind us every weekday at 9:30 about standup",
        SHANGHAI,
        {"recurrence": {"day_of_week": "mon-fri", "hour": 9, "minute": 30}, "target": "channel"},
    ),
    (
        "reminder.create",
        "明天上午9点提醒我给银行打电话",
        SHANGHAI,
        {"when": "2026-11-24T09:00:00+08:00", "what": "给银行打电话"},
    ),
    (
        "reminder.create",
        "每周一早上10点提醒大家提交工时",
        SHANGHAI,
        {"recurrence": {"day_of_week": "mon", "hour": 10, "minute": 0}, "target": "channel"},
    ),
    (
        "reminder.create",
        "remind me to review and approve the budget",
        SHANGHAI,
        {"when": None, "what": "review and approve the budget"},
    ),
    ("summarize", "summarize this thread", SHANGHAI, {"scope": "thread", "channel": None}),
    (
        "summarize",
        "give me a summary of #sales since yesterday",
        SHANGHAI,
        {
            "scope": "channel",
            "channel": "#sales",
            "since": "2026-11-22T00:00:00+08:00",
            "until": None,
        },
    ),
    (
        "summarize",
        "summarize <#C123|sales> for the last 24 hours",
        SHANGHAI,
        {"scope": "channel", "channel": "<#C123|sales>", "since": "2026-11-22T10:00:00+08:00"},
    ),
    (
        "summarize",
        "recap the last 50 messages in this channel",
        SHANGHAI,
        {"scope": "channel", "last_n": 50, "since": None},
    ),
    (
        "summarize",
        "summarize this: the team agreed to ship v2 next week and postpone pricing",
        SHANGHAI,
        {"scope": "text", "text": "the team agreed to ship v2 next week and postpone pricing"},
    ),
    (
        "summarize",
        "what did I miss in #engineering today",
        NEW_YORK,
        {"scope": "channel", "channel": "#engineering", "since": "2026-11-23T00:00:00-05:00"},
    ),
    (
        "reply.draft",
        'suggest a response to this: "Can we move the deadline to next week?"',
        SHANGHAI,
        {"target": "text", "text": "Can we move the deadline to next week?"},
    ),
    ("reply.draft", "draft a reply to this thread", SHANGHAI, {"target": "thread", "text": None}),
    ("reply.draft", "help me reply to this message", SHANGHAI, {"target": "message"}),
    ("task.status", "what's the status of #42", SHANGHAI, {"task_ids": [42]}),
    ("task.status", "status of tasks 3 and 4", SHANGHAI, {"task_ids": [3, 4]}),
    ("task.cancel", "cancel #14 and #15", SHANGHAI, {"task_ids": [14, 15]}),
    ("task.cancel", "取消任务42", SHANGHAI, {"task_ids": [42]}),
    ("task.cancel", "cancel my last request", SHANGHAI, {"task_ids": []}),
    (
        "digest.subscribe",
        "subscribe this channel to the daily digest",
        SHANGHAI,
        {
            "cron": {"hour": 8, "minute": 0},
            "timezone": "Asia/Shanghai",
            "channel": None,
            "weekly": False,
        },
    ),
    (
        "digest.subscribe",
        "subscribe #engineering to a daily summary at 9:00 Europe/Berlin",
        SHANGHAI,
        {"cron": {"hour": 9, "minute": 0}, "timezone": "Europe/Berlin", "channel": "#engineering"},
    ),
    (
        "digest.subscribe",
        "set up a weekly digest for #sales every Monday",
        SHANGHAI,
        {
            "cron": {"day_of_week": "mon", "hour": 8, "minute": 0},
            "weekly": True,
            "channel": "#sales",
        },
    ),
    (
        "digest.subscribe",
        "post a digest here every Friday at 5pm",
        SHANGHAI,
        {"cron": {"day_of_week": "fri", "hour": 17, "minute": 0}, "weekly": True},
    ),
    (
        "digest.unsubscribe",
        "unsubscribe #sales from the weekly digest",
        SHANGHAI,
        {"channel": "#sales"},
    ),
    ("digest.unsubscribe", "turn off digests", SHANGHAI, {"channel": None}),
]


@pytest.mark.parametrize(
    ("intent", "text", "ctx", "expected"), CASES, ids=[c[1][:45] for c in CASES]
)
def test_slots_are_extracted(
    intent: str, text: str, ctx: SlotContext, expected: dict[str, Any]
) -> None:
    slots, _ = extract(intent, text, ctx)
    assert {key: slots.get(key) for key in expected} == expected


def test_email_without_recipients_reports_the_missing_slot() -> None:
    _, missing = extract("email.draft", "write an email about the budget", SHANGHAI)
    assert missing == ("recipients",)


def test_reminder_without_a_time_reports_the_missing_slot() -> None:
    _, missing = extract("reminder.create", "remind me to call mom", SHANGHAI)
    assert missing == ("when",)


def test_parse_resolves_times_in_the_given_timezone(classifier: IntentClassifier) -> None:
    [spec] = classifier.parse(
        "remind me tomorrow at 9am to call the bank",
        now_iso="2026-11-23T10:00:00+00:00",
        timezone="Asia/Tokyo",
    )
    assert spec.slots["when"] == "2026-11-24T09:00:00+09:00"


def test_parse_reports_missing_recipients(classifier: IntentClassifier) -> None:
    [spec] = classifier.parse("write an email about the budget")
    assert spec.intent == "email.draft"
    assert spec.missing == ("recipients",)

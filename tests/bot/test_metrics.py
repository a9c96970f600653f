"""Prometheus metrics: scraped from /metrics while atombot runs real tasks.

The app is the one ``atombot run`` builds (console adapter, router, classifier, in-process
worker on the tiny model, scheduler and delivery), with its ops server on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.adapters.console import ConsoleAdapter
from bot.adapters.slack import SlackAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.app import NoParser, build_app
from bot.config import Settings
from bot.metrics import MAX_METHODS, OTHER, Metrics
from bot.types import Target
from models.generation.base import Generator
from models.intents.spec import IntentParser
from storage.tables import Task, TaskStatus, utcnow
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram, RateLimits

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

TASKS = 20
#: Every label a metric may carry: never a user, chat, request or task id.
ALLOWED_LABELS = {"kind", "status", "platform", "method", "outcome", "le"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> tuple[str, Samples]:
    """GET /metrics; the raw text and every sample by (name, sorted labels)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and wanted <= set(lbl))


async def eventually(check: Callable[[], Any], within: float = 120.0) -> None:
    """Wait until ``check()`` (sync or async) is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
async def test_a_scrape_during_a_run_of_20_tasks_counts_every_task_once(
    settings: Settings, parser: IntentParser, generator: Generator
) -> None:
    lines = "".join(f"draft an email to Dana about invoice {i}\n" for i in range(TASKS))
    console = ConsoleAdapter(stdin=io.StringIO(lines), stdout=io.StringIO(), wait_timeout=300)
    app = await build_app(
        settings, parser=parser, generator=generator, adapters=[console], ops_port=0
    )
    await app.start()
    try:
        assert app.ops is not None
        _, before = await scrape(app.ops.url)  # answers while the tasks are being worked on
        await asyncio.wait_for(console.finished.wait(), 300)
        text, samples = await scrape(app.ops.url)
        tasks: list[Task] = await app.repo.list_tasks(limit=100)
    finally:
        await app.stop()

    assert len(tasks) == TASKS
    assert {(x.kind, x.status) for x in tasks} == {("email.draft", TaskStatus.succeeded)}
    kind = {"kind": "email.draft"}
    assert total(samples, "atombot_requests_total", platform="console", outcome="tasks") == TASKS
    assert total(samples, "atombot_classifier_seconds_count") == TASKS
    assert total(samples, "atombot_tasks_total", status="succeeded", **kind) == TASKS
    assert total(samples, "atombot_tasks_total") == TASKS
    assert total(samples, "atombot_queue_wait_seconds_count", **kind) == TASKS
    assert total(samples, "atombot_generation_seconds_count", **kind) == TASKS
    assert total(samples, "atombot_generation_tokens_per_second_count", **kind) == TASKS
    assert total(samples, "atombot_tokens_generated_total", **kind) > 0
    assert total(samples, "atombot_deliveries_total", platform="console") == TASKS
    assert total(samples, "atombot_delivery_seconds_count", **kind) == TASKS
    assert total(samples, "atombot_delivery_errors_total") == 0
    # The queue gauges are read at the scrape: everything was worked off.
    assert total(samples, "atombot_queue_depth") == 0
    assert total(samples, "atombot_queue_oldest_age_seconds") == 0
    assert total(samples, "atombot_scheduler_leader") == 1
    assert total(before, "atombot_tasks_total") <= TASKS
    used = {name for (_, labels) in samples for name, _ in labels}
    assert used <= ALLOWED_LABELS, used
    for task in tasks:
        assert f'"{task.id}"' not in text
    assert "console" not in {v for (_, labels) in samples for k, v in labels if k != "platform"}


def test_two_apps_count_in_their_own_registries() -> None:
    first, second = Metrics(["email.draft"]), Metrics(["email.draft"])
    first.request("slack", "tasks")
    assert first.registry is not second.registry
    assert first.requests.labels("slack", "tasks")._value.get() == 1
    assert second.requests.labels("slack", "tasks")._value.get() == 0


def test_labels_stay_bounded_whatever_the_input() -> None:
    metrics = Metrics(["email.draft"])
    now = utcnow()
    unknown = Task(
        id=7,
        request_id=1,
        kind="kind-from-a-deleted-intent",
        platform="x",
        tenant="t",
        user="U123",
        created_at=now,
        started_at=now,
        attempts=1,
    )
    metrics.claimed(unknown)
    metrics.finished(unknown, "succeeded")
    metrics.request("some-new-platform", "tasks")
    for i in range(MAX_METHODS + 10):
        metrics.platform_rate_limited("slack", f"method{i}")
    metrics.platform_rate_limited("slack", "chat.update?token=xoxb-secret")

    assert metrics.tasks.labels(OTHER, "succeeded")._value.get() == 1
    assert metrics.requests.labels(OTHER, "tasks")._value.get() == 1
    text = metrics.render().decode()
    assert "kind-from-a-deleted-intent" not in text and "some-new-platform" not in text
    assert "xoxb" not in text
    methods = {
        line.split('method="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("atombot_rate_limited_total{")
    }
    assert len(methods) == MAX_METHODS + 1 and OTHER in methods


@pytest.mark.parametrize("platform", ["slack", "telegram"])
async def test_a_429_from_the_platform_is_counted_by_platform_and_method(
    settings: Settings, platform: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        adapter: Any
        if platform == "slack":
            slack = await stack.enter_async_context(FakeSlack())
            configured = settings.model_copy(
                update={
                    "slack_bot_token": slack.bot_token,
                    "slack_signing_secret": slack.signing_secret,
                    "slack_api_url": slack.api_url,
                }
            )
            adapter = SlackAdapter(configured, host="127.0.0.1", port=0)
            slack.force_rate_limit("chat.postMessage", retry_after=1)
            target, method = Target("slack", "T0", "C0GENERAL"), "chat.postMessage"
        else:
            telegram = await stack.enter_async_context(
                FakeTelegram(rate_limits=RateLimits.unlimited())
            )
            configured = settings.model_copy(
                update={"telegram_bot_token": DEFAULT_TOKEN, "telegram_api_url": telegram.base_url}
            )
            adapter = TelegramAdapter(configured, poll_timeout=1.0)
            telegram.private_chat(1001)
            telegram.force_429(1, retry_after=1, methods=["sendMessage"])
            target, method = Target("telegram", "0", "1001"), "sendMessage"
        app = await build_app(
            configured, parser=NoParser(), adapters=[adapter], with_worker=False, ops_port=0
        )
        await app.start()
        try:
            assert app.ops is not None
            await adapter.notify(target, "the report is ready")  # waited out and retried
            _, samples = await scrape(app.ops.url)
        finally:
            await app.stop()

    assert total(samples, "atombot_rate_limited_total", platform=platform, method=method) == 1
    assert total(samples, "atombot_rate_limited_total") == 1

"""Posts that may have gone out are found again in Slack by their client id, not repeated.

The real slack_sdk client talks to the fake Slack Web API, which keeps message metadata and
returns it from the history methods only with ``include_all_metadata``, like Slack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.adapters.base import DeliveryError, Services
from bot.adapters.slack import SlackAdapter
from bot.config import Settings
from bot.delivery import Deliverer
from bot.types import Section, Target, View
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import utcnow
from tests.fakes.slack_api import FakeSlack

CHANNEL = "C0GENERAL"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def bot(
    settings: Settings, repo: Repository, fake: FakeSlack
) -> AsyncIterator[tuple[Deliverer, SlackAdapter]]:
    """The Slack adapter and the delivery job; requests are stored directly (no router)."""
    config = settings.model_copy(
        update={
            "slack_bot_token": fake.bot_token,
            "slack_signing_secret": fake.signing_secret,
            "slack_api_url": fake.api_url,
        }
    )
    adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)
    router: Any = None  # nothing is routed: no event reaches the adapter in these tests
    await adapter.start(Services(router=router, repo=repo, notify=lambda: None))
    yield Deliverer(repo, {"slack": adapter}), adapter
    await adapter.stop()


async def test_a_post_slack_applied_before_failing_is_found_by_its_metadata_not_posted_again(
    bot: tuple[Deliverer, SlackAdapter], fake: FakeSlack, repo: Repository
) -> None:
    deliverer, _ = bot
    await repo.create_request(
        request=RequestCreate(
            platform="slack", tenant="T", channel=CHANNEL, user="U0ANA", text="x", event_id="e"
        ),
        tasks=[TaskCreate(kind="email.draft")],
    )
    fake.fail_after_apply("chat.postMessage")  # in the channel, but the bot hears a 500
    await deliverer.tick()
    assert len(fake.bot_messages(CHANNEL)) == 1
    (request_delivery,) = await repo.pending_deliveries(platforms=["slack"])
    assert request_delivery.message_id is None and request_delivery.posting is not None
    request_delivery.next_attempt_at = utcnow()  # the backoff has passed
    await repo.save_delivery(request_delivery)
    await deliverer.tick()
    (message,) = fake.bot_messages(CHANNEL)
    delivery = await repo.delivery_for(request_delivery.request_id)
    assert delivery is not None and delivery.message_id == f"{CHANNEL}/{message.ts}"
    assert len(fake.calls_to("chat.postMessage")) == 1
    (lookup,) = fake.calls_to("conversations.history")
    assert lookup.args["include_all_metadata"] in (True, "true", "1", 1)


async def test_find_sent_finds_a_reminder_in_a_thread_and_in_a_dm_and_nothing_else(
    bot: tuple[Deliverer, SlackAdapter], fake: FakeSlack
) -> None:
    _, adapter = bot
    since = utcnow() - timedelta(seconds=5)
    root = await adapter.send(
        Target(platform="slack", tenant="T", channel=CHANNEL), View(sections=(Section("hi"),))
    )
    thread = Target(platform="slack", tenant="T", channel=CHANNEL, thread=root.split("/")[1])
    await adapter.notify(thread, "⏰ Reminder", client_id="abc.0")
    dm = Target(platform="slack", tenant="T", channel=CHANNEL, user="U0ANA", private=True)
    await adapter.notify(dm, "📰 Digest", client_id="def.0")
    found = await adapter.find_sent(thread, "abc.0", since=since)
    assert found.message_id is not None and found.message_id.startswith(CHANNEL + "/")
    assert (await adapter.find_sent(dm, "def.0", since=since)).message_id is not None
    missing = await adapter.find_sent(thread, "never-posted", since=since)
    assert missing.message_id is None and missing.searchable
    fake.force_error("conversations.history", "ratelimited")
    with pytest.raises(DeliveryError):
        await adapter.find_sent(
            Target(platform="slack", tenant="T", channel=CHANNEL), "x", since=since
        )

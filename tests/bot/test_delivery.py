"""The delivery job: one message per request, edited in place, results posted once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import time_machine

from bot.adapters.base import DeliveryError, PostLookup, Services
from bot.delivery import Deliverer
from bot.posting import TAKEOVER_GRACE
from bot.types import Target, View
from storage.repository import Repository
from storage.schemas import RequestCreate, TaskCreate
from storage.tables import utcnow
from tests.fakes.recording import Crash


@dataclass
class RecordingAdapter:
    """A platform that records what it was asked to show (and can fail on demand).

    Like Slack it keeps each post's client-side id and finds it again (``find_sent``;
    ``searchable=False``: a platform that cannot, like Telegram). ``after_next_send`` makes
    the next post take effect and then raises (a crash, or a timeout that may have sent).
    """

    platform: str = "fake"
    max_text: int = 500
    min_edit_interval: float = 0.0
    searchable: bool = True
    sent: list[tuple[str, View]] = field(default_factory=list)
    edits: list[tuple[str, View]] = field(default_factory=list)
    fail_next: list[DeliveryError] = field(default_factory=list)
    client_ids: dict[str, str] = field(default_factory=dict)
    after_next_send: list[BaseException] = field(default_factory=list)

    async def start(self, services: Services) -> None: ...
    async def stop(self) -> None: ...

    async def send(self, target: Target, view: View, *, client_id: str | None = None) -> str:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append((f"m{len(self.sent) + 1}", view))
        if client_id is not None:
            self.client_ids[client_id] = f"m{len(self.sent)}"
        if self.after_next_send:
            raise self.after_next_send.pop(0)
        return f"m{len(self.sent)}"

    async def find_sent(self, target: Target, client_id: str, *, since: datetime) -> PostLookup:
        if not self.searchable:
            return PostLookup(searchable=False)
        return PostLookup(message_id=self.client_ids.get(client_id))

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.edits.append((message_id, view))

    async def notify(self, target: Target, text: str, *, client_id: str | None = None) -> None: ...


async def a_task(
    repo: Repository, kind: str = "email.draft", *, hold_until: datetime | None = None
) -> int:
    created = await repo.create_request(
        request=RequestCreate(
            platform="fake", tenant="t", channel="c", user="u", text="x", event_id="e"
        ),
        tasks=[TaskCreate(kind=kind, inputs={"recipients": ["Dana"]})],
        hold_delivery_until=hold_until,
    )
    return created.tasks[0].id or 0


async def test_progress_edits_one_message_and_the_result_comes_with_rating_buttons(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter()
    deliverer = Deliverer(repo, {"fake": adapter})
    task_id = await a_task(repo)
    await deliverer.tick()
    assert len(adapter.sent) == 1 and "queued" in adapter.sent[0][1].text
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.set_progress(task_id=task_id, worker_id="w", progress=0.5)
    await deliverer.tick()
    assert "50%" in adapter.edits[-1][1].text
    await repo.complete(task_id=task_id, worker_id="w", result="Subject: Delay\n\nHi Dana")
    await deliverer.tick()
    await deliverer.tick()
    assert len(adapter.sent) == 1, "the result is an edit of the same message"
    final = adapter.edits[-1][1]
    assert "Hi Dana" in final.text
    assert [b.action.value for b in final.buttons[0]] == ["up", "down", "regen"]
    edits_before = len(adapter.edits)
    await Deliverer(repo, {"fake": adapter}).tick()  # a restarted bot
    assert len(adapter.sent) == 1 and len(adapter.edits) == edits_before


async def test_a_long_result_is_split_into_follow_up_parts_not_cut(repo: Repository) -> None:
    adapter = RecordingAdapter(max_text=300)
    deliverer = Deliverer(repo, {"fake": adapter})
    task_id = await a_task(repo)
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    words = " ".join(f"word{i}" for i in range(200))
    await repo.complete(task_id=task_id, worker_id="w", result=words)
    await deliverer.tick()
    shown = [v.text for _, v in adapter.sent]
    assert all(len(text) <= 300 for text in shown)
    joined = " ".join(shown)
    assert all(f"word{i}" in joined for i in range(200))
    assert "(continued 1/" in shown[1]
    parts = len(adapter.sent)
    await Deliverer(repo, {"fake": adapter}).tick()
    assert len(adapter.sent) == parts, "parts are never sent twice"


async def test_a_rate_limited_delivery_is_retried_after_the_wait_and_nothing_is_lost(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter(fail_next=[DeliveryError("ratelimited", retry_after=0.0)])
    deliverer = Deliverer(repo, {"fake": adapter})
    await a_task(repo)
    await deliverer.tick()
    assert adapter.sent == []
    await deliverer.tick()
    assert len(adapter.sent) == 1


async def test_a_permanently_failing_delivery_is_given_up_not_retried_forever(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter(fail_next=[DeliveryError("channel_not_found", retryable=False)])
    deliverer = Deliverer(repo, {"fake": adapter})
    await a_task(repo)
    await deliverer.tick()
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.done and delivery.error == "channel_not_found"
    await deliverer.tick()
    assert adapter.sent == []


async def test_a_receipt_being_posted_becomes_the_progress_message_not_a_second_one(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter()
    deliverer = Deliverer(repo, {"fake": adapter})
    await a_task(repo, hold_until=utcnow() + timedelta(seconds=15))
    await deliverer.tick()
    assert adapter.sent == [], "the adapter is still posting its receipt"
    assert await repo.adopt_message(request_id=1, message_id="receipt")
    await deliverer.tick()
    assert adapter.sent == []
    assert [m for m, _ in adapter.edits] == ["receipt"]
    assert "queued" in adapter.edits[0][1].text


async def test_a_receipt_that_never_arrives_leaves_the_delivery_job_to_post_after_the_hold(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter()
    deliverer = Deliverer(repo, {"fake": adapter})
    await a_task(repo, hold_until=utcnow() - timedelta(seconds=1))  # the bot died mid-post
    await deliverer.tick()
    assert len(adapter.sent) == 1
    assert not await repo.adopt_message(request_id=1, message_id="late receipt")
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.message_id == "m1"


async def test_a_failed_receipt_lifts_the_hold_at_once(repo: Repository) -> None:
    adapter = RecordingAdapter()
    deliverer = Deliverer(repo, {"fake": adapter})
    await a_task(repo, hold_until=utcnow() + timedelta(seconds=15))
    assert not await repo.adopt_message(request_id=1, message_id=None)
    await deliverer.tick()
    assert len(adapter.sent) == 1


# ------------------------------------------------- post-then-record gaps (client ids)
TIMED_OUT = DeliveryError("chat.postMessage: TimeoutError", maybe_sent=True)


async def restarted_after_the_hold(repo: Repository, adapter: RecordingAdapter) -> Deliverer:
    """A new bot process once the crashed one's hold on its post has passed."""
    with time_machine.travel(utcnow() + TAKEOVER_GRACE + timedelta(seconds=1), tick=True):
        deliverer = Deliverer(repo, {"fake": adapter})
        await deliverer.tick()
        await deliverer.tick()
    return deliverer


async def test_a_crash_after_the_first_post_went_out_before_its_id_was_recorded_posts_nothing_twice(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter(after_next_send=[Crash()])
    task_id = await a_task(repo)
    with pytest.raises(Crash):
        await Deliverer(repo, {"fake": adapter}).tick()
    assert len(adapter.sent) == 1, "the message is in the chat; the bot died before knowing"
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    await repo.complete(task_id=task_id, worker_id="w", result="Subject: Delay\n\nHi Dana")
    await restarted_after_the_hold(repo, adapter)
    assert len(adapter.sent) == 1, "found by its client id, not posted again"
    assert [m for m, _ in adapter.edits] == ["m1"] and "Hi Dana" in adapter.edits[-1][1].text
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.done and delivery.message_id == "m1"
    assert delivery.posting is None


async def test_a_crash_after_a_follow_up_part_went_out_does_not_post_that_part_twice(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter(max_text=300)
    task_id = await a_task(repo)
    await repo.claim(worker_id="w", limit=1, lease_seconds=30)
    words = " ".join(f"word{i}" for i in range(200))
    await repo.complete(task_id=task_id, worker_id="w", result=words)
    adapter.after_next_send = [Crash()]
    with pytest.raises(Crash):
        await Deliverer(repo, {"fake": adapter}).tick()  # the first message
    adapter.after_next_send = [Crash()]
    with pytest.raises(Crash):  # restarted: finds the message, then dies on part 1
        await restarted_after_the_hold(repo, adapter)
    assert len(adapter.sent) == 2
    with time_machine.travel(utcnow() + TAKEOVER_GRACE, tick=True):
        await restarted_after_the_hold(repo, adapter)
    shown = [v.text for _, v in adapter.sent]
    assert len(shown) == len(set(shown)), "no message or part twice"
    joined = " ".join(shown)
    assert all(f"word{i}" in joined for i in range(200))
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.done and delivery.parts_sent == len(shown) - 1


async def test_a_post_that_timed_out_after_taking_effect_is_found_not_repeated(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter(after_next_send=[TIMED_OUT])
    deliverer = Deliverer(repo, {"fake": adapter})
    await a_task(repo)
    await deliverer.tick()
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.message_id is None and delivery.posting
    with time_machine.travel(utcnow() + timedelta(seconds=3), tick=True):
        await deliverer.tick()
    assert len(adapter.sent) == 1
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.message_id == "m1" and delivery.posting is None


async def test_where_the_platform_cannot_tell_an_interrupted_post_is_posted_again_not_lost(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = RecordingAdapter(searchable=False, after_next_send=[Crash()])
    await a_task(repo)
    with pytest.raises(Crash):
        await Deliverer(repo, {"fake": adapter}).tick()
    await restarted_after_the_hold(repo, adapter)
    assert len(adapter.sent) == 2, "at least once: the one window a duplicate is possible"
    assert "cannot tell whether the interrupted post went out" in caplog.text
    delivery = await repo.delivery_for(1)
    assert delivery is not None and delivery.message_id == "m2"


async def test_another_process_leaves_a_post_in_flight_alone_until_its_hold_passes(
    repo: Repository,
) -> None:
    adapter = RecordingAdapter(after_next_send=[Crash()])
    await a_task(repo)
    with pytest.raises(Crash):
        await Deliverer(repo, {"fake": adapter}).tick()
    adapter.searchable = False  # even a platform that cannot tell is not posted to twice
    await Deliverer(repo, {"fake": adapter}).tick()  # a standby taking over at once
    assert len(adapter.sent) == 1

"""Posting a message once, across failures and crashes: the pieces every post shares.

A post (a request's message, a follow-up part of a long result, a reminder, a digest) goes
through these states, each written to the database before the next step:

1. **intent** — a client-side id and the time are recorded (committed) *before* the call,
   with a hold (``TAKEOVER_GRACE``) that keeps other schedulers off it while it is in flight.
2. **call** — the platform is asked to post, carrying the client id where the platform
   keeps one (Slack: message ``metadata``).
3. **recorded** — the message id is stored and the intent cleared.

Outcomes of the call:

- the platform *refused* it (an error answer: ``DeliveryError.maybe_sent`` False): it did
  not go out; it is retried with backoff, a bounded number of times;
- it *may* have gone out (a timeout or dropped connection, ``maybe_sent`` True), or the bot
  died before step 3: the post is **in doubt**. Before anything is posted again the platform
  is asked (``ChatAdapter.find_sent``) for a message with the client id: found → its id is
  recorded and nothing is posted; not found → it never went out and is posted again.
  A platform that cannot list what the bot posted (Telegram) cannot tell: then the post is
  sent again (at least once: a reminder or a result is never silently dropped), with a
  warning, and a duplicate is possible only for a post whose call was interrupted after the
  platform applied it — the window between the platform's answer and our commit of step 3.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from bot.adapters.base import ChatAdapter, DeliveryError
from bot.types import Target

log = logging.getLogger(__name__)

#: How long an intent holds a post against other schedulers: longer than any platform call
#: takes (slack_sdk's timeout is 30 s), so a post still in flight in a previous leader is
#: not reconciled (and perhaps posted again) before that call ended.
TAKEOVER_GRACE = timedelta(seconds=60)
#: Clock skew allowed between this machine and the platform when searching for a post.
LOOKUP_SKEW = timedelta(minutes=2)
#: Cap of the exponential backoff between attempts.
MAX_BACKOFF_SECONDS = 900.0


def new_client_id() -> str:
    """A fresh client-side id for one post (32 hex characters)."""
    return uuid.uuid4().hex


def backoff_seconds(attempts: int, exc: DeliveryError) -> float:
    """The wait before the next attempt: the platform's ``Retry-After``, else exponential."""
    if exc.retry_after is not None:
        return exc.retry_after
    return min(2.0 ** max(attempts, 1), MAX_BACKOFF_SECONDS)


async def find_earlier_post(
    adapter: ChatAdapter, target: Target, client_id: str, *, since: datetime, what: str
) -> str | None:
    """The message id of an in-doubt post if the platform has it; None to post it again.

    Raises DeliveryError when the platform cannot be asked now (try again later).
    """
    lookup = await adapter.find_sent(target, client_id, since=since - LOOKUP_SKEW)
    if lookup.message_id is not None:
        log.info(
            "%s: the interrupted post had gone out (%s); not posting it again",
            what,
            lookup.message_id,
        )
        return lookup.message_id
    if not lookup.searchable:
        log.warning(
            "%s: %s cannot tell whether the interrupted post went out; posting it again",
            what,
            adapter.platform,
        )
    return None

"""Reminders and digests sent exactly once where the platform allows it, at least once always.

A firing (reminder) or a window (digest) is claimed together with its :class:`Notice` row
in one transaction (see :meth:`Repository.advance_reminder`), so a claimed message is never
lost. This module sends notices through the post state machine of :mod:`bot.posting`:
``pending → sending → sent``; a refused send goes back to ``pending`` with backoff and is
given up (``failed``, logged at ERROR) after ``MAX_NOTICE_ATTEMPTS``; a send interrupted
after the call may have taken effect stays ``sending`` and is reconciled (``find_sent``)
before anything is posted again. A long text is sent as parts of at most the platform's
``max_text``, each with its own client id and recorded as it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.adapters.base import ChatAdapter, DeliveryError
from bot.posting import TAKEOVER_GRACE, backoff_seconds, find_earlier_post, new_client_id
from bot.render import split_text
from bot.types import Target
from storage.repository import Repository
from storage.tables import Notice, NoticeStatus, utcnow

log = logging.getLogger(__name__)

#: Attempts before a notice is given up (backoff 2 s … 15 min: about 45 minutes in all).
MAX_NOTICE_ATTEMPTS = 12


def new_notice(key: str, target: Target, text: str, *, now: datetime) -> Notice:
    """A notice for ``target``, already claimed for its first attempt by the caller."""
    return Notice(
        key=key,
        client_id=new_client_id(),
        platform=target.platform,
        tenant=target.tenant,
        channel=target.channel,
        thread=target.thread,
        text=text,
        status=NoticeStatus.sending,
        attempts=1,
        sending_since=now,
        next_attempt_at=now + TAKEOVER_GRACE,
        created_at=now,
        updated_at=now,
    )


def _target(notice: Notice) -> Target:
    return Target(
        platform=notice.platform,
        tenant=notice.tenant,
        channel=notice.channel,
        thread=notice.thread,
    )


def part_client_id(notice: Notice, part: int) -> str:
    """The client id of one part of a notice's text."""
    return f"{notice.client_id}.{part}"


class Notifier:
    """Sends notices and retries the due ones (one per scheduler process)."""

    def __init__(self, repo: Repository, adapters: Mapping[str, ChatAdapter]) -> None:
        self.repo = repo
        self.adapters = adapters
        #: Notices whose send this process is making now (never reconciled under it).
        self._in_flight: set[int] = set()
        #: Notices whose last call in this process ended in doubt (reconcile before posting).
        self._doubtful: set[int] = set()

    async def send_claimed(self, notice: Notice) -> bool:
        """Send a notice its creator claimed (``sending``, first attempt); True when it went out."""
        return await self._attempt(notice, in_doubt=False)

    async def retry_due(self, *, now: datetime | None = None) -> int:
        """Retry every due notice; returns how many went out."""
        now = now or utcnow()
        sent = 0
        for notice in await self.repo.due_notices(now=now):
            nid = notice.id or 0
            if nid in self._in_flight or notice.platform not in self.adapters:
                continue
            # ``sending`` here means: its sender died, or its last call ended in doubt.
            in_doubt = notice.status == NoticeStatus.sending
            if not await self.repo.claim_notice(notice, now=now, hold_until=now + TAKEOVER_GRACE):
                continue  # another scheduler took it
            if await self._attempt(notice, in_doubt=in_doubt):
                sent += 1
        return sent

    async def _attempt(self, notice: Notice, *, in_doubt: bool) -> bool:
        nid = notice.id or 0
        adapter = self.adapters.get(notice.platform)
        if adapter is None:
            return False
        target = _target(notice)
        parts = split_text(notice.text, adapter.max_text)
        self._in_flight.add(nid)
        try:
            since = notice.sending_since or notice.created_at
            if in_doubt or nid in self._doubtful:
                self._doubtful.discard(nid)
                found = await find_earlier_post(
                    adapter,
                    target,
                    part_client_id(notice, notice.parts_sent),
                    since=since,
                    what=f"notice {notice.key}",
                )
                if found is not None:
                    notice.message_id = found
                    notice.parts_sent += 1
            while notice.parts_sent < len(parts):
                notice.sending_since = utcnow()
                notice.next_attempt_at = notice.sending_since + TAKEOVER_GRACE
                await self.repo.save_notice(notice)  # the intent of this part, before the call
                await adapter.notify(
                    target,
                    parts[notice.parts_sent],
                    client_id=part_client_id(notice, notice.parts_sent),
                )
                notice.parts_sent += 1
            notice.status = NoticeStatus.sent
            notice.sent_at = utcnow()
            notice.next_attempt_at = None
            notice.error = None
            await self.repo.save_notice(notice)
            return True
        except DeliveryError as exc:
            await self._failed(notice, exc)
            return False
        finally:
            self._in_flight.discard(nid)

    async def _failed(self, notice: Notice, exc: DeliveryError) -> None:
        now = utcnow()
        notice.error = exc.reason
        if not exc.retryable or notice.attempts >= MAX_NOTICE_ATTEMPTS:
            log.error(
                "giving up %s to %s/%s after %d attempts: %s",
                notice.key,
                notice.platform,
                notice.channel,
                notice.attempts,
                exc.reason,
            )
            notice.status = NoticeStatus.failed
            notice.next_attempt_at = None
        else:
            wait = backoff_seconds(notice.attempts, exc)
            if exc.maybe_sent:
                # It may have gone out: stay ``sending`` and look for it before posting again.
                self._doubtful.add(notice.id or 0)
            else:
                notice.status = NoticeStatus.pending
            notice.next_attempt_at = now + timedelta(seconds=wait)
            log.warning(
                "could not send %s to %s/%s (%s); retrying in %.0fs",
                notice.key,
                notice.platform,
                notice.channel,
                exc.reason,
                wait,
            )
        await self.repo.save_notice(notice)

"""Where each request's progress and results are shown in the chat."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.repo.base import (
    RepoBase,
    new_delivery,
)
from storage.tables import (
    Delivery,
    Request,
    utcnow,
)


class Deliveries(RepoBase):
    """Where each request's progress and results are shown in the chat."""

    async def delivery_for(self, request_id: int) -> Delivery | None:
        """The delivery record of a request, if one exists."""
        async with self._sessions() as session:
            rows = await session.execute(select(Delivery).where(Delivery.request_id == request_id))
            return rows.scalars().first()

    async def ensure_delivery(self, *, request: Request) -> Delivery:
        """The delivery record of a request, created on first use."""
        found = await self.delivery_for(request.id or 0)
        if found is not None:
            return found
        async with self._sessions() as session:
            row = new_delivery(request)
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                again = await self.delivery_for(request.id or 0)
                assert again is not None
                return again
            return row

    async def adopt_message(self, *, request_id: int, message_id: str | None) -> bool:
        """Make an already posted message the one the delivery job edits, and lift its hold.

        ``message_id`` None (the post failed) only lifts the hold, so the delivery job posts
        its own message at once. False when the delivery job had already posted one.
        """
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery).where(Delivery.request_id == request_id).with_for_update()
            )
            delivery = rows.scalars().first()
            if delivery is None or delivery.message_id is not None or delivery.posting is not None:
                return False  # the delivery job posted (or may be posting) its own message
            now = utcnow()
            delivery.next_attempt_at = None
            delivery.updated_at = now
            if message_id is not None:
                delivery.message_id = message_id
                delivery.last_edit_at = now
            await session.commit()
            return message_id is not None

    async def save_delivery(self, delivery: Delivery) -> None:
        """Persist changes to a delivery record."""
        delivery.updated_at = utcnow()
        async with self._sessions() as session:
            session.add(delivery)
            await session.commit()

    async def pending_deliveries(
        self, *, platforms: Sequence[str], limit: int = 200
    ) -> list[Delivery]:
        """Deliveries not yet done, for adapters that are running."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery)
                .where(
                    Delivery.done.is_(False),  # type: ignore[attr-defined]
                    Delivery.platform.in_(list(platforms)),  # type: ignore[attr-defined]
                )
                .order_by(Delivery.id)
                .limit(limit)
            )
            return list(rows.scalars().all())

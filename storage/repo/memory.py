"""Chat memory: kept messages for summaries, per-chat opt-outs, forgetting and purging."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from storage.repo.base import (
    RepoBase,
    per_chat,
)
from storage.tables import (
    ChatMessage,
    ChatSetting,
    utcnow,
)


class ChatMemory(RepoBase):
    """Chat memory: kept messages for summaries, per-chat opt-outs, forgetting and purging."""

    async def _chat_flag(self, platform: str, tenant: str, channel: str, flag: str) -> bool:
        async with self._sessions() as session:
            row = await per_chat(session, ChatSetting, platform, tenant, channel)
            return bool(row and getattr(row, flag))

    async def _set_chat_flag(
        self, platform: str, tenant: str, channel: str, flag: str, value: bool
    ) -> None:
        async with self._sessions() as session:
            row = await per_chat(session, ChatSetting, platform, tenant, channel)
            if row is None:
                row = ChatSetting(platform=platform, tenant=tenant, channel=channel)
            setattr(row, flag, value)
            row.updated_at = utcnow()
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                # The chat's first setting was stored by a concurrent command: update that one.
                await session.rollback()
                await self._set_chat_flag(platform, tenant, channel, flag, value)

    async def memory_opted_out(self, *, platform: str, tenant: str, channel: str) -> bool:
        """Whether a chat asked atombot not to keep its messages."""
        return await self._chat_flag(platform, tenant, channel, "memory_opt_out")

    async def set_memory_opt_out(
        self, *, platform: str, tenant: str, channel: str, opt_out: bool
    ) -> None:
        """Switch chat memory off (and forget what was kept) or back on."""
        await self._set_chat_flag(platform, tenant, channel, "memory_opt_out", opt_out)
        if opt_out:
            await self.forget_chat(platform=platform, tenant=tenant, channel=channel)

    async def training_opted_out(self, *, platform: str, tenant: str, channel: str) -> bool:
        """Whether a chat switched training exports off (its own switch; exports also leave
        out chats whose memory is off, see :mod:`storage.repo.exports`)."""
        return await self._chat_flag(platform, tenant, channel, "training_opt_out")

    async def set_training_opt_out(
        self, *, platform: str, tenant: str, channel: str, opt_out: bool
    ) -> None:
        """Keep a chat's requests and results out of training exports, or let them back in."""
        await self._set_chat_flag(platform, tenant, channel, "training_opt_out", opt_out)

    async def remember_message(self, message: ChatMessage) -> bool:
        """Keep a chat message for later summaries, unless the chat opted out or it is known."""
        if await self.memory_opted_out(
            platform=message.platform, tenant=message.tenant, channel=message.channel
        ):
            return False
        async with self._sessions() as session:
            session.add(message)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
            return True

    async def chat_messages(
        self,
        *,
        platform: str,
        tenant: str,
        channel: str,
        since: datetime | None = None,
        until: datetime | None = None,
        thread: str | None = None,
        limit: int = 1000,
    ) -> list[ChatMessage]:
        """Remembered messages of a chat (optionally of one thread / in ``[since, until)``),
        the latest ``limit`` of them, oldest first."""
        query = select(ChatMessage).where(
            ChatMessage.platform == platform,
            ChatMessage.tenant == tenant,
            ChatMessage.channel == channel,
        )
        if since is not None:
            query = query.where(ChatMessage.sent_at >= since)  # type: ignore[operator]
        if until is not None:
            query = query.where(ChatMessage.sent_at < until)  # type: ignore[operator]
        if thread is not None:
            query = query.where(or_(ChatMessage.thread == thread, ChatMessage.message_id == thread))
        async with self._sessions() as session:
            rows = await session.execute(
                query.order_by(ChatMessage.sent_at.desc(), ChatMessage.id.desc()).limit(limit)  # type: ignore[attr-defined, union-attr]
            )
            return list(reversed(rows.scalars().all()))

    async def forget_chat(self, *, platform: str, tenant: str, channel: str) -> int:
        """Delete every remembered message of a chat; returns how many."""
        from sqlalchemy import delete

        async with self._sessions() as session:
            result = await session.execute(
                delete(ChatMessage).where(
                    ChatMessage.platform == platform,  # type: ignore[arg-type]
                    ChatMessage.tenant == tenant,  # type: ignore[arg-type]
                    ChatMessage.channel == channel,  # type: ignore[arg-type]
                )
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def purge_chat_memory(self, *, older_than: datetime) -> int:
        """Apply the retention period: delete remembered messages older than ``older_than``."""
        from sqlalchemy import delete

        async with self._sessions() as session:
            result = await session.execute(
                delete(ChatMessage).where(ChatMessage.sent_at < older_than)  # type: ignore[arg-type, operator]
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

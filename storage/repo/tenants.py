"""Forgetting a whole tenant (a Slack workspace that uninstalled atombot, with purging on):
every chat of it at once, found and deleted as :mod:`storage.repo.retention` forgets a chat."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.repo.retention import KEPT_TABLES, Removal, Retention, _Plan, _single_pk
from storage.tables import AuditEntry

_TENANT_COLUMNS = ("platform", "tenant")


class TenantRemoval(Retention):
    """Deleting everything one tenant left behind."""

    async def forget_tenant_data(
        self,
        *,
        platform: str,
        tenant: str,
        actor: str | None = None,
        action: str = "forget.tenant",
        detail: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Removal:
        """Delete every row of ``(platform, tenant)`` in every chat — requests with their
        tasks, results, votes, corrections, reminders, notices, kept messages, deliveries,
        actions, digest subscriptions and chat settings — in one transaction.

        With ``actor`` the deletion is recorded in the audit log (``action``, ``detail`` plus
        the counts) in the same transaction; the audit log itself is kept. ``dry_run``
        deletes nothing and says what would go.
        """
        async with self._sessions() as session:
            plan = _Plan(session)
            for table in plan.tables:
                pk = _single_pk(table)
                if table.name in KEPT_TABLES or pk is None:
                    continue
                if not all(name in table.c for name in _TENANT_COLUMNS):
                    continue
                await plan.add(
                    table,
                    select(pk).where(table.c.platform == platform, table.c.tenant == tenant),
                )
            audit = (
                AuditEntry(
                    actor=actor,
                    action=action,
                    platform=platform,
                    tenant=tenant,
                    subject=tenant_subject(platform, tenant),
                    detail=dict(detail or {}),
                )
                if actor is not None
                else None
            )
            return await self._finish(plan, dry_run=dry_run, audit=audit)


def tenant_subject(platform: str, tenant: str) -> str:
    """How the audit log names a tenant: ``tenant:<platform>/<tenant>``."""
    return f"tenant:{platform}/{tenant}"

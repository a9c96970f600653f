"""Every query atombot runs, behind one facade. Callers pass keyword arguments; each method is one
transaction. The queries live in :mod:`storage.repo`, one module per aggregate."""

from __future__ import annotations

from storage.repo.actions import ActionRuns
from storage.repo.audit import AuditLog
from storage.repo.base import ACTIVE_STATUSES, CreatedRequest, RepoBase, Tally
from storage.repo.corrections import Corrections
from storage.repo.deliveries import Deliveries
from storage.repo.exports import Exports
from storage.repo.feedback import FeedbackVotes
from storage.repo.leadership import Leadership
from storage.repo.memory import ChatMemory
from storage.repo.queue import TaskQueue
from storage.repo.requests import Requests
from storage.repo.retention import Removal, Retention
from storage.repo.schedules import Schedules
from storage.repo.stats import TaskStats
from storage.repo.tasks import TaskReads
from storage.repo.tenants import TenantRemoval

__all__ = ["ACTIVE_STATUSES", "CreatedRequest", "Removal", "RepoBase", "Repository", "Tally"]


class Repository(
    Requests,
    TaskReads,
    TaskQueue,
    FeedbackVotes,
    Deliveries,
    Schedules,
    ChatMemory,
    Corrections,
    Exports,
    Leadership,
    TaskStats,
    AuditLog,
    TenantRemoval,
    Retention,
    ActionRuns,
):
    """The one place that builds queries. Safe to share between coroutines."""

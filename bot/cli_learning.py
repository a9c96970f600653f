"""``atombot corrections`` and the classifier-version commands of ``atombot intents``.

- ``atombot corrections [--json] [--tenant PLATFORM:TENANT] [--pending]``: list corrections
- ``atombot corrections drop ID`` / ``atombot corrections approve ID``
- ``atombot intents versions [--tenant PLATFORM:TENANT] [--json]``
- ``atombot intents rollback VERSION [--tenant PLATFORM:TENANT]``
- ``atombot intents retrain [--tenant PLATFORM:TENANT] [--json]``

Bad input (an unknown id or version, a malformed tenant) prints why and exits 2, changing
nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from bot.cli_audit import cli_actor, record_sync
from bot.config import Settings
from bot.learning import scope_of, scopes_on_disk, split_scope, store_of
from bot.texts import t
from storage.tables import Correction, CorrectionStatus

TENANT_HELP = "only this tenant, as PLATFORM:TENANT (e.g. slack:T0123 or telegram:-1001234)"
#: Characters of a correction's text shown in the listing.
TEXT_CHARS = 60
BAD_INPUT = 2


def _fail(key: str, **values: Any) -> int:
    print(t(key, "en", **values), file=sys.stderr)
    return BAD_INPUT


def _tenant(args: argparse.Namespace) -> tuple[str, str] | None:
    """``(platform, tenant)`` of ``--tenant``; raises ValueError when malformed."""
    value: str | None = getattr(args, "tenant", None)
    return split_scope(value) if value else None


def _short(text: str, limit: int = TEXT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def correction_dict(row: Correction) -> dict[str, Any]:
    """One correction as ``atombot corrections --json`` prints it."""
    return {
        "id": row.id,
        "created_at": row.created_at.isoformat(),
        "tenant": scope_of(row.platform, row.tenant),
        "channel": row.channel,
        "user": row.user,
        "wrong_kind": row.wrong_kind,
        "right_kind": row.right_kind,
        "status": row.status,
        "task_id": row.task_id,
        "text": row.text,
    }


# -- atombot corrections --------------------------------------------------------------------


async def list_corrections(args: argparse.Namespace, settings: Settings) -> int:
    """Print the corrections (all, one tenant's, or the pending ones), oldest first."""
    from storage.builder import open_repository

    try:
        tenant = _tenant(args)
    except ValueError:
        return _fail("learning.bad_tenant", value=args.tenant)
    repo = await open_repository(settings.resolved_database_url())
    try:
        rows = await repo.corrections(
            platform=tenant[0] if tenant else None,
            tenant=tenant[1] if tenant else None,
            status=CorrectionStatus.pending if args.pending else None,
        )
    finally:
        await repo.dispose()
    if args.json:
        print(json.dumps([correction_dict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(t("learning.no_corrections", "en"))
        return 0
    for row in rows:
        pending = " (pending)" if row.status == CorrectionStatus.pending else ""
        print(
            f"#{row.id}\t{row.created_at:%Y-%m-%d %H:%M}\t{scope_of(row.platform, row.tenant)}"
            f"\t{row.user}\t{row.wrong_kind or '?'} → {row.right_kind}{pending}"
            f"\t{_short(row.text)}"
        )
    return 0


async def drop_correction(args: argparse.Namespace, settings: Settings) -> int:
    """Delete one correction: running bots stop applying it within the reload interval."""
    from storage.builder import open_repository

    repo = await open_repository(settings.resolved_database_url())
    try:
        row = await repo.get_correction(args.id)
        if row is None or not await repo.drop_correction(args.id):
            return _fail("learning.unknown_correction", id=args.id)
        await repo.audit(
            actor=cli_actor(),
            action="admin.correction.dropped",
            platform=row.platform,
            tenant=row.tenant,
            subject=f"correction:{args.id}",
            detail={"right_kind": row.right_kind, "status": row.status},
        )
    finally:
        await repo.dispose()
    print(t("learning.dropped", "en", id=args.id, tenant=scope_of(row.platform, row.tenant)))
    return 0


async def approve_correction(args: argparse.Namespace, settings: Settings) -> int:
    """Make a pending correction active (``ATOMBOT_CORRECTIONS=review``)."""
    from storage.builder import open_repository

    repo = await open_repository(settings.resolved_database_url())
    try:
        row = await repo.get_correction(args.id)
        if row is None:
            return _fail("learning.unknown_correction", id=args.id)
        if not await repo.approve_correction(args.id):
            return _fail("learning.not_pending", id=args.id)
        await repo.audit(
            actor=cli_actor(),
            action="admin.correction.approved",
            platform=row.platform,
            tenant=row.tenant,
            subject=f"correction:{args.id}",
            detail={"right_kind": row.right_kind},
        )
    finally:
        await repo.dispose()
    print(t("learning.approved", "en", id=args.id))
    return 0


# -- atombot intents versions / rollback / retrain -------------------------------------------


def _scopes(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The scope of ``--tenant``, else every scope with versions (ValueError: malformed)."""
    tenant = _tenant(args)
    return [scope_of(*tenant)] if tenant else scopes_on_disk(settings.data_dir)


def list_versions(args: argparse.Namespace, settings: Settings) -> int:
    """Print each tenant's classifier versions, the one in use, and their figures."""
    try:
        scopes = _scopes(args, settings)
    except ValueError:
        return _fail("learning.bad_tenant", value=args.tenant)
    listing: list[dict[str, Any]] = []
    for scope in scopes:
        store = store_of(settings.data_dir, scope)
        versions = store.versions()
        listing.append(
            {
                "tenant": scope,
                "current": store.current(),
                "versions": [v.as_dict() for v in versions],
            }
        )
    if args.json:
        print(json.dumps(listing, ensure_ascii=False, indent=2))
        return 0
    if not any(entry["versions"] for entry in listing):
        print(t("learning.no_versions", "en"))
        return 0
    for entry in listing:
        print(t("learning.versions.tenant", "en", tenant=entry["tenant"]))
        if not entry["versions"]:
            print("  " + t("learning.versions.base", "en"))
        for v in entry["versions"]:
            mark = "*" if v["version"] == entry["current"] else " "
            print(f"{mark} {v['version']}\t{v['created_at'][:16]}\t{_state(v)}\t{_figures(v)}")
    return 0


def _state(version: dict[str, Any]) -> str:
    return t("learning.versions.promoted" if version["promoted"] else "learning.versions.kept")


def _figures(version: dict[str, Any]) -> str:
    figures = version["figures"]
    if "candidate_accuracy" not in figures:
        return ""
    return t(
        "learning.figures",
        "en",
        candidate=f"{100 * figures['candidate_accuracy']:.1f}",
        current=f"{100 * figures.get('current_accuracy', 0):.1f}",
        heldout=int(figures.get("heldout_size", 0)),
        corrections=version["corrections"],
        new=int(figures.get("corrections_new", 0)),
    )


def rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Put a tenant back on an earlier version (any saved one); running bots follow."""
    from models.intents.versions import UnknownVersion

    try:
        scopes = _scopes(args, settings)
    except ValueError:
        return _fail("learning.bad_tenant", value=args.tenant)
    if len(scopes) != 1:
        if not scopes:
            return _fail("learning.no_versions")
        return _fail("learning.need_tenant", tenants=", ".join(scopes))
    scope = scopes[0]
    store = store_of(settings.data_dir, scope)
    previous = store.current()
    try:
        store.rollback(args.version)
    except UnknownVersion:
        known = ", ".join(v.version for v in store.versions()) or "-"
        return _fail("learning.unknown_version", tenant=scope, version=args.version, known=known)
    platform, tenant = split_scope(scope)
    record_sync(
        settings,
        action="classifier.rollback",
        platform=platform,
        tenant=tenant,
        subject=f"classifier:{scope}",
        detail={"version": store.current(), "previous": previous},
    )
    print(
        t(
            "learning.rolled_back",
            "en",
            tenant=scope,
            version=store.current(),
            seconds=f"{settings.reload_seconds:g}",
        )
    )
    return 0


async def retrain_now(args: argparse.Namespace, settings: Settings) -> int:
    """Run the retraining job now and print each tenant's figures and verdict."""
    from bot.retrain import RetrainBusy, Retrainer
    from storage.builder import open_repository

    try:
        tenant = _tenant(args)
    except ValueError:
        return _fail("learning.bad_tenant", value=args.tenant)
    repo = await open_repository(settings.resolved_database_url())
    try:
        job = Retrainer(
            repo=repo,
            data_dir=settings.data_dir,
            intents=settings.intents,
            encoder=settings.encoder,
            accepted=settings.learn_accepted,
            accept_after=timedelta(hours=settings.accept_after_hours),
            accepted_max=settings.accepted_max,
        )
        job.actor = cli_actor()
        try:
            result = await job.run(
                scopes=[scope_of(*tenant)] if tenant else None, force=tenant is not None
            )
        except RetrainBusy:
            return _fail("learning.busy")
    finally:
        await repo.dispose()
    if args.json:
        print(json.dumps([s.as_dict() for s in result.scopes], ensure_ascii=False, indent=2))
        return 0
    if not result.scopes:
        print(t("learning.retrain.nothing", "en"))
    for s in result.scopes:
        verdict = t("learning.retrain.promoted" if s.promoted else "learning.retrain.kept", "en")
        figures = {"figures": s.figures, "corrections": int(s.figures.get("corrections_used", 0))}
        print(
            t(
                "learning.retrain.result",
                "en",
                tenant=s.scope,
                version=s.version,
                verdict=verdict,
                previous=s.previous or "base",
                seconds=f"{s.figures.get('train_seconds', 0):.1f}",
            )
        )
        print("  " + _figures(figures))
    return 0


# -- registration ----------------------------------------------------------------------------


def register_corrections(subparsers: Any) -> None:
    """Add ``corrections [--json] [--tenant] [--pending]``, ``drop ID`` and ``approve ID``."""
    help_text = "list people's corrections of misread requests (training examples)"
    corrections = subparsers.add_parser("corrections", help=help_text, description=help_text)
    corrections.add_argument("--json", action="store_true", help="print JSON")
    corrections.add_argument("--tenant", help=TENANT_HELP)
    corrections.add_argument(
        "--pending", action="store_true", help="only the ones waiting for review"
    )
    corrections.set_defaults(func=list_corrections, is_async=True)
    sub = corrections.add_subparsers(dest="corrections_command")
    drop = sub.add_parser("drop", help="delete a correction: it stops applying at once")
    drop.add_argument("id", type=int, metavar="ID")
    drop.set_defaults(func=drop_correction, is_async=True)
    approve = sub.add_parser("approve", help="approve a pending correction (review mode)")
    approve.add_argument("id", type=int, metavar="ID")
    approve.set_defaults(func=approve_correction, is_async=True)


def register_versions(intents_sub: Any) -> None:
    """Add ``versions``, ``rollback`` and ``retrain`` to ``atombot intents``."""
    versions = intents_sub.add_parser(
        "versions", help="list each tenant's classifier versions and their figures"
    )
    versions.add_argument("--tenant", help=TENANT_HELP)
    versions.add_argument("--json", action="store_true", help="print JSON")
    versions.set_defaults(func=list_versions, is_async=False)

    back = intents_sub.add_parser(
        "rollback", help="put a tenant back on an earlier classifier version"
    )
    back.add_argument("version", metavar="VERSION", help="a version from `intents versions`")
    back.add_argument("--tenant", help=TENANT_HELP + "; needed when several tenants have versions")
    back.set_defaults(func=rollback, is_async=False)

    again = intents_sub.add_parser(
        "retrain",
        help="retrain now the tenants whose corrections changed (with --tenant: that one)",
    )
    again.add_argument("--tenant", help=TENANT_HELP)
    again.add_argument("--json", action="store_true", help="print JSON")
    again.set_defaults(func=retrain_now, is_async=True)

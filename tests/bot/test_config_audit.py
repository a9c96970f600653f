"""A start with changed settings is audited: which changed, never a secret."""

from __future__ import annotations

import json

from bot.config import Settings
from bot.config_audit import ACTION, audit_configuration
from storage.repository import Repository


async def test_the_first_start_records_the_settings_and_an_unchanged_start_records_nothing(
    repo: Repository, settings: Settings
) -> None:
    first = await audit_configuration(repo, settings, role="run")
    again = await audit_configuration(repo, settings, role="worker")

    assert "model" in first and "database_url" in first
    assert again == []
    [row] = await repo.audit_entries(action=ACTION)
    assert row.actor == "operator" and row.subject == "run"


async def test_a_changed_model_is_recorded_by_name_with_its_new_value(
    repo: Repository, settings: Settings
) -> None:
    await audit_configuration(repo, settings, role="run")
    changed = settings.model_copy(update={"model": "acme/team-model-v2"})

    assert await audit_configuration(repo, changed, role="run") == ["model"]
    rows = await repo.audit_entries(action=ACTION)
    assert rows[-1].detail["changed"] == ["model"]
    assert rows[-1].detail["settings"]["model"] == "acme/team-model-v2"


async def test_secrets_and_database_passwords_never_enter_the_row(repo: Repository) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://atom:hunter2-db@db.internal:5432/atom",
        slack_bot_token="xoxb-1-never-audited",
        openai_api_key="sk-never-audited-123456",
        smtp_password="smtp-never-audited",
    )
    await audit_configuration(repo, settings, role="run")
    rotated = settings.model_copy(update={"slack_bot_token": "xoxb-2-rotated-never-audited"})
    await audit_configuration(repo, rotated, role="run")

    rows = json.dumps([row.detail for row in await repo.audit_entries(action=ACTION)])
    for secret in ("xoxb-1", "xoxb-2", "sk-never", "smtp-never", "hunter2"):
        assert secret not in rows
    assert "db.internal" in rows and '"slack_bot_token": "(set)"' in rows

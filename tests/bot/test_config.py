"""Settings: every documented environment variable is read, defaults are embedded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_variables() -> set[str]:
    """The variable names in the first column of the README's configuration table."""
    table = README.read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)`(?: / `([A-Z][A-Z0-9_]+)`)?", table, re.M)
    return {name for row in rows for name in row if name}


def test_every_variable_in_the_readme_is_a_setting_and_back() -> None:
    aliases: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        aliases.update(choices if choices else [str(alias)])
    assert documented_variables() <= aliases | {"LOG_LEVEL"}
    assert {a for a in aliases if a != "LOG_LEVEL"} <= documented_variables()


def test_defaults_are_embedded_sqlite_and_the_console(no_env: None, tmp_path: Path) -> None:
    settings = Settings()
    assert settings.resolved_database_url() == "sqlite:///atombot-data/atombot.db"
    assert settings.generator == "hf" and settings.slack_bot_token is None


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("ATOMBOT_MAX_BATCH", "32")
    monkeypatch.setenv("SLACK_PRIVATE_RESULTS", "true")
    settings = Settings()
    assert settings.resolved_database_url() == "postgresql+psycopg://u@h/db"
    assert settings.max_batch == 32 and settings.slack_private_results

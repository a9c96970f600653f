"""The migrations build exactly the schema the models declare: after ``upgrade`` to head,
Alembic's autogenerate finds nothing to add, drop or change (tables, columns, types,
nullability, indexes), on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers the tables)
from storage.db import sync_url


def _differences(url: str) -> list[Any]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def test_the_migrated_database_matches_the_models(database_url: str) -> None:
    assert _differences(database_url) == []


def test_the_migrated_postgresql_database_matches_the_models(postgres_url: str) -> None:
    assert _differences(postgres_url) == []

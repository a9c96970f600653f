"""The database ping behind ``/readyz``: it asks the real file, whatever its path is."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from storage.builder import open_repository


@pytest.mark.parametrize("name", ["with space.db", "100%41.db", "what?.db", "hash#1.db", "中文.db"])
async def test_an_sqlite_file_answers_the_ping_whatever_its_name(tmp_path: Path, name: str) -> None:
    # Quoted for the database URL, which unquotes it: the file has the name as it is.
    repo = await open_repository(f"sqlite+aiosqlite:///{quote(str(tmp_path / name))}")
    try:
        await repo.ping_database(timeout=5)
    finally:
        await repo.dispose()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        name
    ]


async def test_a_missing_sqlite_file_fails_the_ping(tmp_path: Path) -> None:
    repo = await open_repository(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    (tmp_path / "db.sqlite").unlink()
    try:
        with pytest.raises(Exception, match="unable to open"):
            await repo.ping_database(timeout=5)
    finally:
        await repo.dispose()
    assert list(tmp_path.iterdir()) == []

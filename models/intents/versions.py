"""Versioned classifiers of one scope under the data directory, and the pointer to the one
in use.

Layout of a store (``data_dir / "classifiers" / <scope slug>``)::

    v0001/            a saved classifier (head.safetensors, classifier.json) + version.json
    v0002/
    CURRENT           the name of the version in use (replaced atomically)

Versions are immutable once written: ``save`` creates the next directory exclusively (two
processes saving at once get different numbers) and writes ``version.json`` last, so a
directory without it is an interrupted save and is not listed. ``promote`` and
``rollback`` only rewrite ``CURRENT`` (write a temporary file, then ``os.replace``), so
every process reading it sees the old or the new version, never a torn one, and a rolled
back version predicts exactly as it did (the same head files, the same encoder).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.intents.classifier import IntentClassifier
from models.intents.shared import shared_encoder

POINTER = "CURRENT"
INFO = "version.json"
_NAME = re.compile(r"^v?(\d{1,9})$")


class UnknownVersion(KeyError):
    """A version that the store does not hold (nothing was changed)."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.version = version

    def __str__(self) -> str:
        return f"unknown classifier version {self.version!r}"


@dataclass(frozen=True)
class VersionInfo:
    """One saved classifier: its name (``v0001``…), when it was saved, its retrain figures,
    how many corrections and training examples it learned from, the version it was trained
    to replace, and whether it was ever promoted."""

    version: str
    created_at: datetime
    figures: dict[str, float] = field(default_factory=dict)
    corrections: int = 0
    examples: int = 0
    parent: str | None = None
    promoted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``created_at`` in ISO 8601)."""
        return {
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "figures": dict(self.figures),
            "corrections": self.corrections,
            "examples": self.examples,
            "parent": self.parent,
            "promoted": self.promoted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionInfo:
        """The inverse of :meth:`as_dict`."""
        return cls(
            version=str(data["version"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            figures={str(k): float(v) for k, v in dict(data.get("figures", {})).items()},
            corrections=int(data.get("corrections", 0)),
            examples=int(data.get("examples", 0)),
            parent=data.get("parent"),
            promoted=bool(data.get("promoted", False)),
        )


def scope_slug(scope: str) -> str:
    """A directory name for a scope (``"slack:T123"`` → ``"slack_T123-1b2c3d"``): readable,
    and distinct for distinct scopes (the hash tells apart scopes the cleaning merges)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", scope).strip("._")[:60] or "scope"
    return f"{clean}-{hashlib.sha256(scope.encode()).hexdigest()[:6]}"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class VersionStore:
    """The classifier versions of one scope, in ``root`` (created on first save).

    ``onnx_cache`` is where the shared encoder's ONNX export goes when this store is the
    first to load it (default: ``root.parent / "onnx"``, shared by all scopes).
    """

    def __init__(self, root: Path, *, onnx_cache: Path | None = None) -> None:
        self.root = Path(root)
        self.onnx_cache = onnx_cache if onnx_cache is not None else self.root.parent / "onnx"

    @classmethod
    def for_scope(cls, data_dir: Path, scope: str) -> VersionStore:
        """The store of ``scope`` under ``data_dir / "classifiers"``."""
        return cls(Path(data_dir) / "classifiers" / scope_slug(scope))

    # -- reading ---------------------------------------------------------------------------

    def _resolve(self, version: str) -> str:
        match = _NAME.match(version.strip())
        if match is None:
            raise UnknownVersion(version)
        name = f"v{int(match.group(1)):04d}"
        if not (self.root / name / INFO).is_file():
            raise UnknownVersion(version)
        return name

    def info(self, version: str) -> VersionInfo:
        """The saved info of ``version`` (``v0003``, ``v3`` or ``3``)."""
        name = self._resolve(version)
        data = json.loads((self.root / name / INFO).read_text(encoding="utf-8"))
        return VersionInfo.from_dict(data)

    def versions(self) -> list[VersionInfo]:
        """Every complete version, oldest first."""
        if not self.root.is_dir():
            return []
        names = sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _NAME.match(p.name) and (p / INFO).is_file()
        )
        return [self.info(name) for name in names]

    def current(self) -> str | None:
        """The version in use (None before the first promotion)."""
        try:
            name = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def stamp(self) -> str | None:
        """A value that changes whenever the version in use changes (cheap enough to poll
        every few seconds: one read of a tiny file)."""
        return self.current()

    def load(self, version: str | None = None, *, encoder: str | None = None) -> IntentClassifier:
        """The classifier of ``version`` (None: the current one), on the process's shared
        encoder of ``encoder`` (loaded once per process, whatever the versions and scopes).

        Raises :class:`UnknownVersion` when there is no such version (or no current one).
        """
        name = self._resolve(version) if version is not None else self.current()
        if name is None:
            raise UnknownVersion("current")
        shared = shared_encoder(encoder, cache_dir=self.onnx_cache)
        return IntentClassifier.load(self.root / self._resolve(name), encoder_instance=shared)

    # -- writing ---------------------------------------------------------------------------

    def save(
        self,
        classifier: IntentClassifier,
        *,
        figures: dict[str, float] | None = None,
        corrections: int = 0,
        examples: int | None = None,
        parent: str | None = None,
    ) -> VersionInfo:
        """Write ``classifier`` as the next version (not promoted) and return its info."""
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [
            int(m.group(1)) for p in self.root.iterdir() if (m := _NAME.match(p.name)) is not None
        ]
        number = max(numbers, default=0) + 1
        while True:
            directory = self.root / f"v{number:04d}"
            try:
                directory.mkdir()
                break
            except FileExistsError:
                number += 1
        try:
            classifier.save(directory)
            info = VersionInfo(
                version=directory.name,
                created_at=datetime.now(UTC),
                figures=dict(figures or {}),
                corrections=corrections,
                examples=classifier.info.examples if examples is None else examples,
                parent=parent,
            )
            _atomic_write(directory / INFO, json.dumps(info.as_dict(), indent=2))
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return info

    def promote(self, version: str) -> None:
        """Make ``version`` the one in use (atomic pointer write) and mark it promoted."""
        name = self._resolve(version)
        info = self.info(name)
        if not info.promoted:
            data = info.as_dict() | {"promoted": True}
            _atomic_write(self.root / name / INFO, json.dumps(data, indent=2))
        _atomic_write(self.root / POINTER, name + "\n")

    def rollback(self, version: str) -> None:
        """Go back to an earlier (or any saved) version; :class:`UnknownVersion` and nothing
        changed when the store has no such version."""
        self.promote(version)

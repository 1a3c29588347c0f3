"""Shared pieces of the reliability tables: what "nothing partial was written" means, and a case record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Name fragments of everything a run writes before it succeeds (engine temp file, warp temp file, scratch folder).
PARTIAL_MARKERS = (".lcgan-partial", ".lcgan-warp", ".lcgan-")


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Names (and contents of small files) in ``folder``, GDAL's ``.aux.xml`` statistics side-cars left out."""
    return {p.name: (p.read_bytes() if p.is_file() and p.stat().st_size < 1_000_000 else None)
            for p in folder.iterdir() if not p.name.endswith(".aux.xml")}


def assert_unchanged(folder: Path, before: dict[str, bytes | None]) -> None:
    """No file appeared, vanished or changed in ``folder`` (so no partial output and no damaged old output)."""
    after = snapshot(folder)
    assert set(after) == set(before), f"new: {set(after) - set(before)}, gone: {set(before) - set(after)}"
    changed = [name for name in before if after[name] != before[name]]
    assert not changed, f"changed: {changed}"


def assert_no_partials(folder: Path) -> None:
    """No temporary file or scratch folder of a run is left anywhere under ``folder``."""
    partial = [str(p) for p in folder.rglob("*") if any(m in p.name for m in PARTIAL_MARKERS)]
    assert not partial, partial


@dataclass(frozen=True)
class Case:
    """One row of a table: ``build(tmp_path, fixtures)`` returns what the layer's runner needs; ``message`` is the
    regular expression the user's message must match (``None``: the run must succeed, and ``check`` then looks at
    the result)."""

    id: str
    build: Callable[..., Any]
    message: str | None
    check: Callable[..., None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

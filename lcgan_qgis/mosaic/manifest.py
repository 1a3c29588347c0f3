"""The manifest of a mosaic: which job the output folder holds, and which super-tiles are done, with checksums.

``manifest.jsonl`` is a journal: the first line describes the job (model file and its SHA-256, the input raster, the
run plan, the super-tile size), then one line per finished tile (file, window, SHA-256, bytes, seconds, worker).
Each line is written whole, flushed and fsynced by the one process that runs the job (the client), so a client
killed mid-write loses at most the line it was writing (a torn last line is ignored on reading). A re-run of the same
job skips the tiles whose line and file checksum agree; any other tile is run again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import OptionError, OutputError
from ..core.model.precision import file_digest

LOG = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
FORMAT = "lcgan-mosaic/1"


@dataclass(frozen=True)
class TileRecord:
    """One finished super-tile, as the manifest holds it."""

    name: str
    path: str  # relative to the output folder
    window: tuple[int, int, int, int]  # col_off, row_off, width, height
    sha256: str
    bytes: int
    seconds: float
    windows: int  # inference windows run
    worker: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TileRecord:
        return cls(str(data["name"]), str(data["path"]), tuple(int(v) for v in data["window"]),  # type: ignore[arg-type]
                   str(data["sha256"]), int(data["bytes"]), float(data["seconds"]), int(data["windows"]),
                   str(data["worker"]))


class Manifest:
    """The journal of one output folder: opened for one job, appended to as its tiles finish.

    Args:
        folder: the output folder.
        job: the job's description (JSON-serialisable); a folder holding another job is refused.

    Raises:
        OptionError: the folder's manifest describes another job (the message lists what differs).
        OutputError: the manifest cannot be read or written.
    """

    def __init__(self, folder: str | Path, job: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.job = json.loads(json.dumps(job))  # what a reading would give back (tuples become lists)
        self.records: dict[str, TileRecord] = {}
        if self.path.exists():
            self._read()
        else:
            self._append({"format": FORMAT, "job": self.job})

    def _read(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise OutputError(f"Cannot read the manifest {self.path}: {exc}") from None
        entries = []
        for number, line in enumerate(lines, start=1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # a torn last line: the client died while writing it
                    LOG.warning("%s: ignoring the torn last line %d", self.path, number)
                    continue
                raise OutputError(f"The manifest {self.path} is damaged at line {number}; remove it to start over."
                                  ) from None
        if not entries or entries[0].get("format") != FORMAT:
            raise OutputError(f"{self.path} is not an lcgan mosaic manifest ({FORMAT}); choose another output folder.")
        differs = _differences(entries[0]["job"], self.job)
        if differs:
            raise OptionError(
                f"The output folder {self.folder} holds a mosaic of another job (it differs in: {', '.join(differs)}). "
                f"Choose another output folder, or delete {self.path} and the tiles to start over."
            )
        for entry in entries[1:]:
            record = TileRecord.from_json(entry["tile"])
            self.records[record.name] = record

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(f"Cannot write the manifest {self.path}: {exc.strerror or exc}") from None

    def add(self, record: TileRecord) -> None:
        """Record a finished tile (its file is already in place)."""
        self._append({"tile": asdict(record)})
        self.records[record.name] = record

    def verified(self, names: Iterable[str], threads: int = 4) -> set[str]:
        """The tiles among ``names`` whose manifest line and file agree (size, then SHA-256)."""

        def ok(name: str) -> bool:
            record = self.records.get(name)
            if record is None:
                return False
            path = self.folder / record.path
            try:
                if path.stat().st_size != record.bytes:
                    return False
                return file_digest(path) == record.sha256
            except OSError:
                return False

        wanted = [n for n in names if n in self.records]
        with ThreadPoolExecutor(max_workers=threads) as pool:  # hashing releases the GIL
            return {name for name, good in zip(wanted, pool.map(ok, wanted), strict=True) if good}


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The keys in which two job identities differ, one level into sections (``model.threads``, ``tile_px``)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and not prefix:
            out.extend(_differences(a, b, f"{key}."))
        else:
            out.append(prefix + key)
    return out

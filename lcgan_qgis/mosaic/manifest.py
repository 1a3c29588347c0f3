"""The manifest of a mosaic: which job the output folder holds, and which super-tiles are done, with checksums.

``manifest.jsonl`` is a journal: the first line describes the job (model file and its SHA-256, the input raster, the
run plan, the super-tile size), then one line per finished tile (file, window, SHA-256, bytes, seconds, worker).
Each line is written whole with one ``write`` in append mode, flushed and fsynced, so a client killed mid-write
loses at most the line it was writing. A re-run of the same job skips the tiles whose line and file checksum agree;
any other tile is run again.

The manifest heals what interrupted or concurrent runs leave, rather than refusing the folder: it is opened under
an exclusive lock (``flock``), so two runs starting together cannot both write a header; an empty file gets its
header; a header repeated with the same job is ignored; a line that is torn, not JSON, or a tile record with
missing or mistyped keys is dropped with a warning (that tile runs again), and the file is then rewritten without
it (atomically). Only a folder that holds another job, or a file that is not an lcgan manifest at all, is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import OptionError, OutputError
from ..core.model.precision import file_digest
from ..core.storage.atomic import AtomicFile

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

LOG = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
FORMAT = "lcgan-mosaic/1"
MAX_MANIFEST_BYTES = 512 * 1024 * 1024  # (a million tiles' lines are ~300 MB)


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
        """Raises KeyError, TypeError or ValueError on a record that is not whole."""
        window = tuple(int(v) for v in data["window"])
        path = str(data["path"])
        if len(window) != 4 or Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"bad window or path: {window}, {path}")
        return cls(str(data["name"]), path, window,  # type: ignore[arg-type]
                   str(data["sha256"]), int(data["bytes"]), float(data["seconds"]), int(data["windows"]),
                   str(data["worker"]))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The manifest opened for appending (created when missing) under an exclusive lock."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError as exc:
        raise OutputError(f"Cannot open the manifest {path}: {exc.strerror or exc}") from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


class Manifest:
    """The journal of one output folder: opened for one job, appended to as its tiles finish.

    Args:
        folder: the output folder.
        job: the job's description (JSON-serialisable); a folder holding another job is refused.

    Raises:
        OptionError: the folder's manifest describes another job (the message lists what differs).
        OutputError: the manifest cannot be read or written, or is not an lcgan manifest.
    """

    def __init__(self, folder: str | Path, job: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.job = json.loads(json.dumps(job))  # what a reading would give back (tuples become lists)
        self.records: dict[str, TileRecord] = {}
        if self.path.is_dir() or (self.path.is_symlink() and not self.path.exists()):
            raise OutputError(f"The manifest {self.path} is not a file; remove it or choose another output folder.")
        with _locked(self.path) as fd:
            text = self._read_text(fd)
            if not text.strip():  # new, or left empty by a run killed at its start
                os.ftruncate(fd, 0)
                self._write_fd(fd, {"format": FORMAT, "job": self.job})
                return
            dropped = self._parse(text)
            if dropped:
                self._rewrite()

    def _read_text(self, fd: int) -> str:
        size = os.fstat(fd).st_size
        if size > MAX_MANIFEST_BYTES:
            raise OutputError(f"{self.path} is {size / 1e6:,.0f} MB, too large for an lcgan mosaic manifest; choose "
                              "another output folder.")
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return os.read(fd, size).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OutputError(f"Cannot read the manifest {self.path}: {exc}") from None

    def _parse(self, text: str) -> int:
        """Read the header and the tile lines; returns how many lines were dropped as damaged."""
        entries: list[tuple[int, Any]] = []
        dropped = 0
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append((number, json.loads(line)))
            except (json.JSONDecodeError, RecursionError):
                LOG.warning("%s: line %d is damaged (a run was killed while writing it?); ignored", self.path, number)
                dropped += 1
        header = entries[0][1] if entries else None
        if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(header.get("job"), dict):
            raise OutputError(f"{self.path} is not an lcgan mosaic manifest ({FORMAT}); choose another output "
                              "folder, or delete it to start over.")
        differs = _differences(header["job"], self.job)
        if differs:
            raise OptionError(
                f"The output folder {self.folder} holds a mosaic of another job (it differs in: {', '.join(differs)}). "
                f"Choose another output folder, or delete {self.path} and the tiles to start over."
            )
        for number, entry in entries[1:]:
            if isinstance(entry, dict) and entry.get("format") == FORMAT:  # a second header (two runs started
                if entry.get("job") == header["job"]:  # together before the lock): the same job, harmless
                    dropped += 1
                    continue
                raise OptionError(f"{self.path} holds headers of two different jobs (line {number}); delete it and "
                                  "the tiles to start over, or choose another output folder.")
            try:
                record = TileRecord.from_json(entry["tile"])
            except (KeyError, TypeError, ValueError) as exc:
                LOG.warning("%s: line %d is not a whole tile record (%s); that tile runs again", self.path, number,
                            exc)
                dropped += 1
                continue
            self.records[record.name] = record
        return dropped

    def _rewrite(self) -> None:
        """Write the header and the good records back (under the lock held by the caller), whole or not at all."""
        lines = [{"format": FORMAT, "job": self.job}] + [{"tile": asdict(r)} for r in self.records.values()]
        try:
            with AtomicFile(self.path) as tmp:
                tmp.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in lines), encoding="utf-8")
        except OSError as exc:
            LOG.warning("could not rewrite %s without its damaged lines: %s", self.path, exc)

    def _write_fd(self, fd: int, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise OutputError(f"Cannot write the manifest {self.path}: {exc.strerror or exc}. The disk may be full; "
                              "free some space and run the same command again to resume.") from None

    def _append(self, entry: dict[str, Any]) -> None:
        with _locked(self.path) as fd:
            self._write_fd(fd, entry)

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
            return {name for name, good in zip(wanted, pool.map(ok, wanted)) if good}


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

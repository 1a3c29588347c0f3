"""Files written whole or not at all: :class:`AtomicFile` (write under a temporary name, rename into place) and
:func:`commit_all` (several of them, all or nothing).

A crash, a cancel or a full disk never leaves a half-written file under the target's name, and an earlier file of
that name survives a failed write. Every temporary file is created through :mod:`.ownership`, so the ledger of the run
proves it is lcgan's, and the next run removes it if this one is killed; nothing else is ever removed by its name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from ..errors import OutputError
from . import ownership
from .paths import output_folder

log = logging.getLogger(__name__)

#: Marks temporary files (``.<name>.<random>.lcgan-partial<suffix>``): hidden and recognisable by eye; what may be
#: deleted is decided by the run's ledger (:mod:`.ownership`), never by this mark.
PARTIAL_MARK = ".lcgan-partial"
PARTIAL_STEM_MAX_BYTES = 64  # of the target's name kept in its temporary file's name (long names must still fit)


def _create_partial(folder: Path, stem: str, suffix: str) -> Path:
    """Create a new hidden file ``.STEM.RANDOM.lcgan-partial<suffix>`` in ``folder`` (mode ``0o666`` less the umask;
    ``mkstemp`` would make it private), claimed in the folder's ledger.

    Raises:
        OSError: the folder takes no files.
    """
    short = os.fsencode(stem)[:PARTIAL_STEM_MAX_BYTES].decode("utf-8", "ignore")
    for _ in range(100):
        path = folder / f".{short}.{secrets.token_hex(4)}{PARTIAL_MARK}{suffix}"
        try:
            fd = ownership.create_claimed(path)
        except FileExistsError:
            continue
        if fd is not None:
            os.close(fd)
        return path
    raise FileExistsError(f"no free temporary name in {folder}")


class AtomicFile:
    """A file written under a temporary name beside ``path`` and moved onto ``path`` only on success.

    As a context manager it yields the temporary path, commits on a clean exit and aborts on an exception::

        with AtomicFile(out) as tmp:
            tmp.write_text(report)

    A writer that lives longer (the GeoTIFF writer) calls :meth:`commit` or :meth:`abort` itself. The temporary file
    (``.<stem>.<random>.lcgan-partial<suffix>``) keeps ``path``'s suffix, so libraries that choose a format by
    extension (GDAL, matplotlib) write the right one; it gets the usual mode of the user's umask, and the run's ledger
    claims it until commit or abort (:mod:`.ownership`).

    Args:
        path: the file to write.
        sidecars: suffixes of files a writer may add next to the temporary file (GDAL's ``.aux.xml``): moved along
            on commit (a stale one of ``path`` is removed when none was written), deleted on abort.

    Raises:
        OutputError: the folder is missing or not writable, or the final move fails (the message names ``path``).
    """

    def __init__(self, path: str | Path, sidecars: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.sidecars = tuple(sidecars)
        folder = output_folder(self.path)
        try:
            self.temp_path = _create_partial(folder, self.path.stem, self.path.suffix)
        except OSError as exc:
            raise OutputError(f"Cannot write in the output folder {folder}: {exc.strerror or exc}. Choose a folder "
                              "you can write to.") from None
        self.done = False

    def _moves(self) -> list[tuple[Path, Path]]:
        return [(self.temp_path, self.path)] + [(Path(f"{self.temp_path}{s}"), Path(f"{self.path}{s}"))
                                                 for s in self.sidecars]

    def _replace(self) -> None:
        """Move the temporary file and its sidecars onto ``path`` (raises OSError)."""
        for i, (source, target) in enumerate(self._moves()):
            if source.exists():
                os.replace(source, target)
            elif i:  # a sidecar the new file does not have: an old one would describe another raster
                target.unlink(missing_ok=True)

    def commit(self) -> Path:
        """Move the temporary file (and its sidecars) onto ``path``; returns ``path``.

        Raises:
            OutputError: the move failed; the temporary files are removed and ``path`` is as it was.
        """
        try:
            self._replace()
        except OSError as exc:
            self.abort()
            raise OutputError(f"Cannot move the result to {self.path}: {exc.strerror or exc}") from None
        self._finish()
        return self.path

    def abort(self) -> None:
        """Delete the temporary file and its sidecars (idempotent); ``path`` is left as it was."""
        if self.done:
            return
        for source, _target in self._moves():
            try:
                source.unlink(missing_ok=True)
            except OSError as exc:  # nothing more can be done; the ledger keeps it for the next run's cleanup
                log.warning("could not remove the partial file %s: %s", source, exc)
                self.done = True
                return
        self._finish()

    def _finish(self) -> None:
        ownership.release(self.temp_path)
        self.done = True

    def __enter__(self) -> Path:
        return self.temp_path

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def commit_all(files: Sequence[AtomicFile]) -> None:
    """Commit several :class:`AtomicFile` all or nothing: when one move fails, the targets already replaced get
    their earlier content back (hard-linked beside their temporary file first, so on the same file system, and
    claimed in the run's ledger while the commit lasts), new ones are removed, and every temporary file goes.

    Raises:
        OutputError: naming the target whose move failed.
    """
    kept: list[tuple[bool, Path | None]] = []  # per file: target existed, its backup
    try:
        for file in files:
            backup = None
            if file.path.exists():
                try:
                    backup = file.temp_path.with_name(f"{file.temp_path.stem}.backup{file.temp_path.suffix}")
                    os.link(file.path, backup)
                    ownership.claim_existing(backup)
                except OSError:  # (no hard links here: the old file cannot be kept)
                    backup = None
            kept.append((file.path.exists(), backup))
        for i, file in enumerate(files):
            try:
                file._replace()
            except OSError as exc:
                for earlier, (existed, backup) in zip(files[:i + 1], kept):
                    with contextlib.suppress(OSError):
                        if backup is not None:
                            os.replace(backup, earlier.path)
                        elif not existed:
                            earlier.path.unlink()
                raise OutputError(f"Cannot move the result to {file.path}: {exc.strerror or exc}") from None
    finally:
        for file in files:
            file.abort()  # (after a move: nothing left to delete; releases the claim either way)
        for _existed, backup in kept:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink(missing_ok=True)
                ownership.release(backup)

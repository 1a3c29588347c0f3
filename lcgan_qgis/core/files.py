"""The files lcgan writes, each rule defined once for every caller (engine, job, CLI, plugin, tools, training).

- :func:`check_output_paths`: the output-path rules; the job runs them before loading a model, the engine again
  before opening a writer (so a direct engine caller is protected too); :func:`output_folder` is their folder rule.
- :class:`AtomicFile`: write under a temporary name beside the target and move it into place with ``os.replace``
  only when the write succeeded, so a crash, a cancel or a full disk never leaves a half-written file under the
  target's name (and an earlier file of that name survives a failed write).
- :data:`GEOTIFF_CREATION_OPTIONS`: how every GeoTIFF lcgan writes is laid out.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from .errors import OutputError

log = logging.getLogger(__name__)

_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)
#: The mode of the files lcgan writes: what ``open()`` would give under this process's umask.
FILE_MODE = 0o666 & ~_UMASK

#: Outputs are GeoTIFFs: the writer, the styling and the Processing provider all assume it.
GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: GDAL GTiff creation options of every GeoTIFF lcgan writes: 256 px tiles (the engine writes whole block rows, QGIS
#: reads tiles), lossless DEFLATE, BigTIFF only when the file may pass 4 GB.
GEOTIFF_CREATION_OPTIONS = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER")
#: Marks temporary files (``.<name>.<random>.lcgan-partial<suffix>``): hidden, and recognisable if a crash leaves one.
PARTIAL_MARK = ".lcgan-partial"


def output_folder(path: str | Path) -> Path:
    """The folder ``path`` will be written in, after checking that it exists and is writable.

    Raises:
        OutputError: the folder is missing or not writable (named).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"The output folder {folder} does not exist; create it or choose another.")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The output folder {folder} is not writable; choose a folder you can write to.")
    return folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # a path the OS cannot resolve (too long, a loop): compare as given
        return a == b


def check_output_paths(output_path: str | Path | None, confidence_path: str | Path | None = None,
                       input_path: str | Path | None = None, overwrite: bool = True) -> None:
    """Refuse outputs that cannot or must not be written, before any work is done.

    Args:
        output_path: the GeoTIFF to write.
        confidence_path: the optional second GeoTIFF (land-cover confidence).
        input_path: the input raster's file, when it has one (no output may replace it).
        overwrite: ``False`` refuses an existing output.

    Raises:
        OutputError: naming the path at fault: none given, not ``.tif``/``.tiff``, the input itself, the other
            output, a folder, an existing file with ``overwrite`` off, or a missing or read-only folder.
    """
    if not output_path:
        raise OutputError("No output file was given.")
    targets = [Path(output_path)] + ([Path(confidence_path)] if confidence_path else [])
    if len(targets) == 2 and _same_file(*targets):
        raise OutputError(f"The land-cover output and the confidence output are the same file ({targets[0]}).")
    source = Path(input_path) if input_path else None
    for target in targets:
        if target.is_dir():
            raise OutputError(f"The output {target} is a folder; give a file name (e.g. result.tif).")
        if target.suffix.lower() not in GEOTIFF_SUFFIXES:
            raise OutputError(f"Output {target} must be a GeoTIFF (.tif or .tiff).")
        if source is not None and (str(target) == str(source) or _same_file(target, source)):
            raise OutputError(f"The output {target} is the input raster itself; choose another file name.")
        if target.exists() and not overwrite:
            raise OutputError(f"The output {target} exists; remove it or allow overwriting.")
        output_folder(target)


class AtomicFile:
    """A file written under a temporary name beside ``path`` and moved onto ``path`` only on success.

    As a context manager it yields the temporary path, commits on a clean exit and aborts on an exception::

        with AtomicFile(out) as tmp:
            tmp.write_text(report)

    A writer that lives longer (the GeoTIFF writer) calls :meth:`commit` or :meth:`abort` itself. The temporary file
    keeps ``path``'s suffix, so libraries that choose a format by extension (GDAL, matplotlib) write the right one.

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
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=PARTIAL_MARK + self.path.suffix,
                                       dir=folder)
        except OSError as exc:
            raise OutputError(f"Cannot write in the output folder {folder}: {exc.strerror or exc}. Choose a folder "
                              "you can write to.") from None
        os.close(fd)
        self.temp_path = Path(tmp)
        os.chmod(self.temp_path, FILE_MODE)  # mkstemp makes it private (0600); the result gets the usual mode
        self.done = False

    def _moves(self) -> list[tuple[Path, Path]]:
        return [(self.temp_path, self.path)] + [(Path(f"{self.temp_path}{s}"), Path(f"{self.path}{s}"))
                                                 for s in self.sidecars]

    def commit(self) -> Path:
        """Move the temporary file (and its sidecars) onto ``path``; returns ``path``.

        Raises:
            OutputError: the move failed; the temporary files are removed and ``path`` is as it was.
        """
        try:
            for i, (source, target) in enumerate(self._moves()):
                if source.exists():
                    os.replace(source, target)
                elif i:  # a sidecar the new file does not have: an old one would describe another raster
                    target.unlink(missing_ok=True)
        except OSError as exc:
            self.abort()
            raise OutputError(f"Cannot move the result to {self.path}: {exc.strerror or exc}") from None
        self.done = True
        return self.path

    def abort(self) -> None:
        """Delete the temporary file and its sidecars (idempotent); ``path`` is left as it was."""
        for source, _target in self._moves():
            try:
                source.unlink(missing_ok=True)
            except OSError as exc:  # nothing more can be done; its name marks it as lcgan's leftover
                log.warning("could not remove the partial file %s: %s", source, exc)
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

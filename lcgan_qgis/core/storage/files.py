"""The files lcgan writes, each rule defined once for every caller (engine, job, CLI, plugin, tools, training).

- :func:`check_output_paths`: the output-path rules; the job runs them before loading a model, the engine again
  before opening a writer (so a direct engine caller is protected too). "The same file" (:func:`same_file`) is
  decided on resolved paths (``..``, symlinks) and, for existing files, on the inode (hard links); the input's
  files are all those it reads (:func:`input_files`: sidecars and, for a VRT, its sources, recursively), so no
  spelling of a path slips through. :func:`output_folder` is their folder rule.
- :class:`AtomicFile`: write under a hidden temporary name beside the target and move it into place with
  ``os.replace`` only when the write succeeded, so a crash, a cancel or a full disk never leaves a half-written
  file under the target's name (and an earlier file of that name survives a failed write). :func:`commit_all`
  moves several into place all or nothing.
- Partial files of killed runs: every temporary file (and scratch folder, :func:`scratch_folder`) is locked by
  the run writing it (``flock``), so the next run tells a killed run's leftovers from a live run's files and
  removes them (:func:`remove_stale_partials`).
- :data:`GEOTIFF_CREATION_OPTIONS`: how every GeoTIFF lcgan writes is laid out.

(About 450 lines, past the 400 a module should keep to: which paths may be written and how they are written share
the sidecar, partial-name and folder rules, and are read together when one of them changes.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from ..errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, but a file GDAL has open cannot be deleted there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)
#: The mode of the files lcgan writes under the umask at import: what ``open()`` gives (files are created with
#: ``0o666``, so the umask in force when one is written applies).
FILE_MODE = 0o666 & ~_UMASK

#: Outputs are GeoTIFFs: the writer, the styling and the Processing provider all assume it.
GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: GDAL GTiff creation options of every GeoTIFF lcgan writes: 256 px tiles (the engine writes whole block rows, QGIS
#: reads tiles), lossless DEFLATE, BigTIFF only when the file may pass 4 GB.
GEOTIFF_CREATION_OPTIONS = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER")
#: GDAL's sidecar of a GeoTIFF (class names, statistics).
SIDECAR_SUFFIX = ".aux.xml"
#: Marks temporary files (``.<name>.<random>.lcgan-partial<suffix>``): hidden, and recognisable if a crash leaves one.
PARTIAL_MARK = ".lcgan-partial"
PARTIAL_STEM_MAX_BYTES = 64  # of the target's name kept in its temporary file's name (long names must still fit)
STALE_AFTER_S = 5.0  # an unlocked partial file this old belongs to no live run
SCRATCH_PREFIX = ".lcgan-"  # scratch folders of resampled runs (core.job)
SCRATCH_LOCK = ".lock"
MAX_SOURCE_FILES = 10_000  # VRTs of VRTs: stop listing (and stop recursing) beyond this many files
DEFAULT_NAME_MAX = 255

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


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


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file: equal resolved paths, or the same inode (hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError):  # a path the OS cannot resolve (too long; RuntimeError: a symlink loop)
        return a == b


def input_files(source: str | Path | None) -> list[Path]:
    """Every local file a raster reads: the file, its sidecars and, for a VRT, its sources (recursively).

    ``source`` may be anything GDAL opens; what is not a raster GDAL can open (a layer name, a web service) gives
    the file itself when it exists, else nothing.
    """
    if not source:
        return []
    from osgeo import gdal

    from ..rasters.gdal_io import gdal_call, gdal_errors  # (gdal_io writes through this module)

    found: list[Path] = []
    seen: set[str] = set()
    pending = [str(source)]
    while pending and len(found) < MAX_SOURCE_FILES:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if Path(name).exists():
            found.append(Path(name))
        with gdal_errors() as errors:
            dataset = gdal_call(errors, gdal.OpenEx, name, gdal.OF_RASTER | gdal.OF_READONLY)
            files = (dataset.GetFileList() or []) if dataset is not None else []
            dataset = None
        for item in files:
            if item not in seen and not item.startswith("/vsi"):
                if item.lower().endswith(".vrt"):
                    pending.append(item)  # a VRT lists its own sources, not theirs: open it in turn
                else:
                    seen.add(item)
                    found.append(Path(item))
    return found


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # (not POSIX, or the folder is gone)
        return DEFAULT_NAME_MAX


def check_output_paths(output_path: str | Path | None, confidence_path: str | Path | None = None,
                       input_path: str | Path | None = None, overwrite: bool = True,
                       elevation_path: str | Path | None = None) -> None:
    """Refuse outputs that cannot or must not be written, before any work is done.

    Args:
        output_path: the GeoTIFF to write.
        confidence_path: the optional second GeoTIFF (land-cover confidence).
        input_path: the input raster (a path or a GDAL string); no output may replace a file it reads.
        overwrite: ``False`` refuses an existing output.
        elevation_path: the run's second input (a DEM), held to the same rule as ``input_path``.

    Raises:
        OutputError: naming the path at fault and the real reason: none given, a name too long for the file
            system, a folder, a file the input reads (or whose sidecar would replace one), not ``.tif``/``.tiff``,
            a FIFO, device or socket, an existing file with ``overwrite`` off, a missing or read-only folder, or
            the same file as the other output.
    """
    if not output_path:
        raise OutputError("No output file was given.")
    paths = [("output", Path(output_path))] + ([("confidence output", Path(confidence_path))] if confidence_path
                                               else [])
    sources = [(kind, raster, source) for kind, raster in (("input raster", input_path),
                                                           ("elevation raster", elevation_path))
               for source in input_files(raster)]
    for label, path in paths:
        _check_name_length(label, path)
        if path.is_dir():
            raise OutputError(f"The {label} {path} is a folder; give a file name (e.g. result.tif).")
        for candidate in (path, Path(str(path) + SIDECAR_SUFFIX)):
            for kind, raster, source in sources:
                if same_file(candidate, source):
                    what = f"is the {kind} itself" if same_file(source, raster or "") else (
                        f"is {source}, a file the {kind} reads" if candidate == path else
                        f"would replace {source}, a file the {kind} reads, with its {SIDECAR_SUFFIX} sidecar")
                    raise OutputError(f"The {label} {path} {what}; choose another file name.")
        if path.suffix.lower() not in GEOTIFF_SUFFIXES:
            raise OutputError(f"The {label} {path} must be a GeoTIFF (.tif or .tiff).")
        _check_kind(label, path, overwrite)
        output_folder(path)
    if len(paths) == 2 and same_file(paths[0][1], paths[1][1]):
        raise OutputError(f"The output and the confidence output are the same file ({paths[0][1]} and "
                          f"{paths[1][1]}).")


def _check_kind(label: str, path: Path, overwrite: bool) -> None:
    """An existing output is a regular file (it will be replaced by a rename) and may be overwritten."""
    try:
        mode = path.lstat().st_mode if path.is_symlink() and not path.exists() else path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"Cannot use the {label} {path}: {exc.strerror or exc}.") from None
    kind = next((text for test, text in _KINDS if test(mode)), None)
    if kind is not None:
        raise OutputError(f"The {label} {path} is {kind}, not a file; lcgan writes GeoTIFF files only (a GeoTIFF "
                          "is written under a temporary name and renamed, which would replace it). Give a file name.")
    if not overwrite:
        raise OutputError(f"The {label} {path} exists; remove it or allow overwriting.")


def _check_name_length(label: str, path: Path) -> None:
    """The file name, and that of its sidecar (class names), fit the file system (checked first: every other
    test of a longer name fails obscurely)."""
    folder = path.parent if str(path.parent) else Path(".")
    limit = name_max(folder)
    length = len(os.fsencode(path.name))
    if length + len(SIDECAR_SUFFIX) > limit:
        raise OutputError(f"The {label} file name is {length} bytes long; the file system of {folder} allows at most "
                          f"{limit}, and GDAL's {SIDECAR_SUFFIX} side-car of the file needs {len(SIDECAR_SUFFIX)} "
                          f"more ({limit - len(SIDECAR_SUFFIX)} at most). Choose a shorter name.")


def _lock(fd: int) -> bool:
    """Take an exclusive advisory lock on ``fd`` without waiting; False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _release(fd: int | None) -> None:
    """Close a lock descriptor (idempotent with None)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _create_partial(folder: Path, stem: str, suffix: str) -> tuple[int | None, Path]:
    """Create a new hidden file ``.STEM.RANDOM.lcgan-partial<suffix>`` in ``folder`` (mode ``0o666`` less the umask;
    ``mkstemp`` would make it private) and lock it; returns (lock fd, or None where there are no locks, path).

    Raises:
        OSError: the folder takes no files.
    """
    short = os.fsencode(stem)[:PARTIAL_STEM_MAX_BYTES].decode("utf-8", "ignore")
    for _ in range(100):
        path = folder / f".{short}.{secrets.token_hex(4)}{PARTIAL_MARK}{suffix}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:  # (an open descriptor would stop the final rename on Windows)
            os.close(fd)
            return None, path
        _lock(fd)
        return fd, path
    raise FileExistsError(f"no free temporary name in {folder}")


class AtomicFile:
    """A file written under a temporary name beside ``path`` and moved onto ``path`` only on success.

    As a context manager it yields the temporary path, commits on a clean exit and aborts on an exception::

        with AtomicFile(out) as tmp:
            tmp.write_text(report)

    A writer that lives longer (the GeoTIFF writer) calls :meth:`commit` or :meth:`abort` itself. The temporary file
    (``.<stem>.<random>.lcgan-partial<suffix>``) keeps ``path``'s suffix, so libraries that choose a format by
    extension (GDAL, matplotlib) write the right one; it gets the usual mode of the user's umask, and this process
    holds a lock on it until commit or abort, so :func:`remove_stale_partials` of another run keeps it.

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
            self._lock_fd, self.temp_path = _create_partial(folder, self.path.stem, self.path.suffix)
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
            except OSError as exc:  # nothing more can be done; its name marks it as lcgan's leftover
                log.warning("could not remove the partial file %s: %s", source, exc)
        self._finish()

    def _finish(self) -> None:
        _release(self._lock_fd)
        self._lock_fd = None
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
    locked like a partial file while the commit lasts), new ones are removed, and every temporary file goes.

    Raises:
        OutputError: naming the target whose move failed.
    """
    kept: list[tuple[bool, Path | None, int | None]] = []  # per file: target existed, its backup, the backup's lock
    try:
        for file in files:
            backup, fd = None, None
            if file.path.exists():
                try:
                    backup = file.temp_path.with_name(f"{file.temp_path.stem}.backup{file.temp_path.suffix}")
                    os.link(file.path, backup)
                    fd = os.open(backup, os.O_RDONLY) if fcntl is not None else None
                    if fd is not None:
                        _lock(fd)
                except OSError:  # (no hard links here: the old file cannot be kept)
                    backup = None
            kept.append((file.path.exists(), backup, fd))
        for i, file in enumerate(files):
            try:
                file._replace()
            except OSError as exc:
                for earlier, (existed, backup, _fd) in zip(files[:i + 1], kept, strict=False):
                    with contextlib.suppress(OSError):
                        if backup is not None:
                            os.replace(backup, earlier.path)
                        elif not existed:
                            earlier.path.unlink()
                raise OutputError(f"Cannot move the result to {file.path}: {exc.strerror or exc}") from None
    finally:
        for file in files:
            file.abort()  # (after a move: nothing left to delete; releases the lock either way)
        for _existed, backup, fd in kept:
            _release(fd)
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()


@contextlib.contextmanager
def scratch_folder(parent: Path) -> Iterator[Path]:
    """A hidden scratch folder ``.lcgan-XXXX`` in ``parent``, locked while it is in use and removed afterwards
    (a killed run's folder is found and removed by :func:`remove_stale_partials`).

    Raises:
        OutputError: ``parent`` takes no folders.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
    except OSError as exc:
        raise OutputError(f"Cannot write in the output folder {parent}: {exc.strerror or exc}.") from None
    fd = None
    try:
        fd = os.open(folder / SCRATCH_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        _lock(fd)
        yield folder
    finally:
        _release(fd)
        shutil.rmtree(folder, ignore_errors=True)


def _is_stale(path: Path, lock_file: Path) -> bool:
    """``path`` is older than :data:`STALE_AFTER_S` and nobody holds ``lock_file``'s lock (a file or folder whose
    lock file is gone is judged by its age alone)."""
    try:
        if time.time() - path.stat().st_mtime < STALE_AFTER_S:
            return False
        if not lock_file.exists():
            return True
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        return _lock(fd)
    finally:
        os.close(fd)


def remove_stale_partials(folder: str | Path) -> list[Path]:
    """Delete what killed lcgan runs left in ``folder`` (temporary files, their sidecars, scratch folders of
    resampled runs); files of runs still writing are locked and kept. Returns what was removed."""
    folder = Path(folder) if str(folder) else Path(".")
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if name.startswith(".") and PARTIAL_MARK in name and entry.is_file() and not entry.is_symlink():
            owner = Path(str(entry)[:-len(SIDECAR_SUFFIX)]) if name.endswith(SIDECAR_SUFFIX) else entry
            if _is_stale(entry, owner):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
        elif (name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink()
              and _is_stale(entry, entry / SCRATCH_LOCK)):
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
    if removed:
        log.warning("removed %d partial file(s) of interrupted runs in %s", len(removed), folder)
    return removed


def stale_partial_messages(outputs: Sequence[str | Path]) -> list[str]:
    """Remove what killed runs left beside ``outputs`` (:func:`remove_stale_partials`); one message per folder."""
    messages = []
    for folder in dict.fromkeys(Path(path).parent for path in outputs):
        removed = remove_stale_partials(folder)
        if removed:
            messages.append(f"Removed {len(removed)} partial file(s) left by interrupted lcgan runs in {folder}: "
                            f"{', '.join(sorted(p.name for p in removed))}.")
    return messages

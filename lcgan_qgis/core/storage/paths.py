"""The output-path rules, defined once for every caller (engine, job, CLI, plugin, tools, training).

:func:`check_output_targets` runs before any work (the job, then the engine again before opening a writer), through
:func:`lcgan_qgis.core.rasters.sources.check_output_paths`, which hands it the files the inputs really read
(connection strings, side-cars, VRT sources), so no spelling of a path slips through: storage knows paths, the
rasters layer above it knows what a raster reads. "The same file" (:func:`same_file`) is decided on resolved paths
(``..``, symlinks) and, for existing files, on the inode (hard links). :func:`output_folder` is their folder rule.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Union

from ..errors import OutputError

_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)
#: The mode of the files lcgan writes under the umask at import: what ``open()`` gives.
FILE_MODE = 0o666 & ~_UMASK

#: Outputs are GeoTIFFs: the writer, the styling and the Processing provider all assume it.
GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: GDAL's sidecar of a GeoTIFF (class names, statistics).
SIDECAR_SUFFIX = ".aux.xml"
DEFAULT_NAME_MAX = 255
#: A file an input reads: (what reads it, the raster as named, the file), e.g. ("input raster", "in.vrt", "a.tif").
Source = tuple[str, Union[str, Path, None], Union[str, Path]]  # (typing.Union: Python 3.9 evaluates aliases)

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


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


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # (not POSIX, or the folder is gone)
        return DEFAULT_NAME_MAX


def check_output_targets(output_path: str | Path | None, confidence_path: str | Path | None = None,
                         overwrite: bool = True, read_sources: Callable[[], Sequence[Source]] = tuple) -> None:
    """Refuse outputs that cannot or must not be written, before any work is done (the run's check, with the files
    its inputs read, is :func:`lcgan_qgis.core.rasters.sources.check_output_paths`).

    Args:
        output_path: the GeoTIFF to write.
        confidence_path: the optional second GeoTIFF (land-cover confidence).
        overwrite: ``False`` refuses an existing output.
        read_sources: called once the output names are checked: the files the run's inputs read, as
            ``(kind, raster, file)`` (``("input raster", "in.vrt", "/data/a.tif")``); no output may replace one.

    Raises:
        OutputError: naming the path at fault and the real reason: none given, a name too long for the file
            system, a folder, a file the input reads (or whose sidecar would replace one), not ``.tif``/``.tiff``,
            a FIFO, device or socket (or such a sidecar path), an existing file with ``overwrite`` off, a missing or
            read-only folder, or the same file as the other output.
    """
    if not output_path:
        raise OutputError("No output file was given.")
    paths = [("output", Path(output_path))] + ([("confidence output", Path(confidence_path))] if confidence_path
                                               else [])
    for label, path in paths:
        check_utf8_name(label, path, OutputError)
    sources = read_sources()
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
        _check_sidecar(label, path)
        output_folder(path)
    if len(paths) == 2 and same_file(paths[0][1], paths[1][1]):
        raise OutputError(f"The output and the confidence output are the same file ({paths[0][1]} and "
                          f"{paths[1][1]}).")


def check_utf8_name(label: str, path: str | Path, error: type[Exception] = OutputError) -> None:
    """GDAL takes file names as UTF-8: a name holding other bytes (read from a Latin-1 disk, say) cannot be opened
    or created through it, so it is refused up front, naming the byte.

    Raises:
        ``error``: naming the path (its undecodable bytes shown as ``\\xNN``) and what to do.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = os.fsencode(text)
        shown = raw.decode("utf-8", "backslashreplace")
        bad = raw[exc.start:exc.start + 1].hex() if exc.start < len(raw) else "??"
        raise error(f"The {label} {shown} has a name that is not UTF-8 text (byte 0x{bad}); GDAL reads and writes "
                    "only UTF-8 file names. Rename it (or its folder).") from None


def _kind(mode: int) -> str | None:
    return next((text for test, text in _KINDS if test(mode)), None)


def _check_kind(label: str, path: Path, overwrite: bool) -> None:
    """An existing output is a regular file (it will be replaced by a rename) and may be overwritten."""
    try:
        mode = path.lstat().st_mode if path.is_symlink() and not path.exists() else path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"Cannot use the {label} {path}: {exc.strerror or exc}.") from None
    kind = _kind(mode)
    if kind is not None:
        raise OutputError(f"The {label} {path} is {kind}, not a file; lcgan writes GeoTIFF files only (a GeoTIFF "
                          "is written under a temporary name and renamed, which would replace it). Give a file name.")
    if not overwrite:
        raise OutputError(f"The {label} {path} exists; remove it or allow overwriting.")


def _check_sidecar(label: str, path: Path) -> None:
    """The output's ``.aux.xml`` sidecar (class names, written with it) must be a file or absent: a folder, FIFO or
    device there would fail the run after the old output was replaced."""
    sidecar = Path(f"{path}{SIDECAR_SUFFIX}")
    try:
        mode = sidecar.lstat().st_mode
    except OSError:
        return
    kind = _kind(mode) if not stat.S_ISLNK(mode) else None
    if kind is not None:
        raise OutputError(f"The {label}'s sidecar {sidecar} is {kind}; lcgan writes the class names and statistics "
                          f"of {path.name} there. Remove it or choose another output name.")


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

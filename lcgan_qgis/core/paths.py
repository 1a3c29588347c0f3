"""Output-path rules, shared by the engine, the plugin's job and the tooling: one place decides what may be written.

An output must be a GeoTIFF file name in a folder that exists and takes files, never one of the files the input
reads (the raster itself, its sidecars, the sources of a VRT, recursively), and never the same file as another output
of the run. "The same file" is decided on resolved paths (``..``, symlinks) and, for existing files, on the inode
(hard links), so no spelling of a path slips through.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .errors import OutputError

GEOTIFF_SUFFIXES = (".tif", ".tiff")
SIDECAR_SUFFIX = ".aux.xml"  # GDAL's side-car of a GeoTIFF (class names, statistics)
MAX_SOURCE_FILES = 10_000  # VRTs of VRTs: stop listing (and stop recursing) beyond this many files
DEFAULT_NAME_MAX = 255

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file: equal resolved paths, or the same inode (hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError):  # (RuntimeError: a symlink loop)
        return False


def input_files(source: str | Path | None) -> list[Path]:
    """Every local file a raster reads: the file, its sidecars and, for a VRT, its sources (recursively).

    ``source`` may be anything GDAL opens; what is not a raster GDAL can open (a layer name, a web service) gives
    the file itself when it exists, else nothing.
    """
    if not source:
        return []
    from osgeo import gdal

    from .gdal_io import gdal_call, gdal_errors

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


def check_output_paths(outputs: Sequence[tuple[str, str | Path]], input_source: str | Path | None = None,
                       overwrite: bool = True) -> None:
    """Refuse outputs that cannot or must not be written, before any work is done.

    Args:
        outputs: ``(label, path)`` pairs, e.g. ``("output", "lc.tif")``, ``("confidence output", "c.tif")``.
        input_source: the input raster (path or GDAL string); its files may not be overwritten.
        overwrite: ``False`` refuses an existing output.

    Raises:
        OutputError: naming the path and the real reason.
    """
    paths = [(label, Path(path)) for label, path in outputs if path]
    sources = input_files(input_source)
    for label, path in paths:
        _check_name_length(label, path)
        if path.exists() and path.is_dir():
            raise OutputError(f"The {label} {path} is a folder; give a file name (e.g. result.tif).")
        for candidate in (path, Path(str(path) + SIDECAR_SUFFIX)):
            for source in sources:
                if same_file(candidate, source):
                    what = "is the input raster itself" if same_file(source, input_source or "") else (
                        f"is {source}, a file the input raster reads" if candidate == path else
                        f"would replace {source}, a file the input raster reads, with its {SIDECAR_SUFFIX} side-car")
                    raise OutputError(f"The {label} {path} {what}; choose another file name.")
        if path.suffix.lower() not in GEOTIFF_SUFFIXES:
            raise OutputError(f"The {label} {path} must be a GeoTIFF (.tif or .tiff).")
        _check_kind(label, path, overwrite)
    for i, (label, path) in enumerate(paths):
        for other_label, other in paths[i + 1:]:
            if same_file(path, other):
                raise OutputError(f"The {label} and the {other_label} are the same file ({path} and {other}).")


def _check_kind(label: str, path: Path, overwrite: bool) -> None:
    """The output is (or can become) a regular file in a folder that takes files, with a name it accepts."""
    try:
        mode = path.lstat().st_mode if path.is_symlink() and not path.exists() else path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"Cannot use the {label} {path}: {exc.strerror or exc}.") from None
    if mode is not None:
        kind = next((text for test, text in _KINDS if test(mode)), None)
        if kind is not None:
            raise OutputError(f"The {label} {path} is {kind}, not a file; lcgan writes GeoTIFF files only (a GeoTIFF "
                              "is written under a temporary name and renamed, which would replace it). Give a file "
                              "name.")
        if not overwrite:
            raise OutputError(f"The {label} {path} exists; remove it or allow overwriting.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"The output folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The output folder {folder} is not writable.")


def _check_name_length(label: str, path: Path) -> None:
    """The file name, and that of its ``.aux.xml`` side-car (class names), fit the file system (checked first: every
    other test of a longer name fails obscurely)."""
    folder = path.parent if str(path.parent) else Path(".")
    limit = name_max(folder)
    length = len(os.fsencode(path.name))
    if length + len(SIDECAR_SUFFIX) > limit:
        raise OutputError(f"The {label} file name is {length} bytes long; the file system of {folder} allows at most "
                          f"{limit}, and GDAL's {SIDECAR_SUFFIX} side-car of the file needs {len(SIDECAR_SUFFIX)} "
                          f"more ({limit - len(SIDECAR_SUFFIX)} at most). Choose a shorter name.")

"""The files lcgan writes: the output-path rules, defined once for every caller (engine, job, CLI, plugin).

:func:`check_output_paths` runs before any work (the job calls it before loading a model, the engine again before
opening a writer, so a direct engine caller is protected too); :func:`output_folder` is its folder rule, also used
by the GeoTIFF writer.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError

#: Outputs are GeoTIFFs: the writer, the styling and the Processing provider all assume it.
GEOTIFF_SUFFIXES = (".tif", ".tiff")


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

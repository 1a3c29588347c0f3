"""The output folder of a mosaic: ``tiles/`` (one COG per super-tile), ``manifest.jsonl`` (:mod:`.manifest`),
``input.vrt`` (several inputs, :mod:`.inputs`) and ``mosaic.vrt``, the styled and tagged VRT over the tiles.

Its rules are the core's (:mod:`lcgan_qgis.core.storage.files`): the folder must be writable (``output_folder``), no
file the
mosaic writes may be one the inputs or the DEM read (``input_files``, ``same_file``), and the VRT is written whole or
not at all (``AtomicFile``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from osgeo import gdal

from ..core.errors import OutputError
from ..core.model.contract import ModelContract
from ..core.rasters.gdal_io import gdal_call, gdal_errors
from ..core.rasters.output import style_output
from ..core.rasters.raster import RasterInfo
from ..core.rasters.sources import input_files
from ..core.storage.files import SIDECAR_SUFFIX, AtomicFile, output_folder, same_file
from .grid import TILES_FOLDER
from .inputs import INPUT_VRT_NAME
from .manifest import MANIFEST_NAME, TileRecord

VRT_NAME = "mosaic.vrt"
#: What a failed run may leave in a folder it created that is not worth keeping: removed with the folder.
DISPOSABLE = (INPUT_VRT_NAME, TILES_FOLDER)


@contextlib.contextmanager
def prepared_folder(path: str | Path) -> Iterator[Path]:
    """:func:`prepare_folder` for one run: when the run fails, the folders it created are removed again if nothing
    was kept in them (no manifest, no tile; the input VRT and partial files of the run do not count), so a failed
    mosaic leaves no empty output folder behind. A folder that existed before is never removed."""
    folder = Path(path)
    created = [p for p in (folder / TILES_FOLDER, *(folder / TILES_FOLDER).parents) if not p.exists()]
    prepared = prepare_folder(folder)
    try:
        yield prepared
    except BaseException:
        for made in created:  # deepest first: tiles/, then the output folder, then parents made for it
            items = list(made.iterdir()) if made.is_dir() else []
            if any(item.name not in DISPOSABLE and not _header_only(item) for item in items):
                break
            for item in items:
                if item.is_file() and not item.is_symlink():
                    item.unlink()
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def _header_only(path: Path) -> bool:
    """A manifest that records no finished tile (nothing to resume)."""
    try:
        return path.name == MANIFEST_NAME and path.is_file() and len(path.read_bytes().splitlines()) <= 1
    except OSError:
        return False


def prepare_folder(path: str | Path) -> Path:
    """The mosaic's folder with its ``tiles/``, created when missing
    (:func:`~lcgan_qgis.core.storage.files.output_folder`
    then checks it is writable)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"The output folder {folder} is a file; give a folder for the mosaic's tiles.")
    try:
        (folder / TILES_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder}: {exc.strerror or exc}") from None
    output_folder(folder / VRT_NAME)
    return folder


def check_against_inputs(folder: Path, rasters: list[str]) -> None:
    """No file the mosaic writes (its VRT, the input VRT, the manifest, the tiles) may be one that ``rasters`` (the
    inputs and the DEM) read: :func:`~lcgan_qgis.core.storage.files.input_files`,
    :func:`~lcgan_qgis.core.storage.files.same_file`.

    Raises:
        OutputError: naming the file and the raster that reads it.
    """
    written = [folder / VRT_NAME, folder / INPUT_VRT_NAME, folder / MANIFEST_NAME]
    tiles = (folder / TILES_FOLDER).resolve()
    home = folder.resolve()
    for raster in rasters:
        for source in input_files(raster):
            if any(same_file(source, target) for target in written) or tiles in source.resolve().parents:
                raise OutputError(f"The output folder {folder} would overwrite {source}, a file the raster {raster} "
                                  "reads; choose another output folder.")
    for raster in rasters:
        local = Path(raster)
        if local.exists() and (local.resolve().parent == home or home in local.resolve().parents):
            raise OutputError(f"The output folder {folder} holds the input raster {raster}; give the mosaic a folder "
                              "of its own (its tiles/, mosaic.vrt and input.vrt would be read as inputs next time).")


class _VrtBands:
    """The VRT dataset seen as :func:`~lcgan_qgis.core.rasters.output.style_output` sees a writer (``band(i)``), so the
    mosaic
    gets the very colours, class names and colour interpretation a single-process output gets."""

    def __init__(self, dataset: gdal.Dataset) -> None:
        self.dataset = dataset

    def band(self, index: int) -> gdal.Band:
        return self.dataset.GetRasterBand(index)


def build_vrt(output_dir: Path, records: list[TileRecord], contract: ModelContract,
              tags: dict[str, str] | None = None, grid: RasterInfo | None = None) -> Path:
    """``mosaic.vrt`` over the tiles (paths relative to the folder, so it can be moved), styled like an output and
    tagged with ``tags`` (the provenance), whole or not at all.

    Raises:
        OutputError: GDAL cannot write it.
    """
    target = output_dir / VRT_NAME
    try:
        with AtomicFile(target) as tmp:
            with gdal_errors() as errors:
                bounds = None
                if grid is not None:  # the whole input's extent, also where super-tiles without data were not run
                    x0, dx, _, y0, _, dy = grid.geotransform
                    bounds = (x0, y0 + grid.height * dy, x0 + grid.width * dx, y0)
                dataset = gdal_call(errors, gdal.BuildVRT, str(tmp), [str(output_dir / r.path) for r in records],
                                    outputBounds=bounds)
                if dataset is not None:
                    style_output(_VrtBands(dataset), contract)  # type: ignore[arg-type]
                    if tags:
                        dataset.SetMetadata(dict(tags))
                    dataset.FlushCache()
                dataset = None
            Path(f"{tmp}{SIDECAR_SUFFIX}").unlink(missing_ok=True)  # (the VRT holds the styling itself)
            if errors:
                raise OutputError(f"Cannot write {target}: {errors[-1]}")
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}") from None
    return target

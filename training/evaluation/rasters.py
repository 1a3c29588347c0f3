"""Rasters and translations for the evaluations: whole rasters via rasterio, models run through the plugin's job.

Every model an evaluation scores runs through :func:`lcgan_qgis.core.run.job.run_translation`, the one job the QGIS
algorithms, the dock, the command line and the benchmark use: the same resolution policy, output checks, window
grid, blending and outputs as a user gets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from lcgan_qgis.core.errors import InputRasterError, OutputError
from lcgan_qgis.core.run.settings import Execution, ModelChoice, Rendering, RunSettings, Terrain, Windowing

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Raster:
    """A whole raster in memory: ``(bands, rows, cols)`` pixels, a validity mask and its georeference."""

    path: Path
    pixels: np.ndarray
    valid: np.ndarray
    geotransform: tuple[float, ...]
    projection: str


def shown_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (reports do not name a checkout)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_raster(path: str | Path) -> Raster:
    """Read every band of ``path``; a pixel is valid where every band's mask (nodata, alpha, mask band) says so.

    Raises:
        InputRasterError: the file is missing or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputRasterError(f"Raster not found: {path}")
    try:
        with rasterio.open(path) as ds:
            pixels = ds.read()
            valid = (ds.read_masks() > 0).all(axis=0)
            return Raster(path, pixels, valid, tuple(ds.transform.to_gdal()), ds.crs.to_wkt() if ds.crs else "")
    except rasterio.errors.RasterioError as exc:
        raise InputRasterError(f"Cannot read raster {path}: {exc}") from None


def write_image(path: Path, pixels: np.ndarray, like: Raster, nodata: float = 0.0) -> Path:
    """Write ``(bands, rows, cols)`` uint16 pixels as a GeoTIFF on the grid of ``like``; invalid pixels = nodata."""
    from rasterio.transform import Affine

    bands, rows, cols = pixels.shape
    try:
        with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=bands, dtype="uint16",
                           crs=like.projection or None, transform=Affine.from_gdal(*like.geotransform),
                           nodata=nodata, tiled=True, compress="deflate") as ds:
            ds.write(pixels.astype(np.uint16))
    except rasterio.errors.RasterioError as exc:
        raise OutputError(f"Cannot write {path}: {exc}") from None
    return path


def translate_file(model_path: Path, input_path: Path, output_path: Path, device: str = "auto",
                   overlap_px: int | None = None, window_px: int | None = None, precision: str = "auto",
                   elevation_path: Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Run one model over one raster through the plugin's job; returns what it reports (provider, seconds...).

    ``seed``: the run's texture seed (``Rendering.seed``; models without noise channels ignore it).

    Raises:
        LcganError: the core's specific error (model, input, output).
    """
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.job import TranslationRequest, run_translation

    started = time.perf_counter()
    request = TranslationRequest(
        str(output_path),
        model=ModelChoice(path=str(model_path)),
        settings=RunSettings(
            execution=Execution(device=device, precision=precision),
            windowing=Windowing(overlap_px=overlap_px, window_px=window_px),
            terrain=Terrain(elevation_path=str(elevation_path) if elevation_path else None),
            rendering=Rendering(seed=seed),
        ),
        input_path=str(input_path),
    )
    with GdalReader(input_path) as reader:
        job = run_translation(request, reader, log=log.debug, note=log.info)
    result = job.result
    seconds = time.perf_counter() - started
    log.info("%s -> %s on %s (%s) in %.1f s", input_path.name, output_path.name, result.provider,
             result.precision, seconds)
    return {"model": shown_path(model_path), "input": input_path.name, "provider": result.provider,
            "backend": result.backend, "precision": result.precision, "seconds": round(seconds, 2),
            "tiles": result.tiles,
            **({"elevation": elevation_path.name} if elevation_path else {})}


def area_mask(areas_path: str | Path, like: Raster) -> np.ndarray:
    """Bool ``(rows, cols)`` mask of the pixels whose centres lie inside the polygons of ``areas_path``."""
    from rasterio.crs import CRS
    from rasterio.features import geometry_mask
    from rasterio.transform import Affine

    from ..areas import load_areas

    geometry = load_areas(areas_path).in_crs(CRS.from_wkt(like.projection)).context
    transform = Affine.from_gdal(*like.geotransform)
    return geometry_mask([geometry], out_shape=like.pixels.shape[1:], transform=transform, invert=True)

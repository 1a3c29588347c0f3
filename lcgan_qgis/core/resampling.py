"""Ground sample distance (GSD): decide whether a layer must be resampled for a model, and warp results back.

A model learnt its textures at one GSD (``contract.gsd_m``). A layer whose pixels are more than ``tolerance`` larger
or smaller is read on a grid at the model's GSD (same CRS and extent), translated there, and the result is warped
back onto the layer's own grid, so the output always matches the input pixel for pixel. Layers in a geographic CRS
(degrees) have no GSD in metres: they are refused unless the user switches the check off.

QGIS-free: plain numbers and ``osgeo.gdal``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal

from .errors import Canceled, InputRasterError, OutputError
from .files import GEOTIFF_CREATION_OPTIONS, SIDECAR_SUFFIX, AtomicFile
from .raster import Grid, RasterInfo

LOG = logging.getLogger(__name__)

#: Relative GSD difference tolerated before resampling (10 %).
GSD_TOLERANCE = 0.10
#: Largest enlargement per axis the resolution check does on its own (4x per axis = 16x the pixels).
MAX_UPSAMPLE_FACTOR = 4.0
#: Largest grid (pixels) the resolution check resamples a layer to.
MAX_RESAMPLED_PX = 400_000_000


@dataclass(frozen=True, slots=True)
class ResolutionPlan:
    """What to do about resolution: ``grid`` is ``None`` to run on the layer's own grid. ``message`` explains."""

    grid: Grid | None
    message: str
    layer_gsd_m: float | None


def plan_resolution(info: RasterInfo, metres_per_unit: float | None, model_gsd_m: float,
                    tolerance: float = GSD_TOLERANCE, check: bool = True) -> ResolutionPlan:
    """Compare the layer's pixel size with the model's GSD.

    Args:
        info: the layer's raster description.
        metres_per_unit: metres per CRS unit; ``None`` for a geographic CRS or unknown units.
        model_gsd_m: the model's ground sample distance in metres.
        tolerance: relative difference accepted as is (0.1 = 10 %).
        check: ``False`` runs on the layer's grid whatever its pixel size.

    Raises:
        InputRasterError: geographic CRS (or unknown units) while ``check`` is on; or a layer so much coarser than
            the model (more than :data:`MAX_UPSAMPLE_FACTOR` per axis, or a grid above :data:`MAX_RESAMPLED_PX`)
            that resampling it would multiply its size (the message says how to proceed).
    """
    if not check:
        return ResolutionPlan(None, "Resolution check off: running at the layer's own pixel size.", None)
    if metres_per_unit is None:
        raise InputRasterError(
            f"Layer '{info.name}' is in a geographic CRS (degrees), has no CRS, or its CRS has no linear units, so "
            f"its ground sample distance in metres is unknown (the model expects {model_gsd_m:g} m). Reproject it to a "
            "projected CRS such as UTM (Raster > Projections > Warp), or switch off the resolution check to run "
            "at its own pixel size."
        )
    size_x, size_y = (s * metres_per_unit for s in info.pixel_size)
    layer_gsd = (size_x + size_y) / 2.0
    worst = max(abs(size_x - model_gsd_m), abs(size_y - model_gsd_m)) / model_gsd_m
    if worst <= tolerance:
        return ResolutionPlan(
            None, f"Layer pixel size {size_x:.3g} x {size_y:.3g} m matches the model's {model_gsd_m:g} m.", layer_gsd
        )
    xmin, ymin, xmax, ymax = Grid.of_info(info).bounds()
    step = model_gsd_m / metres_per_unit
    width, height = max(1, round((xmax - xmin) / step)), max(1, round((ymax - ymin) / step))
    _check_resampled_size(info, size_x, size_y, model_gsd_m, step, width, height)
    grid = Grid(width, height, (xmin, (xmax - xmin) / width, 0.0, ymax, 0.0, -(ymax - ymin) / height))
    return ResolutionPlan(
        grid,
        f"Layer pixel size {size_x:.3g} x {size_y:.3g} m differs from the model's {model_gsd_m:g} m by more than "
        f"{tolerance:.0%}: translating on a {width} x {height} grid at the model's resolution and resampling the "
        f"result back to the layer's {info.width} x {info.height} grid.",
        layer_gsd,
    )


def _check_resampled_size(info: RasterInfo, size_x: float, size_y: float, model_gsd_m: float, step: float,
                          width: int, height: int) -> None:
    """Refuse resampling that would enlarge the layer more than the limits allow (see :func:`plan_resolution`).

    ``size_x``/``size_y`` are the layer's pixel size in metres, ``step`` the model's GSD in the layer's CRS units.
    """
    factor = max(size_x, size_y) / model_gsd_m
    pixels = width * height
    if factor <= MAX_UPSAMPLE_FACTOR and pixels <= MAX_RESAMPLED_PX:
        return
    reason = (f"{factor:.3g}x per axis, {factor * factor:.3g}x the pixels" if factor > MAX_UPSAMPLE_FACTOR
              else f"{pixels / 1e6:,.0f} Mpx")
    raise InputRasterError(
        f"Layer '{info.name}' has {size_x:.3g} x {size_y:.3g} m pixels, the model was trained at {model_gsd_m:g} m: "
        f"bringing it to the model's resolution would enlarge its {info.width} x {info.height} px to a {width} x "
        f"{height} px grid ({reason}; the limit is {MAX_UPSAMPLE_FACTOR:g}x per axis and "
        f"{MAX_RESAMPLED_PX / 1e6:,.0f} Mpx). Either switch off the resolution check (CHECK_GSD=false, or untick "
        f"'Resample to the model's resolution' in the dock) to translate at the layer's own pixel size, or "
        f"resample the layer yourself first (e.g. gdalwarp -tr {step:g} {step:g}, or Raster > "
        "Projections > Warp) and translate that."
    )


def warp_to_grid(src: str | Path, dst: str | Path, grid: Grid, categorical: bool,
                 progress: Callable[[float], None] | None = None,
                 is_canceled: Callable[[], bool] | None = None) -> Path:
    """Warp raster ``src`` onto ``grid`` (same CRS) as a tiled GeoTIFF ``dst``, written as an :class:`AtomicFile`
    (see :func:`warp_into`); returns ``dst``.

    Raises:
        OutputError: naming ``dst`` when GDAL cannot write it.
        Canceled: ``is_canceled`` turned true; nothing was written.
    """
    with AtomicFile(dst, sidecars=(SIDECAR_SUFFIX,)) as tmp:  # class names live in the .aux.xml
        warp_into(src, tmp, Path(dst), grid, categorical, progress, is_canceled)
    return Path(dst)


def warp_into(src: str | Path, tmp: Path, dst: Path, grid: Grid, categorical: bool,
              progress: Callable[[float], None] | None = None,
              is_canceled: Callable[[], bool] | None = None) -> None:
    """Warp raster ``src`` onto ``grid`` (same CRS) into ``tmp``, the temporary file of an :class:`AtomicFile` of
    ``dst`` that the caller commits (:func:`warp_to_grid`, or :func:`~lcgan_qgis.core.files.commit_all` for
    several outputs at once).

    Class codes use nearest neighbour, imagery and confidences bilinear interpolation. Nodata, colour table, band
    colour interpretation, descriptions and class names are carried over.

    Raises:
        OutputError: naming ``dst`` when GDAL cannot write it.
        Canceled: ``is_canceled`` turned true.
    """
    src = Path(src)
    xmin, ymin, xmax, ymax = grid.bounds()

    def callback(fraction: float, _message: object, _data: object) -> int:
        if progress is not None:
            progress(fraction)
        return 0 if is_canceled is not None and is_canceled() else 1

    try:
        result = gdal.Warp(
            str(tmp), str(src), format="GTiff", outputBounds=(xmin, ymin, xmax, ymax), width=grid.width,
            height=grid.height, resampleAlg="near" if categorical else "bilinear",
            creationOptions=list(GEOTIFF_CREATION_OPTIONS), multithread=True, callback=callback,
        )
        failure = gdal.GetLastErrorMsg()
        if result is not None:
            _copy_band_descriptions(src, result)
            result.FlushCache()
    except RuntimeError as exc:  # GDAL with exceptions enabled by someone else
        result, failure = None, str(exc)
    if result is None:
        if is_canceled is not None and is_canceled():
            raise Canceled(f"Canceled while resampling to {dst}; nothing was written.")
        raise OutputError(f"Cannot write {dst}: GDAL warp failed ({failure}).")
    result = None  # closed (the last blocks and the .aux.xml written) before the caller's move
    LOG.info("Resampled %s onto a %d x %d grid -> %s", src.name, grid.width, grid.height, dst)


def _copy_band_descriptions(src: Path, dst_ds: gdal.Dataset) -> None:
    src_ds = gdal.Open(str(src))
    try:
        src_ds.GetMetadata()  # GDAL 3.6 GTiff reads the .aux.xml (class names) lazily; GetCategoryNames does not
        for b in range(1, min(src_ds.RasterCount, dst_ds.RasterCount) + 1):
            s, d = src_ds.GetRasterBand(b), dst_ds.GetRasterBand(b)
            d.SetColorInterpretation(s.GetColorInterpretation())
            if s.GetColorTable() is not None and d.GetColorTable() is None:
                d.SetColorTable(s.GetColorTable())
            if s.GetDescription():
                d.SetDescription(s.GetDescription())
            names = s.GetCategoryNames()
            if names:
                d.SetCategoryNames(names)
    finally:
        src_ds = None

"""Ground sample distance (GSD): decide whether a layer must be resampled for a model, and warp results back.

A model learnt its textures at one GSD (``contract.gsd_m``). A layer whose pixels are more than ``tolerance`` larger
or smaller is read on a grid at the model's GSD (same CRS and extent), translated there, and the result is warped
back onto the layer's own grid, so the output always matches the input pixel for pixel. A layer in a geographic CRS
(degrees) is measured in metres at its centre latitude (from its ellipsoid) and resampled on a grid in degrees whose
pixels are the model's GSD on the ground there; a layer without a CRS or linear units is refused unless the user
switches the check off.

QGIS-free: plain numbers and ``osgeo.gdal``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal, osr

from ..errors import Canceled, InputRasterError, OutputError
from ..storage.atomic import AtomicFile
from ..storage.paths import SIDECAR_SUFFIX
from .gdal_io import gdal_call, gdal_errors
from .gdal_io import metres_per_unit as crs_metres_per_unit
from .geotiff import GEOTIFF_CREATION_OPTIONS, build_overviews
from .raster import Grid, RasterInfo

LOG = logging.getLogger(__name__)

#: Relative GSD difference tolerated before resampling (10 %).
GSD_TOLERANCE = 0.10
#: Largest enlargement per axis the resolution check does on its own (4x per axis = 16x the pixels).
MAX_UPSAMPLE_FACTOR = 4.0
#: Largest grid (pixels) the resolution check resamples a layer to.
MAX_RESAMPLED_PX = 400_000_000


@dataclass(frozen=True)
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
    xmin, ymin, xmax, ymax = Grid.of_info(info).bounds()
    scale = ground_scale(info.crs_wkt, metres_per_unit, (ymin + ymax) / 2.0)
    if scale is None:
        raise InputRasterError(
            f"Layer '{info.name}' has no CRS, or its CRS has no linear units, so its ground sample distance in "
            f"metres is unknown (the model expects {model_gsd_m:g} m). Assign or reproject it to a projected "
            "CRS such as UTM (Raster > Projections > Warp), or switch off the resolution check to run at its "
            "own pixel size."
        )
    metres_x, metres_y, where = scale
    note = ""
    if where:
        note = (f"Layer '{info.name}' is {where}: a pixel of {info.pixel_size[0]:.3g} x {info.pixel_size[1]:.3g} "
                f"CRS units is {info.pixel_size[0] * metres_x:.3g} x {info.pixel_size[1] * metres_y:.3g} m on the "
                "ground. ")
    size_x, size_y = info.pixel_size[0] * metres_x, info.pixel_size[1] * metres_y
    layer_gsd = (size_x + size_y) / 2.0
    worst = max(abs(size_x - model_gsd_m), abs(size_y - model_gsd_m)) / model_gsd_m
    if worst <= tolerance:
        return ResolutionPlan(
            None, f"{note}Layer pixel size {size_x:.3g} x {size_y:.3g} m matches the model's {model_gsd_m:g} m.",
            layer_gsd,
        )
    step_x, step_y = model_gsd_m / metres_x, model_gsd_m / metres_y
    width, height = max(1, round((xmax - xmin) / step_x)), max(1, round((ymax - ymin) / step_y))
    _check_resampled_size(info, size_x, size_y, model_gsd_m, (step_x, step_y), width, height)
    grid = Grid(width, height, (xmin, (xmax - xmin) / width, 0.0, ymax, 0.0, -(ymax - ymin) / height))
    return ResolutionPlan(
        grid,
        f"{note}Layer pixel size {size_x:.3g} x {size_y:.3g} m differs from the model's {model_gsd_m:g} m by more "
        f"than {tolerance:.0%}: translating on a {width} x {height} grid at the model's resolution "
        f"({step_x:.3g} x {step_y:.3g} CRS units per pixel) and resampling the result back to the layer's "
        f"{info.width} x {info.height} grid.",
        layer_gsd,
    )


def degree_metres(crs_wkt: str, latitude: float) -> tuple[float, float] | None:
    """Metres per CRS unit east-west and north-south at ``latitude`` (in the CRS's angular units) for a geographic
    CRS, from its ellipsoid (radii of curvature of the parallel and the meridian); ``None`` for any other CRS."""
    if not crs_wkt:
        return None
    srs = osr.SpatialReference()
    with gdal_errors() as errors:
        status = gdal_call(errors, srs.ImportFromWkt, crs_wkt)
    if status != 0 or not srs.IsGeographic():
        return None
    radians_per_unit = srs.GetAngularUnits() or math.pi / 180.0
    inverse_flattening = srs.GetInvFlattening()
    flattening = 1.0 / inverse_flattening if inverse_flattening else 0.0
    e2 = flattening * (2.0 - flattening)
    phi = max(-89.9, min(89.9, latitude * radians_per_unit * 180.0 / math.pi)) * math.pi / 180.0
    w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
    semi_major = srs.GetSemiMajor()
    prime_vertical, meridian = semi_major / w, semi_major * (1.0 - e2) / w**3
    return prime_vertical * math.cos(phi) * radians_per_unit, meridian * radians_per_unit


def mercator_latitude(crs_wkt: str, y: float) -> float | None:
    """The latitude (degrees) of northing ``y`` in a Mercator CRS (Web Mercator's EPSG:3857 included), whose units
    are ground metres only at the equator; ``None`` for any other CRS."""
    if not crs_wkt:
        return None
    srs = osr.SpatialReference()
    with gdal_errors() as errors:
        status = gdal_call(errors, srs.ImportFromWkt, crs_wkt)
    if status != 0 or not srs.IsProjected() or srs.GetAttrValue("PROJECTION") not in ("Mercator_1SP", "Mercator_2SP"):
        return None
    radius = srs.GetSemiMajor() / (srs.GetLinearUnits() or 1.0)
    return math.degrees(math.atan(math.sinh(y / radius)))


def ground_scale(crs_wkt: str, metres_per_unit: float | None, y: float) -> tuple[float, float, str] | None:
    """Ground metres per CRS unit along x and y at northing or latitude ``y``, and a clause saying where they
    came from when the CRS units are not ground metres (``""`` otherwise); ``None`` when unknown.

    A geographic CRS is measured on its ellipsoid at that latitude; a Mercator CRS (the web maps' EPSG:3857)
    shrinks its metres by cos(latitude); other projected CRSs use their linear units (conformal projections such
    as UTM stay within 0.1 % of the ground).
    """
    if metres_per_unit is None:
        scale = degree_metres(crs_wkt, y)
        if scale is None:
            return None
        return scale[0], scale[1], f"in a geographic CRS (degrees); at its centre latitude {y:.4g}°"
    latitude = mercator_latitude(crs_wkt, y)
    if latitude is None:
        return metres_per_unit, metres_per_unit, ""
    factor = metres_per_unit * math.cos(math.radians(latitude))
    return factor, factor, (f"in a Mercator CRS, whose units are ground metres only at the equator; at its centre "
                            f"latitude {latitude:.4g}°")


def ground_pixel_size_m(geotransform: Sequence[float], height: int, crs_wkt: str) -> tuple[float, float] | None:
    """``(x, y)`` pixel size in metres on the ground at the raster's centre row, by :func:`ground_scale` (the one
    metres-per-pixel rule: the resolution policy, the terrain channels and training's ``gsd_m``); ``None`` when the
    CRS is missing or has no known unit."""
    scale = ground_scale(crs_wkt, crs_metres_per_unit(crs_wkt), geotransform[3] + geotransform[5] * height / 2.0)
    if scale is None:
        return None
    return abs(geotransform[1]) * scale[0], abs(geotransform[5]) * scale[1]


def area_grid(bounds: tuple[float, float, float, float], crs_wkt: str, metres_per_unit: float | None,
              model_gsd_m: float, name: str) -> tuple[Grid, str]:
    """A grid over ``bounds`` (``xmin, ymin, xmax, ymax`` in the CRS) whose pixels are the model's GSD on the
    ground, for sources without pixels of their own (web tile services), and a message saying what it is.

    Raises:
        InputRasterError: the ground scale of the CRS is unknown, or the grid would pass :data:`MAX_RESAMPLED_PX`.
    """
    xmin, ymin, xmax, ymax = bounds
    scale = ground_scale(crs_wkt, metres_per_unit, (ymin + ymax) / 2.0)
    if scale is None:
        raise InputRasterError(f"Layer '{name}' has no CRS with a known ground scale; lcgan cannot choose its "
                               f"pixel size. Export it as a GeoTIFF at {model_gsd_m:g} m first.")
    step_x, step_y = model_gsd_m / scale[0], model_gsd_m / scale[1]
    width, height = max(1, math.ceil((xmax - xmin) / step_x)), max(1, math.ceil((ymax - ymin) / step_y))
    if width * height > MAX_RESAMPLED_PX:
        raise InputRasterError(
            f"The area to translate from layer '{name}' is {width} x {height} px at the model's {model_gsd_m:g} m "
            f"({width * height / 1e6:,.0f} Mpx; the limit is {MAX_RESAMPLED_PX / 1e6:,.0f} Mpx): choose a smaller "
            "area, e.g. zoom in and use the visible extent."
        )
    grid = Grid(width, height, (xmin, step_x, 0.0, ymax, 0.0, -step_y))
    where = f" ({scale[2]})" if scale[2] else ""
    return grid, (f"Layer '{name}' is a web tile service: reading the chosen area as a {width} x {height} px image "
                  f"at the model's {model_gsd_m:g} m per pixel{where}.")


def _check_resampled_size(info: RasterInfo, size_x: float, size_y: float, model_gsd_m: float,
                          step: tuple[float, float], width: int, height: int) -> None:
    """Refuse resampling that would enlarge the layer more than the limits allow (see :func:`plan_resolution`).

    ``size_x``/``size_y`` are the layer's pixel size in metres, ``step`` the model's GSD in CRS units (x, y).
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
        f"resample the layer yourself first (e.g. gdalwarp -tr {step[0]:g} {step[1]:g}, or Raster > "
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
    ``dst`` that the caller commits (:func:`warp_to_grid`, or :func:`~lcgan_qgis.core.storage.files.commit_all` for
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
            _copy_band_descriptions(src, result)  # (gdal.Warp copies the dataset metadata: the provenance tags)
            result.FlushCache()
            build_overviews(result, categorical, str(dst))
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

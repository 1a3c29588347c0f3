"""Elevation for terrain-aware models: a DEM presented on the grid being translated, and the terrain plan.

:class:`ElevationReader` reads one band of a DEM (any GDAL raster: any CRS, pixel size or extent) on a target grid:
directly when the DEM already is on that grid, else through a warped VRT (``gdal.Warp(format="VRT")`` in
``/vsimem``) that resamples each block when it is read, so nothing is resampled ahead and memory stays bounded. (The
readers' ``on_grid`` keeps the CRS and the extent; a DEM usually needs both changed.) Resampling is bilinear, or the
average when the DEM's pixels are under half the grid's (e.g. a 1 m lidar DEM onto a 30 m grid), with exact
coordinate transforms (``errorThreshold=0``). Measured on a plane: a coarser or equal DEM (e.g. SRTM's 3 arc-seconds,
or 40 m, onto 30 m) is reproduced exactly; a DEM slightly finer than the grid (22 x 28 m in degrees onto 30 m UTM)
comes back with 0.28 m of noise (std; GDAL's warper widens the kernel when it shrinks), far below a DEM's own
error. Values come back as float64 in the DEM's units (band scale and offset
applied), NaN where the DEM is nodata or absent.

:func:`settle_terrain` settles the run's terrain choices (sun, vertical unit, pixel size) into a :class:`TerrainPlan`
and counts the pixels without elevation (flat terrain there, with a warning); :meth:`TerrainPlan.deriver` gives the
:class:`~lcgan_qgis.core.terrain.channels.TerrainDeriver` the engine calls for every window (with its halo), and
:func:`plan_terrain` does both. The plan is small and picklable: a distributed job settles it once on the client and
each worker opens the DEM itself (:mod:`lcgan_qgis.mosaic.tile`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from osgeo import gdal, osr

from ..errors import InputRasterError
from ..rasters.gdal_io import GdalReader, gdal_call, gdal_errors
from ..rasters.raster import Grid, RasterInfo, Window
from ..rasters.resampling import ground_pixel_size_m
from .channels import TerrainDeriver, TerrainInputs

if TYPE_CHECKING:
    from ..model.contract import ModelContract

log = logging.getLogger(__name__)

#: Metres per vertical unit, by the unit names GDAL rasters carry (``GetUnitType()``, lower case).
VERTICAL_UNITS_M = {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0, "ft": 0.3048,
                    "foot": 0.3048, "feet": 0.3048, "international foot": 0.3048, "us survey foot": 1200 / 3937,
                    "ftus": 1200 / 3937, "us-ft": 1200 / 3937, "dm": 0.1, "cm": 0.01}
SCAN_ROWS = 256
AVERAGE_BELOW = 0.5  # DEM pixel / grid pixel below which the DEM is averaged rather than interpolated


class ElevationReader:
    """Band ``band`` of the DEM at ``path`` on ``target``'s grid; a context manager. Errors name the DEM.

    Attributes:
        info: the target grid (name: the DEM's path, one float64 band, NaN nodata).
        resampling: ``None`` when the DEM is on the grid already, else the GDAL resampling used.
        vertical_unit_m: metres per DEM unit as the raster states it (``None``: it states none or an unknown one).

    Raises:
        InputRasterError: missing or unreadable file, no such band, a complex or non-numeric band, or a DEM or grid
            without a CRS that is not exactly on the grid.
    """

    def __init__(self, path: str | Path, target: RasterInfo, band: int = 1) -> None:
        self.name = str(path)
        if not Path(path).exists() and not self.name.startswith("/vsi"):
            raise InputRasterError(f"Elevation raster not found: {path}")
        with gdal_errors() as errors:
            dataset = gdal_call(errors, gdal.Open, self.name, gdal.GA_ReadOnly)
        if dataset is None:
            raise InputRasterError(f"Cannot open the elevation raster {path}: {errors[-1] if errors else 'unknown'}")
        try:
            if not 1 <= band <= dataset.RasterCount:
                raise InputRasterError(f"Elevation raster {path} has {dataset.RasterCount} band(s); band {band} "
                                       "does not exist.")
            source = dataset.GetRasterBand(band)
            kind = gdal.GetDataTypeName(source.DataType)
            if kind.startswith("C") or kind in ("Unknown",):
                raise InputRasterError(f"Elevation raster {path} band {band} is {kind}; elevation must be an integer "
                                       "or floating-point band.")
            self.band_count = dataset.RasterCount
            unit = (source.GetUnitType() or "").strip().lower()
            self.vertical_unit_name = unit
            self.vertical_unit_m = VERTICAL_UNITS_M.get(unit)
            self._scale = source.GetScale() or 1.0
            self._offset = source.GetOffset() or 0.0
            self._nodata = source.GetNoDataValue()
            src_grid = Grid(dataset.RasterXSize, dataset.RasterYSize,
                            tuple(dataset.GetGeoTransform(can_return_null=False)))  # type: ignore[arg-type]
            src_wkt = dataset.GetProjection() or ""
            self._vsimem: list[str] = []
            self.resampling: str | None = None
            if _same_grid(src_grid, src_wkt, Grid.of_info(target), target.crs_wkt):
                self._reader = GdalReader(path)
                self._band = band
            else:
                if not src_wkt or not target.crs_wkt:
                    missing = self.name if not src_wkt else target.name
                    raise InputRasterError(
                        f"{missing} has no CRS, so the elevation raster {path} can only be used when it is on exactly "
                        f"the grid of {target.name} (same size and geotransform). Assign the CRS first."
                    )
                self.resampling = _resampling(dataset, src_wkt, target)
                self._vsimem = _write_warped_vrt(self.name, dataset.RasterCount, band, target, self.resampling,
                                                 self._nodata)
                self._reader = GdalReader(self._vsimem[-1])
                self._band, self._nodata = 1, math.nan
        finally:
            dataset = None
        self.info = dataclasses.replace(target, name=self.name, band_count=1, dtype="float64", nodata=(math.nan,))

    def read(self, window: Window) -> np.ndarray:
        """``(height, width)`` float64 elevations of ``window`` in the DEM's units, NaN where there is none."""
        raw = self._reader.read(window, (self._band,))[0]
        z = raw.astype(np.float64)
        if self._nodata is not None and not math.isnan(self._nodata):
            z[raw == self._nodata] = np.nan
        if self._scale != 1.0 or self._offset != 0.0:
            z = z * self._scale + self._offset
        return z

    def describe(self) -> str:
        """How the DEM is read, for the log."""
        if self.resampling is None:
            return f"{Path(self.name).name} (on the grid already)"
        return f"{Path(self.name).name} (resampled onto the grid on the fly, {self.resampling})"

    def close(self) -> None:
        """Close the DEM and drop the warped VRT (idempotent)."""
        self._reader.close()
        with gdal_errors():
            for name in self._vsimem:
                gdal.Unlink(name)
        self._vsimem = []

    def __enter__(self) -> ElevationReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_srs(wkt_a: str, wkt_b: str) -> bool:
    if not wkt_a or not wkt_b:
        return not wkt_a and not wkt_b
    a, b = osr.SpatialReference(), osr.SpatialReference()
    with gdal_errors() as errors:
        if gdal_call(errors, a.ImportFromWkt, wkt_a) != 0 or gdal_call(errors, b.ImportFromWkt, wkt_b) != 0:
            return False
    return bool(a.IsSame(b))


def _same_grid(a: Grid, wkt_a: str, b: Grid, wkt_b: str) -> bool:
    """Same size, geotransform (to 1e-6 px) and CRS."""
    if (a.width, a.height) != (b.width, b.height):
        return False
    tolerance = 1e-6 * max(abs(b.geotransform[1]), abs(b.geotransform[5]))
    if any(abs(x - y) > tolerance for x, y in zip(a.geotransform, b.geotransform)):
        return False
    return _same_srs(wkt_a, wkt_b)


def _resampling(dataset: gdal.Dataset, src_wkt: str, target: RasterInfo) -> str:
    """``"average"`` when the DEM's pixels (in the target CRS) are under half the grid's, else ``"bilinear"``."""
    if _same_srs(src_wkt, target.crs_wkt):
        src_px = abs(dataset.GetGeoTransform()[1])
    else:
        with gdal_errors() as errors:
            suggested = gdal_call(errors, gdal.AutoCreateWarpedVRT, dataset, src_wkt, target.crs_wkt)
        if suggested is None:
            raise InputRasterError(f"Cannot reproject the elevation raster {dataset.GetDescription()} into the CRS "
                                   f"of {target.name}: {errors[-1] if errors else 'GDAL failed'}")
        src_px = abs(suggested.GetGeoTransform()[1])
        suggested = None
    return "average" if src_px < AVERAGE_BELOW * target.pixel_size[0] else "bilinear"


def _write_warped_vrt(source: str, band_count: int, band: int, target: RasterInfo, resampling: str,
                      nodata: float | None) -> list[str]:
    """Write the VRTs presenting band ``band`` of ``source`` on ``target``'s grid into ``/vsimem``; returns their
    names, the warped one last (a band-selecting VRT comes first when the DEM has several bands: GDAL 3.6's warp
    has no band option)."""
    stem = f"/vsimem/lcgan-elevation-{uuid.uuid4().hex}"
    names: list[str] = []
    with gdal_errors() as errors:
        if band_count > 1:
            names.append(f"{stem}-band.vrt")
            picked = gdal_call(errors, gdal.Translate, names[-1], source, format="VRT", bandList=[band])
            if picked is None:
                raise InputRasterError(f"Cannot read band {band} of the elevation raster {source}: "
                                       f"{errors[-1] if errors else 'GDAL failed'}")
            picked = None
            source = names[-1]
        xmin, ymin, xmax, ymax = Grid.of_info(target).bounds()
        names.append(f"{stem}.vrt")
        warped = gdal_call(errors, gdal.Warp, names[-1], source, format="VRT", dstSRS=target.crs_wkt,
                           outputBounds=(xmin, ymin, xmax, ymax), width=target.width, height=target.height,
                           resampleAlg=resampling, outputType=gdal.GDT_Float32, dstNodata=math.nan,
                           errorThreshold=0.0, **({"srcNodata": nodata} if nodata is not None else {}))
    if warped is None:
        for name in names:
            gdal.Unlink(name)
        raise InputRasterError(f"Cannot resample the elevation raster {source} onto the grid of {target.name}: "
                               f"{errors[-1] if errors else 'GDAL failed'}")
    warped.FlushCache()
    warped = None
    return names


@dataclasses.dataclass(frozen=True)
class TerrainPlan:
    """A run's settled terrain choices (:func:`settle_terrain`): which DEM, and how its channels are derived.

    Attributes:
        elevation_path: the DEM (any GDAL raster; :class:`ElevationReader` presents it on the run's grid).
        metres_per_unit: metres per DEM unit.
        pixel_size_m: ``(x, y)`` size of the grid's pixels in metres.
        sun_azimuth_deg, sun_elevation_deg: the sun for the hillshade.
    """

    elevation_path: str
    metres_per_unit: float
    pixel_size_m: tuple[float, float]
    sun_azimuth_deg: float
    sun_elevation_deg: float

    def deriver(self, terrain: TerrainInputs, elevation: ElevationReader) -> TerrainDeriver:
        """The terrain channels of any window of ``elevation``'s grid (the DEM this plan names, opened on it)."""
        info = elevation.info
        read = functools.partial(_read_metres, elevation, self.metres_per_unit)
        return TerrainDeriver(terrain, read, info.width, info.height, self.pixel_size_m, self.sun_azimuth_deg,
                              self.sun_elevation_deg)


def settle_terrain(terrain: TerrainInputs, elevation: ElevationReader, info: RasterInfo, *,
                   sun_azimuth_deg: float | None = None, sun_elevation_deg: float | None = None,
                   metres_per_unit: float | None = None, fallback_gsd_m: float = 30.0,
                   is_canceled: Callable[[], bool] | None = None) -> tuple[TerrainPlan, list[str]]:
    """The terrain choices of a run over ``info``'s grid, and the messages for the user.

    Args:
        terrain: the model's terrain inputs.
        elevation: the DEM on ``info``'s grid.
        info: the grid being translated.
        sun_azimuth_deg, sun_elevation_deg: the sun for the hillshade (None: the model's).
        metres_per_unit: metres per DEM unit (None: the unit the raster states, else the model's).
        fallback_gsd_m: pixel size in metres when ``info``'s CRS has none (the model's GSD).
        is_canceled: polled between strips of the nodata count.

    The sun and the unit are a run's :class:`~lcgan_qgis.core.run.settings.Terrain`, which checked them when it was
    built.

    Raises:
        InputRasterError: the DEM is not on the grid, or holds no elevation anywhere on it.
    """
    if (elevation.info.width, elevation.info.height, elevation.info.geotransform) != (
            info.width, info.height, info.geotransform):
        raise InputRasterError(f"The elevation {elevation.name} is presented on a {elevation.info.width}x"
                               f"{elevation.info.height} grid, not on the grid of {info.name}.")
    azimuth = terrain.sun_azimuth_deg if sun_azimuth_deg is None else sun_azimuth_deg
    sun_elevation = terrain.sun_elevation_deg if sun_elevation_deg is None else sun_elevation_deg
    messages = []
    unit, unit_origin = vertical_unit_m(terrain, elevation, metres_per_unit)
    pixel = ground_pixel_size_m(info.geotransform, info.height, info.crs_wkt)
    if pixel is None:
        pixel = (fallback_gsd_m, fallback_gsd_m)
        messages.append(f"{info.name} has no CRS with a known unit: the terrain is derived with the model's "
                        f"{fallback_gsd_m:g} m pixels.")
    missing, total = _count_missing(elevation, is_canceled)
    if missing == total:
        raise InputRasterError(
            f"The elevation raster {elevation.name} has no elevation on the area of {info.name}: it does not overlap "
            "it, or every pixel there is nodata. Give a DEM that covers the land cover."
        )
    sun_origin = "the model's" if sun_azimuth_deg is None and sun_elevation_deg is None else "chosen"
    messages.append(f"Terrain: {', '.join(terrain.channels)} from {elevation.describe()}, {unit_origin}; sun azimuth "
                    f"{azimuth:g} deg, elevation {sun_elevation:g} deg ({sun_origin}).")
    if missing:
        messages.append(f"Warning: {missing:,} of {total:,} pixels ({100.0 * missing / total:.2f} %) have no elevation "
                        f"in {Path(elevation.name).name} (nodata or outside it): the terrain is flat there.")
    plan = TerrainPlan(elevation.name, float(unit), (float(pixel[0]), float(pixel[1])), float(azimuth),
                       float(sun_elevation))
    return plan, messages


def plan_terrain(terrain: TerrainInputs, elevation: ElevationReader, info: RasterInfo, *,
                 sun_azimuth_deg: float | None = None, sun_elevation_deg: float | None = None,
                 metres_per_unit: float | None = None, fallback_gsd_m: float = 30.0,
                 is_canceled: Callable[[], bool] | None = None) -> tuple[TerrainDeriver, list[str]]:
    """:func:`settle_terrain`, then the plan's :class:`~lcgan_qgis.core.terrain.channels.TerrainDeriver` over
    ``elevation`` (same arguments and errors)."""
    plan, messages = settle_terrain(terrain, elevation, info, sun_azimuth_deg=sun_azimuth_deg,
                                    sun_elevation_deg=sun_elevation_deg, metres_per_unit=metres_per_unit,
                                    fallback_gsd_m=fallback_gsd_m, is_canceled=is_canceled)
    return plan.deriver(terrain, elevation), messages


def vertical_unit_m(terrain: TerrainInputs, elevation: ElevationReader,
                   metres_per_unit: float | None) -> tuple[float, str]:
    """Metres per DEM unit for the run and a phrase saying where it comes from."""
    if metres_per_unit is not None:
        return float(metres_per_unit), f"{metres_per_unit:g} m per unit (chosen)"
    if elevation.vertical_unit_m is not None:
        return elevation.vertical_unit_m, (f"{elevation.vertical_unit_m:g} m per unit (the raster's unit "
                                           f"'{elevation.vertical_unit_name}')")
    model_unit = terrain.dem_metres_per_unit
    return model_unit, f"{model_unit:g} m per unit (the model's; the raster states none)"


def _count_missing(elevation: ElevationReader, is_canceled: Callable[[], bool] | None) -> tuple[int, int]:
    """``(pixels without elevation, all pixels)`` of the grid, read in strips (bounded memory)."""
    info = elevation.info
    missing = 0
    for row in range(0, info.height, SCAN_ROWS):
        if is_canceled is not None and is_canceled():
            break
        strip = elevation.read(Window(0, row, info.width, min(SCAN_ROWS, info.height - row)))
        missing += int(np.count_nonzero(~np.isfinite(strip)))
    return missing, info.width * info.height


def _read_metres(elevation: ElevationReader, metres_per_unit: float, window: Window) -> np.ndarray:
    return elevation.read(window) * metres_per_unit


def missing_elevation_message(contract: ModelContract, model_path: object = None) -> str:
    """What to say when a terrain-aware model gets no elevation."""
    name = f"Model {Path(str(model_path)).name}" if model_path else f"Model {contract.model_version}"
    channels = ", ".join(contract.terrain.channels) if contract.terrain is not None else "terrain"
    return (f"{name} is terrain-aware: it needs an elevation raster (a DEM covering the land cover, any CRS) to "
            f"derive its {channels} input. Give one: ELEVATION in Processing, 'Elevation' in the dock, --elevation "
            "on the command line; or choose a map-only model.")


def require_elevation(contract: ModelContract, elevation: object, model_path: object = None) -> None:
    """The rule for terrain-aware models: no DEM (``elevation`` a path or reader, falsy when missing) is an error.

    Raises:
        InputRasterError: :func:`missing_elevation_message`.
    """
    if contract.terrain is not None and not elevation:
        raise InputRasterError(missing_elevation_message(contract, model_path))


def ignored_elevation_message(name: str) -> str:
    """What to say when elevation is given to a model that does not read it."""
    return f"Warning: the model reads no elevation (a map-only model); the elevation raster {name} is ignored."

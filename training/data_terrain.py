"""The terrain channels of training windows: one DEM resampled once onto the grid of every land-cover and image
raster, with the engine's own reader (:class:`~lcgan_qgis.core.terrain.elevation.ElevationReader`: the same
resampling as at inference), kept in memory (4 bytes per pixel); each window's channels are derived by
:class:`~lcgan_qgis.core.terrain.channels.TerrainDeriver`, halo included, exactly as the engine does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rasterio.windows import Window

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.rasters.raster import Window as CoreWindow
from lcgan_qgis.core.terrain.channels import TerrainDeriver, TerrainInputs
from lcgan_qgis.core.terrain.elevation import ElevationReader, vertical_unit_m

if TYPE_CHECKING:
    from .sources import RasterSource

log = logging.getLogger(__name__)


class TerrainRasters:
    """One DEM resampled once onto the grid of each of ``sources``; the terrain channels of their windows.

    Args:
        dem: the elevation raster (any CRS and grid).
        sources: the rasters whose windows need terrain.
        inputs: the terrain channels and their parameters (``TrainConfig.terrain_inputs()``).

    Raises:
        InputRasterError: the DEM cannot be read, or has no elevation on one of the rasters.
    """

    def __init__(self, dem: str | Path, sources: Sequence[RasterSource], inputs: TerrainInputs) -> None:
        self.dem, self.inputs = str(dem), inputs
        self._metres: dict[str, np.ndarray] = {}
        self._pixel: dict[str, tuple[float, float]] = {}
        for s in sources:
            if s.path in self._metres:
                continue
            with ElevationReader(dem, s.grid_info()) as reader:
                unit, origin = vertical_unit_m(inputs, reader, None)
                metres = (reader.read(CoreWindow(0, 0, s.width, s.height)) * unit).astype(np.float32)
                how = reader.describe()
            missing = int(np.count_nonzero(~np.isfinite(metres)))
            if missing == metres.size:
                raise InputRasterError(f"The elevation raster {dem} has no elevation on the area of {s.path} (it does "
                                       "not overlap it, or every pixel there is nodata).")
            pixel = s.pixel_size_m
            if pixel is None:
                raise InputRasterError(f"{s.path} has no CRS with a known unit: terrain channels need its pixel size "
                                       "in metres. Assign a projected CRS.")
            self._metres[s.path], self._pixel[s.path] = metres, pixel
            log.info("elevation on %s: %s, %s; %d pixels (%.2f %%) without elevation (flat terrain)", s.path, how,
                     origin, missing, 100.0 * missing / metres.size)

    def deriver(self, source: RasterSource) -> TerrainDeriver:
        metres = self._metres[source.path]
        read = functools.partial(_slice, metres)
        return TerrainDeriver(self.inputs, read, source.width, source.height, self._pixel[source.path],
                              self.inputs.sun_azimuth_deg, self.inputs.sun_elevation_deg)

    def channels(self, source: RasterSource, window: Window) -> np.ndarray:
        """``(C, h, w)`` float32 terrain channels of ``window`` (a rasterio window of ``source``)."""
        return self.deriver(source).channels(_core_window(window))

    def valid(self, source: RasterSource, window: Window) -> np.ndarray:
        """Pixels of ``window`` that have an elevation."""
        return np.isfinite(_slice(self._metres[source.path], _core_window(window)))


def _core_window(window: Window) -> CoreWindow:
    return CoreWindow(int(window.col_off), int(window.row_off), int(window.width), int(window.height))


def _slice(array: np.ndarray, window: CoreWindow) -> np.ndarray:
    return array[window.toslices()]

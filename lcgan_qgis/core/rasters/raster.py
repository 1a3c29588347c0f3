"""What the engine needs from a raster, independent of who reads it (GDAL file, QGIS data provider, numpy).

Axis order everywhere: ``(bands, rows, cols)`` for arrays; windows are ``(col_off, row_off, width, height)`` in
pixels like rasterio's. Band numbers are 1-based like GDAL's and QGIS's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

GeoTransform = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Window:
    """A pixel window: ``col_off``, ``row_off``, ``width``, ``height`` (all ints, width/height >= 0)."""

    col_off: int
    row_off: int
    width: int
    height: int

    def toslices(self) -> tuple[slice, slice]:
        """``(row_slice, col_slice)`` for indexing a ``(rows, cols)`` array."""
        return slice(self.row_off, self.row_off + self.height), slice(self.col_off, self.col_off + self.width)

    @classmethod
    def from_slices(cls, rows: slice, cols: slice) -> Window:
        return cls(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    def intersection(self, other: Window) -> Window | None:
        c0, r0 = max(self.col_off, other.col_off), max(self.row_off, other.row_off)
        c1, r1 = min(self.col_end, other.col_end), min(self.row_end, other.row_end)
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)


@dataclass(frozen=True)
class RasterInfo:
    """Shape, type and georeference of a raster, plus a name for messages (layer name or file path)."""

    name: str
    width: int
    height: int
    band_count: int
    dtype: str
    nodata: tuple[float | None, ...]
    geotransform: GeoTransform
    crs_wkt: str

    @property
    def is_rotated(self) -> bool:
        return self.geotransform[2] != 0.0 or self.geotransform[4] != 0.0

    @property
    def pixel_size(self) -> tuple[float, float]:
        """``(x, y)`` pixel size in CRS units (positive)."""
        gt = self.geotransform
        return math.hypot(gt[1], gt[4]), math.hypot(gt[2], gt[5])


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: size in pixels and a GDAL geotransform (``gt[2] == gt[4] == 0``)."""

    width: int
    height: int
    geotransform: GeoTransform

    def bounds(self, window: Window | None = None) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of ``window`` (default: the whole grid) in CRS units."""
        window = window or Window(0, 0, self.width, self.height)
        x0, dx, _, y0, _, dy = self.geotransform
        left, top = x0 + window.col_off * dx, y0 + window.row_off * dy
        return left, top + window.height * dy, left + window.width * dx, top

    @property
    def pixel_size(self) -> tuple[float, float]:
        return abs(self.geotransform[1]), abs(self.geotransform[5])

    @classmethod
    def of_info(cls, info: RasterInfo) -> Grid:
        return cls(info.width, info.height, info.geotransform)


@runtime_checkable
class RasterReader(Protocol):
    """A readable raster. Implementations: ``core.gdal_io.GdalReader``, the plugin's provider reader."""

    info: RasterInfo

    def read(self, window: Window, bands: Sequence[int]) -> np.ndarray:
        """Pixels of ``window`` (inside the raster) for 1-based ``bands``: ``(len(bands), height, width)``,
        in the raster's own dtype (``info.dtype``). Must be safe to call from one worker thread."""
        ...


def read_valid_mask(reader: RasterReader, window: Window, bands: Sequence[int]) -> np.ndarray | None:
    """``(height, width)`` bool mask of the pixels of ``window`` that ``reader``'s alpha or mask band marks valid,
    or ``None`` when it has none (every pixel counts).

    Readers may offer ``read_mask(window, bands)`` (the GDAL and QGIS readers do); nodata values are not part of
    it (they are read from the pixels).
    """
    method = getattr(reader, "read_mask", None)
    return None if method is None else method(window, bands)

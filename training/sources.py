"""One training raster as the trainer sees it: path, size and georeference, read once (handles open lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.rasters.raster import RasterInfo
from lcgan_qgis.core.rasters.resampling import ground_pixel_size_m


@dataclass(frozen=True)
class RasterSource:
    """One GeoTIFF: path, size and georeference (read once, handles opened lazily per process)."""

    path: str
    width: int
    height: int
    count: int
    crs: Any
    transform: Any
    nodata: float | None
    nodatavals: tuple[float | None, ...] = ()  # per band (1-based band b at index b - 1)

    @classmethod
    def open(cls, path: str | Path) -> RasterSource:
        try:
            with rasterio.open(path) as ds:
                return cls(str(path), ds.width, ds.height, ds.count, ds.crs, ds.transform, ds.nodata,
                           tuple(ds.nodatavals))
        except rasterio.errors.RasterioIOError as exc:
            raise InputRasterError(f"Cannot open raster {path}: {exc}") from None

    def band_nodata(self, bands: Sequence[int]) -> tuple[float | None, ...]:
        """The nodata value of each of ``bands`` (1-based)."""
        values = self.nodatavals or (self.nodata,) * self.count
        return tuple(values[b - 1] for b in bands)

    @property
    def pixel_size_crs(self) -> float:
        """Mean pixel side in the CRS's units (metres, feet or degrees)."""
        return float((abs(self.transform.a) + abs(self.transform.e)) / 2)

    @property
    def crs_wkt(self) -> str:
        return self.crs.to_wkt() if self.crs is not None else ""

    @property
    def pixel_size_m(self) -> tuple[float, float] | None:
        """``(x, y)`` pixel size in metres on the ground (the core's rule: CRS units times the CRS's linear unit,
        degrees and Mercator metres converted at the centre latitude); None without a CRS or with an unknown unit."""
        return ground_pixel_size_m(self.transform.to_gdal(), self.height, self.crs_wkt)

    @property
    def gsd_m(self) -> float:
        """Mean pixel side in metres (what the model contract's ``gsd_m`` means); CRS units when the CRS has no
        known unit."""
        size = self.pixel_size_m
        return float(sum(size) / 2) if size is not None else self.pixel_size_crs

    def grid_info(self) -> RasterInfo:
        """The raster's grid as the core describes it (for presenting a DEM on it)."""
        return RasterInfo(self.path, self.width, self.height, self.count, "float64", (None,) * self.count,
                          self.transform.to_gdal(), self.crs_wkt)

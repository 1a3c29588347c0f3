"""Test helpers: GeoTIFFs written with GDAL, and a numpy RasterReader (the protocol the plugin's reader follows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from osgeo import gdal, gdal_array, osr

from lcgan_qgis.core.rasters.raster import RasterInfo, Window

UTM12N = 32612
GEOTRANSFORM = (300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0)


def crs_wkt(epsg: int = UTM12N) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def write_tif(path: Path | str, pixels: np.ndarray, nodata: float | None = None,
              geotransform: Sequence[float] = GEOTRANSFORM, epsg: int | None = UTM12N) -> Path:
    """Write ``(bands, rows, cols)`` (or ``(rows, cols)``) pixels as a GeoTIFF."""
    pixels = pixels[None] if pixels.ndim == 2 else pixels
    bands, rows, cols = pixels.shape
    gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(pixels.dtype.type)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands, gdal_type)
    ds.SetGeoTransform(tuple(geotransform))
    if epsg is not None:
        ds.SetProjection(crs_wkt(epsg))
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(pixels[b])
        if nodata is not None:
            band.SetNoDataValue(float(nodata))
    ds.FlushCache()
    ds = None
    return Path(path)


def read_tif(path: Path | str) -> np.ndarray:
    ds = gdal.Open(str(path))
    out = ds.ReadAsArray()
    return out[None] if out.ndim == 2 else out


class ArrayReader:
    """A RasterReader over a numpy array, counting reads (what the engine asks of any reader)."""

    def __init__(self, pixels: np.ndarray, nodata: float | None = None, name: str = "array",
                 geotransform: Sequence[float] = GEOTRANSFORM) -> None:
        self.pixels = pixels[None] if pixels.ndim == 2 else pixels
        bands, rows, cols = self.pixels.shape
        self.info = RasterInfo(name, cols, rows, bands, self.pixels.dtype.name, (nodata,) * bands,
                               tuple(geotransform), crs_wkt())  # type: ignore[arg-type]
        self.reads: list[Window] = []

    def read(self, window: Window, bands: Sequence[int]) -> np.ndarray:
        assert window.col_off >= 0 and window.row_off >= 0, window
        assert window.col_end <= self.info.width and window.row_end <= self.info.height, window
        self.reads.append(window)
        rows, cols = window.toslices()
        return self.pixels[[b - 1 for b in bands], rows, cols].copy()

"""South-up and east-left rasters, presented north-up: once, in the reader every interface shares.

A geotransform with a positive row step (``dy > 0``: the first row is the southernmost, "south-up", as some netCDF
and HDF exports are) or a negative column step (``dx < 0``: "east-left") is not rotated, just mirrored. QGIS's
providers show such a raster north-up; GDAL hands out its rows as stored. :class:`~lcgan_qgis.core.rasters.gdal_io.
GdalReader` presents it north-up too (the grid below, windows read from the mirrored place and flipped back), so the
command line, the mosaic and Processing give the model the same pixels (land cover right way up, terrain lit from
the right side), and every output is written north-up on the same ground.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Orientation:
    """How a raster's stored rows and columns are mirrored against north-up."""

    flip_rows: bool = False  # south-up: stored rows run south to north
    flip_cols: bool = False  # east-left: stored columns run east to west

    @classmethod
    def of(cls, geotransform: Sequence[float]) -> Orientation:
        """The mirroring of an unrotated ``geotransform`` (a rotated one is refused elsewhere: none here)."""
        _x0, dx, rx, _y0, ry, dy = geotransform
        if rx or ry:
            return cls()
        return cls(flip_rows=dy > 0, flip_cols=dx < 0)

    @property
    def mirrored(self) -> bool:
        return self.flip_rows or self.flip_cols

    def north_up(self, geotransform: Sequence[float], width: int, height: int) -> tuple[float, ...]:
        """The geotransform of the same raster presented north-up (origin at its north-west corner)."""
        x0, dx, rx, y0, ry, dy = (float(v) for v in geotransform)
        if self.flip_cols:
            x0, dx = x0 + width * dx, -dx
        if self.flip_rows:
            y0, dy = y0 + height * dy, -dy
        return (x0, dx, rx, y0, ry, dy)

    def stored_window(self, xoff: float, yoff: float, xsize: float, ysize: float, width: int,
                      height: int) -> tuple[float, float, float, float]:
        """Where a north-up window ``(xoff, yoff, xsize, ysize)`` lies in the stored raster (same size)."""
        if self.flip_cols:
            xoff = max(0, width - xoff - xsize)
        if self.flip_rows:
            yoff = max(0, height - yoff - ysize)
        return xoff, yoff, xsize, ysize

    def present(self, pixels: np.ndarray) -> np.ndarray:
        """Stored pixels (``(..., rows, cols)``) of a window, turned north-up."""
        if self.flip_rows:
            pixels = pixels[..., ::-1, :]
        if self.flip_cols:
            pixels = pixels[..., ::-1]
        return np.ascontiguousarray(pixels) if self.mirrored else pixels


def check_geographic_extent(dataset: object, name: str) -> None:
    """A raster in a geographic CRS must lie on the globe: latitudes within +-90 degrees, longitudes within one turn
    around -180..360. Metres written as degrees (a projected raster whose CRS says EPSG:4326) fail this.

    Raises:
        InputRasterError: naming the latitude or longitude reached and what to do.
    """
    from osgeo import osr

    from ..errors import InputRasterError

    srs = osr.SpatialReference()
    if not dataset.GetProjection() or srs.ImportFromWkt(dataset.GetProjection()) != 0 \
            or not srs.IsGeographic():  # type: ignore[attr-defined]
        return
    x0, dx, rx, y0, ry, dy = dataset.GetGeoTransform()  # type: ignore[attr-defined]
    w, h = dataset.RasterXSize, dataset.RasterYSize  # type: ignore[attr-defined]
    xs = [x0 + c * dx + r * rx for c in (0, w) for r in (0, h)]
    ys = [y0 + c * ry + r * dy for c in (0, w) for r in (0, h)]
    fix = ("its geotransform or CRS is wrong (metres given as degrees?). Assign the right CRS (gdal_edit.py -a_srs "
           "EPSG:CODE, or Raster > Projections > Assign Projection) or fix the georeference.")
    worst = max(ys, key=abs)
    if abs(worst) > 90 + 1e-6:
        raise InputRasterError(f"{name}: is in a geographic CRS (degrees) but reaches latitude {worst:.6g}°, beyond "
                               f"+-90°: {fix}")
    if min(xs) < -180 - 1e-6 or max(xs) > 360 + 1e-6 or max(xs) - min(xs) > 360 + 1e-6:
        raise InputRasterError(f"{name}: is in a geographic CRS (degrees) but spans longitudes {min(xs):.6g}° to "
                               f"{max(xs):.6g}°, beyond one turn of the globe: {fix}")

"""Area of interest: a polygon (WKT, in the raster's CRS) limiting where the engine runs.

Uses GDAL's OGR (``osgeo.ogr``), which ships with every QGIS, so no extra package is needed. Windows that do not
touch the polygon are not run; pixels outside it are written as nodata.
"""

from __future__ import annotations

import math

import numpy as np
from osgeo import gdal, ogr

from ..errors import OptionError
from .gdal_io import gdal_call, gdal_errors
from .raster import RasterInfo, Window

MAX_CHECKED_PX = 4_000_000  # an area up to this many pixels is checked for containing a pixel centre


def _check_rings_closed(geometry: ogr.Geometry) -> None:
    """Every ring ends at its first point (OGR reads unclosed rings, and GEOS then fails every test on them).

    Raises:
        OptionError: naming the ring and both points.
    """
    polygons = ([geometry.GetGeometryRef(i) for i in range(geometry.GetGeometryCount())]
                if ogr.GT_Flatten(geometry.GetGeometryType()) == ogr.wkbMultiPolygon else [geometry])
    for p, polygon in enumerate(polygons, start=1):
        for r in range(polygon.GetGeometryCount()):
            ring = polygon.GetGeometryRef(r)
            points = ring.GetPoints() or []
            if len(points) < 4 or points[0][:2] != points[-1][:2]:
                first = points[0][:2] if points else ()
                last = points[-1][:2] if points else ()
                raise OptionError(
                    f"The area of interest is not a closed polygon: ring {r + 1} of polygon {p} has {len(points)} "
                    f"point(s) and ends at {last}, not at its first point {first}. A ring needs at least 4 points, the "
                    "last one repeating the first."
                )


class AreaOfInterest:
    """A polygon in pixel-independent CRS coordinates, tested against raster windows.

    Raises:
        OptionError: the WKT is not a (multi)polygon, is empty, or does not overlap the raster.
    """

    def __init__(self, wkt: str, info: RasterInfo) -> None:
        with gdal_errors() as errors:
            geometry = gdal_call(errors, ogr.CreateGeometryFromWkt, wkt) if isinstance(wkt, str) else None
        if geometry is None:
            raise OptionError(f"The area of interest is not valid WKT: {str(wkt)[:80]!r}")
        if geometry.IsEmpty() or ogr.GT_Flatten(geometry.GetGeometryType()) not in (ogr.wkbPolygon,
                                                                                     ogr.wkbMultiPolygon):
            raise OptionError(f"The area of interest must be a non-empty polygon, got {geometry.GetGeometryName()}.")
        _check_rings_closed(geometry)
        self.geometry = geometry
        self.info = info
        if not geometry.Intersects(self._window_polygon(Window(0, 0, info.width, info.height))):
            x0, y0, x1, y1 = self._bounds(Window(0, 0, info.width, info.height))
            env = geometry.GetEnvelope()
            raise OptionError(
                f"The area of interest (x {env[0]:.6g}..{env[1]:.6g}, y {env[2]:.6g}..{env[3]:.6g}) does not overlap "
                f"{info.name} (x {x0:.6g}..{x1:.6g}, y {y0:.6g}..{y1:.6g}); give it in the raster's CRS."
            )
        window = self._envelope_window()
        if window is not None and window.width * window.height <= MAX_CHECKED_PX and not self.mask(window).any():
            env = geometry.GetEnvelope()
            raise OptionError(
                f"The area of interest (x {env[0]:.6g}..{env[1]:.6g}, y {env[2]:.6g}..{env[3]:.6g}) contains no pixel "
                f"centre of {info.name} (its pixels are {info.pixel_size[0]:.6g} x {info.pixel_size[1]:.6g} CRS "
                "units): it is smaller than a pixel or lies between pixel centres. Draw a larger area."
            )

    def _envelope_window(self) -> Window | None:
        """The pixel window of the polygon's envelope, clipped to the raster (None when outside)."""
        gt, info = self.info.geotransform, self.info
        xmin, xmax, ymin, ymax = self.geometry.GetEnvelope()
        cols = sorted(((xmin - gt[0]) / gt[1], (xmax - gt[0]) / gt[1]))
        rows = sorted(((ymax - gt[3]) / gt[5], (ymin - gt[3]) / gt[5]))
        c0, c1 = max(0, math.floor(cols[0])), min(info.width, math.ceil(cols[1]))
        r0, r1 = max(0, math.floor(rows[0])), min(info.height, math.ceil(rows[1]))
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)

    def _bounds(self, window: Window) -> tuple[float, float, float, float]:
        gt = self.info.geotransform
        xs = (gt[0] + window.col_off * gt[1], gt[0] + window.col_end * gt[1])
        ys = (gt[3] + window.row_off * gt[5], gt[3] + window.row_end * gt[5])
        return min(xs), min(ys), max(xs), max(ys)

    def _window_polygon(self, window: Window) -> ogr.Geometry:
        x0, y0, x1, y1 = self._bounds(window)
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        return polygon

    def touches(self, window: Window) -> bool:
        """Whether the window (pixel footprint) intersects the polygon."""
        return bool(self.geometry.Intersects(self._window_polygon(window)))

    def mask(self, window: Window) -> np.ndarray:
        """``(height, width)`` bool: pixels of ``window`` whose centre lies inside the polygon."""
        gt = self.info.geotransform
        mem = gdal.GetDriverByName("MEM").Create("", window.width, window.height, 1, gdal.GDT_Byte)
        mem.SetGeoTransform((gt[0] + window.col_off * gt[1], gt[1], 0.0, gt[3] + window.row_off * gt[5], 0.0, gt[5]))
        source = ogr.GetDriverByName("Memory").CreateDataSource("aoi")
        layer = source.CreateLayer("aoi", geom_type=ogr.wkbPolygon)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(self.geometry)
        layer.CreateFeature(feature)
        with gdal_errors():
            gdal.RasterizeLayer(mem, [1], layer, burn_values=[1])
        return mem.GetRasterBand(1).ReadAsArray().astype(bool)

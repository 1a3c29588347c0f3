"""What a land-cover scenario changes: the changed map (a raster, or the base with polygons burnt in), the change
mask, its margin and its area. Pure numpy plus GDAL/OGR; used by :mod:`.scenario`.

The change mask compares the two maps pixel by pixel (a pixel turning to or from nodata is a change). The margin is
a square dilation (a convolution's receptive field is a square) by cumulative doubling: ``O(N log r)`` on booleans.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from osgeo import gdal, ogr, osr

from ..errors import Canceled, InputRasterError, OptionError
from ..model.scheme import ClassScheme
from ..rasters.gdal_io import GdalReader, gdal_call, gdal_errors, metres_per_unit
from ..rasters.raster import RasterInfo, Window
from ..rasters.resampling import ground_scale

STRIP_ROWS = 512
GRID_TOLERANCE = 1e-6  # of a pixel: geotransforms closer than this are the same grid


def check_same_grid(base: RasterInfo, other: RasterInfo, what: str) -> None:
    """Raise unless ``other`` lies on ``base``'s grid (size, geotransform, CRS).

    Raises:
        InputRasterError: naming both rasters and what differs.
    """
    if (base.width, base.height) != (other.width, other.height):
        raise InputRasterError(f"The {what} {other.name} is {other.width} x {other.height} px, the base land cover "
                               f"{base.name} {base.width} x {base.height} px; both must be on one grid (warp it with "
                               "gdalwarp -te ... -ts ... or Raster > Align Rasters).")
    scale = max(abs(base.geotransform[1]), abs(base.geotransform[5]))
    if any(abs(base.geotransform[i] - other.geotransform[i]) > GRID_TOLERANCE * scale for i in range(6)):
        raise InputRasterError(f"The {what} {other.name} has the geotransform {tuple(other.geotransform)}, the base "
                               f"land cover {base.name} {tuple(base.geotransform)}; both must be on one grid (Raster "
                               "> Align Rasters).")
    if base.crs_wkt and other.crs_wkt:
        a, b = osr.SpatialReference(), osr.SpatialReference()
        a.ImportFromWkt(base.crs_wkt)
        b.ImportFromWkt(other.crs_wkt)
        if not a.IsSame(b):
            raise InputRasterError(f"The {what} {other.name} is in another CRS than the base land cover {base.name} "
                                   f"({b.GetName()} vs {a.GetName()}); reproject it onto the base's grid.")


def strips(height: int, width: int, rows: int = STRIP_ROWS) -> Iterator[Window]:
    """Full-width row strips covering a raster."""
    for top in range(0, height, rows):
        yield Window(0, top, width, min(rows, height - top))


def _valid(codes: np.ndarray, nodata: float | None) -> np.ndarray:
    return np.ones(codes.shape, bool) if nodata is None else codes != nodata


def change_mask(base: GdalReader, changed: GdalReader, scheme: ClassScheme,
                is_canceled: Callable[[], bool] | None = None, within: Window | None = None) -> np.ndarray:
    """``(height, width)`` bool: pixels whose class differs between the maps (a pixel turning nodata counts); only
    ``within`` is compared when given (the maps are known to be equal outside it: :attr:`PolygonChange.window`).

    Raises:
        InputRasterError: a changed pixel takes a code the model never saw (the message counts them).
        Canceled: ``is_canceled`` turned true.
    """
    info = base.info
    mask = np.zeros((info.height, info.width), bool)
    new_codes: dict[int, int] = {}
    area = within or Window(0, 0, info.width, info.height)
    for strip in strips(area.height, area.width):
        if is_canceled is not None and is_canceled():
            raise Canceled("Cancelled; nothing was written.")
        window = Window(area.col_off, area.row_off + strip.row_off, area.width, strip.height)
        a, b = base.read(window, (1,))[0], changed.read(window, (1,))[0]
        va, vb = _valid(a, info.nodata[0]), _valid(b, changed.info.nodata[0])
        moved = (va != vb) | (va & vb & (a != b))
        mask[window.toslices()] = moved
        values, counts = np.unique(b[moved & vb], return_counts=True)
        for i, value in enumerate(values.tolist()):  # (no zip(strict=...): QGIS 3.22 runs Python 3.9)
            new_codes[value] = new_codes.get(value, 0) + int(counts[i])
    unseen = {code: n for code, n in new_codes.items() if code not in scheme.codes}
    if unseen:
        listed = ", ".join(f"{code:g} ({n:,} px)" for code, n in sorted(unseen.items()))
        raise InputRasterError(f"The changed land cover {changed.info.name} brings class(es) the model never saw: "
                               f"{listed}; it was trained on {', '.join(str(c) for c in scheme.codes)}.")
    return mask


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by a square of ``radius`` px (Chebyshev distance <= ``radius``), clipped to the raster."""
    out = mask.copy()
    for axis in (0, 1):
        reach = 0
        while reach < radius:
            step = min(reach + 1, radius - reach)
            grown = out.copy()
            n = out.shape[axis]
            if step < n:
                lead = [slice(None)] * 2
                lag = [slice(None)] * 2
                lead[axis], lag[axis] = slice(step, None), slice(None, n - step)
                grown[tuple(lag)] |= out[tuple(lead)]
                grown[tuple(lead)] |= out[tuple(lag)]
            out = grown
            reach += step
    return out


def bounding_window(mask: np.ndarray) -> Window | None:
    """The smallest window holding every true pixel of ``mask`` (None when none is)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return Window(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def area_hectares(mask: np.ndarray, info: RasterInfo) -> float | None:
    """Ground area of ``mask``'s pixels in hectares, row by row by the core's metres-per-unit rule
    (:func:`~lcgan_qgis.core.rasters.resampling.ground_scale`: degrees on the ellipsoid at each row's latitude);
    ``None`` when the CRS has no known unit."""
    gt = info.geotransform
    per_unit = metres_per_unit(info.crs_wkt)
    counts = mask.sum(axis=1)
    total = 0.0
    for row in np.flatnonzero(counts):
        scale = ground_scale(info.crs_wkt, per_unit, gt[3] + gt[5] * (row + 0.5))
        if scale is None:
            return None
        if scale[2] == "":  # linear ground units (not degrees, not Mercator): the same scale on every row
            return float(counts.sum()) * abs(gt[1]) * scale[0] * abs(gt[5]) * scale[1] / 1e4
        total += float(counts[row]) * abs(gt[1]) * scale[0] * abs(gt[5]) * scale[1]
    return total / 1e4


def polygonize(mask: np.ndarray, geotransform: Sequence[float] | None = None,
               eight_connected: bool = False) -> tuple[ogr.DataSource, ogr.Layer]:
    """The true pixels of ``mask`` as polygons in an in-memory layer (GDAL's polygonizer), in the coordinates of
    ``geotransform`` (none: pixel = unit); returns the data source with the layer (keep both alive)."""
    height, width = mask.shape
    mem = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Byte)
    if geotransform is not None:
        mem.SetGeoTransform(tuple(geotransform))
    band = mem.GetRasterBand(1)
    band.WriteArray(mask.astype(np.uint8))
    source = ogr.GetDriverByName("Memory").CreateDataSource("mask")
    layer = source.CreateLayer("mask", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("v", ogr.OFTInteger))
    with gdal_errors():
        gdal.Polygonize(band, band, layer, 0, ["8CONNECTED=8"] if eight_connected else [])
    return source, layer


def mask_wkt(mask: np.ndarray, info: RasterInfo) -> str:
    """``mask`` as one (multi)polygon in the raster's CRS (pixel edges), for the engine's area of interest."""
    _source, layer = polygonize(mask, info.geotransform)
    union = ogr.Geometry(ogr.wkbMultiPolygon)
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if ogr.GT_Flatten(geometry.GetGeometryType()) == ogr.wkbPolygon:
            union.AddGeometry(geometry)
    return union.ExportToWkt()


def polygons_window(layer: ogr.Layer, info: RasterInfo) -> Window | None:
    """The pixel window holding every polygon of ``layer`` plus 1 px, clipped to the raster (``None``: they miss
    it); the whole raster when the layer's CRS differs from the raster's or the grid is rotated (not worked out)."""
    whole = Window(0, 0, info.width, info.height)
    gt = info.geotransform
    layer_srs = layer.GetSpatialRef()
    if gt[2] or gt[4] or not gt[1] or not gt[5]:
        return whole
    if layer_srs is not None and info.crs_wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(info.crs_wkt)
        if not srs.IsSame(layer_srs):
            return whole
    envelopes = []
    for feature in layer:  # (each geometry's own envelope: a layer's stored extent may be stale)
        geometry = feature.GetGeometryRef()
        if geometry is not None and not geometry.IsEmpty():
            envelopes.append(geometry.GetEnvelope())
    layer.ResetReading()
    if not envelopes:
        return None
    bounds = np.array(envelopes)
    x0, x1, y0, y1 = bounds[:, 0].min(), bounds[:, 1].max(), bounds[:, 2].min(), bounds[:, 3].max()
    cols = sorted(((x0 - gt[0]) / gt[1], (x1 - gt[0]) / gt[1]))
    rows = sorted(((y0 - gt[3]) / gt[5], (y1 - gt[3]) / gt[5]))
    c0, c1 = max(int(np.floor(cols[0])) - 1, 0), min(int(np.ceil(cols[1])) + 1, info.width)
    r0, r1 = max(int(np.floor(rows[0])) - 1, 0), min(int(np.ceil(rows[1])) + 1, info.height)
    return Window(c0, r0, c1 - c0, r1 - r0) if c1 > c0 and r1 > r0 else None


class PolygonChange:
    """The base land cover with polygons burnt in, as an in-memory GeoTIFF (``path``) the engine reads like a file;
    a context manager that frees it.

    Args:
        base: the base land cover.
        polygons_path: any OGR vector file (its first layer; reprojected to the raster's CRS when they differ).
        to_class: the code every polygon turns its pixels to, unless ``class_field`` gives one per polygon.
        class_field: a field holding each polygon's new code.
        from_classes: only pixels of these codes change (empty: every valid pixel); nodata pixels never change.
        scheme: the model's classes (a new code must be one of them).

    Raises:
        InputRasterError: the polygons cannot be read, cover no pixel of the raster, or carry a code the model does
            not know.
        OptionError: neither or both of ``to_class`` and ``class_field``, or an unknown field.
    """

    def __init__(self, base: GdalReader, polygons_path: str, to_class: int | None, class_field: str | None,
                 from_classes: Sequence[int], scheme: ClassScheme) -> None:
        self.messages: list[str] = []
        info = base.info
        if (to_class is None) == (class_field is None):
            raise OptionError("Give the polygons' new class either as one code (to_class) or as a field holding "
                              "each polygon's code (class_field), not both or neither.")
        for code in ([to_class] if to_class is not None else []) + list(from_classes):
            _check_code(code, scheme, "The scenario's class")
        with gdal_errors() as errors:
            vector = gdal_call(errors, ogr.Open, str(polygons_path))
        if vector is None or vector.GetLayerCount() == 0:
            detail = errors[-1] if errors else "no layer"
            raise InputRasterError(f"Cannot read the change polygons {polygons_path}: {detail}.")
        layer = vector.GetLayer(0)
        if class_field is not None and layer.GetLayerDefn().GetFieldIndex(class_field) < 0:
            defn = layer.GetLayerDefn()
            names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
            raise OptionError(f"The change polygons {polygons_path} have no field '{class_field}' (fields: "
                              f"{', '.join(names) or 'none'}).")
        if class_field is not None:
            for feature in layer:
                value = feature.GetField(class_field)
                if value is None or not float(value).is_integer():
                    raise InputRasterError(f"Feature {feature.GetFID()} of {polygons_path} has '{class_field}' = "
                                           f"{value!r}, not a class code.")
                _check_code(int(value), scheme, f"Feature {feature.GetFID()} of {polygons_path} ('{class_field}')")
            layer.ResetReading()
        #: the pixels the polygons can reach (their extent plus 1 px, clipped): the map changes only there
        self.window = polygons_window(layer, info)
        area = self.window or Window(0, 0, 1, 1)  # (none: the polygons miss the raster; the burn below shows it)
        gt = info.geotransform
        burn = gdal.GetDriverByName("MEM").Create("", area.width, area.height, 1, gdal.GDT_Int32)
        burn.SetGeoTransform((gt[0] + area.col_off * gt[1] + area.row_off * gt[2], gt[1], gt[2],
                              gt[3] + area.col_off * gt[4] + area.row_off * gt[5], gt[4], gt[5]))
        if info.crs_wkt:
            burn.SetProjection(info.crs_wkt)
        burn.GetRasterBand(1).Fill(-1)
        options = [f"ATTRIBUTE={class_field}"] if class_field else []
        with gdal_errors() as errors:
            status = gdal_call(errors, gdal.RasterizeLayer, burn, [1], layer,
                               burn_values=[] if class_field else [int(to_class)],  # type: ignore[arg-type]
                               options=options)
        if status not in (0, None):
            raise InputRasterError(f"Cannot burn the change polygons {polygons_path} into {info.name}: "
                                   f"{errors[-1] if errors else 'GDAL failed'}.")
        self.path = f"/vsimem/lcgan-scenario-{uuid.uuid4().hex}.tif"
        copy = gdal.GetDriverByName("GTiff").CreateCopy(self.path, gdal.Open(str(base.path)),
                                                        options=["TILED=YES"])
        values = burn.GetRasterBand(1)
        nodata, wanted = info.nodata[0], np.asarray(list(from_classes), dtype=np.int64)
        burnt = kept_nodata = 0
        for strip in strips(area.height, area.width) if self.window is not None else ():
            new = values.ReadAsArray(strip.col_off, strip.row_off, strip.width, strip.height)
            inside = new >= 0
            if not inside.any():
                continue
            window = Window(area.col_off, area.row_off + strip.row_off, area.width, strip.height)
            codes = base.read(window, (1,))[0]
            valid = _valid(codes, nodata)
            turn = inside & valid & (np.isin(codes, wanted) if wanted.size else True)
            kept_nodata += int((inside & ~valid).sum())
            burnt += int((turn & (codes != new)).sum())
            out = np.where(turn, new, codes).astype(codes.dtype)
            copy.GetRasterBand(1).WriteArray(out, window.col_off, window.row_off)
        copy.FlushCache()
        copy = None
        if burnt == 0 and (self.window is None or not _covers_any(burn)):
            self.close()
            extent = layer.GetExtent()
            raise InputRasterError(
                f"The change polygons {polygons_path} (x {extent[0]:.6g}..{extent[1]:.6g}, y {extent[2]:.6g}.."
                f"{extent[3]:.6g} in their CRS) cover no pixel of {info.name}; draw them inside the raster.")
        if kept_nodata:
            self.messages.append(f"{kept_nodata:,} nodata pixel(s) under the change polygons stay nodata.")
        self.burnt_px = burnt

    def close(self) -> None:
        """Free the in-memory raster (idempotent)."""
        if getattr(self, "path", None):
            gdal.Unlink(self.path)
            self.path = ""

    def __enter__(self) -> PolygonChange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _covers_any(burn: gdal.Dataset) -> bool:
    band = burn.GetRasterBand(1)
    return any(bool((band.ReadAsArray(w.col_off, w.row_off, w.width, w.height) >= 0).any())
               for w in strips(burn.RasterYSize, burn.RasterXSize))


def _check_code(code: int, scheme: ClassScheme, what: str) -> None:
    if int(code) not in scheme.codes:
        raise InputRasterError(f"{what} {code} is not a class the model knows; it was trained on "
                               f"{', '.join(str(c) for c in scheme.codes)}.")


def margin_note(radius: int, capped: bool) -> str:
    """One line on the margin used."""
    if capped:
        return (f"Margin {radius} px (capped: the model's receptive field reaches farther, so pixels just outside "
                "the margin may differ from a full render of the changed map by a little).")
    return f"Margin {radius} px: the model's measured receptive field (no change reaches a pixel farther away)."


def grow_note(mask: np.ndarray, margin: np.ndarray) -> str:
    """What share of the raster a scenario re-renders."""
    return (f"Re-rendering {int(margin.sum()):,} px ({100.0 * margin.mean():.2f} % of the raster) around "
            f"{int(mask.sum()):,} changed px.")


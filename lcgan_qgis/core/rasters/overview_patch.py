"""Refresh only the part of a GeoTIFF's AVERAGE overviews that lies under a patched window.

GDAL 3.6 can only rebuild a whole overview pyramid (``gdaladdo --partial-refresh-from-projwin`` came in 3.8). Its
AVERAGE of a raster whose side is not a multiple of the factor is not a plain block mean: each overview pixel is
the area-weighted mean of the source pixels its footprint covers (fractional weights at its edges, nodata pixels
left out, rounded half up), and each level is computed from the previous one. :func:`refresh_average_overviews`
recomputes, level by level, only the overview pixels whose source footprint reaches the patched pixels, with the
same weights, in the same order of summation (so the same rounding of ties), and writes them back; every other
overview pixel is left as it was. Tests compare the result with a full rebuild by GDAL, pixel for pixel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from .raster import Window

EPSILON = 1e-8  # GDAL's guard against rounding when it turns a source coordinate into a pixel index


@dataclass(frozen=True)
class AxisMap:
    """How one axis of an overview level samples the level below: for each overview pixel ``i`` its source span
    ``[start[i], stop[i])`` and the weights of its first and last source pixels (the ones in between weigh 1)."""

    start: np.ndarray
    stop: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @classmethod
    def of(cls, source: int, size: int) -> AxisMap:
        """The map from a ``source`` px axis to a ``size`` px overview axis (GDAL's AVERAGE)."""
        ratio = source / size
        i = np.arange(size, dtype=np.float64)
        lo, hi = i * ratio, (i + 1) * ratio
        start = (lo + EPSILON).astype(np.int64)
        stop = np.ceil(hi - EPSILON).astype(np.int64)
        stop = np.where(stop == start, stop + 1, stop)
        stop = np.minimum(stop, source)
        first = np.where(stop == start + 1, 1.0, 1.0 - (lo - start))
        last = 1.0 - (stop - hi)
        return cls(start, stop, first, last)

    def reach(self, lo: int, hi: int) -> tuple[int, int]:
        """The overview pixels ``[a, b)`` whose source span meets the source pixels ``[lo, hi)``."""
        hit = np.flatnonzero((self.stop > lo) & (self.start < hi))
        return (int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, 0)

    def weights(self, a: int, b: int, origin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For overview pixels ``[a, b)``: source indices (relative to ``origin``), their weights and whether each
        is inside the span, as ``(n, k)`` arrays in GDAL's order of summation (first, middle..., last)."""
        start, stop = self.start[a:b], self.stop[a:b]
        span = stop - start
        k = np.arange(int(span.max()))[None, :]
        index = np.minimum(start[:, None] + k, stop[:, None] - 1) - origin
        weight = np.where(k == 0, self.first[a:b, None], np.where(k == span[:, None] - 1, self.last[a:b, None], 1.0))
        inside = k < span[:, None]
        return index, np.where(inside, weight, 0.0), inside


def average_block(source: np.ndarray, rows: AxisMap, cols: AxisMap, out: Window, origin: tuple[int, int],
                  nodata: float | None) -> np.ndarray:
    """GDAL 3.6's AVERAGE of the overview pixels ``out`` from ``source`` (``(bands, h, w)`` of the level below,
    whose pixel ``[0, 0]`` is ``origin = (row, col)`` of that level; it must hold every source pixel they cover).
    A nodata pixel adds 0 to a sum and to its weight, as GDAL leaves it out: the same floating-point result."""
    ri, rw, _r_in = rows.weights(out.row_off, out.row_end, origin[0])
    ci, cw, _c_in = cols.weights(out.col_off, out.col_end, origin[1])
    values = source.astype(np.float64)
    valid = None if nodata is None else (source != nodata).astype(np.float64)
    if valid is not None:
        values *= valid
    lines_total = values[:, :, ci[:, 0]] * cw[:, 0]  # (the first, middle, last pixel of each span, in that order)
    lines_weight = None if valid is None else valid[:, :, ci[:, 0]] * cw[:, 0]
    for k in range(1, ci.shape[1]):
        lines_total += values[:, :, ci[:, k]] * cw[:, k]
        if lines_weight is not None and valid is not None:
            lines_weight += valid[:, :, ci[:, k]] * cw[:, k]
    total = lines_total[:, ri[:, 0]] * rw[:, 0, None]
    weight = None if lines_weight is None else lines_weight[:, ri[:, 0]] * rw[:, 0, None]
    for k in range(1, ri.shape[1]):
        total += lines_total[:, ri[:, k]] * rw[:, k, None]
        if weight is not None and lines_weight is not None:
            weight += lines_weight[:, ri[:, k]] * rw[:, k, None]
    if weight is None:  # (no nodata: GDAL weighs a whole span at once, first + (n - 2) + last per axis)
        weight = (_span_weight(rows, out.row_off, out.row_end)[:, None]
                  * _span_weight(cols, out.col_off, out.col_end)[None, :])[None]
    counted = np.broadcast_to(weight > 0, total.shape)
    mean = np.floor(total / np.where(counted, weight, 1.0) + 0.5)
    info = np.iinfo(source.dtype)
    result = np.clip(mean, info.min, info.max).astype(source.dtype)
    if nodata is not None:
        result[result == nodata] = nodata + 1 if nodata < info.max else nodata - 1  # (GDAL's replacement value)
        result[~counted] = nodata
    return result


def _span_weight(axis: AxisMap, a: int, b: int) -> np.ndarray:
    span = axis.stop[a:b] - axis.start[a:b]
    full = axis.first[a:b].copy()
    more = span > 1
    full[more] = (full[more] + (span[more] - 2)) + axis.last[a:b][more]
    return full


def refresh_average_overviews(dataset: gdal.Dataset, patched: Window) -> list[Window]:
    """Recompute the AVERAGE overview pixels of ``dataset`` (open for update, integer bands, internal overviews)
    whose source footprint meets ``patched`` (full-resolution pixels), level by level from the one below, and write
    them; returns the window refreshed at each level. The other overview pixels are not touched."""
    bands = [dataset.GetRasterBand(b + 1) for b in range(dataset.RasterCount)]
    nodata = bands[0].GetNoDataValue()
    levels = [bands]
    levels += [[band.GetOverview(i) for band in bands] for i in range(bands[0].GetOverviewCount())]
    lo_rows, lo_cols = (patched.row_off, patched.row_end), (patched.col_off, patched.col_end)
    refreshed = []
    for below, level in zip(levels[:-1], levels[1:]):
        rows = AxisMap.of(below[0].YSize, level[0].YSize)
        cols = AxisMap.of(below[0].XSize, level[0].XSize)
        r0, r1 = rows.reach(*lo_rows)
        c0, c1 = cols.reach(*lo_cols)
        if r1 <= r0 or c1 <= c0:
            break
        out = Window(c0, r0, c1 - c0, r1 - r0)
        sr0, sr1 = int(rows.start[r0]), int(rows.stop[r1 - 1])
        sc0, sc1 = int(cols.start[c0]), int(cols.stop[c1 - 1])
        source = _read(below, Window(sc0, sr0, sc1 - sc0, sr1 - sr0))
        _write(level, average_block(source, rows, cols, out, (sr0, sc0), nodata), out)
        refreshed.append(out)
        lo_rows, lo_cols = (r0, r1), (c0, c1)
    return refreshed


def _read(bands: list[gdal.Band], window: Window) -> np.ndarray:
    """``(bands, h, w)`` pixels of ``window``: one read through the level's dataset where GDAL gives one (a
    pixel-interleaved block is decoded once), else band by band."""
    dataset = bands[0].GetDataset()
    if dataset is not None and dataset.RasterCount == len(bands) and dataset.RasterXSize == bands[0].XSize:
        return dataset.ReadAsArray(window.col_off, window.row_off, window.width, window.height).reshape(
            len(bands), window.height, window.width)
    return np.stack([band.ReadAsArray(window.col_off, window.row_off, window.width, window.height)
                     for band in bands])


def _write(bands: list[gdal.Band], values: np.ndarray, window: Window) -> None:
    dataset = bands[0].GetDataset()
    if dataset is not None and dataset.RasterCount == len(bands) and dataset.RasterXSize == bands[0].XSize:
        dataset.WriteArray(values, window.col_off, window.row_off)
        return
    for b, band in enumerate(bands):
        band.WriteArray(values[b], window.col_off, window.row_off)


def nearest_index(source: int, size: int) -> np.ndarray:
    """GDAL 3.6's NEAREST overview: the source pixel each of ``size`` overview pixels takes on a ``source`` px
    axis (``int(i * ratio + 0.5)``)."""
    return np.minimum((np.arange(size) * (source / size) + 0.5).astype(np.int64), source - 1)


def write_nearest_overviews(dataset: gdal.Dataset, part: np.ndarray, extent: Window, factors: list[int]) -> None:
    """Create the internal overviews ``factors`` of the single-band ``dataset`` (open for update, no nodata, 0
    everywhere but in ``extent``, where its pixels are ``part``) and fill them as GDAL's NEAREST would, level by
    level, writing only the overview pixels that take a value from ``extent`` (an unwritten block reads 0)."""
    if not factors:
        return
    with _compressed_overviews():
        dataset.BuildOverviews("NONE", factors)
    band = dataset.GetRasterBand(1)
    rows, cols = (extent.row_off, extent.row_end), (extent.col_off, extent.col_end)
    height, width = dataset.RasterYSize, dataset.RasterXSize
    for i in range(band.GetOverviewCount()):
        level = band.GetOverview(i)
        ri, ci = nearest_index(height, level.YSize), nearest_index(width, level.XSize)
        keep_r = np.flatnonzero((ri >= rows[0]) & (ri < rows[1]))
        keep_c = np.flatnonzero((ci >= cols[0]) & (ci < cols[1]))
        if keep_r.size == 0 or keep_c.size == 0:
            break
        part = part[np.ix_(ri[keep_r] - rows[0], ci[keep_c] - cols[0])]
        level.WriteArray(part, int(keep_c[0]), int(keep_r[0]))
        rows, cols = (int(keep_r[0]), int(keep_r[-1]) + 1), (int(keep_c[0]), int(keep_c[-1]) + 1)
        height, width = level.YSize, level.XSize


@contextlib.contextmanager
def _compressed_overviews() -> Iterator[None]:
    """``COMPRESS_OVERVIEW=DEFLATE`` for this thread while overviews are created (as
    :func:`~.geotiff.build_overviews` does)."""
    previous = gdal.GetThreadLocalConfigOption("COMPRESS_OVERVIEW", None)
    gdal.SetThreadLocalConfigOption("COMPRESS_OVERVIEW", "DEFLATE")
    try:
        yield
    finally:
        gdal.SetThreadLocalConfigOption("COMPRESS_OVERVIEW", previous)

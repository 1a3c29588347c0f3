"""From blended model output to GeoTIFF: post-processing, styling and block-aligned streaming writes.

* Land cover (output of ``rgb_to_landcover``): blended probabilities -> argmax class -> the scheme's source code
  (uint8, or uint16 when a code needs it), a colour table and class names, nodata = ``scheme.nodata_code``;
  optionally the maximum probability as a float32 confidence raster (nodata 0: a real maximum is >= 1/K).
* Imagery (output of ``landcover_to_rgb``): [-1, 1] -> uint8 R, G, B; 0 means nodata on every band, so valid
  pixels are kept in 1..255.

:class:`RowSink` receives finished full-width rows in order and writes only whole block rows (then flushes the
GDAL cache), so each compressed block is written exactly once and memory stays bounded by the strip size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import OutputError
from ..model.contract import Direction, ModelContract, to_uint8
from .gdal_io import gdal_call, gdal_errors
from .geotiff import BLOCK_PX, GeoTiffWriter
from .raster import RasterInfo

CONFIDENCE_NODATA = 0.0


@dataclass(frozen=True)
class OutputSpec:
    """Band count, dtype and nodata of a run's main output."""

    bands: int
    dtype: np.dtype
    nodata: float


def output_spec(contract: ModelContract) -> OutputSpec:
    """What the main output of a model looks like."""
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        return OutputSpec(1, contract.scheme.code_dtype, float(contract.scheme.nodata_code))
    return OutputSpec(contract.image_bands, np.dtype(np.uint8), 0.0)


def postprocess(contract: ModelContract, blended: np.ndarray, valid: np.ndarray,
                want_confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Blended ``(C, h, w)`` model output and the ``(h, w)`` valid mask -> (output pixels, confidence or None)."""
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        scheme = contract.scheme
        indices, best = argmax_channels(blended)
        codes = scheme.indices_to_codes(indices)
        codes[~valid] = scheme.nodata_code
        confidence = None
        if want_confidence:
            confidence = blended.max(axis=0).astype(np.float32) if best is None else best
            confidence[~valid] = CONFIDENCE_NODATA
            confidence = confidence[None]
        return codes[None], confidence
    pixels = np.maximum(to_uint8(blended), 1)
    pixels[:, ~valid] = 0
    return pixels, None


def argmax_channels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(C, h, w)`` finite values -> (index of the first maximum per pixel, the maximum or None), what
    ``values.argmax(axis=0)`` and ``values.max(axis=0)`` give, in a third of the time: one pass per channel over
    contiguous rows, with uint8 indices (up to 256 channels; more take ``argmax``). A later channel takes a pixel
    only when strictly greater, so ties keep the first index, as ``argmax`` does."""
    channels = values.shape[0]
    if channels > 256 or values.dtype != np.float32:
        return values.argmax(axis=0), None
    best = values[0].copy()
    indices = np.zeros(best.shape, dtype=np.uint8)
    greater = np.empty(best.shape, dtype=bool)
    for c in range(1, channels):
        np.greater(values[c], best, out=greater)
        np.maximum(indices, greater.view(np.uint8) * np.uint8(c), out=indices)  # (c exceeds every earlier index)
        np.maximum(best, values[c], out=best)
    return indices, best


def style_output(writer: GeoTiffWriter, contract: ModelContract) -> None:
    """Colour table and class names for land cover; R, G, B colour interpretation for imagery."""
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        scheme = contract.scheme
        table = gdal.ColorTable()
        names = [""] * (max(*scheme.codes, scheme.nodata_code) + 1)
        for cls in scheme.classes:
            table.SetColorEntry(cls.code, tuple(cls.rgba))
            names[cls.code] = cls.name
        band = writer.band(1)
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
        if len(names) <= 256:
            band.SetRasterCategoryNames(names)
        band.SetDescription("land cover")
        return
    interpretations = (gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)
    for b, name in enumerate(contract.band_names, start=1):
        band = writer.band(b)
        if b <= len(interpretations):
            band.SetRasterColorInterpretation(interpretations[b - 1])
        band.SetDescription(name)


def class_counts(path: str | Path) -> dict[int, int]:
    """``{code: pixels}`` of the codes present in band 1 of the integer raster ``path`` (nodata left out)."""
    with gdal_errors() as errors:
        dataset = gdal_call(errors, gdal.Open, str(path))
    if dataset is None:
        raise OutputError(f"Cannot read {path}: {errors[-1] if errors else 'GDAL failed'}")
    band = dataset.GetRasterBand(1)
    top = 255 if band.DataType == gdal.GDT_Byte else 65535
    histogram = band.GetHistogram(-0.5, top + 0.5, top + 1, include_out_of_range=0, approx_ok=0)
    nodata = band.GetNoDataValue()
    dataset = None
    return {code: n for code, n in enumerate(histogram) if n and code != nodata}


def open_writer(path: str, info: RasterInfo, bands: int, dtype: np.dtype, nodata: float) -> GeoTiffWriter:
    """A :class:`GeoTiffWriter` with ``info``'s size and georeference."""
    return GeoTiffWriter(path, info.width, info.height, bands, dtype, info.geotransform, info.crs_wkt, nodata)


class RowSink:
    """Collects finished full-width rows (in order) and writes whole block rows to several writers at once."""

    def __init__(self, writers: Sequence[GeoTiffWriter], height: int) -> None:
        self.writers = list(writers)
        self.height = height
        self.next_row = 0  # first row not yet written
        self.pending: list[np.ndarray | None] = [None] * len(self.writers)

    def add(self, rows: Sequence[np.ndarray]) -> None:
        """Append ``(bands, n, width)`` rows for each writer (the same ``n`` for all)."""
        for i, block in enumerate(rows):
            previous = self.pending[i]
            self.pending[i] = block if previous is None else np.concatenate([previous, block], axis=1)
        available = self.pending[0].shape[1] if self.pending[0] is not None else 0
        end = self.next_row + available
        cut = end if end >= self.height else (end // BLOCK_PX) * BLOCK_PX  # (whole blocks of the writer)
        n = cut - self.next_row
        if n <= 0:
            return
        for i, writer in enumerate(self.writers):
            block = self.pending[i]
            writer.write(self.next_row, 0, block[:, :n])
            self.pending[i] = block[:, n:] if n < block.shape[1] else None
            writer.flush()
        self.next_row = cut

"""Input checks and conversions from raster pixels to model input (and the masks of valid pixels).

* Land cover (input of ``landcover_to_rgb``): one integer band of source codes -> one-hot float32 ``(K, h, w)``;
  nodata pixels (the raster's nodata value or the scheme's nodata code) get the uniform vector 1/K, a neutral
  input, and are masked in the output. Unknown codes are found by a pre-scan before any inference, and reported
  with their pixel counts.
* Imagery (input of ``rgb_to_landcover``): ``image_bands`` bands (1-based mapping, default 1..n) of any integer or
  float type -> float32 in [-1, 1] by the radiometry (``fixed``: the model's training range; ``percentile``: the
  same percentiles computed on this raster from a bounded sample). A pixel is nodata when every band equals its
  nodata value, or when any band is NaN; nodata pixels are fed as 0 (mid-range) and masked in the output.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .contract import Direction, ModelContract
from .errors import InputRasterError, SchemeError
from .noise import position_noise
from .raster import RasterInfo, RasterReader, Window

if TYPE_CHECKING:
    from .terrain import TerrainDeriver

log = logging.getLogger(__name__)

SAMPLE_GRID = 16  # percentile sample: up to SAMPLE_GRID x SAMPLE_GRID windows ...
SAMPLE_WINDOW_PX = 64  # ... of this size, evenly spread (at most 1 Mpx read, whatever the raster size)
SCAN_ROWS = 256  # rows per read when scanning a whole raster (bounded memory)
INTEGER_KINDS = "iu"
MIN_CONSTANT_CHECK_PX = 256  # fixed radiometry: a sample of at least this many identical pixels is "constant imagery"


@dataclass(frozen=True, slots=True)
class InputPlan:
    """What to read and how to turn it into model input, decided once per run by :func:`plan_input`."""

    direction: Direction
    bands: tuple[int, ...]
    nodata: tuple[float | None, ...]  # per read band
    low: tuple[float, ...] = ()  # image radiometry actually applied (empty for land cover)
    high: tuple[float, ...] = ()
    messages: tuple[str, ...] = ()
    terrain: TerrainDeriver | None = None  # terrain-aware land cover -> RGB models: channels from the DEM

    def convert(self, contract: ModelContract, pixels: np.ndarray, source: str,
                window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(bands, h, w)`` pixels of ``window`` -> ``(model input (C, h, w) float32, valid mask (h, w) bool)``.

        Land cover: the one-hot map, then the terrain channels of ``window`` (with their halo) for terrain-aware
        models, then the model's ``noise_channels`` drawn from the pixels' positions in the whole raster
        (:func:`~lcgan_qgis.core.noise.position_noise`).
        """
        if self.direction is Direction.LANDCOVER_TO_RGB:
            onehot, valid = landcover_to_onehot(contract, pixels[0], self.nodata[0], source)
            if self.terrain is not None:
                onehot = np.concatenate([onehot, self.terrain.channels(window)])
            if contract.noise_channels:
                noise = position_noise(window, contract.noise_channels, contract.noise_seed)
                onehot = np.concatenate([onehot, noise])
            return onehot, valid
        valid = image_valid_mask(pixels, self.nodata)
        x = contract.radiometry.normalize(pixels, self.low, self.high)
        x[:, ~valid] = 0.0
        return x, valid


def landcover_to_onehot(contract: ModelContract, codes: np.ndarray, nodata: float | None,
                        source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(h, w)`` codes -> one-hot ``(K, h, w)`` float32 (uniform 1/K on nodata) and the valid mask."""
    scheme = contract.scheme
    try:
        indices, valid = scheme.codes_to_indices(codes, nodata)
    except SchemeError as exc:
        raise InputRasterError(f"{source}: {exc}") from None
    k = len(scheme)
    onehot = (indices[None, :, :] == np.arange(k, dtype=indices.dtype)[:, None, None]).astype(np.float32)
    onehot[:, ~valid] = 1.0 / k
    return onehot, valid


def image_valid_mask(pixels: np.ndarray, nodata: Sequence[float | None]) -> np.ndarray:
    """Valid pixels of ``(bands, h, w)`` imagery: not every band at its nodata value, and no band NaN."""
    valid = np.ones(pixels.shape[1:], dtype=bool)
    if all(v is not None and not math.isnan(v) for v in nodata):
        at_nodata = np.ones(pixels.shape[1:], dtype=bool)
        for b, value in enumerate(nodata):
            at_nodata &= pixels[b] == value
        valid &= ~at_nodata
    if pixels.dtype.kind == "f":
        valid &= ~np.isnan(pixels).any(axis=0)
    return valid


def _check_georeference(info: RasterInfo) -> None:
    if info.is_rotated:
        raise InputRasterError(
            f"{info.name}: the geotransform is rotated or sheared ({info.geotransform}); lcgan needs a north-up "
            "raster. Warp it first (e.g. gdalwarp or Raster > Projections > Warp)."
        )
    if info.width < 1 or info.height < 1:
        raise InputRasterError(f"{info.name}: the raster is empty ({info.width}x{info.height}).")
    if info.band_count < 1:
        raise InputRasterError(f"{info.name}: the raster has no bands.")


def _check_dtype_numeric(info: RasterInfo) -> np.dtype:
    try:
        dtype = np.dtype(info.dtype)
    except TypeError:
        raise InputRasterError(f"{info.name}: pixel type {info.dtype!r} is not supported.") from None
    if dtype.kind not in "iuf":
        raise InputRasterError(f"{info.name}: pixel type {dtype.name} is not supported (need integer or float).")
    return dtype


def scan_rows(reader: RasterReader, bands: Sequence[int],
              is_canceled: Callable[[], bool] | None = None) -> Iterator[np.ndarray]:
    """Yield ``(bands, rows, width)`` strips covering the whole raster, top to bottom (bounded memory)."""
    info = reader.info
    for row in range(0, info.height, SCAN_ROWS):
        if is_canceled is not None and is_canceled():
            return
        yield reader.read(Window(0, row, info.width, min(SCAN_ROWS, info.height - row)), bands)


def scan_landcover(contract: ModelContract, reader: RasterReader,
                   is_canceled: Callable[[], bool] | None = None) -> dict[int, int]:
    """Count every code of a land-cover raster; raises on unknown codes (with counts) or when all are nodata."""
    info = reader.info
    counts: dict[int, int] = {}
    for strip in scan_rows(reader, (1,), is_canceled):
        values = strip[0]
        if values.dtype.itemsize <= 2 and values.dtype.kind == "u":
            binned = np.bincount(values.ravel(), minlength=1)
            for code in np.flatnonzero(binned):
                counts[int(code)] = counts.get(int(code), 0) + int(binned[code])
        else:
            uniq, n = np.unique(values, return_counts=True)
            for code, c in zip(uniq.tolist(), n.tolist(), strict=True):
                counts[int(code)] = counts.get(int(code), 0) + int(c)
    scheme = contract.scheme
    nodata_codes = {scheme.nodata_code}
    if info.nodata[0] is not None and float(info.nodata[0]).is_integer():
        nodata_codes.add(int(info.nodata[0]))
    unknown = {c: n for c, n in counts.items() if c not in scheme.codes and c not in nodata_codes}
    if unknown:
        listed = np.repeat(np.array(list(unknown), dtype=np.int64), np.array(list(unknown.values())))
        commonest = max(unknown, key=unknown.__getitem__)
        raise InputRasterError(
            f"{info.name}: {scheme.describe_unknown(listed)} Reclassify them to the scheme's codes, or, if "
            f"{commonest} marks pixels without data, set it as the raster's nodata value (e.g. gdal_edit.py "
            f"-a_nodata {commonest})."
        )
    if counts and all(c in nodata_codes for c in counts):
        raise InputRasterError(
            f"{info.name}: every pixel is nodata (codes {sorted(counts)}); there is nothing to translate."
        )
    return counts


def sample_windows(info: RasterInfo) -> list[Window]:
    """Up to SAMPLE_GRID² evenly spread windows of SAMPLE_WINDOW_PX (or the whole raster when small)."""
    w, h = min(SAMPLE_WINDOW_PX, info.width), min(SAMPLE_WINDOW_PX, info.height)
    nx, ny = min(SAMPLE_GRID, math.ceil(info.width / w)), min(SAMPLE_GRID, math.ceil(info.height / h))
    xs = np.linspace(0, info.width - w, nx).round().astype(int)
    ys = np.linspace(0, info.height - h, ny).round().astype(int)
    return [Window(int(x), int(y), w, h) for y in ys for x in xs]


def image_percentiles(reader: RasterReader, bands: Sequence[int], nodata: Sequence[float | None],
                      percentiles: tuple[float, float]) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """Per-band ``percentiles`` of the valid pixels of a bounded sample; returns (low, high, valid count)."""
    values: list[list[np.ndarray]] = [[] for _ in bands]
    for window in sample_windows(reader.info):
        pixels = reader.read(window, bands)
        valid = image_valid_mask(pixels, nodata)
        for b in range(len(bands)):
            values[b].append(pixels[b][valid].astype(np.float64))
    flat = [np.concatenate(v) if v else np.empty(0) for v in values]
    if flat[0].size == 0:
        return (), (), 0
    low = tuple(float(np.percentile(v, percentiles[0])) for v in flat)
    high = tuple(float(np.percentile(v, percentiles[1])) for v in flat)
    return low, high, int(flat[0].size)


def _any_valid_image_pixel(reader: RasterReader, bands: Sequence[int], nodata: Sequence[float | None]) -> bool:
    return any(image_valid_mask(strip, nodata).any() for strip in scan_rows(reader, bands))


def plan_input(contract: ModelContract, reader: RasterReader, bands: Sequence[int] | None = None,
               radiometry_mode: str | None = None, is_canceled: Callable[[], bool] | None = None) -> InputPlan:
    """Check the raster against the model and decide bands, nodata and radiometry.

    Raises:
        InputRasterError: with a message naming ``reader.info.name`` and what to change.
    """
    info = reader.info
    _check_georeference(info)
    dtype = _check_dtype_numeric(info)
    if contract.direction is Direction.LANDCOVER_TO_RGB:
        if info.band_count != 1:
            raise InputRasterError(
                f"{info.name}: has {info.band_count} bands, but land cover is one band of class codes. Is this "
                "imagery? Imagery goes to the imagery -> land cover model."
            )
        if dtype.kind == "f":
            raise InputRasterError(
                f"{info.name}: is {dtype.name}, but land cover must be integer class codes (Byte/UInt16) of the "
                f"scheme '{contract.scheme.name}'. Convert it (e.g. gdal_translate -ot Byte) if the values are codes."
            )
        scan_landcover(contract, reader, is_canceled)
        return InputPlan(contract.direction, (1,), (info.nodata[0],))

    n = contract.image_bands
    messages: list[str] = []
    if bands is None:
        if info.band_count < n:
            raise InputRasterError(
                f"{info.name}: has {info.band_count} band(s), but the model needs {n} "
                f"({', '.join(contract.band_names)}). Give a band mapping, e.g. bands={','.join(['1'] * n)}."
            )
        bands = tuple(range(1, n + 1))
        if info.band_count > n:
            messages.append(f"{info.name} has {info.band_count} bands; using bands {','.join(map(str, bands))} "
                            f"as {', '.join(contract.band_names)}.")
    bands = tuple(int(b) for b in bands)
    if len(bands) != n:
        raise InputRasterError(f"{info.name}: band mapping {list(bands)} has {len(bands)} entries; the model needs {n} "
                               f"({', '.join(contract.band_names)}).")
    past = [b for b in bands if not 1 <= b <= info.band_count]
    if past:
        raise InputRasterError(f"{info.name}: band mapping {list(bands)} names band(s) {past}, but the raster has "
                               f"{info.band_count} band(s) (numbered from 1).")
    nodata = tuple(info.nodata[b - 1] for b in bands)
    radio = contract.radiometry
    mode = radiometry_mode or radio.mode
    if mode not in ("fixed", "percentile"):
        raise InputRasterError(f"Unknown radiometry mode {mode!r}; choose 'fixed' or 'percentile'.")
    low, high, n_valid = image_percentiles(reader, bands, nodata, radio.percentiles)
    if n_valid == 0 and not _any_valid_image_pixel(reader, bands, nodata):
        raise InputRasterError(f"{info.name}: every pixel is nodata (nodata values {list(nodata)}); there is "
                               "nothing to translate.")
    if mode == "fixed":
        if n_valid >= MIN_CONSTANT_CHECK_PX and all(lo == hi for lo, hi in zip(low, high, strict=True)):
            raise InputRasterError(
                f"{info.name}: every sampled pixel has the same value in every band ({list(low)}); constant imagery "
                "cannot be translated. If that value marks pixels without data, set it as the raster's nodata value."
            )
        low, high = radio.low, radio.high
        if dtype == np.uint8 and max(radio.high) > 255:
            messages.append(f"{info.name} is 8-bit but the model expects values up to {max(radio.high):g} "
                            "(radiometry 'fixed'); consider radiometry 'percentile'.")
    else:
        if n_valid == 0:  # valid pixels exist but the sample missed them: sample the rows that have them
            low, high = radio.low, radio.high
            messages.append(f"{info.name}: too few valid pixels to compute percentiles; using the model's range.")
        flat = [b for b, (lo, hi) in enumerate(zip(low, high, strict=True), start=1) if not hi > lo]
        if flat:
            raise InputRasterError(
                f"{info.name}: band(s) {[bands[b - 1] for b in flat]} have no contrast (the {radio.percentiles[0]:g}-"
                f"{radio.percentiles[1]:g} percentiles are equal: {[low[b - 1] for b in flat]}); all-constant "
                "imagery cannot be translated. Check the band mapping and nodata value, or use radiometry 'fixed'."
            )
    return InputPlan(contract.direction, bands, nodata, tuple(low), tuple(high), tuple(messages))

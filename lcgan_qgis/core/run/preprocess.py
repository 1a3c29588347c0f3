"""Input checks and conversions from raster pixels to model input (and the masks of valid pixels).

* Land cover (input of ``landcover_to_rgb``): one integer band of source codes -> one-hot float32 ``(K, h, w)``;
  nodata pixels (the raster's nodata value or the scheme's nodata code) get the uniform vector 1/K, a neutral
  input, and are masked in the output. Unknown codes are found by a pre-scan before any inference, and reported
  with their pixel counts.
* Imagery (input of ``rgb_to_landcover``): ``image_bands`` bands (1-based mapping, default 1..n) of any integer or
  float type -> float32 in [-1, 1] by the radiometry (``fixed``: the model's training range; ``percentile``: the
  same percentiles computed on this raster from a bounded sample). A pixel is nodata when any band is at its nodata
  value or not finite, or the raster's alpha or mask band marks it (:func:`validity.image_valid`, the rule training
  uses too); nodata pixels are fed as 0 (mid-range) and masked in the output. Land-cover pixels masked out by an
  alpha or mask band are nodata too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..choices import direction_pointer
from ..errors import Canceled, InputRasterError, SchemeError
from ..model.contract import RADIOMETRY_MODES, Direction, ModelContract
from ..model.scheme import NLCD_LEGEND, unseen_code_substitutes
from ..rasters.raster import RasterInfo, RasterReader, Window, read_valid_mask
from ..rasters.sources import palette_reason
from ..rasters.validity import image_valid
from .noise import position_noise, stream_seed

if TYPE_CHECKING:
    from ..terrain.channels import TerrainDeriver

log = logging.getLogger(__name__)

SAMPLE_GRID = 16  # percentile sample: up to SAMPLE_GRID x SAMPLE_GRID windows ...
SAMPLE_WINDOW_PX = 64  # ... of this size, evenly spread (at most 1 Mpx read, whatever the raster size)
SCAN_ROWS = 256  # rows per read when scanning a whole raster (bounded memory) ...
SCAN_STRIP_PX = 16 * 2**20  # ... and at most this many pixels per read (very wide rasters)
SCAN_CHUNK_PX = 2**20  # pixels counted at a time (np.bincount copies its input as int64: 8 MB)
STOP_AFTER_UNKNOWN_PX = 16 * 2**20  # with unknown codes found, stop scanning once this many pixels were read
MAX_UNKNOWN_CODES = 1000  # ... or once this many distinct unknown codes were seen
MIN_CONSTANT_CHECK_PX = 256  # fixed radiometry: a sample of at least this many identical pixels is "constant imagery"


@dataclass(frozen=True)
class InputPlan:
    """What to read and how to turn it into model input, decided once per run by :func:`plan_input`."""

    direction: Direction
    bands: tuple[int, ...]
    nodata: tuple[float | None, ...]  # per read band
    low: tuple[float, ...] = ()  # image radiometry actually applied (empty for land cover)
    high: tuple[float, ...] = ()
    messages: tuple[str, ...] = ()
    terrain: TerrainDeriver | None = None  # terrain-aware land cover -> RGB models: channels from the DEM
    seed: int = 0  # the user's seed (Rendering.seed), added to the model's noise seed (noise.stream_seed)

    def convert(self, contract: ModelContract, pixels: np.ndarray, source: str, window: Window,
                mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(bands, h, w)`` pixels of ``window`` -> ``(model input (C, h, w) float32, valid mask (h, w) bool)``.

        ``mask`` (the raster's alpha or mask band, :func:`~lcgan_qgis.core.rasters.raster.read_valid_mask`) marks
        further pixels as nodata. Land cover: the one-hot map, then the terrain channels of ``window`` (with their halo)
        for terrain-aware models, then the model's ``noise_channels`` drawn from the pixels' positions in the whole
        raster (:func:`~lcgan_qgis.core.run.noise.position_noise`).
        """
        if self.direction is Direction.LANDCOVER_TO_RGB:
            codes = pixels[0] if mask is None else np.where(mask, pixels[0], contract.scheme.nodata_code)
            k, noise = len(contract.scheme), contract.noise_channels
            terrain = self.terrain.channels(window) if self.terrain is not None else None
            t = 0 if terrain is None else terrain.shape[0]
            x = np.empty((k + t + noise, *codes.shape), dtype=np.float32)  # (one buffer: no concatenation)
            _onehot, valid = landcover_to_onehot(contract, codes, self.nodata[0], source, out=x[:k])
            if terrain is not None:
                x[k:k + t] = terrain
            if noise:
                position_noise(window, noise, stream_seed(contract.noise_seed, self.seed), out=x[k + t:])
            return x, valid
        valid = image_valid(pixels, self.nodata, mask)
        x = contract.radiometry.normalize(pixels, self.low, self.high)
        x[:, ~valid] = 0.0
        return x, valid


def landcover_to_onehot(contract: ModelContract, codes: np.ndarray, nodata: float | None, source: str,
                        out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(h, w)`` codes -> one-hot ``(K, h, w)`` float32 (uniform 1/K on nodata) and the valid mask.

    ``out``: a float32 ``(K, h, w)`` array to write the one-hot map into (e.g. part of a model input). 8- and
    16-bit codes go through the scheme's lookup table (``scheme.table_indices``); other types, and codes the table
    does not know (for the scheme's message), through ``scheme.codes_to_indices``.
    """
    scheme = contract.scheme
    k = len(scheme)
    if out is None:
        out = np.empty((k, *codes.shape), dtype=np.float32)
    looked_up = scheme.table_indices(codes, nodata)
    if looked_up is not None:
        indices, valid = looked_up, looked_up >= 0
    else:
        try:
            indices, valid = scheme.codes_to_indices(codes, nodata)
        except SchemeError as exc:
            raise InputRasterError(f"{source}: {exc}") from None
    for i in range(k):  # (the nodata pixels' index, 0 or -1, is overwritten below)
        np.equal(indices, i, out=out[i], casting="unsafe")
    if not valid.all():
        out[:, ~valid] = 1.0 / k
    return out, valid


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
              is_canceled: Callable[[], bool] | None = None) -> Iterator[tuple[Window, np.ndarray]]:
    """Yield ``(window, (bands, rows, width) pixels)`` strips covering the whole raster, top to bottom.

    Memory is bounded: at most :data:`SCAN_ROWS` rows and :data:`SCAN_STRIP_PX` pixels a strip.

    Raises:
        Canceled: ``is_canceled`` turned true (checked before every strip).
    """
    info = reader.info
    step = max(1, min(SCAN_ROWS, SCAN_STRIP_PX // max(info.width, 1)))
    for row in range(0, info.height, step):
        if is_canceled is not None and is_canceled():
            raise Canceled("Cancelled; nothing was written.")
        window = Window(0, row, info.width, min(step, info.height - row))
        yield window, reader.read(window, bands)


def _count_codes(values: np.ndarray, counts: dict[int, int]) -> None:
    """Add the pixel count of every code in ``values`` (1-D) to ``counts``, a chunk at a time (bounded memory)."""
    for start in range(0, values.size, SCAN_CHUNK_PX):
        chunk = values[start:start + SCAN_CHUNK_PX]
        if chunk.dtype.itemsize <= 2 and chunk.dtype.kind == "u":
            binned = np.bincount(chunk, minlength=1)
            found = np.flatnonzero(binned)
            pairs = zip(found.tolist(), binned[found].tolist())
        else:
            uniq, n = np.unique(chunk, return_counts=True)
            pairs = zip(uniq.tolist(), n.tolist())
        for code, c in pairs:
            counts[int(code)] = counts.get(int(code), 0) + int(c)


def scan_landcover(contract: ModelContract, reader: RasterReader,
                   is_canceled: Callable[[], bool] | None = None) -> dict[int, int]:
    """Count every code of a land-cover raster; raises on unknown codes (with counts) or when all are nodata.

    Memory does not grow with the raster or the number of bad pixels: codes are counted per strip and chunk.
    Once unknown codes are found the scan stops as soon as :data:`STOP_AFTER_UNKNOWN_PX` pixels were read, or
    :data:`MAX_UNKNOWN_CODES` distinct unknown codes were seen (the message then says which rows it counted).
    Pixels the raster's alpha or mask band marks invalid are not counted.

    Raises:
        InputRasterError: unknown codes, or every pixel nodata.
        Canceled: ``is_canceled`` turned true.
    """
    info = reader.info
    scheme = contract.scheme
    nodata_codes = {scheme.nodata_code}
    if info.nodata[0] is not None and float(info.nodata[0]).is_integer():
        nodata_codes.add(int(info.nodata[0]))
    allowed = set(scheme.codes) | nodata_codes | set(unseen_code_substitutes(scheme, NLCD_LEGEND))
    counts: dict[int, int] = {}
    first_bad_row, last_row, scanned_px = None, 0, 0
    for window, strip in scan_rows(reader, (1,), is_canceled):
        mask = read_valid_mask(reader, window, (1,))
        values = strip[0].ravel() if mask is None else strip[0][mask]
        _count_codes(values, counts)
        last_row, scanned_px = window.row_end, scanned_px + window.width * window.height
        unknown_count = len(counts.keys() - allowed)
        if unknown_count and first_bad_row is None:
            first_bad_row = window.row_off
        if unknown_count and (scanned_px >= STOP_AFTER_UNKNOWN_PX or unknown_count > MAX_UNKNOWN_CODES):
            break
    unknown = {c: n for c, n in counts.items() if c not in allowed}
    if unknown:
        commonest = max(unknown, key=unknown.__getitem__)
        where = "" if last_row >= info.height else (
            f" in rows 1-{last_row:,} of {info.height:,} (the scan stopped there; there may be more)")
        raise InputRasterError(
            f"{info.name}: {scheme.describe_unknown(unknown, where)} Reclassify them to the scheme's codes, or, if "
            f"{commonest} marks pixels without data, set it as the raster's nodata value (e.g. gdal_edit.py "
            f"-a_nodata {commonest})."
        )
    if all(c in nodata_codes for c in counts):
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
        valid = image_valid(pixels, nodata, read_valid_mask(reader, window, bands))
        for b in range(len(bands)):
            values[b].append(pixels[b][valid].astype(np.float64))
    flat = [np.concatenate(v) if v else np.empty(0) for v in values]
    if flat[0].size == 0:
        return (), (), 0
    low = tuple(float(np.percentile(v, percentiles[0])) for v in flat)
    high = tuple(float(np.percentile(v, percentiles[1])) for v in flat)
    return low, high, int(flat[0].size)


def _any_valid_image_pixel(reader: RasterReader, bands: Sequence[int], nodata: Sequence[float | None],
                           is_canceled: Callable[[], bool] | None = None) -> bool:
    return any(image_valid(strip, nodata, read_valid_mask(reader, window, bands)).any()
               for window, strip in scan_rows(reader, bands, is_canceled))


def _too_few_bands(contract: ModelContract, reader: RasterReader, dtype: np.dtype) -> str:
    """Why an image model cannot take this raster: a land-cover map is sent to the other algorithm (a band mapping
    such as 1,1,1 would feed its class codes as colours); only a grey image gets the band-mapping hint."""
    info, n = reader.info, contract.image_bands
    head = f"{info.name}: has {info.band_count} band(s), but the model needs {n} ({', '.join(contract.band_names)})."
    if info.band_count == 1 and dtype.kind in "iu":
        window = Window(max(0, info.width // 2 - 128), max(0, info.height // 2 - 128), min(256, info.width),
                        min(256, info.height))
        values = np.unique(reader.read(window, [1]))
        known = set(contract.scheme.codes) | ({int(info.nodata[0])} if info.nodata[0] is not None else set())
        if values.size and set(values.tolist()) <= known:
            shown = ", ".join(str(v) for v in values.tolist() if v in contract.scheme.codes)
            return (f"{head} Its values ({shown}) are class codes of the scheme '{contract.scheme.name}': it is a "
                    f"land-cover map. Translate it with {direction_pointer(Direction.LANDCOVER_TO_RGB)} instead.")
        palette = palette_reason(info.name)  # (indices into a colour table: no band mapping helps)
        if palette:
            return f"{head} {palette}"
        return (f"{head} If it is a land-cover map, use {direction_pointer(Direction.LANDCOVER_TO_RGB)}; if it is "
                f"a grey image, give a band mapping, e.g. bands={','.join(['1'] * n)}.")
    mapping = ",".join(str(min(i + 1, info.band_count)) for i in range(n))
    return f"{head} Give a band mapping, e.g. bands={mapping}."


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
                f"imagery? Imagery goes to {direction_pointer(Direction.RGB_TO_LANDCOVER)}."
            )
        if dtype.kind == "f":
            raise InputRasterError(
                f"{info.name}: is {dtype.name}, but land cover must be integer class codes (Byte/UInt16) of the "
                f"scheme '{contract.scheme.name}'. Convert it (e.g. gdal_translate -ot Byte) if the values are codes."
            )
        unseen = unseen_code_substitutes(contract.scheme, scan_landcover(contract, reader, is_canceled))
        notes = tuple(f"{info.name}: NLCD code {code} is not a class of the model (scheme '{contract.scheme.name}'); "
                      f"it is read as {target}, the nearest class of the same NLCD group." for code, target in
                      unseen.items())
        for note in notes:
            log.warning("%s", note)
        return InputPlan(contract.direction, (1,), (info.nodata[0],), messages=notes)

    n = contract.image_bands
    messages: list[str] = []
    if bands is None:
        if info.band_count < n:
            raise InputRasterError(_too_few_bands(contract, reader, dtype))
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
    if mode not in RADIOMETRY_MODES:
        raise InputRasterError(f"Unknown radiometry mode {mode!r}; choose one of: {', '.join(RADIOMETRY_MODES)}.")
    low, high, n_valid = image_percentiles(reader, bands, nodata, radio.percentiles)
    if n_valid == 0 and not _any_valid_image_pixel(reader, bands, nodata, is_canceled):
        raise InputRasterError(f"{info.name}: every pixel is nodata (nodata values {list(nodata)}); there is "
                               "nothing to translate.")
    if mode == "fixed":
        if n_valid >= MIN_CONSTANT_CHECK_PX and all(lo == hi for lo, hi in zip(low, high)):
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
        flat = [b for b, (lo, hi) in enumerate(zip(low, high), start=1) if not hi > lo]
        if flat:
            raise InputRasterError(
                f"{info.name}: band(s) {[bands[b - 1] for b in flat]} have no contrast (the {radio.percentiles[0]:g}-"
                f"{radio.percentiles[1]:g} percentiles are equal: {[low[b - 1] for b in flat]}); all-constant "
                "imagery cannot be translated. Check the band mapping and nodata value, or use radiometry 'fixed'."
            )
    return InputPlan(contract.direction, bands, nodata, tuple(low), tuple(high), tuple(messages))

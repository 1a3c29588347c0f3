"""Which imagery pixels hold data: one rule for inference, training, validation and evaluation.

**A pixel is valid only when every band has data**: no band equals its nodata value and no band is NaN or infinite.
Why "any band at nodata makes the pixel nodata" rather than "all bands":

- nodata is declared per band (GDAL, QGIS and rasterio all store one value per band), so a band at its nodata value
  says "this band has no measurement here", whatever the other bands hold;
- the models read red, green and blue together: a pixel with a band missing cannot be fed faithfully (its missing
  band would enter the network as the nodata value, e.g. Landsat's 0, far below every real digital number);
- non-finite values were already judged per band (one NaN band made a pixel nodata), so "all bands" for the nodata
  value was the odd rule out; QGIS's RGB renderer also draws such pixels transparent;
- training never sees such pixels, so inference must not translate them either.

A raster's alpha band or GDAL mask band (an RGBA's 4th band, a ``.msk`` file, an internal mask) also marks pixels
without data: where it is 0 the pixel is invalid, whatever the bands hold (the readers hand it over as ``mask``,
:func:`~lcgan_qgis.core.rasters.raster.read_valid_mask`). Infinite values count like NaN (a float raster's ``-inf``
nodata marker, or an overflow in a processing chain).

The cost: imagery that declares a nodata value which is also a real value of a band (8-bit imagery with nodata 0
and pure-black shadows in one band) loses those pixels; unset or correct the nodata value (gdal_edit -unsetnodata,
or the layer's Transparency properties) to keep them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


def image_valid(pixels: np.ndarray, nodata: float | None | Sequence[float | None],
                mask: np.ndarray | None = None) -> np.ndarray:
    """The ``(rows, cols)`` mask of valid pixels of ``(bands, rows, cols)`` imagery (see the module docstring).

    Args:
        pixels: the bands, in the raster's own dtype or float.
        nodata: one nodata value per band (``None`` or NaN: none for that band), or one value for every band.
        mask: ``(rows, cols)`` bool from the raster's alpha or mask band (False: no data); ``None``: none.

    Raises:
        ValueError: ``pixels`` is not 3-D, or ``nodata`` does not give one value per band.
    """
    if pixels.ndim != 3:
        raise ValueError(f"image_valid needs (bands, rows, cols) pixels, got shape {pixels.shape}.")
    values = [nodata] * pixels.shape[0] if nodata is None or isinstance(nodata, (int, float)) else list(nodata)
    if len(values) != pixels.shape[0]:
        raise ValueError(f"image_valid: {len(values)} nodata value(s) for {pixels.shape[0]} band(s).")
    valid = np.ones(pixels.shape[1:], dtype=bool) if mask is None else np.array(mask, dtype=bool)
    for band, value in zip(pixels, values):
        if value is not None and not math.isnan(value):
            valid &= band != value
    if pixels.dtype.kind == "f":
        valid &= np.isfinite(pixels).all(axis=0)
        if pixels.dtype.itemsize > 4:  # float64 beyond float32's range: inf once converted for the model, like Inf
            valid &= (np.abs(np.where(np.isfinite(pixels), pixels, 0.0)) <= FLOAT32_MAX).all(axis=0)
    return valid

"""Position-keyed noise: standard normal values that depend only on (row, column, channel, seed).

A land-cover map says nothing about texture: a convolutional generator fed only a one-hot map paints every large
patch of one class in one flat colour. Models trained with ``noise_channels`` read extra N(0, 1) channels from which
they paint texture. Training draws that noise from torch; inference draws it here, from the pixel's position in the
WHOLE raster, so overlapping windows, any window size, any batch and a resumed or distributed run all feed the same
value to the same pixel (tiled == untiled holds).

The values come from a counter-based hash (the splitmix64 finaliser, Steele et al. 2014) of the position, turned
into normal values by the Box-Muller transform: no state, no sequence, vectorised numpy.

The stream is chosen by one seed, :func:`stream_seed`: the model's ``noise_seed`` (its contract) plus the user's
seed (:class:`~lcgan_qgis.core.run.settings.Rendering`, 0 by default, so a run without a seed paints what the model
always painted). The seed changes the noise only, so the texture, never the layout the map and terrain channels set.
"""

from __future__ import annotations

import numpy as np

from ..rasters.raster import Window

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_53 = float(2**53)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _uniform(keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform values in (0, 1) from uint64 keys, one independent stream per ``stream``."""
    bits = _mix(keys + np.uint64(stream) * _GOLDEN) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) / _TWO_POW_53


def stream_seed(model_seed: int, user_seed: int = 0) -> int:
    """The seed of a run's noise stream: the model's ``noise_seed`` plus the user's seed (both in [0, 2**63), so the
    sum fits the 64-bit key)."""
    return int(model_seed) + int(user_seed)


def position_noise(window: Window, channels: int, seed: int = 0) -> np.ndarray:
    """``(channels, height, width)`` float32 standard normal noise for the pixels of ``window``.

    Args:
        window: the pixels, in the whole raster's coordinates (``col_off, row_off, width, height``).
        channels: number of noise channels.
        seed: the stream (:func:`stream_seed` of the model's ``noise_seed`` and the user's seed).
    """
    if channels <= 0:
        return np.zeros((0, window.height, window.width), dtype=np.float32)
    rows = np.arange(window.row_off, window.row_off + window.height, dtype=np.uint64)
    cols = np.arange(window.col_off, window.col_off + window.width, dtype=np.uint64)
    chans = np.arange(channels, dtype=np.uint64)
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * _GOLDEN + np.uint64(1))
        keys = (_mix(base ^ chans[:, None, None]) ^ (rows[None, :, None] << np.uint64(32))) + cols[None, None, :]
        keys = _mix(keys)
        u1, u2 = _uniform(keys, 1), _uniform(keys, 2)
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)

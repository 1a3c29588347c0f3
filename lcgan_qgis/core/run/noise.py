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


#: Rows of one channel computed at a time: the uint64 / float64 temporaries (4 x 64 x width x 8 bytes at 512 px)
#: stay in the CPU cache instead of streaming a dozen window-sized arrays through memory.
CHUNK_ROWS = 64

_SHIFT_30, _SHIFT_27, _SHIFT_31, _SHIFT_11, _SHIFT_32 = (np.uint64(s) for s in (30, 27, 31, 11, 32))


def _mix_inplace(x: np.ndarray, scratch: np.ndarray) -> None:
    """:func:`_mix` of ``x`` written into ``x`` (``scratch``: a uint64 array of its shape)."""
    for shift, multiplier in ((_SHIFT_30, _M1), (_SHIFT_27, _M2), (_SHIFT_31, None)):
        np.right_shift(x, shift, out=scratch)
        x ^= scratch
        if multiplier is not None:
            x *= multiplier


def position_noise(window: Window, channels: int, seed: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """``(channels, height, width)`` float32 standard normal noise for the pixels of ``window``.

    The same arithmetic as :func:`_mix` and :func:`_uniform` (splitmix64, then Box-Muller in float64, rounded to
    float32 at the end), done in place on blocks of :data:`CHUNK_ROWS` rows: the values are bit for bit those of
    the whole-window formula, at about half the CPU time.

    Args:
        window: the pixels, in the whole raster's coordinates (``col_off, row_off, width, height``).
        channels: number of noise channels.
        seed: the stream (:func:`stream_seed` of the model's ``noise_seed`` and the user's seed).
        out: a float32 ``(channels, height, width)`` array to write into (e.g. part of a model input); returned.
    """
    h, w = window.height, window.width
    if out is None:
        out = np.empty((max(channels, 0), h, w), dtype=np.float32)
    if out.shape != (max(channels, 0), h, w) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(channels, h, w)}, got {out.dtype} {out.shape}")
    if channels <= 0 or h == 0 or w == 0:
        return out
    rows = np.arange(window.row_off, window.row_off + h, dtype=np.uint64) << _SHIFT_32
    cols = np.arange(window.col_off, window.col_off + w, dtype=np.uint64)
    m = min(CHUNK_ROWS, h)
    keys, bits, scratch = (np.empty((m, w), dtype=np.uint64) for _ in range(3))
    u1, u2 = np.empty((m, w), dtype=np.float64), np.empty((m, w), dtype=np.float64)
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * _GOLDEN + np.uint64(1))
        heads = _mix(base ^ np.arange(channels, dtype=np.uint64))
        offsets = (np.uint64(1) * _GOLDEN, np.uint64(2) * _GOLDEN)  # the streams of _uniform
        for c in range(channels):
            for r0 in range(0, h, m):
                n = min(m, h - r0)
                k, b, s, v1, v2 = keys[:n], bits[:n], scratch[:n], u1[:n], u2[:n]
                np.bitwise_xor(heads[c], rows[r0:r0 + n, None], out=k)
                k += cols[None, :]
                _mix_inplace(k, s)
                for v, offset in ((v1, offsets[0]), (v2, offsets[1])):  # _uniform(keys, 1) and (keys, 2)
                    np.add(k, offset, out=b)
                    _mix_inplace(b, s)
                    b >>= _SHIFT_11
                    np.copyto(v, b, casting="unsafe")
                    v += 0.5
                    v /= _TWO_POW_53
                np.log(v1, out=v1)  # sqrt(-2 log u1) * cos(2 pi u2)
                v1 *= -2.0
                np.sqrt(v1, out=v1)
                v2 *= 2.0 * np.pi
                np.cos(v2, out=v2)
                v1 *= v2
                out[c, r0:r0 + n] = v1
    return out

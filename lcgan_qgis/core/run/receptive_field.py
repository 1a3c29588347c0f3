"""The receptive field of a land cover -> RGB model, measured by perturbing land-cover pixels through the model.

A scenario re-renders only the pixels a change can reach (:mod:`.scenario`). How far that is depends on the
model: a stack of convolutions has a finite, square receptive field, outside which a changed input pixel leaves the
output exactly as it was (bit for bit: the same inputs, in the same order, give the same sums). Rather than trusting
an architecture formula, :func:`receptive_field_px` measures it on the loaded model: it renders a random map with
its noise, changes the class of a small block at the centre, renders again and takes the farthest output pixel that
moved at all. The block is as wide as the model's size multiple, so every phase of its strided layers is probed.
Measured values and the command are in ``docs/scenarios.md``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ContractError
from ..model.contract import Direction
from .tiling import round_up

if TYPE_CHECKING:  # (the runtime imports onnxruntime: the plugin loads before it is installed)
    from ..model.runtime import Model

#: The largest margin a scenario uses (px); a model reaching farther is measured up to here and capped.
MAX_MARGIN_PX = 256
_PROBE_SEED = 20261206
_cache: dict[tuple[str, str, str, int], tuple[int, bool]] = {}
_lock = threading.Lock()


def receptive_field_px(model: Model, cap_px: int = MAX_MARGIN_PX) -> tuple[int, bool]:
    """The Chebyshev radius (px) within which changing one land-cover pixel changes ``model``'s output.

    Returns ``(radius, capped)``: the measured radius rounded up to the model's size multiple, or ``cap_px`` with
    ``capped=True`` when the influence still reaches the probe's edge at ``cap_px`` (the model sees farther).
    Cached per model file, backend, precision and cap (two to four inferences of at most ``2 * cap_px`` px).

    Raises:
        ContractError: the model does not paint imagery from land cover.
    """
    contract = model.contract
    if contract.direction is not Direction.LANDCOVER_TO_RGB:
        raise ContractError(f"{model.path}: a receptive field is measured on land cover -> RGB models; this one "
                            f"translates {contract.direction.value}.")
    key = (str(model.path), model.backend, model.precision, cap_px)
    with _lock:
        if key in _cache:
            return _cache[key]
    multiple = contract.size_multiple_px
    size = round_up(min(256, 2 * cap_px + 2 * multiple), multiple)
    while True:
        radius, reached_edge = _probe(model, size, multiple)
        if not reached_edge:
            result = (min(round_up(radius, multiple), cap_px), radius > cap_px)
            break
        if size >= 2 * cap_px + 2 * multiple:
            result = (cap_px, True)
            break
        size = min(2 * size, round_up(2 * cap_px + 2 * multiple, multiple))
    with _lock:
        _cache[key] = result
    return result


def _probe(model: Model, size: int, block: int) -> tuple[int, bool]:
    """Perturb a ``block`` x ``block`` square at the centre of a random ``size`` px map; returns the farthest
    Chebyshev distance from the square of an output pixel that changed, and whether it touched the map's edge."""
    contract = model.contract
    k = contract.num_classes
    rng = np.random.default_rng(_PROBE_SEED + size)
    classes = rng.integers(0, k, (size // 8 + 1, size // 8 + 1)).repeat(8, 0).repeat(8, 1)[:size, :size]
    x = np.zeros((1, contract.in_channels, size, size), np.float32)
    rows, cols = np.indices((size, size))
    x[0, classes, rows, cols] = 1.0
    extra = contract.in_channels - k  # terrain channels (a flat plain) and noise
    if extra:
        x[0, k + contract.terrain_channels:] = rng.standard_normal((contract.noise_channels, size, size))
    b0 = size // 2 - block // 2
    b1 = b0 + block
    changed = x.copy()
    changed[0, :k, b0:b1, b0:b1] = np.roll(x[0, :k, b0:b1, b0:b1], k // 2, axis=0)
    before, after = model.run(x)[0], model.run(changed)[0]
    moved = np.any(before != after, axis=0)
    if not moved.any():
        return 0, False
    ys, xs = np.nonzero(moved)
    dy = np.maximum(np.maximum(b0 - ys, ys - (b1 - 1)), 0)
    dx = np.maximum(np.maximum(b0 - xs, xs - (b1 - 1)), 0)
    reached_edge = bool(ys.min() == 0 or xs.min() == 0 or ys.max() == size - 1 or xs.max() == size - 1)
    return int(max(dy.max(), dx.max())), reached_edge

"""The scenario's local mode: re-render only the changed neighbourhood and feather it into the base render.

The exact mode (:mod:`.scenario`) re-renders every window of the full render's grid that a change can reach, so its
result equals a full render of the changed map; on a 1 Mpx map that is a large share of the windows for any edit.
The local mode computes only the changed neighbourhood:

1. the changed pixels are grouped into regions (:func:`change_regions`): each cluster's bounding box grown by the
   margin (regions whose crops would overlap are merged); a large region is cut into chunks of at most
   :data:`CHUNK_PX` px (bounded memory);
2. each region is rendered as ONE crop of the changed map: the region plus :data:`CONTEXT_PX` px of context,
   started in the windows' phase (:func:`crop_span`), with the engine's own conversion (position-keyed noise and
   seed: :meth:`~.preprocess.InputPlan.convert`) and post-processing (:func:`render_region`). Every window of the
   full render starts its input at phase 0 (:mod:`.tiling`): the generator's stride-2 layers sample the noise on a
   lattice fixed by that start, so a crop at phase 0 paints the windows' texture, and a pixel far enough inside
   it gets (within the model's rounding) the value the blended windows give it (docs/scenarios.md);
3. the composite (:func:`feather`): the new render inside the change and up to half the margin from it, then a
   raised-cosine feather (weight 1 -> 0 by the Euclidean distance to the change, :func:`distance_to_change`) to the
   margin, and the base render, bit for bit, farther than the margin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OptionError
from ..rasters.output import output_spec, postprocess
from ..rasters.raster import RasterReader, Window
from .change import dilate, polygonize
from .receptive_field import MAX_MARGIN_PX
from .streaming import model_input
from .tiling import MIN_WINDOW_PX, round_up
from .watchdog import Watchdog

if TYPE_CHECKING:  # (both import onnxruntime: the plugin loads before it is installed)
    from ..model.runtime import Model
    from .engine import RunPlan

#: The local mode's margin when none is given (px): the knee of the feathered ring's departure from a full render of
#: the changed map; farther than this the edit moves that render by 1.8 DN on average (measured on Zion,
#: docs/scenarios.md).
DEFAULT_MARGIN_PX = 32
#: Context (px) read around a region for its crop: the crop's own edge effects fade within it.
CONTEXT_PX = 24
#: Context (px) where a region is cut into chunks: at this distance a crop's edge moves a pixel by at most 1 DN
#: (the rounding of the model's sums over crops of other shapes; tests/core/test_scenario_local.py).
CHUNK_CONTEXT_PX = 96
#: Largest side of a chunk rendered at once (memory: 3 float32 bands of it).
CHUNK_PX = 2048
CELL_PX = 16  # change clusters are found on a grid of cells this size
MODES = ("local", "exact")


def check_margin(margin_px: object) -> None:
    """Raise :class:`OptionError` unless ``margin_px`` is an integer in ``0..MAX_MARGIN_PX``."""
    if not isinstance(margin_px, int) or isinstance(margin_px, bool) or not 0 <= margin_px <= MAX_MARGIN_PX:
        raise OptionError(f"The scenario's margin must be a whole number of pixels from 0 to {MAX_MARGIN_PX}, got "
                          f"{margin_px!r}.")


def check_mode(mode: object) -> None:
    """Raise :class:`OptionError` unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise OptionError(f"The scenario's mode must be one of {', '.join(MODES)}, got {mode!r}.")


def _components(cells: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(row0, col0, row1, col1)`` envelopes (in cells, ends excluded) of the 8-connected groups of true cells
    (GDAL's polygonizer labels them)."""
    _source, layer = polygonize(cells, eight_connected=True)
    out = []
    for feature in layer:
        x0, x1, y0, y1 = feature.GetGeometryRef().GetEnvelope()  # (the MEM raster's pixel = cell coordinates)
        out.append((int(round(min(y0, y1))), int(round(x0)), int(round(max(y0, y1))), int(round(x1))))
    return out


def _root(parent: list[int], i: int) -> int:
    """Union-find: the root of ``i`` (halving the path)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _merge(boxes: np.ndarray, gap: int) -> np.ndarray:
    """``(n, 4)`` boxes ``(row0, col0, row1, col1)``: those closer than ``gap`` px merged into their union, until
    none are."""
    while len(boxes) > 1:
        lo, hi = boxes[:, :2] - gap, boxes[:, 2:] + gap
        touch = np.all((lo[:, None] < boxes[None, :, 2:]) & (boxes[None, :, :2] < hi[:, None]), axis=-1)
        np.fill_diagonal(touch, False)
        if not touch.any():
            break
        parent = list(range(len(boxes)))
        for i, j in np.argwhere(touch).tolist():
            parent[_root(parent, i)] = _root(parent, j)
        roots = np.array([_root(parent, i) for i in range(len(boxes))])
        boxes = np.array([[*boxes[roots == r, :2].min(axis=0), *boxes[roots == r, 2:].max(axis=0)]
                          for r in np.unique(roots)])
    return boxes


def change_regions(mask: np.ndarray, margin_px: int, context_px: int = CONTEXT_PX) -> list[Window]:
    """The regions to re-render: each cluster of changed pixels' bounding box grown by ``margin_px`` (clipped to
    the raster); clusters whose regions come within ``context_px`` of each other are merged (found on a grid of
    :data:`CELL_PX` cells, so a map of scattered changes is grouped in C, not pixel by pixel in Python)."""
    height, width = mask.shape
    ch, cw = -(-height // CELL_PX), -(-width // CELL_PX)
    padded = np.zeros((ch * CELL_PX, cw * CELL_PX), bool)
    padded[:height, :width] = mask
    cells = dilate(padded.reshape(ch, CELL_PX, cw, CELL_PX).any(axis=(1, 3)),
                   -(-(2 * margin_px + context_px) // (2 * CELL_PX)))
    boxes = []
    for r0, c0, r1, c1 in _components(cells):
        part = padded[r0 * CELL_PX:r1 * CELL_PX, c0 * CELL_PX:c1 * CELL_PX]
        rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
        if rows.size:
            boxes.append([r0 * CELL_PX + rows[0] - margin_px, c0 * CELL_PX + cols[0] - margin_px,
                          r0 * CELL_PX + rows[-1] + 1 + margin_px, c0 * CELL_PX + cols[-1] + 1 + margin_px])
    if not boxes:
        return []
    merged = _merge(np.clip(np.array(boxes), 0, [height, width, height, width]), context_px)
    return [Window(c0, r0, c1 - c0, r1 - r0) for r0, c0, r1, c1 in sorted(merged.tolist())]


def chunks(region: Window, size: int = CHUNK_PX) -> list[Window]:
    """``region`` cut into chunks of at most ``size`` px per side."""
    return [Window(c, r, min(size, region.col_end - c), min(size, region.row_end - r))
            for r in range(region.row_off, region.row_end, size) for c in range(region.col_off, region.col_end, size)]


def distance_to_change(mask: np.ndarray, limit: int) -> np.ndarray:
    """Float32 Euclidean distance (px) of every pixel to the nearest true pixel of ``mask``, exact up to ``limit``
    and ``limit + 1`` beyond it (a column pass, then the row pass ``min_k k^2 + g(x + k)^2`` over ``|k| <= limit``)."""
    height, width = mask.shape
    cap = limit + 1
    rows = np.arange(height)[:, None]
    last = np.maximum.accumulate(np.where(mask, rows, -2 * cap - height), axis=0)
    following = np.minimum.accumulate(np.where(mask, rows, 2 * cap + 2 * height)[::-1], axis=0)[::-1]
    g2 = np.minimum(np.minimum(rows - last, following - rows), cap).astype(np.float32) ** 2
    d2 = g2.copy()
    for k in range(1, min(cap, width)):
        if k * k >= float(d2.max()):
            break
        np.minimum(d2[:, k:], g2[:, :-k] + k * k, out=d2[:, k:])
        np.minimum(d2[:, :-k], g2[:, k:] + k * k, out=d2[:, :-k])
    return np.minimum(np.sqrt(d2), float(cap))


def feather(distance: np.ndarray, margin_px: int) -> np.ndarray:
    """Float32 weight of the new render: 1 up to half the margin from the change, a raised cosine down to 0 at the
    margin, 0 beyond."""
    inner = margin_px / 2.0
    if margin_px <= 0:
        return (distance <= 0).astype(np.float32)
    t = np.clip((distance - inner) / (margin_px - inner), 0.0, 1.0)
    weight = (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)
    weight[distance >= margin_px] = 0.0
    return weight


def crop_span(lo: int, hi: int, context: int, length: int, multiple: int) -> tuple[int, int]:
    """Raster span ``[a, b)`` holding ``[lo, hi)`` plus ``context`` px, started at phase 0 (a multiple of the model's
    size multiple, like every window's input: :mod:`.tiling`) and a multiple of it long; it may end past the raster
    (``length``), where it is reflected like a window's."""
    a = (max(lo - context, 0) // multiple) * multiple
    return a, a + round_up(max(min(hi + context, length) - a, MIN_WINDOW_PX), multiple)


@dataclass
class RegionRender:
    """A region's new pixels (``(bands, h, w)``, the output's dtype) and how many crops ran."""

    region: Window
    pixels: np.ndarray
    crops: int


def render_region(model: Model, reader: RasterReader, plan: RunPlan, region: Window, context_px: int,
                  guard: Watchdog) -> RegionRender | None:
    """``region`` of the changed map (``reader``, the plan's raster) rendered as one crop of it plus ``context_px``,
    in the windows' phase (see the module's docstring); ``None`` when cancelled."""
    contract, info = model.contract, plan.info
    multiple = plan.size_multiple_px
    r0, r1 = crop_span(region.row_off, region.row_end, context_px, info.height, multiple)
    c0, c1 = crop_span(region.col_off, region.col_end, context_px, info.width, multiple)
    crop = Window(c0, r0, min(c1, info.width) - c0, min(r1, info.height) - r0)
    inner = (slice(region.row_off - r0, region.row_end - r0), slice(region.col_off - c0, region.col_end - c0))
    x, ok = model_input(reader, crop, inner, (r1 - r0, c1 - c0), plan.input, contract)
    if x is None or ok is None:  # (all nodata: the engine's windows skip it too)
        empty = np.zeros((contract.out_channels, region.height, region.width), np.float32)
        out, _ = postprocess(contract, empty, np.zeros(empty.shape[1:], bool), False)
        return RegionRender(region, out.astype(output_spec(contract).dtype, copy=False), 0)
    y = guard.run(x[None])
    if y is None:
        return None
    out, _ = postprocess(contract, np.ascontiguousarray(y[0][(slice(None), *inner)]), ok, False)
    return RegionRender(region, out.astype(output_spec(contract).dtype, copy=False), 1)


def local_parts(regions: list[Window]) -> list[tuple[Window, int]]:
    """The regions cut into chunks (:func:`chunks`), each with the context its crops read."""
    return [(chunk, CONTEXT_PX if chunk == region else CHUNK_CONTEXT_PX)
            for region in regions for chunk in chunks(region, CHUNK_PX)]


def render_local(model: Model, reader: RasterReader, plan: RunPlan, parts: list[tuple[Window, int]],
                 progress: Callable[[float], None], canceled: Callable[[], bool]) -> list[RegionRender] | None:
    """Every part (:func:`local_parts`) rendered by :func:`render_region`; ``None`` when cancelled."""
    guard = Watchdog(model, canceled)
    total = sum(p.width * p.height for p, _c in parts)
    done, out = 0, []
    for part, context in parts:
        if canceled():
            return None
        rendered = render_region(model, reader, plan, part, context, guard)
        if rendered is None:
            return None
        out.append(rendered)
        done += part.width * part.height
        progress(done / max(total, 1))
    return out


def blend(new: np.ndarray, base: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``weight * new + (1 - weight) * base`` rounded, exactly ``base`` where the weight is 0 and ``new`` where it
    is 1 (``(bands, h, w)`` integer pixels, ``(h, w)`` weight)."""
    mixed = np.rint(weight[None] * new.astype(np.float32) + (1.0 - weight[None]) * base.astype(np.float32))
    info = np.iinfo(base.dtype)
    out = np.clip(mixed, info.min, info.max).astype(base.dtype)
    out[:, weight <= 0] = base[:, weight <= 0]
    out[:, weight >= 1] = new[:, weight >= 1]
    return out


def ring_note(margin_px: int) -> str:
    """One line on the local mode's margin."""
    return (f"Local mode, margin {margin_px} px: the changed neighbourhood is re-rendered and feathered into the base "
            f"render from {margin_px // 2} px to {margin_px} px from the change; every pixel farther away is the base "
            "render's (exact mode: equal to a full render of the changed map).")


def ring(mask: np.ndarray, regions: list[Window], margin_px: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The local mode's re-rendered pixels (within ``margin_px`` of a change, Euclidean) over the whole raster, and
    the new render's weight in each region (:func:`~.scenario_local.feather`)."""
    height, width = mask.shape
    grown = mask.copy()
    weights = []
    for region in regions:
        c0, r0 = max(region.col_off - margin_px, 0), max(region.row_off - margin_px, 0)
        c1, r1 = min(region.col_end + margin_px, width), min(region.row_end + margin_px, height)
        if mask[r0:r1, c0:c1].sum() == mask[region.toslices()].sum():  # (no change near it outside: the same distances)
            c0, r0, c1, r1 = region.col_off, region.row_off, region.col_end, region.row_end
        distance = distance_to_change(mask[r0:r1, c0:c1], margin_px)[
            region.row_off - r0:region.row_end - r0, region.col_off - c0:region.col_end - c0]
        grown[region.toslices()] |= distance <= margin_px
        weights.append(feather(distance, margin_px))
    return grown, weights

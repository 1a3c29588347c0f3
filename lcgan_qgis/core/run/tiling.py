"""Tiling geometry: where inference windows go and how their outputs are blended. Pure functions, no I/O.

Along each axis the windows are spread evenly so that consecutive windows overlap by at least ``overlap_px``
and all windows lie inside the raster (so edges are never read from outside it). An axis shorter than the window
gets one window, padded by reflection up to a size multiple (at least :data:`MIN_WINDOW_PX`).

Every window's model input starts at a multiple of the model's size multiple in the raster (its *phase* is 0): the
generator's stride-2 layers sample the input (and its position-keyed noise) on a lattice fixed by where the input
starts, so windows started at other phases would paint other texture over the same land cover, and their overlaps
would blend two textures. The windows' starts are multiples of it where they can be; where one cannot (the last
window ends at the raster's end), every window of that axis reads ``lead`` (= the multiple) more pixels, starting
at the phase-0 position before it (reflected past the raster's end), and keeps its own pixels of the output. A crop
read anywhere at phase 0 then paints the same texture as the windows (:mod:`.scenario_local`).

Blending weights are separable: each window has a 1-D weight per axis, a raised-cosine (sin²) ramp over its
overlap with each neighbour, divided by the sum of all windows' weights along that axis. The 2-D weight of a
window is the outer product, so the weights of all windows sum to exactly 1 at every pixel (a partition of
unity), with no weight-sum buffer needed.

A run over part of the raster (one super-tile of a distributed job) takes :meth:`Tiling.covering`: the windows of the
whole raster's grid that touch the part, with their whole-grid weights, so every pixel of the part gets exactly the
contributions, weights and summation order it gets in a run over the whole raster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..rasters.raster import Window

MIN_WINDOW_PX = 16  # two stride-2 stages plus reflection padding need at least 4x4 features at the bottleneck


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class AxisTiling:
    """Windows along one axis: start offsets, the window's extent inside the raster, and its padded size.

    Positions are relative to ``offset`` (0 for the whole raster; the first window's start in the raster for a
    :meth:`covering` part), and ``length`` is the span whose pixels these windows finish.
    """

    length: int
    starts: tuple[int, ...]
    extent: int  # pixels of each window inside the raster (all windows are the same size)
    padded: int  # size fed to the model (>= extent; > extent only when the axis is shorter than the window)
    weights: tuple[np.ndarray, ...]  # per window, float32 of length ``extent``
    offset: int = 0  # raster position of position 0
    lead: int = 0  # extra input pixels per window (0, or ``multiple`` when a start is off phase)
    multiple: int = 1  # the model's size multiple: input starts are multiples of it in the raster

    def phase(self, i: int) -> int:
        """Pixels between window ``i``'s input start (phase 0 in the raster) and its own start."""
        return (self.offset + self.starts[i]) % self.multiple if self.lead else 0

    @property
    def input_size(self) -> int:
        """Pixels fed to the model per window along this axis."""
        return self.padded + self.lead

    @property
    def count(self) -> int:
        return len(self.starts)

    def stop(self, i: int) -> int:
        return self.starts[i] + self.extent

    def final_stop(self, i: int) -> int:
        """End of the span that no later window touches once window ``i`` is done."""
        return self.starts[i + 1] if i + 1 < self.count else self.length

    @property
    def span(self) -> int:
        """Pixels from position 0 to the end of the last window (the width of a buffer holding every window)."""
        return self.stop(self.count - 1)

    def covering(self, start: int, stop: int) -> AxisTiling:
        """The windows touching raster pixels ``[start, stop)``, with their weights, as an axis of their own.

        Its ``offset`` is the first such window's raster position and its ``length`` ends where the next window of
        the whole axis starts (or at the raster's end): the pixels it finishes are complete, and they include
        ``[start, stop)``. Pixels before ``start`` that an omitted window also covers are left incomplete.
        """
        lo, hi = start - self.offset, stop - self.offset
        if not 0 <= lo < hi <= self.length:
            raise ValueError(f"span [{start}, {stop}) is not inside the axis [{self.offset}, "
                             f"{self.offset + self.length})")
        touching = [i for i, s in enumerate(self.starts) if s < hi and s + self.extent > lo]
        i0, i1 = touching[0], touching[-1] + 1
        origin = self.starts[i0]
        end = self.starts[i1] if i1 < self.count else self.length
        return AxisTiling(end - origin, tuple(s - origin for s in self.starts[i0:i1]), self.extent, self.padded,
                          self.weights[i0:i1], self.offset + origin, self.lead, self.multiple)


def axis_starts(length: int, window_px: int, overlap_px: int, multiple: int = 1) -> tuple[int, ...]:
    """Evenly spread window starts along an axis of ``length`` px; consecutive windows overlap >= ``overlap_px``.
    Every start but the last (which ends at ``length``) is a multiple of ``multiple`` (the windows' phase)."""
    if length <= window_px:
        return (0,)
    step = window_px - overlap_px
    count = math.ceil((length - overlap_px) / step)
    span = length - window_px
    if step < multiple:  # (windows too close for multiples of it: evenly spread)
        multiple = 1
    while True:
        starts = (*(round(i * span / (count - 1) / multiple) * multiple for i in range(count - 1)), span)
        if all(0 < b - a <= step for a, b in zip(starts, starts[1:])):
            return starts
        count += 1


def ramp(length: int) -> np.ndarray:
    """Raised-cosine ramp rising from near 0 to near 1 over ``length`` px (float64, all values in (0, 1))."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    return np.sin(0.5 * np.pi * t) ** 2


def axis_tiling(length: int, window_px: int, overlap_px: int, multiple: int) -> AxisTiling:
    """Windows and normalised blending weights along one axis.

    Args:
        length: raster size along the axis (>= 1).
        window_px: window size (a multiple of ``multiple``).
        overlap_px: minimum overlap between consecutive windows (< window_px / 2).
        multiple: the model's size multiple.
    """
    if length < 1 or window_px < 1 or not 0 <= 2 * overlap_px < window_px:
        raise ValueError(f"bad tiling: length={length} window={window_px} overlap={overlap_px}")
    starts = axis_starts(length, window_px, overlap_px, multiple)
    extent = min(window_px, length)
    padded = window_px if length >= window_px else round_up(max(length, min(MIN_WINDOW_PX, window_px)), multiple)
    lead = multiple if any(start % multiple for start in starts) else 0
    raw = []
    for i, start in enumerate(starts):
        w = np.ones(extent, dtype=np.float64)
        if i > 0:
            left = starts[i - 1] + extent - start
            w[:left] *= ramp(left)
        if i + 1 < len(starts):
            right = start + extent - starts[i + 1]
            w[extent - right:] *= ramp(right)[::-1]
        raw.append(w)
    total = np.zeros(length, dtype=np.float64)
    for start, w in zip(starts, raw):
        total[start:start + extent] += w
    weights = tuple((w / total[s:s + extent]).astype(np.float32) for s, w in zip(starts, raw))
    return AxisTiling(length, starts, extent, padded, weights, 0, lead, multiple)


@dataclass(frozen=True)
class Tiling:
    """The 2-D window grid of a raster: rows of windows (strips) times columns."""

    rows: AxisTiling
    cols: AxisTiling

    @property
    def count(self) -> int:
        return self.rows.count * self.cols.count

    @property
    def padded_shape(self) -> tuple[int, int]:
        """``(height, width)`` fed to the model for every window."""
        return self.rows.input_size, self.cols.input_size

    def input_window(self, r: int, c: int, height: int, width: int) -> tuple[Window, tuple[int, int]]:
        """The raster window read for grid cell ``(r, c)`` (its input clipped to the ``height`` x ``width``
        raster: the model input is that, reflected up to :attr:`padded_shape`) and the ``(row, col)`` offset of
        the cell's own window in it."""
        rows, cols = self.rows, self.cols
        pr, pc = rows.phase(r), cols.phase(c)
        r0, c0 = rows.offset + rows.starts[r] - pr, cols.offset + cols.starts[c] - pc
        r1, c1 = min(r0 + rows.extent + rows.lead, height), min(c0 + cols.extent + cols.lead, width)
        return Window(c0, r0, c1 - c0, r1 - r0), (pr, pc)

    def window(self, r: int, c: int) -> Window:
        """The raster window (inside the raster, in the whole raster's coordinates) of grid cell ``(r, c)``."""
        return Window(self.cols.offset + self.cols.starts[c], self.rows.offset + self.rows.starts[r],
                      self.cols.extent, self.rows.extent)

    def covering(self, region: Window) -> Tiling:
        """The windows touching ``region`` (raster pixels), with their weights: see :meth:`AxisTiling.covering`."""
        return Tiling(self.rows.covering(region.row_off, region.row_end),
                      self.cols.covering(region.col_off, region.col_end))

    def weight(self, r: int, c: int) -> np.ndarray:
        """``(extent_rows, extent_cols)`` float32 blending weight of grid cell ``(r, c)``."""
        return np.outer(self.rows.weights[r], self.cols.weights[c])


def make_tiling(height: int, width: int, window_h: int, window_w: int, overlap_px: int, multiple: int) -> Tiling:
    """The window grid for a ``height`` x ``width`` raster with ``window_h`` x ``window_w`` windows."""
    return Tiling(axis_tiling(height, window_h, overlap_px, multiple),
                  axis_tiling(width, window_w, overlap_px, multiple))


def fit_window(length: int, target_px: int, overlap_px: int, multiple: int) -> int:
    """Shrink ``target_px`` to the smallest window (multiple of ``multiple``) that covers ``length`` with as many
    windows as ``target_px`` needs, so few pixels are computed twice."""
    if length <= target_px:
        return min(target_px, round_up(max(length, 2 * overlap_px + 1), multiple))
    count = math.ceil((length - overlap_px) / (target_px - overlap_px))
    fitted = round_up(max(math.ceil((length - overlap_px) / count) + overlap_px, 2 * overlap_px + 1), multiple)
    return min(target_px, fitted)
